//! Megolm v1 (placeholder).
