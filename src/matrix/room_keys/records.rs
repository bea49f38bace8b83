//! The Megolm key store as durable records: one record per held key (its
//! attribution, session and replay floor) and one per chunk of
//! [`REPLAY_CHUNK`] message indices of its replay record, so a decryption
//! rewrites one small chunk and never the key or the whole record.

use std::collections::BTreeMap;

use super::{KeyId, MegolmKeyStore, ReplayRecord, StoredKey, read_sender, write_sender};
use crate::codec::{DecodeError, Reader, Writer};
use crate::megolm::MegolmInboundSession;

/// Message indices per replay-record chunk.
pub(crate) const REPLAY_CHUNK: u32 = 64;

/// One durable record of the Megolm key store. Keys order before their
/// replay chunks, so records apply in this order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MegolmTouch {
    /// A held key, without its replay record.
    Key(KeyId),
    /// The replay entries of a key whose index / [`REPLAY_CHUNK`] is this.
    Replay(KeyId, u32),
}

impl MegolmKeyStore {
    /// Every record of the store (to save it whole).
    pub(crate) fn all_records(&self) -> Vec<MegolmTouch> {
        let mut all = Vec::new();
        for (id, stored) in &self.keys {
            all.push(MegolmTouch::Key(id.clone()));
            let chunks = stored.replay.chunks();
            all.extend(
                chunks
                    .into_iter()
                    .map(|c| MegolmTouch::Replay(id.clone(), c)),
            );
        }
        all
    }

    /// Writes the record `touch` names; false when it is not held (the
    /// record is to be deleted).
    pub(crate) fn write_record(&self, touch: &MegolmTouch, w: &mut Writer) -> bool {
        match touch {
            MegolmTouch::Key(id) => match self.keys.get(id) {
                Some(k) => {
                    write_sender(w, &k.sender);
                    k.session.write_contents(w);
                    w.u32(k.replay.floor);
                    true
                }
                None => false,
            },
            MegolmTouch::Replay(id, chunk) => {
                let Some(k) = self.keys.get(id) else {
                    return false;
                };
                let entries: Vec<_> = chunk_range(&k.replay.seen, *chunk).collect();
                if entries.is_empty() {
                    return false;
                }
                w.count(entries.len());
                for (index, hash) in entries {
                    w.u32(*index).bytes(hash);
                }
                true
            }
        }
    }

    /// Applies the record `touch` names as a store holds it (`None`:
    /// absent). A key record keeps the replay entries held for the key.
    pub(crate) fn apply_record(
        &mut self,
        touch: &MegolmTouch,
        r: Option<&mut Reader<'_>>,
    ) -> Result<(), DecodeError> {
        match (touch, r) {
            (MegolmTouch::Key(id), None) => {
                self.remove(id);
            }
            (MegolmTouch::Key(id), Some(r)) => {
                let sender = read_sender(r)?;
                let session = MegolmInboundSession::read_contents(r)?;
                let floor = r.u32("replay floor")?;
                if session.session_id() != id.1 {
                    return Err(DecodeError::InvalidValue("room key session id"));
                }
                let replay = match self.keys.get_mut(id) {
                    Some(old) => std::mem::take(&mut old.replay),
                    None => ReplayRecord::default(),
                };
                self.remove(id);
                let tick = self.touch();
                self.records += replay.seen.len();
                *self.per_sender.entry(sender.sender_key).or_default() += 1;
                let replay = ReplayRecord { floor, ..replay };
                let key = StoredKey {
                    session,
                    sender,
                    replay,
                    last_used: tick,
                };
                self.keys.insert(id.clone(), key);
            }
            (MegolmTouch::Replay(id, chunk), r) => {
                let Some(stored) = self.keys.get_mut(id) else {
                    // The key is gone, and its replay record with it.
                    return match r {
                        None => Ok(()),
                        Some(_) => Err(DecodeError::InvalidValue("replay record without key")),
                    };
                };
                let seen = &mut stored.replay.seen;
                let before = seen.len();
                let doomed: Vec<u32> = chunk_range(seen, *chunk).map(|(i, _)| *i).collect();
                for index in doomed {
                    seen.remove(&index);
                }
                if let Some(r) = r {
                    let count = r.count(REPLAY_CHUNK as usize, "replay entries")?;
                    for _ in 0..count {
                        let index = r.u32("message index")?;
                        let hash = r.array("event id hash")?;
                        if index / REPLAY_CHUNK != *chunk || seen.insert(index, hash).is_some() {
                            return Err(DecodeError::InvalidValue("replay entries"));
                        }
                    }
                }
                self.records = (self.records + seen.len()).saturating_sub(before);
            }
        }
        Ok(())
    }
}

/// The entries of `seen` in `chunk`.
fn chunk_range(
    seen: &BTreeMap<u32, [u8; 32]>,
    chunk: u32,
) -> impl Iterator<Item = (&u32, &[u8; 32])> {
    let start = chunk.saturating_mul(REPLAY_CHUNK);
    let end = start.saturating_add(REPLAY_CHUNK - 1);
    seen.range(start..=end)
}
