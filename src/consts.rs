//! Every protocol bound in one place, each with the reason for its value.
//!
//! These numbers are part of the protocol's behaviour (a message beyond a
//! bound is rejected with a typed error), so changing one is a protocol
//! change: PROTOCOL.md lists them and the tests exercise each edge.

/// Version byte of the native wire and pickle formats described in
/// PROTOCOL.md. Every encoded object starts with it; any other value is an
/// error.
pub const PROTOCOL_VERSION: u8 = 2;

/// Bytes of fresh operating-system randomness in every native pairwise and
/// group message, mixed into that message's key derivation as HKDF's salt.
///
/// A ratchet rolled back to an older state (an old pickle restored, a crash
/// before saving, a VM snapshot, two processes on one pickle) derives the
/// same message seed again; with a new salt the AES-256-GCM key and nonce
/// still differ, so the server never sees two plaintexts under one key/nonce
/// pair. Sixteen bytes make a repeated salt a 2^-64 event even after 2^32
/// messages on one seed.
pub const MESSAGE_SALT_LEN: usize = 16;

/// Distinct receiving chains a pairwise session keeps skipped message keys
/// for (the live chain is always kept besides).
///
/// A chain ends when the peer's ratchet key changes (once per change of
/// direction). Messages still in flight from an earlier chain can be read as
/// long as their keys are kept. Five chains cover messages delayed across two
/// full round trips in each direction; when a sixth chain would need keys,
/// every key of the oldest chain is dropped.
pub const MAX_RECEIVING_CHAINS: usize = 5;

/// Message keys a pairwise session stores for messages that have not arrived
/// yet (skipped over by a later message), across all chains.
///
/// Each key costs 68 bytes (its chain's ratchet key, counter and seed) in
/// memory and in the pickle. One hundred keys let any permutation of up to a
/// hundred messages in flight be read; when a further key must be stored,
/// the oldest stored key is dropped first.
pub const MAX_SKIPPED_MESSAGE_KEYS: usize = 100;

/// The largest number of message keys one incoming message may make a
/// pairwise session skip over on its chain. When a message starts the
/// peer's next chain, the keys still missing from its previous chain are
/// also derived and kept, but only if both together stay within this bound;
/// otherwise the previous chain's missing messages are given up and the new
/// chain is read anyway, so lost messages never cut a direction off. The
/// chain work per message is at most this plus one step.
///
/// Each step is two HMAC-SHA-256 calls (about one microsecond), so a forged
/// message can cost the receiver at most about 2 ms of work before its tag is
/// checked and it is rejected. Legitimate gaps this large mean thousands of
/// lost messages; the session reports them instead of guessing.
pub const MAX_FORWARD_JUMP: u32 = 2000;

/// One-time private keys an account keeps (published and not yet published,
/// until a session created from one decrypts its first message).
///
/// When generating a new key would exceed it, the oldest key is dropped and
/// reported, so a server that never delivers claimed keys cannot make the
/// account grow without bound.
pub const MAX_ONE_TIME_KEYS: usize = 100;

/// Sessions a fallback key may create. Each is remembered (its 32-byte
/// session id) so that a replayed pre-key message built on the fallback key
/// is refused instead of creating the same session again. A fallback key is
/// replaced as soon as it has been used (the next
/// `Endpoint::keys_to_publish`), so a genuine key sees a handful of
/// sessions; past this bound it refuses new ones
/// (`AccountError::FallbackKeyExhausted`) until it is replaced. Two keys
/// (current and previous) at 32 KiB each bound the memory.
pub const MAX_FALLBACK_SESSIONS: usize = 1_000;

/// How long a replaced fallback key is kept, in milliseconds: one hour.
///
/// Until the server has the new key it may still hand out the old one, and
/// a peer that claimed it may send its first message a little later. After
/// the grace period the old private key is forgotten, closing the window in
/// which a stolen device state could read sessions started from it.
pub const FALLBACK_KEY_GRACE_MS: u64 = 60 * 60 * 1000;

/// How far the clock may go back, in milliseconds (five minutes), before
/// roomseal treats a time it stamped as untrustworthy: a room key created
/// "in the future" is rotated, and a replaced fallback key is forgotten
/// (an unreliable clock must never extend a key's life).
pub const CLOCK_SKEW_TOLERANCE_MS: u64 = 5 * 60 * 1000;

/// Longest user id or device id accepted in a device-key bundle, in bytes.
/// Matrix user ids are limited to 255 bytes; device ids are shorter.
pub const MAX_ID_LEN: usize = 255;

/// Largest plaintext a single pairwise or group message may carry: 1 MiB.
///
/// Room events are a few kilobytes at most (Matrix limits events to 64 KiB);
/// the bound keeps every decoder's allocation proportional to a reasonable
/// input and far below the AES-GCM per-key limit.
pub const MAX_PLAINTEXT_LEN: usize = 1 << 20;

/// Pairwise sessions the orchestrator keeps per peer device. Peers may
/// start new sessions (for example after restoring a backup); the newest is
/// used to send and all are tried on receipt. Beyond this the oldest is
/// dropped, so a peer reusing our fallback key cannot grow our state.
pub const MAX_SESSIONS_PER_PEER: usize = 8;

/// Message indices per inbound group session whose event ids the replay
/// store remembers. With the default rotation after 100 messages this is a
/// hundred times the normal need; past it the lowest index is dropped and
/// the store refuses every index below the lowest one it keeps
/// (`RoomError::Forgotten`), even if an earlier backup is merged in later,
/// so a dropped index can never be replayed.
pub const MAX_TRACKED_INDICES: usize = 10_000;

/// Peer devices an endpoint holds sessions with, in all. Outside input
/// (pre-key messages from devices the app never named: *strangers*) can
/// only ever take [`MAX_STRANGERS`] of them; past this total a new stranger
/// is refused with `RoomError::TooManyPeers` only if every peer is one the
/// app named (otherwise the stranger unused for longest is evicted). The app
/// frees room with `Endpoint::forget_peer`.
pub const MAX_PEERS: usize = 10_000;

/// Strangers an endpoint keeps: devices that started a session with us
/// that the app never named (by starting a session with them or listing
/// them as room-key recipients). Anyone can mint identities and use our
/// fallback key, so when a new stranger would pass this bound, the stranger
/// unused for longest is evicted: a flood churns among strangers and never
/// displaces a known peer. A stranger keeps at most
/// [`MAX_STRANGER_SESSIONS`] sessions of at most about 8 KB (with a full
/// skipped-key store), so strangers take at most about 16 MB.
pub const MAX_STRANGERS: usize = 1_000;

/// Sessions a stranger may hold (a known peer holds up to
/// [`MAX_SESSIONS_PER_PEER`]): one, and one more for a device that
/// restarted its session before the app named it.
pub const MAX_STRANGER_SESSIONS: usize = 2;

/// Inbound room keys an endpoint stores from room-key shares, in all. A
/// stored key takes about 400 bytes (see PROTOCOL.md, "Memory budget").
/// When a share of a new key would pass this bound, the least recently used
/// key from a sender the app never named is evicted to make room; a key from
/// such a sender is refused with `RoomError::TooManyRoomKeys` when only
/// named senders' keys remain, and a named sender's key then evicts nothing
/// either (the app lists keys with `Endpoint::room_keys` and frees room with
/// `Endpoint::forget_room_key` or `Endpoint::forget_room_keys`). Keys the
/// endpoint creates itself and keys the app imports are not limited.
pub const MAX_ROOM_KEYS: usize = 10_000;

/// Inbound room keys one sending device may hold in the store. Past it, that
/// sender's least recently used key is evicted for its new one, so a sender
/// can only ever push out its own keys. With rotation every 100 messages or
/// every week, 1,000 keys cover 100,000 messages of one device's history.
pub const MAX_ROOM_KEYS_PER_SENDER: usize = 1_000;

/// Replay records (message index and event-id hash, about 48 bytes each in
/// memory and 36 in the pickle) the whole store keeps. Each key keeps at
/// most [`MAX_TRACKED_INDICES`]; past this total, the key holding the most
/// records forgets its lowest ones (raising its replay floor, as
/// [`MAX_TRACKED_INDICES`] describes), so the two bounds no longer multiply:
/// replay records take at most about 12 MB.
pub const MAX_REPLAY_RECORDS: usize = 250_000;

/// Messages at or above which [`crate::InboundGroupSession::decrypt_batch`]
/// verifies signatures on several threads (with the `parallel` feature). A
/// strict Ed25519 verification costs about 30 µs, starting and joining a
/// thread about 30 µs, so a second thread pays off from a handful of
/// messages; sixteen keeps small batches on the calling thread.
pub const PARALLEL_VERIFY_THRESHOLD: usize = 16;

/// Recipients at or above which a room-key share is encrypted on several
/// threads (with the `parallel` feature). Each recipient costs about 1.2 µs
/// of encryption, while starting and joining a thread costs about 30 µs;
/// measured on two cores, a second thread gained nothing at 100 recipients
/// and 1.4x at 1,000.
pub const PARALLEL_SHARE_THRESHOLD: usize = 200;

// The Matrix client layer (`crate::matrix`). Everything a homeserver sends is
// outside input: these bound what one response can make the crate allocate
// or keep.

/// Longest canonical JSON encoding the crate produces or verifies, in bytes.
///
/// Matrix limits an event to 65,536 bytes of JSON; the objects that are
/// signed (device keys, one-time and fallback keys, cross-signing keys) are
/// a few hundred bytes. Bounding the encoder keeps a hostile object from
/// costing more than this much work and memory per signature check.
pub const MAX_CANONICAL_JSON_LEN: usize = 65_536;

/// Deepest nesting of arrays and objects canonical JSON accepts. Signed
/// Matrix objects nest three levels; the bound stops a hostile value (which
/// may have been built in memory, beyond `serde_json`'s parse limit of 128)
/// from exhausting the stack.
pub const MAX_CANONICAL_JSON_DEPTH: usize = 64;

/// Largest single item in a server response, in bytes of JSON text: one
/// device's keys in a `/keys/query` response, one device's keys in a
/// `/keys/claim` response, one to-device event in a sync. Matrix events are
/// at most 65,536 bytes, and a signed item must fit the canonical bound
/// anyway. A larger item is rejected on its own, not the whole response.
pub const MAX_JSON_ITEM_LEN: usize = 65_536;

/// Users per `/keys/query` request the crate builds, and the most users a
/// response may describe. Larger sets are split over several requests (a
/// response with more users than any request asks for is refused whole).
pub const MAX_KEYS_QUERY_USERS: usize = 250;

/// Devices per `/keys/claim` request the crate builds, and the most devices
/// a response may hold keys for. Larger sets are split over several
/// requests.
pub const MAX_KEYS_CLAIM_DEVICES: usize = 1_000;

/// Devices kept per user. Real accounts have a handful, heavy users a few
/// hundred over the years; a user whose list is longer is refused (and
/// reported), so one user cannot fill the tracker.
pub const MAX_DEVICES_PER_USER: usize = 500;

/// Users whose device lists the tracker follows (each user we share an
/// encrypted room with). Past it, new users are refused and reported.
pub const MAX_TRACKED_USERS: usize = 10_000;

/// Devices the tracker keeps over all users: about 300 bytes each, so at
/// most about 30 MB. Past it, new devices are refused and reported.
pub const MAX_TRACKED_DEVICES: usize = 100_000;

/// To-device events one sync may carry. Servers are told to send at most
/// 100 per sync; a longer list is refused whole.
pub const MAX_TO_DEVICE_EVENTS: usize = 1_000;

/// User ids in each of a sync's `device_lists.changed` and `.left`. Joining
/// a large room may list every member once; a longer list is refused whole.
pub const MAX_DEVICE_LIST_CHANGES: usize = 100_000;

/// Entries in a key-count map or in the unused fallback key types of a
/// sync or upload response. Matrix defines one key algorithm for one-time
/// keys (`signed_curve25519`); a longer map is refused whole.
pub const MAX_KEY_ALGORITHMS: usize = 16;

/// One-time keys a Matrix device keeps on the server. Half of what the
/// account stores ([`MAX_ONE_TIME_KEYS`]), so keys that were claimed but
/// whose first message has not arrived yet still have room in the account.
pub const MATRIX_ONE_TIME_KEY_TARGET: usize = MAX_ONE_TIME_KEYS / 2;

/// Least time between two Olm sessions this device starts with one peer
/// device to replace a wedged one, in milliseconds: one hour, as the Matrix
/// specification asks ("Recovering from undecryptable messages"), so a peer
/// (or a server replaying garbage in its name) cannot make us burn its
/// one-time keys.
pub const MATRIX_NEW_SESSION_INTERVAL_MS: u64 = 3_600_000;

/// Received `m.room_key.withheld` notices kept (per room and session, and
/// `m.no_olm` per sending device). They are unauthenticated hints for the
/// user interface; past the bound the oldest is forgotten.
pub const MAX_WITHHELD_NOTICES: usize = 10_000;

/// Recipient devices per to-device request the Matrix layer builds (as
/// Element's engine does): a share to more devices is split over several
/// requests, each confirmed on its own.
pub const MAX_TO_DEVICE_PER_REQUEST: usize = 250;

/// To-device requests (room-key shares, withheld notices, `m.dummy`) the
/// Matrix layer remembers until the app confirms them as sent. Past it the
/// oldest is forgotten: its devices are simply served again by the next
/// share.
pub const MAX_PENDING_TO_DEVICE_REQUESTS: usize = 1_000;

/// Devices the app has given a trust decision (verified or blacklisted) in
/// the Matrix layer; as many as the tracker can hold.
pub const MAX_DEVICE_TRUST_ENTRIES: usize = MAX_TRACKED_DEVICES;

/// Olm v1: receiving chains an Olm session keeps, the live one included.
///
/// Olm messages carry no previous-chain counter, so a late message of an
/// earlier chain can only be read from that chain itself; libolm and
/// vodozemac keep five, and so does roomseal (a sixth chain drops the
/// oldest).
pub const OLM_MAX_RECEIVING_CHAINS: usize = 5;

/// Olm v1: skipped message keys an Olm session keeps per receiving chain
/// (vodozemac's bound; libolm keeps 40 in all). When a chain would hold
/// more, its oldest key is dropped.
pub const OLM_MAX_SKIPPED_PER_CHAIN: usize = 40;

/// Olm v1: skipped message keys an Olm session keeps in all (the per-chain
/// bound times the chain bound, so it never binds before them).
pub const OLM_MAX_SKIPPED_MESSAGE_KEYS: usize =
    OLM_MAX_SKIPPED_PER_CHAIN * OLM_MAX_RECEIVING_CHAINS;

/// Olm v1: the largest number of message keys one incoming message may make
/// an Olm session skip over on its chain (libolm's and vodozemac's
/// `MAX_MESSAGE_GAP`); beyond it the message is refused with
/// `SessionError::TooFarAhead`.
pub const OLM_MAX_MESSAGE_GAP: u32 = 2000;

/// Olm v1: one-time keys an [`crate::OlmAccount`] keeps (libolm's bound, so
/// every libolm account pickle fits). The oldest key is dropped first.
pub const OLM_MAX_ONE_TIME_KEYS: usize = 100;
