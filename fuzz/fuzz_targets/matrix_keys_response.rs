#![no_main]

#[path = "../src/matrix.rs"]
mod matrix;

libfuzzer_sys::fuzz_target!(|data: &[u8]| matrix::matrix_keys_response(data));
