#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomseal_fuzz::decode_room_key_share(data));
