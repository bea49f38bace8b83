//! Model-based property test of the room layer (`Endpoint`): random
//! schedules among 3 to 5 devices sharing one room, checked step by step
//! against a model of who holds which room key, of every pairwise session
//! between them (`tests/model_support/mod.rs`), and of each device's
//! outbound room session and replay records.
//!
//! Run many schedules by hand (the default is a quick run for `cargo test`):
//!
//! ```text
//! ROOMSEAL_MODEL_CASES=10000 cargo test --release --test model_pairwise --test model_room
//! ```
//!
//! A failure prints the shrunk schedule (proptest's "minimal failing
//! input": seed, pool size, initial members, rotation count, actions) and
//! the last steps of the run with what the model expected and what the
//! library did.
//!
//! Actions: a member sends an event the way a client does (share the room
//! key with the current members, claim a one-time key and establish a
//! session for each device it has none with, share again, confirm the
//! messages as sent (or not: a crash before confirming), encrypt); the
//! network delivers, drops, redelivers or misroutes to-device messages in
//! any order; any device (member or not) decrypts any event, again, under
//! another event id, or altered; a member leaves; a device joins; a member
//! discards its room key (`rotate_room_key`); a member tries to encrypt
//! without sharing; a device is restored from a pickle taken just now;
//! a device forgets a peer (`forget_peer`); a member shares with a list
//! that names a device twice, or that pairs Mallory's key with another
//! device's ids; the server delivers a to-device message as from another
//! user; Mallory (a raw `Account`, not a member) sends a device a valid
//! share of her own room session, or one addressed to another device,
//! claiming another sender, naming another room, or not a share at all. The rotation
//! policy is a small message count (1 to 6), so keys rotate often. Event
//! "drops" need no action: an event nobody fetches changes nothing, and
//! events are fetched in any order, any number of times.
//!
//! What is checked:
//! - `share_room_key`: whether it rotates and why (`rotation_reason`: never
//!   shared, message count, a device that may hold the key left, a device it
//!   went to was forgotten, an explicit discard), which devices get a message
//!   (those never offered the key, and those offered it whose message was
//!   never confirmed, again from the index first offered), in the order
//!   listed, and which are reported without a session; that confirming
//!   marks exactly the messages of the share; the refusals of a duplicate
//!   recipient and of an identity conflict (nothing changed); the header of
//!   every pairwise message (pre-key flag, counters, chains);
//! - `forget_peer`: how many sessions go, and that a room whose key went to
//!   the forgotten device rotates (`DeviceForgotten`); that device's
//!   messages then find no session, and its old pre-key messages cannot
//!   recreate one (`UnknownOneTimeKey`, `FallbackKeyReplay`); a device the
//!   app never named keeps at most two sessions;
//! - `receive_device_message`: success with the exact room, session, sender
//!   (keys, user and device id), first index and `KeyAdded`, or the exact
//!   error (`ShareSenderMismatch` when the server names another user than
//!   the share's; `Session(..)` as the
//!   pairwise model predicts for the newest session with the sender,
//!   `Account(UnknownOneTimeKey)`, `NoSession`, and for Mallory's payloads
//!   `ShareNotForUs`, `ShareSenderMismatch`, `ShareRoomMismatch`,
//!   `Decode(..)`);
//! - `decrypt_event`: the exact content, sender (keys, and the user and
//!   device ids a share bound; none for the sender's own key), session,
//!   index and authenticity, or the exact error (`UnknownRoomKey`,
//!   `Group(UnknownIndex)`, `Replay`, `Group(BadSignature)`);
//! - every failed operation leaves the endpoint's pickle unchanged, and a
//!   pickle taken just now restores to an equal endpoint;
//! - who can read: a device that was not a member when an event was sent
//!   never decrypts it (a device that left, a device that joined later);
//!   every member at that time that received the key decrypts it;
//! - at the end, after every pending to-device message is delivered, every
//!   member can send an event (over a fresh key shared to all) that every
//!   other member reads: no pairwise session diverged.
//!
//! Every endpoint's generator is seeded from the schedule (`set_rng`, feature
//! `insecure-test-rng`), so a
//! printed schedule replays exactly. `schedules_reach_every_rule` runs a
//! fixed sample of schedules and fails unless every outcome above happened
//! at least once, so the model cannot pass vacuously.

mod model_support;

use std::collections::{BTreeMap, BTreeSet};

use model_support::{Journal, Origin, PeerModel, Pick, cases, fixed_rng, pick, pickle_key};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::{
    Account, AccountError, Curve25519PublicKey, DecodeError, DeviceKeys, DeviceMessage,
    EncryptedEvent, Endpoint, GroupError, GroupMessage, IdentityKeys, KeyAdded,
    OutboundGroupSession, PickleKey, RoomError, RoomKeyShare, RotationPolicy, RotationReason,
    SelfSignedDevice, Session, SessionId, SignedOneTimeKey, pickle_generation,
};
use serde_json::json;

/// Schedules per `cargo test` run unless `ROOMSEAL_MODEL_CASES` says.
const DEFAULT_CASES: u32 = 100;

/// Schedules of the coverage check.
const COVERAGE_CASES: usize = 80;

/// Most actions in one schedule.
const MAX_ACTIONS: usize = 120;

const ROOM: &str = "!model:example.org";

const MALLORY_USER: &str = "@mallory:example.org";
const MALLORY_DEVICE: &str = "MALLORY";

/// Sessions a device the app never named may hold (`MAX_STRANGER_SESSIONS`).
const STRANGER_SESSIONS: usize = 2;
/// Sessions a named device may hold (`MAX_SESSIONS_PER_PEER`).
const PEER_SESSIONS: usize = 8;

#[derive(Clone, Debug)]
enum Action {
    /// A member (picked among the current members) sends an event,
    /// confirming its shares as sent or not.
    Send { from: Pick, confirm: bool },
    /// Deliver an in-flight to-device message to its recipient.
    DeliverToDevice(Pick),
    /// Lose an in-flight to-device message.
    DropToDevice(Pick),
    /// Deliver again a to-device message that was already delivered.
    DuplicateToDevice(Pick),
    /// Deliver a to-device message (in flight or delivered) to a device it
    /// is not for.
    Misroute { pick: Pick, to: Pick },
    /// A device (any, member or not) decrypts an event.
    DeliverEvent { event: Pick, device: Pick },
    /// A device decrypts an event's ciphertext under a new event id.
    ReplayEvent { event: Pick, device: Pick },
    /// A device decrypts an event with one byte of its ciphertext flipped.
    TamperEvent {
        event: Pick,
        device: Pick,
        at: Pick,
        mask: u8,
    },
    /// A member leaves the room (at least one member stays).
    Leave(Pick),
    /// A device that is not a member joins.
    Join(Pick),
    /// A member discards its outbound room key.
    Rotate(Pick),
    /// A member encrypts without sharing first, when that must fail.
    EncryptWithoutShare(Pick),
    /// A device is pickled and restored at once.
    Restore(Pick),
    /// Mallory (not a member, not an `Endpoint`: a raw account) sends a
    /// device a room-key share over her own pairwise session with it.
    Forge { to: Pick, kind: Forgery },
    /// A device forgets another device (or Mallory).
    ForgetPeer { device: Pick, peer: Pick },
    /// A member shares with a list naming another member twice.
    ShareDuplicate { from: Pick, twice: Pick },
    /// A member shares with a list where Mallory's key comes with another
    /// device's ids (a server pairing someone's name with her key).
    ShareImpostor { from: Pick, ids_of: Pick },
    /// The server delivers an in-flight to-device message as sent by
    /// another user than its sender's.
    SpoofUser { pick: Pick, user: Pick },
}

/// What Mallory's share payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forgery {
    /// A valid share of Mallory's own room session.
    Valid,
    /// Addressed to another device.
    NotForUs,
    /// Claims another device as its sender.
    OtherSender,
    /// Names another room than its session key.
    OtherRoom,
    /// Not a share at all.
    Garbage,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        20 => (pick(), prop::bool::weighted(0.8))
            .prop_map(|(from, confirm)| Action::Send { from, confirm }),
        25 => pick().prop_map(Action::DeliverToDevice),
        4 => pick().prop_map(Action::DropToDevice),
        4 => pick().prop_map(Action::DuplicateToDevice),
        2 => (pick(), pick()).prop_map(|(pick, to)| Action::Misroute { pick, to }),
        30 => (pick(), pick())
            .prop_map(|(event, device)| Action::DeliverEvent { event, device }),
        4 => (pick(), pick())
            .prop_map(|(event, device)| Action::ReplayEvent { event, device }),
        4 => (pick(), pick(), pick(), 1u8..=255).prop_map(
            |(event, device, at, mask)| Action::TamperEvent { event, device, at, mask }
        ),
        4 => pick().prop_map(Action::Leave),
        4 => pick().prop_map(Action::Join),
        3 => pick().prop_map(Action::Rotate),
        2 => pick().prop_map(Action::EncryptWithoutShare),
        3 => pick().prop_map(Action::Restore),
        4 => (pick(), prop_oneof![
            Just(Forgery::Valid),
            Just(Forgery::NotForUs),
            Just(Forgery::OtherSender),
            Just(Forgery::OtherRoom),
            Just(Forgery::Garbage),
        ]).prop_map(|(to, kind)| Action::Forge { to, kind }),
        3 => (pick(), pick()).prop_map(|(device, peer)| Action::ForgetPeer { device, peer }),
        1 => (pick(), pick()).prop_map(|(from, twice)| Action::ShareDuplicate { from, twice }),
        2 => (pick(), pick()).prop_map(|(from, ids_of)| Action::ShareImpostor { from, ids_of }),
        2 => (pick(), pick()).prop_map(|(pick, user)| Action::SpoofUser { pick, user }),
    ]
}

/// A schedule: the devices and the room at the start, then the actions.
#[derive(Clone, Debug)]
struct Schedule {
    /// Seeds every generator (accounts, endpoints, Mallory).
    seed: u64,
    /// Devices in the pool (3 to 5).
    devices: usize,
    /// The first `members` devices are in the room at the start.
    members: usize,
    /// The rotation policy's message count.
    max_messages: u32,
    actions: Vec<Action>,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (3usize..=5).prop_flat_map(|devices| {
        (
            any::<u64>(),
            Just(devices),
            2..=devices,
            1u32..=6,
            proptest::collection::vec(action(), 0..MAX_ACTIONS),
        )
            .prop_map(|(seed, devices, members, max_messages, actions)| Schedule {
                seed,
                devices,
                members,
                max_messages,
                actions,
            })
    })
}

type SessionKeyId = [u8; 32];

/// A pairwise session between two devices, both sides modelled.
struct Pair {
    /// Device ids of the initiator and the responder.
    devices: [usize; 2],
    /// The model of each side (the responder's once it is created).
    sides: [Option<PeerModel>; 2],
    /// Learned from the initiator's first (pre-key) message.
    session_id: Option<SessionId>,
    /// Started from the responder's fallback key (not a one-time key).
    from_fallback: bool,
    /// The responder's side was created once (its key is used up).
    created: bool,
}

impl Pair {
    fn role(&self, device: usize) -> usize {
        usize::from(self.devices[1] == device)
    }
}

/// A device offered the current room key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Recipient {
    /// The index it was first offered.
    first_index: u32,
    /// The app confirmed a message to it was sent.
    sent: bool,
}

/// A device's outbound room session as the model sees it.
#[derive(Clone)]
struct Outbound {
    session: SessionKeyId,
    index: u32,
    /// Every device that may hold the key (a message was produced for it).
    recipients: BTreeMap<usize, Recipient>,
}

/// Everything the model knows about one device.
#[derive(Default)]
struct DeviceModel {
    /// Pairwise sessions per peer, in the endpoint's order (newest last).
    sessions: BTreeMap<usize, Vec<usize>>,
    outbound: Option<Outbound>,
    /// Why the outbound session was dropped (`rotate_room_key`,
    /// `forget_peer`), if it was.
    discarded: Option<RotationReason>,
    /// Devices the app named (by starting a session with them or listing
    /// them in a share while holding a session).
    named: BTreeSet<usize>,
    /// The user and device ids bound to each peer (from its bundle or its
    /// first share).
    bound_ids: BTreeMap<usize, (String, String)>,
    /// Room keys held: session → (first known index, creator).
    keys: BTreeMap<SessionKeyId, (u32, usize)>,
    /// Replay records: (session, index) → event id.
    seen: BTreeMap<(SessionKeyId, u32), String>,
}

/// A to-device message carrying a room-key share.
struct ToDevice {
    from: usize,
    to: usize,
    pair: usize,
    generation: u32,
    session: SessionKeyId,
    first_index: u32,
    message: DeviceMessage,
    /// `None` for an honest share, else Mallory's kind of payload.
    forgery: Option<Forgery>,
    /// Delivered successfully at least once.
    received: bool,
}

/// An event as sent.
struct Event {
    id: String,
    sender: usize,
    session: SessionKeyId,
    index: u32,
    content: serde_json::Value,
    envelope: EncryptedEvent,
    /// The members when it was sent.
    members: BTreeSet<usize>,
}

/// A device as the server knows it: its published keys.
struct Published {
    device_keys: DeviceKeys,
    verified: SelfSignedDevice,
    one_time_keys: Vec<SignedOneTimeKey>,
    fallback_key: SignedOneTimeKey,
}

struct World {
    rng: ChaCha20Rng,
    policy: RotationPolicy,
    key: PickleKey,
    endpoints: Vec<Endpoint>,
    identities: Vec<IdentityKeys>,
    published: Vec<Published>,
    members: BTreeSet<usize>,
    models: Vec<DeviceModel>,
    pairs: Vec<Pair>,
    to_device: Vec<ToDevice>,
    in_flight: Vec<usize>,
    delivered: Vec<usize>,
    events: Vec<Event>,
    /// Every room session id ever created, to check new ones are fresh.
    all_sessions: BTreeSet<SessionKeyId>,
    replays: usize,
    /// Mallory's account, room session, and pairwise session per device.
    mallory: Account,
    mallory_room: OutboundGroupSession,
    mallory_sessions: BTreeMap<usize, (usize, Session)>,
    journal: Journal,
}

fn state(endpoint: &Endpoint) -> String {
    endpoint.pickle_with_rng(&pickle_key(), &mut fixed_rng())
}

/// An error's variant name with its first level of nesting, no fields.
fn name(error: &RoomError) -> String {
    let text = format!("{error:?}");
    text.split([' ', '{']).next().unwrap_or_default().to_owned()
}

impl World {
    fn new(schedule: &Schedule) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(schedule.seed);
        let policy = RotationPolicy {
            max_messages: schedule.max_messages,
            ..RotationPolicy::default()
        };
        let mut endpoints = Vec::new();
        let mut published = Vec::new();
        for i in 0..schedule.devices {
            let mut endpoint = Endpoint::from_account(
                &format!("@user{i}:example.org"),
                &format!("DEVICE{i}"),
                Account::new_with_rng(&mut rng),
            )
            .unwrap();
            endpoint.set_rng(Box::new(ChaCha20Rng::from_rng(&mut rng)));
            endpoint.set_rotation_policy(policy);
            let keys = endpoint.keys_to_publish(2);
            endpoint.mark_keys_as_published(&keys);
            published.push(Published {
                verified: keys.device_keys.check_self_signature().unwrap(),
                device_keys: keys.device_keys,
                one_time_keys: keys.one_time_keys,
                fallback_key: keys.fallback_key.expect("a fallback key is created"),
            });
            endpoints.push(endpoint);
        }
        let mallory = Account::new_with_rng(&mut rng);
        let mut identities: Vec<IdentityKeys> =
            endpoints.iter().map(Endpoint::identity_keys).collect();
        identities.push(mallory.identity_keys());
        Self {
            policy,
            key: PickleKey::random_with_rng(&mut rng),
            identities,
            mallory_room: OutboundGroupSession::new_with_rng(
                ROOM,
                mallory.identity_keys(),
                &mut rng,
            )
            .unwrap(),
            rng,
            mallory,
            mallory_sessions: BTreeMap::new(),
            endpoints,
            published,
            members: (0..schedule.members).collect(),
            models: (0..schedule.devices)
                .map(|_| DeviceModel::default())
                .collect(),
            pairs: Vec::new(),
            to_device: Vec::new(),
            in_flight: Vec::new(),
            delivered: Vec::new(),
            events: Vec::new(),
            all_sessions: BTreeSet::new(),
            replays: 0,
            journal: Journal::default(),
        }
    }

    fn note(&mut self, line: String) {
        self.journal.note(line);
    }

    fn count(&mut self, what: String) {
        self.journal.count(what);
    }

    /// The error message of a failed check: what happened last, then why.
    fn fail(&self, why: String) -> String {
        self.journal.fail(30, why)
    }

    fn device_of(&self, key: &Curve25519PublicKey) -> usize {
        self.identities
            .iter()
            .position(|k| k.curve25519 == *key)
            .expect("a known device")
    }

    fn member(&self, pick: &Pick) -> usize {
        let members: Vec<usize> = self.members.iter().copied().collect();
        members[pick.of(members.len())]
    }

    /// The user id of device `d` (Mallory's for the last one).
    fn user_of(&self, d: usize) -> String {
        if d == self.endpoints.len() {
            MALLORY_USER.to_owned()
        } else {
            format!("@user{d}:example.org")
        }
    }

    /// The device id of device `d`.
    fn device_id_of(&self, d: usize) -> String {
        if d == self.endpoints.len() {
            MALLORY_DEVICE.to_owned()
        } else {
            format!("DEVICE{d}")
        }
    }

    /// Why the share `from` is about to make replaces its room session, if
    /// it does: no session (never shared, or dropped and why), the message
    /// count, or a device that may hold the key is no longer listed.
    fn predict_rotation(&self, from: usize, targets: &BTreeSet<usize>) -> Option<RotationReason> {
        let model = &self.models[from];
        match &model.outbound {
            None => Some(model.discarded.unwrap_or(RotationReason::NotShared)),
            Some(out) if out.index >= self.policy.max_messages => {
                Some(RotationReason::MessageLimit)
            }
            Some(out) if out.recipients.keys().any(|d| !targets.contains(d)) => {
                Some(RotationReason::DeviceLeft)
            }
            Some(_) => None,
        }
    }

    /// One `share_room_key` call by `from`, checked, confirmed as sent when
    /// `confirm`; returns the devices reported without a session.
    fn share(&mut self, from: usize, confirm: bool) -> Result<Vec<usize>, String> {
        let targets: BTreeSet<usize> = self
            .members
            .iter()
            .copied()
            .filter(|&d| d != from)
            .collect();
        let reason = self.predict_rotation(from, &targets);
        let rotated = reason.filter(|r| *r != RotationReason::NotShared);
        // The member list as the app has it, the sender included.
        let devices: Vec<SelfSignedDevice> = self
            .members
            .iter()
            .map(|&d| self.published[d].verified.clone())
            .collect();
        let outcome = self.endpoints[from]
            .share_room_key(ROOM, &devices)
            .map_err(|e| self.fail(format!("share by {from} failed: {e:?}")))?;
        let session = *outcome.session_id.as_bytes();
        if outcome.rotated != rotated.is_some() || outcome.rotation_reason != rotated {
            return Err(self.fail(format!(
                "share by {from}: rotated = {} ({:?}), model expected {rotated:?}",
                outcome.rotated, outcome.rotation_reason
            )));
        }
        // Listing a device the endpoint holds a session with names it.
        for &t in &targets {
            if self.models[from]
                .sessions
                .get(&t)
                .is_some_and(|s| !s.is_empty())
            {
                self.models[from].named.insert(t);
            }
        }
        if reason.is_some() {
            if !self.all_sessions.insert(session) {
                return Err(self.fail(format!("share by {from}: rotation reused a session id")));
            }
            let model = &mut self.models[from];
            model.outbound = Some(Outbound {
                session,
                index: 0,
                recipients: BTreeMap::new(),
            });
            model.discarded = None;
            model.keys.insert(session, (0, from));
            self.count("share: new room session".to_owned());
            if let Some(reason) = rotated {
                self.count("share: rotated".to_owned());
                self.count(format!("share: rotated ({reason:?})"));
            }
        }
        let out = self.models[from].outbound.clone().expect("a session now");
        if out.session != session {
            return Err(self.fail(format!(
                "share by {from}: session changed although the model expected no rotation"
            )));
        }
        // Who gets a message, at which index, in the order listed: a device
        // never offered the key (from now), or offered it without a
        // confirmed message (again, from the index first offered).
        let mut want_messages: Vec<(usize, u32)> = Vec::new();
        let mut want_missing: Vec<usize> = Vec::new();
        for &t in &targets {
            let index = match out.recipients.get(&t) {
                Some(r) if r.sent => continue,
                Some(r) => {
                    self.count("share: re-served an unconfirmed device".to_owned());
                    r.first_index
                }
                None => out.index,
            };
            if self.models[from]
                .sessions
                .get(&t)
                .is_some_and(|s| !s.is_empty())
            {
                want_messages.push((t, index));
            } else {
                want_missing.push(t);
            }
        }
        let got_missing: Vec<usize> = outcome
            .missing_sessions
            .iter()
            .map(|d| self.device_of(&d.identity_keys().curve25519))
            .collect();
        let got_messages: Vec<usize> = outcome
            .messages
            .iter()
            .map(|m| self.device_of(&m.recipient_key))
            .collect();
        let want_to: Vec<usize> = want_messages.iter().map(|&(t, _)| t).collect();
        if got_messages != want_to || got_missing != want_missing {
            return Err(self.fail(format!(
                "share by {from}: messages to {got_messages:?} and missing {got_missing:?}, \
                 model expected {want_to:?} and {want_missing:?}"
            )));
        }
        for (m, &(to, first_index)) in outcome.messages.iter().zip(&want_messages) {
            if m.sender_key != self.identities[from].curve25519
                || m.user_id != self.user_of(to)
                || m.device_id != self.device_id_of(to)
            {
                return Err(self.fail(format!("share by {from}: message to {to} misaddressed")));
            }
            let pair_id = *self.models[from].sessions[&to].last().expect("checked");
            let pair = &mut self.pairs[pair_id];
            let role = pair.role(from);
            if let DeviceMessage::PreKey(pre_key) = &m.message {
                let id = pre_key.session_id();
                if *pair.session_id.get_or_insert(id) != id {
                    return Err(self.fail(format!("pair {pair_id}: pre-key session id changed")));
                }
            }
            let side = pair.sides[role].as_mut().expect("the sender's side exists");
            let (generation, _) = side.sent(&m.message).map_err(|e| self.fail(e))?;
            let id = self.to_device.len();
            self.to_device.push(ToDevice {
                from,
                to,
                pair: pair_id,
                generation,
                session,
                first_index,
                message: m.message.clone(),
                forgery: None,
                received: false,
            });
            self.in_flight.push(id);
            if let Some(out) = self.models[from].outbound.as_mut() {
                out.recipients.entry(to).or_insert(Recipient {
                    first_index,
                    sent: false,
                });
            }
            self.note(format!(
                "  to-device #{id}: {from} -> {to} on pair {pair_id} (first index {first_index})"
            ));
        }
        if confirm {
            let marked = self.endpoints[from].mark_room_key_sent(&outcome);
            if marked != outcome.messages.len() {
                return Err(self.fail(format!(
                    "share by {from}: confirmed {marked} of {} messages",
                    outcome.messages.len()
                )));
            }
            if let Some(out) = self.models[from].outbound.as_mut() {
                for &(to, _) in &want_messages {
                    if let Some(r) = out.recipients.get_mut(&to) {
                        r.sent = true;
                    }
                }
            }
        } else if !outcome.messages.is_empty() {
            self.count("share: not confirmed".to_owned());
        }
        Ok(want_missing)
    }

    /// Adds pair `pair_id` as `device`'s newest session with `peer`,
    /// dropping the oldest beyond the bound (two for a device the app never
    /// named).
    fn add_session(&mut self, device: usize, peer: usize, pair_id: usize) {
        let model = &mut self.models[device];
        let limit = if model.named.contains(&peer) {
            PEER_SESSIONS
        } else {
            STRANGER_SESSIONS
        };
        let sessions = model.sessions.entry(peer).or_default();
        sessions.push(pair_id);
        if sessions.len() > limit {
            sessions.remove(0);
            let whose = if limit == STRANGER_SESSIONS {
                "a stranger"
            } else {
                "a named device"
            };
            self.count(format!("oldest session of {whose} dropped"));
        }
    }

    /// A member sends an event as a client does.
    fn send(&mut self, from: usize, confirm: bool) -> Result<(), String> {
        let missing = self.share(from, confirm)?;
        if !missing.is_empty() {
            for &to in &missing {
                let published = &mut self.published[to];
                let from_fallback = published.one_time_keys.is_empty();
                let one_time_key = published
                    .one_time_keys
                    .pop()
                    .unwrap_or_else(|| published.fallback_key.clone());
                let device_keys = published.device_keys.clone();
                let verified = self.endpoints[from]
                    .establish_session(&device_keys, &one_time_key)
                    .map_err(|e| self.fail(format!("establish {from} -> {to}: {e:?}")))?;
                if verified.identity_keys() != self.identities[to] {
                    return Err(self.fail("establish returned another device".to_owned()));
                }
                let pair_id = self.pairs.len();
                self.pairs.push(Pair {
                    devices: [from, to],
                    sides: [Some(PeerModel::initiator()), None],
                    session_id: None,
                    from_fallback,
                    created: false,
                });
                // Starting a session names the device and binds its ids.
                let ids = (self.user_of(to), self.device_id_of(to));
                self.models[from].named.insert(to);
                self.models[from].bound_ids.entry(to).or_insert(ids);
                self.add_session(from, to, pair_id);
                self.note(format!("  established pair {pair_id}: {from} -> {to}"));
            }
            let still_missing = self.share(from, confirm)?;
            if !still_missing.is_empty() {
                return Err(self.fail(format!("still no session with {still_missing:?}")));
            }
        }
        let n = self.events.len();
        let content = json!({ "body": format!("event {n} from device {from}"), "n": n });
        let envelope = self.endpoints[from]
            .encrypt_event(ROOM, "m.room.message", &content)
            .map_err(|e| self.fail(format!("encrypt by {from} after sharing: {e:?}")))?;
        let envelope = EncryptedEvent::from_json(&envelope.to_json()).unwrap();
        let out = self.models[from].outbound.as_mut().expect("shared");
        let want = (out.session, out.index, self.identities[from].curve25519);
        let got = (
            *envelope.session_id.as_bytes(),
            envelope.ciphertext.message_index(),
            envelope.sender_key,
        );
        if want != got {
            return Err(self.fail(format!(
                "event {n}: (session, index, sender) differs from the model ({} vs {})",
                got.1, want.1
            )));
        }
        out.index += 1;
        self.note(format!("  event {n}: by {from}, index {}", got.1));
        self.events.push(Event {
            id: format!("$event{n}"),
            sender: from,
            session: got.0,
            index: got.1,
            content,
            envelope,
            members: self.members.clone(),
        });
        Ok(())
    }

    /// The predicted outcome of `to` receiving to-device message `id` as
    /// if sent by its real sender: the first index and `KeyAdded` of the
    /// stored key with the model changes to commit, or the error.
    #[allow(clippy::type_complexity)]
    fn predict_receive(
        &self,
        id: usize,
        to: usize,
    ) -> Result<(u32, KeyAdded, usize, PeerModel, bool), RoomError> {
        let m = &self.to_device[id];
        let pair = &self.pairs[m.pair];
        let from = m.from;
        let genuine = to == m.to;
        let sessions: &[usize] = self.models[to]
            .sessions
            .get(&from)
            .map_or(&[], Vec::as_slice);
        let origin_on = |pair_id: usize| {
            if genuine && pair_id == m.pair {
                Origin::Genuine {
                    generation: m.generation,
                }
            } else {
                Origin::Forged
            }
        };
        let side_of = |pair_id: usize| {
            let p = &self.pairs[pair_id];
            p.sides[p.role(to)].as_ref().expect("listed sessions exist")
        };
        // (pair, new side model, created)
        let (pair_id, side, created) = match &m.message {
            DeviceMessage::PreKey(pre_key) => {
                let id = pre_key.session_id();
                match sessions
                    .iter()
                    .find(|&&p| self.pairs[p].session_id == Some(id))
                {
                    Some(&p) => {
                        let (side, _) = side_of(p)
                            .receive(id, &m.message, origin_on(p))
                            .map_err(RoomError::Session)?;
                        (p, side, false)
                    }
                    // The session was created once and since dropped
                    // (forgotten, or pushed out): its key is used up.
                    None if genuine && pair.created => {
                        return Err(RoomError::Account(if pair.from_fallback {
                            AccountError::FallbackKeyReplay
                        } else {
                            AccountError::UnknownOneTimeKey
                        }));
                    }
                    None if genuine => {
                        let (side, _) = PeerModel::responder(&m.message, origin_on(m.pair))
                            .map_err(|e| RoomError::Account(AccountError::Session(e)))?;
                        (m.pair, side, true)
                    }
                    None => return Err(RoomError::Account(AccountError::UnknownOneTimeKey)),
                }
            }
            DeviceMessage::Normal(_) => {
                let session_id = pair
                    .session_id
                    .expect("normal messages come after pre-key ones");
                let newest = *sessions.last().ok_or(RoomError::NoSession)?;
                let mut result = None;
                for &p in sessions.iter().rev() {
                    if let Ok((side, _)) = side_of(p).receive(session_id, &m.message, origin_on(p))
                    {
                        result = Some((p, side, false));
                        break;
                    }
                }
                match result {
                    Some(found) => found,
                    None => {
                        let error = side_of(newest)
                            .receive(session_id, &m.message, origin_on(newest))
                            .map(|_| ())
                            .expect_err("no session decrypts it");
                        return Err(RoomError::Session(error));
                    }
                }
            }
        };
        assert!(genuine, "a misrouted message decrypted in the model");
        match m.forgery {
            None | Some(Forgery::Valid) => {}
            Some(Forgery::NotForUs) => return Err(RoomError::ShareNotForUs),
            Some(Forgery::OtherSender) => return Err(RoomError::ShareSenderMismatch),
            Some(Forgery::OtherRoom) => return Err(RoomError::ShareRoomMismatch),
            Some(Forgery::Garbage) => {
                return Err(RoomError::Decode(DecodeError::InvalidValue("payload type")));
            }
        }
        let added = match self.models[to].keys.get(&m.session) {
            None => KeyAdded::New,
            Some(&(first, _)) if first <= m.first_index => KeyAdded::Unchanged,
            Some(_) => KeyAdded::Improved,
        };
        Ok((m.first_index, added, pair_id, side, created))
    }

    /// Delivers to-device message `id` to `to` (its recipient unless
    /// misrouted) and checks the outcome.
    fn receive(&mut self, id: usize, to: usize, label: &str) -> Result<(), String> {
        let from = self.to_device[id].from;
        let user = self.user_of(from);
        self.receive_as(id, to, &user, label)
    }

    /// [`World::receive`] with the server saying the message came from
    /// `user` (another user than its sender's: spoofed).
    fn receive_as(&mut self, id: usize, to: usize, user: &str, label: &str) -> Result<(), String> {
        let from = self.to_device[id].from;
        let spoofed = user != self.user_of(from);
        let expected = match self.predict_receive(id, to) {
            Ok(_) if spoofed => Err(RoomError::ShareSenderMismatch),
            other => other,
        };
        let message = self.to_device[id].message.clone();
        let sender_key = self.identities[from].curve25519;
        let before = state(&self.endpoints[to]);
        let actual = self.endpoints[to].receive_device_message(user, &sender_key, &message);
        let header = format!("{label} to-device #{id} ({from} -> {to} as {user})");
        match (expected, actual) {
            (Ok((first_index, added, pair_id, side, created)), Ok(received)) => {
                let m = &self.to_device[id];
                if received.room_id != ROOM
                    || *received.session_id.as_bytes() != m.session
                    || received.sender != self.identities[from]
                    || received.sender_user_id != self.user_of(from)
                    || received.sender_device_id != self.device_id_of(from)
                    || received.first_index != first_index
                    || received.added != added
                    || !received.evicted.is_empty()
                {
                    return Err(self.fail(format!(
                        "{header}: received {received:?}, model expected first index \
                         {first_index} and {added:?}"
                    )));
                }
                let session = m.session;
                let pair = &mut self.pairs[pair_id];
                let role = pair.role(to);
                pair.sides[role] = Some(side);
                if created {
                    pair.created = true;
                    self.add_session(to, from, pair_id);
                }
                let ids = (self.user_of(from), self.device_id_of(from));
                self.models[to].bound_ids.entry(from).or_insert(ids);
                let keys = &mut self.models[to].keys;
                let entry = keys.entry(session).or_insert((first_index, from));
                entry.0 = entry.0.min(first_index);
                self.to_device[id].received = true;
                self.count(format!("to-device ok: {added:?}"));
                if created {
                    self.count("to-device ok: created a session".to_owned());
                }
                self.note(format!("{header}: stored key ({added:?})"));
            }
            (Err(want), Err(got)) if want == got => {
                if state(&self.endpoints[to]) != before {
                    return Err(self.fail(format!(
                        "{header}: failed with {got:?} as expected but changed the endpoint"
                    )));
                }
                self.count(format!("to-device err: {}", name(&got)));
                if spoofed {
                    self.count(format!("to-device err (spoofed user): {}", name(&got)));
                }
                self.note(format!("{header}: failed as expected: {got:?}"));
            }
            (want, got) => {
                return Err(self.fail(format!(
                    "{header}: model expected {:?}, library returned {:?}",
                    want.map(|(first, added, ..)| (first, added)),
                    got
                )));
            }
        }
        Ok(())
    }

    /// The predicted outcome of `device` decrypting `envelope` (an event's,
    /// or an altered copy) under `event_id`.
    fn predict_event(
        &self,
        device: usize,
        event_id: &str,
        envelope: &EncryptedEvent,
        genuine: bool,
    ) -> Result<(), RoomError> {
        let session = *envelope.session_id.as_bytes();
        let index = envelope.ciphertext.message_index();
        let model = &self.models[device];
        let &(first_known, _) = model.keys.get(&session).ok_or(RoomError::UnknownRoomKey)?;
        if index < first_known {
            return Err(RoomError::Group(GroupError::UnknownIndex {
                index,
                first_known,
            }));
        }
        if !genuine {
            return Err(RoomError::Group(GroupError::BadSignature));
        }
        match model.seen.get(&(session, index)) {
            Some(previous) if previous != event_id => Err(RoomError::Replay { index }),
            _ => Ok(()),
        }
    }

    /// `device` decrypts event `n` (or an altered envelope) under
    /// `event_id`; checks the outcome. Returns whether it decrypted.
    fn decrypt(
        &mut self,
        device: usize,
        n: usize,
        event_id: &str,
        envelope: Option<EncryptedEvent>,
    ) -> Result<bool, String> {
        let genuine = envelope.is_none();
        let envelope = envelope.unwrap_or_else(|| self.events[n].envelope.clone());
        let expected = self.predict_event(device, event_id, &envelope, genuine);
        let event = &self.events[n];
        let header = format!(
            "device {device} decrypts {}event {n} (by {}, index {}) as {event_id}",
            if genuine { "" } else { "altered " },
            event.sender,
            event.index
        );
        if genuine && expected.is_ok() && !event.members.contains(&device) {
            return Err(self.fail(format!(
                "{header}: device {device} was not a member when event {n} was sent, \
                 yet it holds the key (members then: {:?})",
                event.members
            )));
        }
        let before = state(&self.endpoints[device]);
        let actual = self.endpoints[device].decrypt_event(ROOM, event_id, &envelope);
        let event = &self.events[n];
        match (expected, actual) {
            (Ok(()), Ok(decrypted)) => {
                // A shared key carries the ids its share bound; the sender's
                // own key carries none.
                let ids = (device != event.sender)
                    .then(|| (self.user_of(event.sender), self.device_id_of(event.sender)));
                let got_ids = decrypted
                    .sender_user_id
                    .clone()
                    .zip(decrypted.sender_device_id.clone());
                if decrypted.event_type != "m.room.message"
                    || decrypted.content != event.content
                    || got_ids != ids
                    || decrypted.sender != self.identities[event.sender]
                    || *decrypted.session_id.as_bytes() != event.session
                    || decrypted.message_index != event.index
                    || !decrypted.authenticated
                {
                    return Err(self.fail(format!("{header}: decrypted to {decrypted:?}")));
                }
                let key = (event.session, event.index);
                let again = self.models[device]
                    .seen
                    .insert(key, event_id.to_owned())
                    .is_some();
                let what = match (event_id == event.id, again) {
                    (true, false) => "event ok",
                    (true, true) => "event ok again under the same id",
                    (false, false) => "event ok under a new id",
                    (false, true) => "event ok again under a new id",
                };
                self.count(what.to_owned());
                self.note(format!("{header}: ok"));
                Ok(true)
            }
            (Err(want), Err(got)) if want == got => {
                if state(&self.endpoints[device]) != before {
                    return Err(self.fail(format!(
                        "{header}: failed with {got:?} as expected but changed the endpoint"
                    )));
                }
                let member = if event.members.contains(&device) {
                    "member"
                } else {
                    "non-member"
                };
                self.count(format!("event err ({member}): {}", name(&got)));
                self.note(format!("{header}: failed as expected: {got:?}"));
                Ok(false)
            }
            (want, got) => Err(self.fail(format!(
                "{header}: model expected {want:?}, library returned {:?}",
                got.map(|d| d.message_index)
            ))),
        }
    }

    fn step(&mut self, step: usize, action: &Action) -> Result<(), String> {
        self.note(format!("step {step}: {action:?}"));
        let devices = self.endpoints.len();
        match action {
            Action::Send { from, confirm } => {
                let from = self.member(from);
                self.note(format!("  device {from} sends (confirming: {confirm})"));
                self.send(from, *confirm)?;
            }
            Action::DeliverToDevice(pick) => {
                if !self.in_flight.is_empty() {
                    let id = self.in_flight.remove(pick.of(self.in_flight.len()));
                    self.delivered.push(id);
                    self.receive(id, self.to_device[id].to, "deliver")?;
                }
            }
            Action::DropToDevice(pick) => {
                if !self.in_flight.is_empty() {
                    let id = self.in_flight.remove(pick.of(self.in_flight.len()));
                    self.note(format!("  dropped to-device #{id}"));
                }
            }
            Action::DuplicateToDevice(pick) => {
                if !self.delivered.is_empty() {
                    let id = self.delivered[pick.of(self.delivered.len())];
                    self.receive(id, self.to_device[id].to, "redeliver")?;
                }
            }
            Action::Misroute { pick, to } => {
                if !self.to_device.is_empty() {
                    let id = pick.of(self.to_device.len());
                    let m = &self.to_device[id];
                    let others: Vec<usize> =
                        (0..devices).filter(|&d| d != m.to && d != m.from).collect();
                    let to = others[to.of(others.len())];
                    self.receive(id, to, "misroute")?;
                }
            }
            Action::DeliverEvent { event, device } => {
                if !self.events.is_empty() {
                    let n = event.of(self.events.len());
                    let id = self.events[n].id.clone();
                    self.decrypt(device.of(devices), n, &id, None)?;
                }
            }
            Action::ReplayEvent { event, device } => {
                if !self.events.is_empty() {
                    let n = event.of(self.events.len());
                    self.replays += 1;
                    let id = format!("$replay{}", self.replays);
                    self.decrypt(device.of(devices), n, &id, None)?;
                }
            }
            Action::TamperEvent {
                event,
                device,
                at,
                mask,
            } => {
                if !self.events.is_empty() {
                    let n = event.of(self.events.len());
                    let mut bytes = self.events[n].envelope.ciphertext.to_bytes();
                    let at = at.of(bytes.len());
                    bytes[at] ^= mask;
                    match GroupMessage::from_bytes(&bytes) {
                        Ok(ciphertext) => {
                            let mut envelope = self.events[n].envelope.clone();
                            envelope.ciphertext = ciphertext;
                            let id = self.events[n].id.clone();
                            if self.decrypt(device.of(devices), n, &id, Some(envelope))? {
                                return Err(self.fail("an altered event decrypted".to_owned()));
                            }
                        }
                        Err(e) => self.note(format!("  altered event does not decode: {e}")),
                    }
                }
            }
            Action::Leave(pick) => {
                if self.members.len() > 1 {
                    let device = self.member(pick);
                    self.members.remove(&device);
                    self.note(format!("  device {device} leaves"));
                    self.count("leave".to_owned());
                }
            }
            Action::Join(pick) => {
                let outside: Vec<usize> =
                    (0..devices).filter(|d| !self.members.contains(d)).collect();
                if !outside.is_empty() {
                    let device = outside[pick.of(outside.len())];
                    self.members.insert(device);
                    self.note(format!("  device {device} joins"));
                    self.count("join".to_owned());
                }
            }
            Action::Rotate(pick) => {
                let device = self.member(pick);
                let had = self.models[device].outbound.take().is_some();
                if had {
                    self.models[device].discarded = Some(RotationReason::Requested);
                }
                if self.endpoints[device].rotate_room_key(ROOM) != had {
                    return Err(self.fail(format!("rotate_room_key by {device}: not {had}")));
                }
            }
            Action::EncryptWithoutShare(pick) => {
                let device = self.member(pick);
                let model = &self.models[device];
                let reason = match &model.outbound {
                    None => Some(model.discarded.unwrap_or(RotationReason::NotShared)),
                    Some(out) if out.index >= self.policy.max_messages => {
                        Some(RotationReason::MessageLimit)
                    }
                    Some(_) => None,
                };
                if let Some(reason) = reason {
                    let before = state(&self.endpoints[device]);
                    let result = self.endpoints[device].encrypt_event(
                        ROOM,
                        "m.room.message",
                        &json!({"body": "unshared"}),
                    );
                    if result != Err(RoomError::ShareRequired(reason))
                        || state(&self.endpoints[device]) != before
                    {
                        return Err(self.fail(format!(
                            "encrypt without a current key by {device}: {result:?}, \
                             model expected ShareRequired({reason:?})"
                        )));
                    }
                    self.count("encrypt err: ShareRequired".to_owned());
                    self.count(format!("encrypt err: ShareRequired({reason:?})"));
                }
            }
            Action::Forge { to, kind } => {
                let to = to.of(devices);
                self.forge(to, *kind)?;
            }
            Action::ForgetPeer { device, peer } => {
                let device = device.of(devices);
                // Any other device, or Mallory (the last identity).
                let others: Vec<usize> = (0..=devices).filter(|&d| d != device).collect();
                let peer = others[peer.of(others.len())];
                self.forget_peer(device, peer)?;
            }
            Action::ShareDuplicate { from, twice } => {
                let from = self.member(from);
                let others: Vec<usize> = self
                    .members
                    .iter()
                    .copied()
                    .filter(|&d| d != from)
                    .collect();
                if !others.is_empty() {
                    let twice = others[twice.of(others.len())];
                    let mut devices: Vec<SelfSignedDevice> = self
                        .members
                        .iter()
                        .map(|&d| self.published[d].verified.clone())
                        .collect();
                    devices.push(self.published[twice].verified.clone());
                    self.refused_share(from, &devices, RoomError::DuplicateRecipient)?;
                }
            }
            Action::ShareImpostor { from, ids_of } => {
                let from = self.member(from);
                let mallory = self.endpoints.len();
                // Only a device that holds Mallory bound to her own ids can
                // tell; for the others her bundle is just another device.
                if self.models[from].bound_ids.contains_key(&mallory) {
                    let victim = ids_of.of(devices);
                    let impostor = self
                        .mallory
                        .device_keys(&self.user_of(victim), &self.device_id_of(victim))
                        .and_then(|keys| keys.check_self_signature())
                        .unwrap();
                    let mut devices = vec![impostor];
                    devices.extend(
                        self.members
                            .iter()
                            .map(|&d| self.published[d].verified.clone()),
                    );
                    self.refused_share(from, &devices, RoomError::IdentityConflict)?;
                }
            }
            Action::SpoofUser { pick, user } => {
                if !self.in_flight.is_empty() {
                    let id = self.in_flight[pick.of(self.in_flight.len())];
                    let from = self.to_device[id].from;
                    let users: Vec<usize> = (0..=devices).filter(|&d| d != from).collect();
                    let user = self.user_of(users[user.of(users.len())]);
                    self.receive_as(id, self.to_device[id].to, &user, "spoofed")?;
                }
            }
            Action::Restore(pick) => {
                let device = pick.of(devices);
                let before = state(&self.endpoints[device]);
                let pickle = self.endpoints[device].pickle_with_rng(&self.key, &mut self.rng);
                let mut restored = Endpoint::from_pickle(&pickle, &self.key).unwrap();
                // The policy is kept in the pickle; the generator is
                // configuration, set again.
                restored.set_rng(Box::new(ChaCha20Rng::from_rng(&mut self.rng)));
                if state(&restored) != before
                    || restored.rotation_policy() != self.policy
                    || pickle_generation(&pickle) != Ok(restored.pickle_generation())
                    || restored.pickle_generation() != self.endpoints[device].pickle_generation()
                {
                    return Err(self.fail(format!("restored device {device} differs")));
                }
                self.endpoints[device] = restored;
                self.count("restore".to_owned());
            }
        }
        Ok(())
    }

    /// Whether `from`'s newest session with `to` (if any) still reaches it:
    /// `to` holds it, or it is `from`'s own new session whose first message
    /// will create it.
    fn usable(&self, from: usize, to: usize) -> bool {
        let Some(&p) = self.models[from].sessions.get(&to).and_then(|s| s.last()) else {
            return true;
        };
        let pair = &self.pairs[p];
        self.models[to]
            .sessions
            .get(&from)
            .is_some_and(|s| s.contains(&p))
            || (pair.devices[1] == to && !pair.created)
    }

    /// `device` forgets `peer`: its sessions with it go, and a room whose key
    /// it may hold rotates at the next share.
    fn forget_peer(&mut self, device: usize, peer: usize) -> Result<(), String> {
        let model = &mut self.models[device];
        let expected = model.sessions.remove(&peer).map_or(0, |s| s.len());
        model.named.remove(&peer);
        model.bound_ids.remove(&peer);
        let held_key = model
            .outbound
            .as_ref()
            .is_some_and(|out| out.recipients.contains_key(&peer));
        if held_key {
            model.outbound = None;
            model.discarded = Some(RotationReason::DeviceForgotten);
        }
        let key = self.identities[peer].curve25519;
        let dropped = self.endpoints[device].forget_peer(&key);
        if dropped != expected || self.endpoints[device].has_session(&key) {
            return Err(self.fail(format!(
                "{device} forgets {peer}: dropped {dropped} sessions, model expected {expected}"
            )));
        }
        self.note(format!(
            "  device {device} forgets {peer} ({dropped} sessions; room key dropped: {held_key})"
        ));
        if dropped > 0 {
            self.count("forget peer".to_owned());
        }
        if held_key {
            self.count("forget peer: room key dropped".to_owned());
        }
        Ok(())
    }

    /// `from` shares with `devices`, which must be refused with `error`
    /// and change nothing.
    fn refused_share(
        &mut self,
        from: usize,
        devices: &[SelfSignedDevice],
        error: RoomError,
    ) -> Result<(), String> {
        let before = state(&self.endpoints[from]);
        let result = self.endpoints[from].share_room_key(ROOM, devices);
        match result {
            Err(got) if got == error && state(&self.endpoints[from]) == before => {
                self.count(format!("share err: {}", name(&got)));
                self.note(format!("  share by {from} refused as expected: {got:?}"));
                Ok(())
            }
            other => Err(self.fail(format!(
                "share by {from}: model expected {error:?} with nothing changed, library \
                 returned {:?}",
                other.map(|o| o.session_id)
            ))),
        }
    }

    /// Mallory encrypts a share payload of `kind` to `to` over her session
    /// with it (started from a claimed one-time key the first time).
    fn forge(&mut self, to: usize, kind: Forgery) -> Result<(), String> {
        let mallory = self.endpoints.len();
        if !self.mallory_sessions.contains_key(&to) {
            let published = &mut self.published[to];
            let from_fallback = published.one_time_keys.is_empty();
            let one_time_key = published
                .one_time_keys
                .pop()
                .unwrap_or_else(|| published.fallback_key.clone());
            let session = self
                .mallory
                .create_outbound_session_with_rng(&published.verified, &one_time_key, &mut self.rng)
                .unwrap();
            let pair_id = self.pairs.len();
            self.pairs.push(Pair {
                devices: [mallory, to],
                sides: [Some(PeerModel::initiator()), None],
                session_id: Some(session.session_id()),
                from_fallback,
                created: false,
            });
            self.mallory_sessions.insert(to, (pair_id, session));
        }
        let other = (to + 1) % self.endpoints.len();
        let mut share = RoomKeyShare {
            room_id: ROOM.to_owned(),
            sender_user_id: MALLORY_USER.to_owned(),
            sender_device_id: MALLORY_DEVICE.to_owned(),
            session_key: self.mallory_room.session_key(),
            sender: self.identities[mallory],
            recipient: self.identities[to],
        };
        match kind {
            Forgery::Valid | Forgery::Garbage => {}
            Forgery::NotForUs => share.recipient = self.identities[other],
            Forgery::OtherSender => share.sender = self.identities[other],
            Forgery::OtherRoom => share.room_id = "!elsewhere:example.org".to_owned(),
        }
        let payload = if kind == Forgery::Garbage {
            // The current version byte, then an unknown payload type.
            vec![roomseal::consts::PROTOCOL_VERSION, 9]
        } else {
            share.to_bytes().to_vec()
        };
        let (pair_id, session) = self.mallory_sessions.get_mut(&to).expect("created above");
        let pair_id = *pair_id;
        let message = session.encrypt_with_rng(&payload, &mut self.rng).unwrap();
        let side = self.pairs[pair_id].sides[0]
            .as_mut()
            .expect("Mallory's side");
        let (generation, _) = side.sent(&message).map_err(|e| self.fail(e))?;
        let id = self.to_device.len();
        self.to_device.push(ToDevice {
            from: mallory,
            to,
            pair: pair_id,
            generation,
            session: *self.mallory_room.session_id().as_bytes(),
            first_index: 0,
            message,
            forgery: Some(kind),
            received: false,
        });
        self.in_flight.push(id);
        self.note(format!(
            "  to-device #{id}: Mallory -> {to} on pair {pair_id}: {kind:?}"
        ));
        Ok(())
    }

    /// Delivers every pending to-device message, oldest first.
    fn drain(&mut self) -> Result<(), String> {
        self.in_flight.sort_unstable();
        for id in std::mem::take(&mut self.in_flight) {
            self.delivered.push(id);
            self.receive(id, self.to_device[id].to, "drain")?;
        }
        Ok(())
    }

    /// Every member at sending time that received the key reads every
    /// event; then every member sends over a fresh key and everyone reads.
    fn finish(&mut self) -> Result<(), String> {
        self.note("final: drain, read everything, one more event each".to_owned());
        self.drain()?;
        for n in 0..self.events.len() {
            let event = &self.events[n];
            let (session, index, sender) = (event.session, event.index, event.sender);
            let readers: Vec<usize> = event.members.iter().copied().collect();
            for device in readers {
                let got_key = device == sender
                    || self
                        .to_device
                        .iter()
                        .any(|m| m.to == device && m.session == session && m.received);
                if !got_key {
                    continue;
                }
                let readable = self.models[device]
                    .keys
                    .get(&session)
                    .is_some_and(|&(first, _)| first <= index);
                if !readable {
                    return Err(self.fail(format!(
                        "device {device} was a member when event {n} was sent and received \
                         its key, but cannot read it"
                    )));
                }
                let id = self.events[n].id.clone();
                let replayed = self.models[device]
                    .seen
                    .get(&(session, index))
                    .is_some_and(|seen| *seen != id);
                if !self.decrypt(device, n, &id, None)? && !replayed {
                    return Err(self.fail(format!("device {device} cannot read event {n}")));
                }
            }
        }
        let first_final = self.events.len();
        let members: Vec<usize> = self.members.iter().copied().collect();
        // A session the receiver no longer holds (it forgot the sender, or
        // dropped the session as a stranger's oldest) cannot carry a share:
        // as an app told so would, the sender forgets the receiver and
        // starts afresh.
        // Forgetting drops every session with the peer, which may break the
        // other direction in turn: repeat until every direction works.
        loop {
            let broken: Vec<(usize, usize)> = members
                .iter()
                .flat_map(|&from| members.iter().map(move |&to| (from, to)))
                .filter(|&(from, to)| from != to && !self.usable(from, to))
                .collect();
            if broken.is_empty() {
                break;
            }
            for (from, to) in broken {
                self.note(format!(
                    "  {from}'s session with {to} is gone on {to}'s side"
                ));
                self.count("final: session gone on the other side".to_owned());
                self.forget_peer(from, to)?;
            }
        }
        for &from in &members {
            self.endpoints[from].rotate_room_key(ROOM);
            if self.models[from].outbound.take().is_some() {
                self.models[from].discarded = Some(RotationReason::Requested);
            }
            self.send(from, true)?;
        }
        self.drain()?;
        for n in first_final..self.events.len() {
            for &device in &members {
                let id = self.events[n].id.clone();
                if !self.decrypt(device, n, &id, None)? {
                    return Err(self.fail(format!("final event {n} unreadable by {device}")));
                }
            }
        }
        Ok(())
    }
}

fn run(schedule: &Schedule) -> Result<World, String> {
    let mut world = World::new(schedule);
    for (step, action) in schedule.actions.iter().enumerate() {
        world.step(step, action)?;
    }
    world.finish()?;
    Ok(world)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(DEFAULT_CASES),
        max_shrink_iters: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every operation in a random room schedule does what the model
    /// predicts.
    #[test]
    fn room_schedules_follow_the_model(schedule in schedule()) {
        run(&schedule).map_err(TestCaseError::fail)?;
    }
}

/// A discarded room key is reported as a rotation by the next share even if
/// the device was restored from a pickle in between (the pending-rotation
/// record is part of the state).
#[test]
fn rotation_is_reported_after_a_restore() {
    use Action::*;
    let schedule = Schedule {
        seed: 1,
        devices: 3,
        members: 2,
        max_messages: 4,
        actions: vec![
            Send {
                from: Pick(0),
                confirm: true,
            },
            Rotate(Pick(0)),
            Restore(Pick(0)),
            Send {
                from: Pick(0),
                confirm: true,
            },
        ],
    };
    run(&schedule).unwrap_or_else(|e| panic!("{e}"));
}

/// The schedules are not vacuous: a fixed sample of them reaches every rule
/// the model knows.
#[test]
fn schedules_reach_every_rule() {
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = schedule();
    let mut stats: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..COVERAGE_CASES {
        let schedule = strategy.new_tree(&mut runner).unwrap().current();
        let world = run(&schedule).unwrap_or_else(|e| panic!("{e}"));
        for (what, n) in world.journal.stats {
            *stats.entry(what).or_default() += n;
        }
    }
    eprintln!("outcomes over {COVERAGE_CASES} schedules: {stats:#?}");
    for required in [
        "share: rotated",
        "share: rotated (MessageLimit)",
        "share: rotated (DeviceLeft)",
        "share: rotated (DeviceForgotten)",
        "share: rotated (Requested)",
        "share: not confirmed",
        "share: re-served an unconfirmed device",
        "share err: DuplicateRecipient",
        "share err: IdentityConflict",
        "forget peer",
        "forget peer: room key dropped",
        "to-device err: NoSession",
        "to-device err (spoofed user): ShareSenderMismatch",
        "to-device ok: New",
        "to-device ok: created a session",
        "to-device err: Session(MessageKeyGone",
        "to-device err: Account(UnknownOneTimeKey)",
        "to-device err: ShareNotForUs",
        "to-device err: ShareSenderMismatch",
        "to-device err: ShareRoomMismatch",
        "to-device err: Decode(InvalidValue(\"payload",
        "event ok",
        "event ok under a new id",
        "event ok again under the same id",
        "event err (member): Replay",
        "event err (member): Group(BadSignature)",
        "event err (non-member): UnknownRoomKey",
        "event err (non-member): Group(UnknownIndex",
        "encrypt err: ShareRequired",
        "encrypt err: ShareRequired(Requested)",
        "restore",
    ] {
        assert!(
            stats.contains_key(required),
            "no schedule reached {required:?}"
        );
    }
}
