//! A room with three users and five devices, talking through a relay that
//! keeps every byte it is given: keys are published and claimed, the room key
//! is shared, people chat, a device leaves (the key rotates and it can no
//! longer read), a new device joins (and cannot read what came before). At the
//! end the demo searches everything the relay stored for every plaintext and
//! every room key, and exits non-zero if it finds one.
//!
//! Run it with `cargo run --example room_chat`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use roomseal::{
    Curve25519PublicKey, DeviceMessage, EncryptedEvent, Endpoint, KeysToPublish, RoomError,
    RotationReason, SelfSignedDevice, SignedOneTimeKey, ToDeviceMessage,
};
use serde_json::json;

const ROOM: &str = "!garden:example.org";

/// The untrusted server: it stores and forwards bytes, and keeps a copy of
/// everything it was ever given.
/// A pairwise message as the relay delivers it: the user it authenticated
/// as the uploader, the sender's device key and the message text.
type Delivery = (String, Curve25519PublicKey, String);

#[derive(Default)]
struct Relay {
    /// Every upload, as the bytes it received.
    log: Vec<Vec<u8>>,
    /// Published bundles and one-time keys, by device key.
    published: BTreeMap<Curve25519PublicKey, (String, Vec<SignedOneTimeKey>)>,
    /// Pending pairwise messages: recipient → (sender's user id as the relay
    /// authenticated the upload, sender key, message text).
    inbox: BTreeMap<Curve25519PublicKey, Vec<Delivery>>,
    /// The room timeline: (event id, envelope JSON).
    timeline: Vec<(String, String)>,
}

impl Relay {
    fn upload_keys(&mut self, keys: &KeysToPublish) {
        let json = serde_json::to_string(keys).expect("keys serialize");
        self.log.push(json.clone().into_bytes());
        let entry = self
            .published
            .entry(keys.device_keys.keys.curve25519)
            .or_insert_with(|| (String::new(), Vec::new()));
        entry.0 = serde_json::to_string(&keys.device_keys).expect("device keys serialize");
        entry.1.extend(keys.one_time_keys.iter().cloned());
    }

    /// Hands out a device's bundle and one of its one-time keys.
    fn claim(&mut self, device: &Curve25519PublicKey) -> (roomseal::DeviceKeys, SignedOneTimeKey) {
        let (bundle, keys) = self
            .published
            .get_mut(device)
            .expect("device published keys");
        let bundle = serde_json::from_str(bundle).expect("stored bundle parses");
        (bundle, keys.pop().expect("a one-time key is left"))
    }

    /// Queues a pairwise message uploaded by (authenticated) user `sender_user`.
    fn send_to_device(&mut self, sender_user: &str, message: &ToDeviceMessage) {
        let text = message.message.to_base64();
        self.log.push(text.clone().into_bytes());
        self.inbox.entry(message.recipient_key).or_default().push((
            sender_user.to_owned(),
            message.sender_key,
            text,
        ));
    }

    fn fetch_to_device(&mut self, recipient: &Curve25519PublicKey) -> Vec<Delivery> {
        self.inbox.remove(recipient).unwrap_or_default()
    }

    fn post_event(&mut self, envelope: &EncryptedEvent) -> String {
        let json = envelope.to_json();
        self.log.push(json.clone().into_bytes());
        let event_id = format!("$event{}", self.timeline.len() + 1);
        self.timeline.push((event_id.clone(), json));
        event_id
    }

    /// Whether `secret` appears in anything the relay stored: verbatim, as
    /// base64, or inside any base64 field once decoded.
    fn contains(&self, secret: &[u8]) -> bool {
        use base64ct::{Base64Unpadded, Encoding};
        let encoded = Base64Unpadded::encode_string(secret).into_bytes();
        self.log.iter().any(|blob| {
            let decoded_fields = blob
                .split(|b| !(b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/'))
                .filter(|t| t.len() >= 16)
                .filter_map(|t| std::str::from_utf8(t).ok())
                .filter_map(|t| Base64Unpadded::decode_vec(t).ok());
            find(blob, secret)
                || find(blob, &encoded)
                || decoded_fields.into_iter().any(|d| find(&d, secret))
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

struct Device {
    name: &'static str,
    endpoint: Endpoint,
    verified: SelfSignedDevice,
}

fn device(relay: &mut Relay, name: &'static str, user: &str, id: &str) -> Device {
    let mut endpoint = Endpoint::new(user, id).expect("valid ids");
    let keys = endpoint.keys_to_publish(10);
    relay.upload_keys(&keys);
    endpoint.mark_keys_as_published(&keys);
    let verified = keys
        .device_keys
        .check_self_signature()
        .expect("own bundle verifies");
    println!(
        "  {name:<13} publishes its identity and 10 one-time keys ({})",
        short(&verified)
    );
    Device {
        name,
        endpoint,
        verified,
    }
}

fn short(device: &SelfSignedDevice) -> String {
    let key = device.identity_keys().curve25519.to_base64();
    format!(
        "{} {}, key {}…",
        device.user_id(),
        device.device_id(),
        &key[..8]
    )
}

/// `sender` makes sure every device in `room` holds its current room key;
/// returns why the key was rotated first, if it was.
fn share(
    relay: &mut Relay,
    sender: &mut Device,
    room: &[&SelfSignedDevice],
) -> Option<RotationReason> {
    let devices: Vec<SelfSignedDevice> = room.iter().map(|d| (*d).clone()).collect();
    let mut outcome = sender
        .endpoint
        .share_room_key(ROOM, &devices)
        .expect("share");
    if !outcome.missing_sessions.is_empty() {
        for missing in &outcome.missing_sessions {
            let (bundle, otk) = relay.claim(&missing.identity_keys().curve25519);
            sender
                .endpoint
                .establish_session(&bundle, &otk)
                .expect("session from claimed key");
            println!(
                "  {} claims a one-time key of {} and starts a session",
                sender.name,
                short(missing)
            );
        }
        outcome = sender
            .endpoint
            .share_room_key(ROOM, &devices)
            .expect("share");
    }
    let from = sender.endpoint.user_id().to_owned();
    for m in &outcome.messages {
        relay.send_to_device(&from, m);
    }
    // Sent: those devices now count as served (until confirmed, the next
    // share would serve them again).
    let confirmed = sender.endpoint.mark_room_key_sent(&outcome);
    assert_eq!(confirmed, outcome.messages.len(), "every message confirmed");
    let how = match outcome.rotation_reason {
        Some(reason) => format!("rotates ({reason}) and shares a new"),
        None => "shares".to_owned(),
    };
    println!(
        "  {} {how} room key {}… to {} device(s) through the relay",
        sender.name,
        &outcome.session_id.to_base64()[..8],
        outcome.messages.len()
    );
    outcome.rotation_reason
}

fn collect(relay: &mut Relay, device: &mut Device) {
    for (user, sender, text) in relay.fetch_to_device(&device.endpoint.identity_keys().curve25519) {
        let message = DeviceMessage::from_base64(&text).expect("relay returns what it was given");
        let received = device
            .endpoint
            .receive_device_message(&user, &sender, &message)
            .expect("room key accepted");
        println!(
            "  {:<13} receives the room key {}… of {} {} from index {}",
            device.name,
            &received.session_id.to_base64()[..8],
            received.sender_user_id,
            received.sender_device_id,
            received.first_index
        );
    }
}

fn say(relay: &mut Relay, sender: &mut Device, body: &str, said: &mut Vec<String>) -> String {
    let envelope = sender
        .endpoint
        .encrypt_event(ROOM, "m.room.message", &json!({ "body": body }))
        .expect("room key shared");
    let event_id = relay.post_event(&envelope);
    said.push(body.to_owned());
    println!(
        "  {} says {body:?} ({event_id}, {} bytes of ciphertext on the relay)",
        sender.name,
        envelope.to_json().len()
    );
    event_id
}

fn read(relay: &Relay, reader: &mut Device, event_id: &str) -> Result<String, RoomError> {
    let (_, json) = relay
        .timeline
        .iter()
        .find(|(id, _)| id == event_id)
        .expect("event exists");
    let envelope = EncryptedEvent::from_json(json)?;
    let event = reader.endpoint.decrypt_event(ROOM, event_id, &envelope)?;
    Ok(event.content["body"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn main() -> ExitCode {
    if run() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The whole story; true if nothing leaked and nobody read what they should
/// not have.
pub(crate) fn run() -> bool {
    let mut relay = Relay::default();
    let mut said = Vec::new();

    println!("Chapter 1. Five devices of three people publish their keys to the relay.");
    let mut alice_phone = device(&mut relay, "Alice's phone", "@alice:example.org", "PHONE");
    let mut alice_laptop = device(&mut relay, "Alice's laptop", "@alice:example.org", "LAPTOP");
    let mut bob_phone = device(&mut relay, "Bob's phone", "@bob:example.org", "PHONE");
    let mut bob_tablet = device(&mut relay, "Bob's tablet", "@bob:example.org", "TABLET");
    let mut carol_phone = device(&mut relay, "Carol's phone", "@carol:example.org", "PHONE");

    println!("\nChapter 2. Alice's phone shares a room key with everyone else in the room.");
    let room: Vec<SelfSignedDevice> = [
        &alice_phone,
        &alice_laptop,
        &bob_phone,
        &bob_tablet,
        &carol_phone,
    ]
    .iter()
    .map(|d| d.verified.clone())
    .collect();
    let members: Vec<&SelfSignedDevice> = room.iter().collect();
    share(&mut relay, &mut alice_phone, &members);
    for d in [
        &mut alice_laptop,
        &mut bob_phone,
        &mut bob_tablet,
        &mut carol_phone,
    ] {
        collect(&mut relay, d);
    }

    println!("\nChapter 3. They chat. Each sender shares its own room key first.");
    let hello = say(
        &mut relay,
        &mut alice_phone,
        "Hello garden club!",
        &mut said,
    );
    for d in [
        &mut alice_laptop,
        &mut bob_phone,
        &mut bob_tablet,
        &mut carol_phone,
    ] {
        let text = read(&relay, d, &hello).expect("readable");
        println!("    {} reads: {text:?}", d.name);
    }
    share(&mut relay, &mut bob_phone, &members);
    for d in [
        &mut alice_phone,
        &mut alice_laptop,
        &mut bob_tablet,
        &mut carol_phone,
    ] {
        collect(&mut relay, d);
    }
    let tomatoes = say(
        &mut relay,
        &mut bob_phone,
        "My tomatoes are finally red.",
        &mut said,
    );
    println!(
        "    Carol's phone reads: {:?}",
        read(&relay, &mut carol_phone, &tomatoes).expect("readable")
    );
    println!(
        "    Alice's laptop reads: {:?}",
        read(&relay, &mut alice_laptop, &tomatoes).expect("readable")
    );

    println!("\nChapter 4. Bob's tablet is lost and removed from the room.");
    let remaining: Vec<&SelfSignedDevice> = members
        .iter()
        .copied()
        .filter(|d| **d != bob_tablet.verified)
        .collect();
    let rotation = share(&mut relay, &mut alice_phone, &remaining);
    let rotated_for_departure = rotation == Some(RotationReason::DeviceLeft);
    println!("    The key rotated because a device left: {rotated_for_departure}.");
    for d in [&mut alice_laptop, &mut bob_phone, &mut carol_phone] {
        collect(&mut relay, d);
    }
    collect(&mut relay, &mut bob_tablet);
    let secret_plan = say(
        &mut relay,
        &mut alice_phone,
        "The spare key is under the blue pot.",
        &mut said,
    );
    println!(
        "    Bob's phone reads: {:?}",
        read(&relay, &mut bob_phone, &secret_plan).expect("readable")
    );
    let tablet_result = read(&relay, &mut bob_tablet, &secret_plan);
    println!(
        "    Bob's tablet tries and fails: {}",
        describe(&tablet_result)
    );

    println!("\nChapter 5. Dave joins with a new phone.");
    let mut dave_phone = device(&mut relay, "Dave's phone", "@dave:example.org", "PHONE");
    let mut with_dave = remaining.clone();
    with_dave.push(&dave_phone.verified);
    share(&mut relay, &mut alice_phone, &with_dave);
    collect(&mut relay, &mut dave_phone);
    let before_dave = read(&relay, &mut dave_phone, &secret_plan);
    println!(
        "    Dave's phone cannot read what came before it: {}",
        describe(&before_dave)
    );
    let welcome = say(&mut relay, &mut alice_phone, "Welcome, Dave!", &mut said);
    println!(
        "    Dave's phone reads: {:?}",
        read(&relay, &mut dave_phone, &welcome).expect("readable")
    );
    println!(
        "    Carol's phone reads: {:?}",
        read(&relay, &mut carol_phone, &welcome).expect("readable")
    );

    println!("\nEpilogue. What did the relay learn?");
    let mut secrets: Vec<(String, Vec<u8>)> = said
        .iter()
        .map(|s| (format!("plaintext {s:?}"), s.clone().into_bytes()))
        .collect();
    for device in [&alice_phone, &bob_phone] {
        for (_, json) in &relay.timeline {
            let envelope = EncryptedEvent::from_json(json).expect("stored envelope parses");
            if let Some((_, key)) = device
                .endpoint
                .export_room_key(ROOM, &envelope.session_id, 0)
            {
                secrets.push((
                    format!("room key {}…", &envelope.session_id.to_base64()[..8]),
                    key.to_bytes().to_vec(),
                ));
                secrets.push(("room key ratchet".into(), key.to_bytes()[5..133].to_vec()));
            }
        }
    }
    let stored: usize = relay.log.iter().map(Vec::len).sum();
    println!(
        "  The relay holds {} uploads, {stored} bytes in all.",
        relay.log.len()
    );
    // The search itself must work: plant a secret in a copy and find it.
    let mut probe = Relay {
        log: relay.log.clone(),
        ..Relay::default()
    };
    probe.log.push(
        format!(
            "{{\"planted\":\"{}\"}}",
            roomseal_b64(b"a planted secret value")
        )
        .into_bytes(),
    );
    let search_works =
        probe.contains(b"a planted secret value") && !relay.contains(b"a planted secret value");
    println!(
        "  Self-check: the search finds a secret planted in a copy of the log: {search_works}."
    );
    let leaked: Vec<&String> = secrets
        .iter()
        .filter(|(_, s)| relay.contains(s))
        .map(|(name, _)| name)
        .collect();
    let ok = search_works
        && leaked.is_empty()
        && rotated_for_departure
        && tablet_result.is_err()
        && before_dave.is_err();
    println!(
        "  Searched them for {} secrets ({} plaintexts, {} room-key encodings): {} found.",
        secrets.len(),
        said.len(),
        secrets.len() - said.len(),
        leaked.len()
    );
    for name in &leaked {
        println!("  LEAK: {name}");
    }
    if ok {
        println!(
            "  The relay saw only ciphertext. The departed tablet and the late joiner read nothing they should not."
        );
    } else {
        println!("  FAILURE: a secret leaked or a device read what it should not have.");
    }
    ok
}

fn roomseal_b64(bytes: &[u8]) -> String {
    use base64ct::{Base64Unpadded, Encoding};
    Base64Unpadded::encode_string(bytes)
}

fn describe(result: &Result<String, RoomError>) -> String {
    match result {
        Ok(text) => format!("it READ {text:?} (this is a failure)"),
        Err(e) => format!("{e}"),
    }
}
