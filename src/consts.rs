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

/// Peer devices an orchestrator takes new pairwise sessions from. A pre-key
/// message from a device it holds no session with is refused with
/// `RoomError::TooManyPeers` once this many peers are held: anyone can mint
/// identities and reuse our fallback key, so without it a flood of pre-key
/// messages would grow the state without bound. Nothing is evicted (a flood
/// cannot push out real peers); the app frees room with
/// `Endpoint::forget_peer`. Sessions the app starts itself are not limited
/// (the app chooses whom it talks to). A session takes about 1 KB, and at
/// most about 8 KB with a full skipped-key store, so the sessions peers can
/// start stay below 10,000 x 8 x 8 KB, typically about 10 MB.
pub const MAX_PEERS: usize = 10_000;

/// Inbound room keys an orchestrator accepts from room-key shares. A share
/// of a session it does not hold yet is refused with
/// `RoomError::TooManyRoomKeys` once the store holds this many keys, since
/// any peer can send shares for as many rooms and sessions as it likes.
/// Nothing is evicted; the app frees room with `Endpoint::forget_room_keys`.
/// Its own sessions and keys it imports are not limited. A stored key takes
/// about 300 bytes, plus up to `MAX_TRACKED_INDICES` replay records once its
/// sender has signed that many events.
pub const MAX_ROOM_KEYS: usize = 10_000;

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
