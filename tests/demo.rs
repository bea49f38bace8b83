//! Runs the README's main demo (examples/room_chat.rs) as a test: it must
//! find no plaintext or room key in the relay's stored bytes, and the
//! departed and late-joining devices must fail to read what they should not.

#[allow(dead_code)]
#[path = "../examples/room_chat.rs"]
mod room_chat;

#[test]
fn room_chat_demo_succeeds() {
    assert!(room_chat::run());
}
