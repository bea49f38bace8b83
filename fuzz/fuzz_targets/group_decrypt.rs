#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomseal_fuzz::group_decrypt(data));
