//! An endpoint as durable records: which record each [`Touch`] names (its
//! kind and natural id), how its contents are written from the live
//! endpoint and applied back to it, and how a whole endpoint is loaded from
//! (or saved to) a store's records.
//!
//! Every record's contents reuse the pickle contents of its object (the
//! account, a peer with its sessions, an outbound session, a stored room
//! key...), so the formats are those of PROTOCOL.md 8 and 12.6, cut at
//! object boundaries. Writing a record reads only the object it names:
//! nothing here scans the endpoint, except loading and saving it whole.

use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_ID_LEN;
use crate::group::GroupSessionId;
use crate::keys::Curve25519PublicKey;
use zeroize::Zeroizing;

use crate::store::{RecordName, StoreError};

use super::endpoint::Endpoint;
use super::outbound::OutboundRoom;
use super::policy::{RotationPolicy, RotationReason};
use super::touched::Touch;
use crate::account::Account;

/// Record kinds (PROTOCOL.md, "Durable store").
mod kind {
    pub(super) const META: u8 = 1;
    pub(super) const ACCOUNT: u8 = 2;
    pub(super) const PEER: u8 = 3;
    pub(super) const OUTBOUND_SESSION: u8 = 4;
    pub(super) const RECIPIENTS: u8 = 5;
    pub(super) const DISCARDED: u8 = 6;
    pub(super) const INBOUND_KEY: u8 = 7;
    pub(super) const REPLAY: u8 = 8;
}

impl RecordName for Touch {
    fn natural_id(&self) -> (u8, Vec<u8>) {
        let mut w = Writer::default();
        let kind = match self {
            Touch::Meta => kind::META,
            Touch::Account => kind::ACCOUNT,
            Touch::Peer(key) => {
                w.bytes(&key.to_bytes());
                kind::PEER
            }
            Touch::OutboundSession(room) | Touch::Recipients(room) | Touch::Discarded(room) => {
                w.bytes(room.as_bytes());
                match self {
                    Touch::OutboundSession(_) => kind::OUTBOUND_SESSION,
                    Touch::Recipients(_) => kind::RECIPIENTS,
                    _ => kind::DISCARDED,
                }
            }
            Touch::InboundKey(room, session) | Touch::Replay(room, session, _) => {
                w.short_bytes(room.as_bytes()).bytes(session.as_bytes());
                match self {
                    Touch::Replay(_, _, index) => {
                        w.u32(*index);
                        kind::REPLAY
                    }
                    _ => kind::INBOUND_KEY,
                }
            }
        };
        (kind, w.into_vec())
    }

    fn from_natural_id(kind: u8, natural_id: &[u8]) -> Result<Self, DecodeError> {
        fn room(bytes: &[u8]) -> Result<String, DecodeError> {
            match std::str::from_utf8(bytes) {
                Ok(text) if !text.is_empty() && text.len() <= MAX_ID_LEN => Ok(text.to_owned()),
                _ => Err(DecodeError::InvalidValue("room id")),
            }
        }
        let mut r = Reader::new(natural_id);
        let touch = match kind {
            kind::META => Touch::Meta,
            kind::ACCOUNT => Touch::Account,
            kind::PEER => Touch::Peer(Curve25519PublicKey::from_bytes(r.array("peer key")?)),
            kind::OUTBOUND_SESSION => Touch::OutboundSession(room(r.rest())?),
            kind::RECIPIENTS => Touch::Recipients(room(r.rest())?),
            kind::DISCARDED => Touch::Discarded(room(r.rest())?),
            kind::INBOUND_KEY | kind::REPLAY => {
                let room = room(r.short_bytes(MAX_ID_LEN, "room id")?)?;
                let session = GroupSessionId::from_bytes(r.array("session id")?);
                if kind == kind::REPLAY {
                    Touch::Replay(room, session, r.u32("message index")?)
                } else {
                    Touch::InboundKey(room, session)
                }
            }
            _ => return Err(DecodeError::InvalidValue("record kind")),
        };
        r.finish()?;
        Ok(touch)
    }
}

impl Endpoint {
    /// Writes the contents of the record `touch` names; false when the
    /// endpoint no longer holds it (the record is to be deleted).
    pub(super) fn write_record(&self, touch: &Touch, w: &mut Writer) -> bool {
        match touch {
            Touch::Meta => {
                w.short_bytes(self.user_id().as_bytes())
                    .short_bytes(self.device_id().as_bytes());
                self.policy.write(w);
                true
            }
            Touch::Account => {
                self.account.write_contents(w);
                true
            }
            Touch::Peer(key) => self.peers.write_peer(key, w),
            Touch::OutboundSession(room) => self
                .outbound
                .get(room)
                .map(|r| r.write_session(w))
                .is_some(),
            Touch::Recipients(room) => self
                .outbound
                .get(room)
                .map(|r| r.write_recipients(w))
                .is_some(),
            Touch::Discarded(room) => self.discarded.get(room).map(|r| w.u8(r.code())).is_some(),
            Touch::InboundKey(room, session) => {
                self.inbound.write_key_record(&(room.clone(), *session), w)
            }
            Touch::Replay(room, session, index) => {
                self.inbound
                    .write_replay_record(&(room.clone(), *session), *index, w)
            }
        }
    }

    /// Applies the record `touch` names as the store holds it (`None`:
    /// absent) to this endpoint. Records of one commit are applied in
    /// [`Touch`] order.
    pub(super) fn apply_record(
        &mut self,
        touch: &Touch,
        contents: Option<&[u8]>,
    ) -> Result<(), DecodeError> {
        let Some(contents) = contents else {
            return self.remove_record(touch);
        };
        let mut r = Reader::new(contents);
        let own = self.identity_keys();
        match touch {
            Touch::Meta => {
                let (user_id, device_id, policy) = read_meta(&mut r)?;
                if user_id != self.user_id() || device_id != self.device_id() {
                    return Err(DecodeError::InvalidValue("ids"));
                }
                self.policy = policy;
            }
            Touch::Account => {
                let account = Account::read_contents(&mut r)?;
                if account.identity_keys() != own {
                    return Err(DecodeError::InvalidValue("account"));
                }
                self.account = account;
            }
            Touch::Peer(key) => {
                if self.peers.read_peer(&mut r, &own)? != *key {
                    return Err(DecodeError::InvalidValue("peer key"));
                }
            }
            Touch::OutboundSession(room_id) => {
                let room = OutboundRoom::read_session(&mut r)?;
                if room.session.creator() != own || room.session.room_id() != room_id {
                    return Err(DecodeError::InvalidValue("outbound rooms"));
                }
                match self.outbound.get_mut(room_id) {
                    Some(held) if held.session.session_id() == room.session.session_id() => {
                        held.session = room.session;
                        held.created_ms = room.created_ms;
                    }
                    _ => {
                        self.outbound.insert(room_id.clone(), room);
                    }
                }
            }
            Touch::Recipients(room_id) => self
                .outbound
                .get_mut(room_id)
                .ok_or(DecodeError::InvalidValue("recipients without session"))?
                .read_recipients(&mut r)?,
            Touch::Discarded(room_id) => {
                let reason = RotationReason::from_code(r.u8("rotation reason")?)
                    .ok_or(DecodeError::InvalidValue("rotation reason"))?;
                self.discarded.insert(room_id.clone(), reason);
            }
            Touch::InboundKey(room_id, session) => {
                if self.inbound.read_key_record(&mut r)? != (room_id.clone(), *session) {
                    return Err(DecodeError::InvalidValue("stored room keys"));
                }
            }
            Touch::Replay(room_id, session, index) => {
                self.inbound.read_replay_record(
                    &(room_id.clone(), *session),
                    *index,
                    Some(&mut r),
                )?;
            }
        }
        r.finish()
    }

    fn remove_record(&mut self, touch: &Touch) -> Result<(), DecodeError> {
        match touch {
            Touch::Meta | Touch::Account => return Err(DecodeError::InvalidValue("account")),
            Touch::Peer(key) => {
                self.peers.remove(key);
            }
            Touch::OutboundSession(room) => {
                self.outbound.remove(room);
            }
            Touch::Recipients(_) => {}
            Touch::Discarded(room) => {
                self.discarded.remove(room);
            }
            Touch::InboundKey(room, session) => {
                self.inbound.forget_key(room, session);
            }
            Touch::Replay(room, session, index) => {
                let id = (room.clone(), *session);
                if self.inbound.contains(room, session) {
                    self.inbound.read_replay_record(&id, *index, None)?;
                }
            }
        }
        Ok(())
    }

    /// Starts or stops recording which records operations change.
    pub(super) fn track_changes(&mut self, on: bool) {
        self.touched.track(on);
        self.peers.touched.track(on);
        self.inbound.touched.track(on);
    }

    /// The records changed since the last call, in [`Touch`] order.
    pub(super) fn take_changes(&mut self) -> Vec<Touch> {
        let mut all = self.touched.take();
        all.append(&mut self.peers.touched.take());
        all.append(&mut self.inbound.touched.take());
        all.into_iter().collect()
    }

    /// Every record of the endpoint (to save it whole: a migration).
    pub(super) fn all_records(&self) -> Vec<Touch> {
        let mut all = vec![Touch::Meta, Touch::Account];
        all.extend(self.peers.keys().map(Touch::Peer));
        for room in self.outbound.keys() {
            all.push(Touch::OutboundSession(room.clone()));
            all.push(Touch::Recipients(room.clone()));
        }
        all.extend(self.discarded.keys().cloned().map(Touch::Discarded));
        for (room, session, indices) in self.inbound.records() {
            all.push(Touch::InboundKey(room.to_owned(), session));
            all.extend(indices.map(|i| Touch::Replay(room.to_owned(), session, i)));
        }
        all
    }

    /// Builds an endpoint from every record of a store, opened and sorted.
    pub(super) fn from_opened(
        opened: Vec<(Touch, Zeroizing<Vec<u8>>)>,
    ) -> Result<Self, StoreError> {
        let mut opened = opened.into_iter();
        let corrupt = |_| StoreError::Corrupt("record contents");
        let (user_id, device_id, policy) = match opened.next() {
            Some((Touch::Meta, contents)) => {
                let mut r = Reader::new(&contents);
                let meta = read_meta(&mut r).map_err(corrupt)?;
                r.finish().map_err(corrupt)?;
                meta
            }
            Some(_) => return Err(StoreError::Corrupt("no endpoint record")),
            None => return Err(StoreError::Empty),
        };
        let account = match opened.next() {
            Some((Touch::Account, contents)) => {
                let mut r = Reader::new(&contents);
                let account = Account::read_contents(&mut r).map_err(corrupt)?;
                r.finish().map_err(corrupt)?;
                account
            }
            _ => return Err(StoreError::Corrupt("no account record")),
        };
        let mut endpoint = Endpoint::from_account(&user_id, &device_id, account)
            .map_err(|_| StoreError::Corrupt("ids"))?;
        endpoint.policy = policy;
        for (touch, contents) in opened {
            endpoint
                .apply_record(&touch, Some(&contents))
                .map_err(corrupt)?;
        }
        let inconsistent = endpoint
            .outbound
            .keys()
            .any(|room| endpoint.discarded.contains_key(room));
        if inconsistent {
            return Err(StoreError::Corrupt("discarded rooms"));
        }
        Ok(endpoint)
    }
}

fn read_meta(r: &mut Reader<'_>) -> Result<(String, String, RotationPolicy), DecodeError> {
    fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
        let bytes = r.short_bytes(MAX_ID_LEN, field)?;
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidValue(field))?;
        Ok(text.to_owned())
    }
    Ok((
        text(r, "user id")?,
        text(r, "device id")?,
        RotationPolicy::read(r)?,
    ))
}
