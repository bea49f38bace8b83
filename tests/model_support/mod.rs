//! Shared pieces of the model-based tests (`tests/model_pairwise.rs`,
//! `tests/model_room.rs`): a reference model of one side of a pairwise
//! Double Ratchet session that predicts, from message headers alone, whether
//! `Session::decrypt` must succeed or which `SessionError` it must return,
//! and the state the session is in afterwards; the case-count knob; small
//! helpers for fixed-seed pickles; the journal each schedule keeps.
//!
//! The model follows the rules of `src/session/mod.rs` and PROTOCOL.md:
//!
//! 1. a stored skipped key for (ratchet key, counter) is used and removed;
//! 2. otherwise, on the live receiving chain, a counter below the chain's
//!    next index is `MessageKeyGone`, a jump above `MAX_FORWARD_JUMP` is
//!    `TooFarAhead`, else the chain advances and keeps the keys of the
//!    newest (at most `MAX_SKIPPED_MESSAGE_KEYS`) skipped indices;
//! 3. any other ratchet key starts a new chain: its counter must be at most
//!    `MAX_FORWARD_JUMP` (else `TooFarAhead`); the keys still missing from
//!    the live chain (up to the announced previous counter) are kept only if
//!    they and the counter together stay within `MAX_FORWARD_JUMP`, else
//!    they are given up; it authenticates only if it really is the peer's
//!    next chain (a message of an older chain whose key is gone is
//!    indistinguishable from a forgery: `Authentication`);
//! 4. newly skipped keys are appended oldest first, then the oldest keys are
//!    dropped beyond `MAX_SKIPPED_MESSAGE_KEYS` and whole oldest chains beyond
//!    `MAX_RECEIVING_CHAINS`;
//! 5. anything not genuine (tampered, or from another session) that passes
//!    the checks above fails `Authentication`.
//!
//! Chains are numbered per sender ("generations"): a side's sending
//! generation goes up by one each time it reads a message of a new peer
//! chain. The peer's generation `g + 1` is derived from our generation-`g`
//! ratchet key, so a genuine message of an unknown chain is readable exactly
//! when its generation is the one after our live receiving chain.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::consts::{MAX_FORWARD_JUMP, MAX_RECEIVING_CHAINS, MAX_SKIPPED_MESSAGE_KEYS};
use roomseal::{Curve25519PublicKey, DeviceMessage, PickleKey, SessionError, SessionId};

/// An index into a collection whose length is only known when the action
/// runs: `Pick(n)` picks element `n % len`. Shrinks towards the first
/// element, and a printed schedule is valid Rust to paste into a
/// regression test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick(pub u16);

impl Pick {
    /// The element index in a collection of `len` (> 0) elements.
    pub fn of(self, len: usize) -> usize {
        usize::from(self.0) % len
    }
}

/// Any pick.
pub fn pick() -> impl proptest::strategy::Strategy<Value = Pick> {
    proptest::strategy::Strategy::prop_map(proptest::arbitrary::any::<u16>(), Pick)
}

/// Number of schedules: `ROOMSEAL_MODEL_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("ROOMSEAL_MODEL_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The key every pickle in the model tests is sealed with.
pub fn pickle_key() -> PickleKey {
    PickleKey::from_bytes(&mut [42; 32])
}

/// A generator with a fixed seed: two pickles of equal states made with it
/// are equal strings, so comparing them compares states.
pub fn fixed_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

/// Bytes 130..194 of a pre-key message are its binding signature
/// (PROTOCOL.md 7.2).
pub const PRE_KEY_BINDING: std::ops::Range<usize> = 130..194;

/// The live receiving chain: the peer's ratchet key, its generation, and the
/// index of the next message key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    pub key: Curve25519PublicKey,
    pub generation: u32,
    pub next: u32,
}

/// What the receiving half of a session holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxModel {
    pub live: Option<Live>,
    /// Stored skipped keys, oldest first: (chain ratchet key, counter).
    pub skipped: VecDeque<(Curve25519PublicKey, u32)>,
}

/// What the sending half of a session will put in its next message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxModel {
    pub generation: u32,
    pub counter: u32,
    pub previous: u32,
    /// Pre-key messages until the first successful decryption (initiator).
    pub pre_key: bool,
    /// The ratchet key seen in the messages of each generation sent so far.
    pub keys: BTreeMap<u32, Curve25519PublicKey>,
}

/// One side of a pairwise session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerModel {
    pub rx: RxModel,
    pub tx: TxModel,
}

/// A message as the model sees it when it is delivered.
#[derive(Clone, Copy, Debug)]
pub enum Origin {
    /// Sent unchanged on this session by the peer, in this generation.
    Genuine { generation: u32 },
    /// Altered, or sent on another session: it cannot authenticate.
    Forged,
}

/// What a successful decryption did, for coverage statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// `"skipped"`, `"live"` or `"new chain"`.
    pub kind: &'static str,
    /// Stored keys dropped beyond `MAX_SKIPPED_MESSAGE_KEYS`.
    pub evicted_keys: usize,
    /// Whole chains dropped beyond `MAX_RECEIVING_CHAINS`.
    pub evicted_chains: usize,
}

fn skipped_range(key: Curve25519PublicKey, from: u32, to: u32) -> Vec<(Curve25519PublicKey, u32)> {
    let keep_from = to.saturating_sub(MAX_SKIPPED_MESSAGE_KEYS as u32).max(from);
    (keep_from..to).map(|c| (key, c)).collect()
}

impl RxModel {
    /// Appends new skipped keys and enforces both bounds; returns the
    /// numbers of keys and of chains dropped.
    fn extend(&mut self, new: Vec<(Curve25519PublicKey, u32)>) -> (usize, usize) {
        self.skipped.extend(new);
        let mut keys = 0;
        let mut chains_dropped = 0;
        while self.skipped.len() > MAX_SKIPPED_MESSAGE_KEYS {
            self.skipped.pop_front();
            keys += 1;
        }
        loop {
            let mut chains: Vec<Curve25519PublicKey> = Vec::new();
            for (key, _) in &self.skipped {
                if !chains.contains(key) {
                    chains.push(*key);
                }
            }
            if chains.len() <= MAX_RECEIVING_CHAINS {
                return (keys, chains_dropped);
            }
            let oldest = chains[0];
            self.skipped.retain(|(key, _)| *key != oldest);
            chains_dropped += 1;
        }
    }

    /// The outcome of a message with this header: the new receiving state
    /// and what the decryption did.
    pub fn predict(
        &self,
        key: Curve25519PublicKey,
        previous: u32,
        counter: u32,
        origin: Origin,
    ) -> Result<(RxModel, Path), SessionError> {
        let path = |kind, (evicted_keys, evicted_chains)| Path {
            kind,
            evicted_keys,
            evicted_chains,
        };
        let genuine = matches!(origin, Origin::Genuine { .. });
        if let Some(at) = self
            .skipped
            .iter()
            .position(|&(k, c)| k == key && c == counter)
        {
            if !genuine {
                return Err(SessionError::Authentication);
            }
            let mut next = self.clone();
            next.skipped.remove(at);
            return Ok((next, path("skipped", (0, 0))));
        }
        if let Some(live) = self.live.as_ref().filter(|l| l.key == key) {
            if counter < live.next {
                return Err(SessionError::MessageKeyGone { counter });
            }
            let jump = counter - live.next;
            if jump > MAX_FORWARD_JUMP {
                return Err(SessionError::TooFarAhead {
                    jump: u64::from(jump),
                    max: MAX_FORWARD_JUMP,
                });
            }
            if !genuine {
                return Err(SessionError::Authentication);
            }
            let mut next = self.clone();
            let new = skipped_range(key, live.next, counter);
            if let Some(l) = next.live.as_mut() {
                l.next = counter + 1;
            }
            let evicted = next.extend(new);
            return Ok((next, path("live", evicted)));
        }
        if counter > MAX_FORWARD_JUMP {
            return Err(SessionError::TooFarAhead {
                jump: u64::from(counter),
                max: MAX_FORWARD_JUMP,
            });
        }
        let rest = self
            .live
            .as_ref()
            .map_or(0, |l| previous.saturating_sub(l.next));
        let keep_previous = u64::from(rest) + u64::from(counter) <= u64::from(MAX_FORWARD_JUMP);
        let expected = self.live.as_ref().map_or(0, |l| l.generation + 1);
        match origin {
            Origin::Genuine { generation } if generation == expected => {
                let mut new = Vec::new();
                if let Some(l) = self.live.as_ref().filter(|_| keep_previous) {
                    new.extend(skipped_range(l.key, l.next, previous));
                }
                new.extend(skipped_range(key, 0, counter));
                let mut next = self.clone();
                next.live = Some(Live {
                    key,
                    generation,
                    next: counter + 1,
                });
                let evicted = next.extend(new);
                Ok((next, path("new chain", evicted)))
            }
            Origin::Genuine { generation } => {
                assert!(
                    generation < expected,
                    "model invariant broken: generation {generation} arrived while the live \
                     chain is {:?} (a sender can be at most one chain ahead)",
                    self.live
                );
                Err(SessionError::Authentication)
            }
            Origin::Forged => Err(SessionError::Authentication),
        }
    }
}

impl PeerModel {
    /// The initiator right after `create_outbound_session`.
    pub fn initiator() -> Self {
        Self {
            rx: RxModel::default(),
            tx: TxModel {
                generation: 0,
                counter: 0,
                previous: 0,
                pre_key: true,
                keys: BTreeMap::new(),
            },
        }
    }

    /// The responder created from a pre-key message: `Ok` with its state
    /// after decrypting that message, or the session error creation fails
    /// with (one-time-key, binding and account checks are the caller's).
    pub fn responder(
        message: &DeviceMessage,
        origin: Origin,
    ) -> Result<(Self, Path), SessionError> {
        let normal = message.normal();
        let (rx, path) = RxModel::default().predict(
            normal.ratchet_key(),
            normal.previous_counter(),
            normal.counter(),
            origin,
        )?;
        let model = Self {
            rx,
            tx: TxModel {
                generation: 0,
                counter: 0,
                previous: 0,
                pre_key: false,
                keys: BTreeMap::new(),
            },
        };
        Ok((model, path))
    }

    /// The outcome of `Session::decrypt(message)` on this side of the
    /// session `session_id`: the new state, or the error.
    pub fn receive(
        &self,
        session_id: SessionId,
        message: &DeviceMessage,
        origin: Origin,
    ) -> Result<(Self, Path), SessionError> {
        if let DeviceMessage::PreKey(pre_key) = message
            && pre_key.session_id() != session_id
        {
            return Err(SessionError::SessionMismatch);
        }
        let normal = message.normal();
        let (rx, path) = self.rx.predict(
            normal.ratchet_key(),
            normal.previous_counter(),
            normal.counter(),
            origin,
        )?;
        let mut next = self.clone();
        next.rx = rx;
        next.tx.pre_key = false;
        if path.kind == "new chain" {
            next.tx.generation += 1;
            next.tx.previous = next.tx.counter;
            next.tx.counter = 0;
        }
        Ok((next, path))
    }

    /// Checks a message this side just encrypted against the model and
    /// advances it. Returns the message's (generation, counter).
    pub fn sent(&mut self, message: &DeviceMessage) -> Result<(u32, u32), String> {
        let normal = message.normal();
        let tx = &mut self.tx;
        let want = (tx.pre_key, tx.previous, tx.counter);
        let got = (
            message.is_pre_key(),
            normal.previous_counter(),
            normal.counter(),
        );
        if want != got {
            return Err(format!(
                "sent message (pre_key, previous, counter) = {got:?}, model expected {want:?}"
            ));
        }
        let key = normal.ratchet_key();
        match tx.keys.get(&tx.generation) {
            Some(known) if *known != key => {
                return Err(format!(
                    "generation {} changed its ratchet key mid-chain",
                    tx.generation
                ));
            }
            Some(_) => {}
            None => {
                if tx.keys.values().any(|k| *k == key) {
                    return Err(format!(
                        "generation {} reuses an earlier chain's ratchet key",
                        tx.generation
                    ));
                }
                tx.keys.insert(tx.generation, key);
            }
        }
        let at = (tx.generation, tx.counter);
        tx.counter += 1;
        Ok(at)
    }
}

/// What a schedule did: its steps, for the failure message, and how often
/// each kind of outcome happened, for the coverage check.
#[derive(Default)]
pub struct Journal {
    trace: Vec<String>,
    /// Outcome kind -> count.
    pub stats: BTreeMap<String, u64>,
}

impl Journal {
    /// Records a step.
    pub fn note(&mut self, line: String) {
        self.trace.push(line);
    }

    /// Counts an outcome.
    pub fn count(&mut self, what: String) {
        *self.stats.entry(what).or_default() += 1;
    }

    /// The error message of a failed check: the last `last` steps, then why.
    pub fn fail(&self, last: usize, why: String) -> String {
        let start = self.trace.len().saturating_sub(last);
        let mut out = String::from("model check failed; last steps:\n");
        for line in &self.trace[start..] {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&why);
        out
    }
}
