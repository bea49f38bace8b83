//! Identifier checks.

use crate::matrix::{DeviceId, IdError, RoomId, UserId};

#[test]
fn user_ids() {
    let alice = UserId::parse("@alice:example.org:8448").unwrap();
    assert_eq!(alice.server_name(), "example.org:8448");
    for bad in [
        "alice:example.org",
        "@:example.org",
        "@alice",
        "@alice:",
        "",
    ] {
        assert!(UserId::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(UserId::parse("@a b:c"), Err(IdError::Character("user id")));
    assert_eq!(
        UserId::parse("@a\u{0}:c"),
        Err(IdError::Character("user id"))
    );
    let long = format!("@{}:example.org", "a".repeat(250));
    assert_eq!(UserId::parse(long), Err(IdError::Length("user id")));
    // Serde checks too.
    assert!(serde_json::from_str::<UserId>("\"@bob:x\"").is_ok());
    assert!(serde_json::from_str::<UserId>("\"bob\"").is_err());
}

#[test]
fn device_and_room_ids() {
    assert!(DeviceId::parse("ABCDEF").is_ok());
    assert!(DeviceId::parse("a:b").is_ok());
    assert_eq!(DeviceId::parse(""), Err(IdError::Length("device id")));
    assert_eq!(
        DeviceId::parse("x".repeat(256)),
        Err(IdError::Length("device id"))
    );
    assert!(RoomId::parse("!room:example.org").is_ok());
    assert!(RoomId::parse("!opaque").is_ok());
    assert_eq!(RoomId::parse("#alias:x"), Err(IdError::Form("room id")));
    assert_eq!(RoomId::parse("!"), Err(IdError::Form("room id")));
}
