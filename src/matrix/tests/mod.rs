//! Unit tests of the Matrix layer, one file per concept.

mod canonical;
mod signing;
