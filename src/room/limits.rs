//! The bounds on the state outside input can add to an endpoint, in one
//! place: peers and strangers, stored room keys in all and per sender, and
//! replay records. Their product is the endpoint's memory budget, worked out
//! in bytes in PROTOCOL.md ("Memory budget").

use crate::consts::{
    MAX_PEERS, MAX_REPLAY_RECORDS, MAX_ROOM_KEYS, MAX_ROOM_KEYS_PER_SENDER, MAX_STRANGERS,
};

/// The bounds an endpoint enforces (the constants of [`crate::consts`]; tests
/// lower them to reach the edges quickly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// [`MAX_PEERS`].
    pub(crate) peers: usize,
    /// [`MAX_STRANGERS`].
    pub(crate) strangers: usize,
    /// [`MAX_ROOM_KEYS`].
    pub(crate) room_keys: usize,
    /// [`MAX_ROOM_KEYS_PER_SENDER`].
    pub(crate) room_keys_per_sender: usize,
    /// [`MAX_REPLAY_RECORDS`].
    pub(crate) replay_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            peers: MAX_PEERS,
            strangers: MAX_STRANGERS,
            room_keys: MAX_ROOM_KEYS,
            room_keys_per_sender: MAX_ROOM_KEYS_PER_SENDER,
            replay_records: MAX_REPLAY_RECORDS,
        }
    }
}
