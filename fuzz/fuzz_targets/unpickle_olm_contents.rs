#![no_main]

#[path = "../src/olm.rs"]
mod olm;

libfuzzer_sys::fuzz_target!(|data: &[u8]| olm::unpickle_olm_contents(data));
