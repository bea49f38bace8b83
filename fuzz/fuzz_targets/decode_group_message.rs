#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomseal_fuzz::decode_group_message(data));
