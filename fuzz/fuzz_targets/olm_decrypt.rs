#![no_main]

#[path = "../src/olm.rs"]
mod olm;

libfuzzer_sys::fuzz_target!(|data: &[u8]| olm::olm_decrypt(data));
