//! A [`MatrixEndpoint`] as durable records (PROTOCOL.md, "Durable store"):
//! which record each [`MatrixTouch`] names (its kind and natural id), how
//! its contents are written from the live endpoint and applied back, and
//! how a whole endpoint is loaded from (or saved to) a store's records.
//!
//! Objects whose number grows have one record each (a peer's Olm sessions,
//! a followed user's devices, a Megolm key, a chunk of its replay record, a
//! room's outbound session and, apart, its recipients, a room's settings, a
//! withheld notice, a trust decision, a pending to-device request); their
//! changes are marked where they happen ([`super::tracked::TrackedMap`],
//! the Megolm store's touches). Two small bounded records, the state (ids,
//! server state, counters, policy) and the account, are written when their
//! contents differ from what was last committed, which costs the same
//! however much the endpoint holds. Record contents reuse the pickle's
//! formats (PROTOCOL.md 18), cut at object boundaries.

use zeroize::Zeroizing;

use super::endpoint::{MatrixEndpoint, RequestId};
use super::ids::{DeviceId, RoomId, UserId};
use super::outbound::{OutboundMegolmRoom, PendingMark};
use super::persist::{
    read_id, read_queued, read_settings, read_trust, write_queued, write_settings, write_trust,
};
use super::room_keys::MegolmTouch;
use super::share::SharePolicy;
use super::withheld::Slot;
use crate::account::Account;
use crate::codec::{DecodeError, Reader, Writer};
use crate::consts::MAX_PENDING_TO_DEVICE_REQUESTS;
use crate::group::GroupSessionId;
use crate::keys::Curve25519PublicKey;
use crate::room::RotationReason;
use crate::store::{RecordName, StoreError};

/// Record kinds of the Matrix endpoint, distinct from the native ones
/// (PROTOCOL.md, "Durable store").
mod kind {
    pub(super) const STATE: u8 = 0x21;
    pub(super) const ACCOUNT: u8 = 0x22;
    pub(super) const OLM_PEER: u8 = 0x23;
    pub(super) const USER: u8 = 0x24;
    pub(super) const NO_OLM: u8 = 0x25;
    pub(super) const TRUST: u8 = 0x26;
    pub(super) const SETTINGS: u8 = 0x27;
    pub(super) const OUTBOUND_SESSION: u8 = 0x28;
    pub(super) const RECIPIENTS: u8 = 0x29;
    pub(super) const DISCARDED: u8 = 0x2a;
    pub(super) const REQUEST: u8 = 0x2b;
    pub(super) const WITHHELD: u8 = 0x2c;
    pub(super) const MEGOLM_KEY: u8 = 0x2d;
    pub(super) const REPLAY: u8 = 0x2e;
}

/// One durable record of a Matrix endpoint, by natural id. The order is
/// the order records apply in: the state and account first, a room's
/// session before its recipients, a Megolm key before its replay chunks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MatrixTouch {
    /// Ids, server state, request and tracker counters, share policy.
    State,
    /// The account.
    Account,
    /// A peer device's Olm sessions.
    Peer(Curve25519PublicKey),
    /// A followed user's marks and devices.
    User(UserId),
    /// A device a claim found no key for.
    NoOlm(Curve25519PublicKey),
    /// A trust decision.
    Trust(UserId, DeviceId),
    /// A room's `m.room.encryption` settings.
    Settings(RoomId),
    /// A room's outbound Megolm session.
    OutboundSession(RoomId),
    /// A room's recipients, withheld devices and offered keys.
    Recipients(RoomId),
    /// A room whose outbound session was dropped, with the reason.
    Discarded(RoomId),
    /// A to-device request not yet confirmed (and its body, if queued).
    Request(RequestId),
    /// A withheld notice received.
    Withheld(Slot),
    /// A Megolm key or a chunk of its replay record.
    Megolm(MegolmTouch),
}

impl RecordName for MatrixTouch {
    fn natural_id(&self) -> (u8, Vec<u8>) {
        let mut w = Writer::default();
        let kind = match self {
            MatrixTouch::State => kind::STATE,
            MatrixTouch::Account => kind::ACCOUNT,
            MatrixTouch::Peer(key) | MatrixTouch::NoOlm(key) => {
                w.bytes(key.as_bytes());
                if matches!(self, MatrixTouch::Peer(_)) {
                    kind::OLM_PEER
                } else {
                    kind::NO_OLM
                }
            }
            MatrixTouch::User(user) => {
                w.short_bytes(user.as_str().as_bytes());
                kind::USER
            }
            MatrixTouch::Trust(user, device) => {
                w.short_bytes(user.as_str().as_bytes())
                    .short_bytes(device.as_str().as_bytes());
                kind::TRUST
            }
            MatrixTouch::Settings(room)
            | MatrixTouch::OutboundSession(room)
            | MatrixTouch::Recipients(room)
            | MatrixTouch::Discarded(room) => {
                w.short_bytes(room.as_str().as_bytes());
                match self {
                    MatrixTouch::Settings(_) => kind::SETTINGS,
                    MatrixTouch::OutboundSession(_) => kind::OUTBOUND_SESSION,
                    MatrixTouch::Recipients(_) => kind::RECIPIENTS,
                    _ => kind::DISCARDED,
                }
            }
            MatrixTouch::Request(id) => {
                w.u64(id.0);
                kind::REQUEST
            }
            MatrixTouch::Withheld(slot) => {
                slot.write_id(&mut w);
                kind::WITHHELD
            }
            MatrixTouch::Megolm(MegolmTouch::Key((room, session))) => {
                w.short_bytes(room.as_str().as_bytes())
                    .bytes(session.as_bytes());
                kind::MEGOLM_KEY
            }
            MatrixTouch::Megolm(MegolmTouch::Replay((room, session), chunk)) => {
                w.short_bytes(room.as_str().as_bytes())
                    .bytes(session.as_bytes())
                    .u32(*chunk);
                kind::REPLAY
            }
        };
        (kind, w.into_vec())
    }

    fn from_natural_id(kind: u8, natural_id: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(natural_id);
        let room = |r: &mut Reader<'_>| read_id(r, "room id", RoomId::parse);
        let touch = match kind {
            kind::STATE => MatrixTouch::State,
            kind::ACCOUNT => MatrixTouch::Account,
            kind::OLM_PEER => MatrixTouch::Peer(Curve25519PublicKey::from_bytes(r.array("key")?)),
            kind::NO_OLM => MatrixTouch::NoOlm(Curve25519PublicKey::from_bytes(r.array("key")?)),
            kind::USER => MatrixTouch::User(read_id(&mut r, "user id", UserId::parse)?),
            kind::TRUST => MatrixTouch::Trust(
                read_id(&mut r, "user id", UserId::parse)?,
                read_id(&mut r, "device id", DeviceId::parse)?,
            ),
            kind::SETTINGS => MatrixTouch::Settings(room(&mut r)?),
            kind::OUTBOUND_SESSION => MatrixTouch::OutboundSession(room(&mut r)?),
            kind::RECIPIENTS => MatrixTouch::Recipients(room(&mut r)?),
            kind::DISCARDED => MatrixTouch::Discarded(room(&mut r)?),
            kind::REQUEST => MatrixTouch::Request(RequestId(r.u64("request id")?)),
            kind::WITHHELD => MatrixTouch::Withheld(Slot::read_id(&mut r)?),
            kind::MEGOLM_KEY | kind::REPLAY => {
                let id = (
                    room(&mut r)?,
                    GroupSessionId::from_bytes(r.array("session id")?),
                );
                MatrixTouch::Megolm(if kind == kind::REPLAY {
                    MegolmTouch::Replay(id, r.u32("replay chunk")?)
                } else {
                    MegolmTouch::Key(id)
                })
            }
            _ => return Err(DecodeError::InvalidValue("record kind")),
        };
        r.finish()?;
        Ok(touch)
    }
}

/// The contents of the two small records as last committed, to tell
/// whether an operation changed them (wiped when dropped: the account's
/// holds secrets).
#[derive(Default)]
pub(crate) struct Committed {
    state: Zeroizing<Vec<u8>>,
    account: Zeroizing<Vec<u8>>,
}

impl MatrixEndpoint {
    /// Starts or stops recording which records operations change.
    pub(crate) fn track_changes(&mut self, on: bool) {
        self.sessions.peers.track(on);
        self.tracker.users.track(on);
        self.withheld.notices.track(on);
        self.inbound.touched.track(on);
        self.rooms.track(on);
        self.advanced.track(on);
        self.settings.track(on);
        self.discarded.track(on);
        self.pending.track(on);
        self.queued.track(on);
        self.no_olm.track(on);
        self.trust.track(on);
        self.committed = self.small_records();
    }

    fn small_records(&self) -> Committed {
        let mut state = Writer::default();
        self.write_record(&MatrixTouch::State, &mut state);
        let mut account = Writer::default();
        self.account.write_contents(&mut account);
        Committed {
            state: state.into_zeroizing(),
            account: account.into_zeroizing(),
        }
    }

    /// The records changed since the last call, in [`MatrixTouch`] order.
    pub(crate) fn take_changes(&mut self) -> Vec<MatrixTouch> {
        use std::collections::BTreeSet;
        let mut all = BTreeSet::new();
        let now = self.small_records();
        if now.state != self.committed.state {
            all.insert(MatrixTouch::State);
        }
        if now.account != self.committed.account {
            all.insert(MatrixTouch::Account);
        }
        self.committed = now;
        all.extend(self.sessions.peers.take_touched().map(MatrixTouch::Peer));
        all.extend(self.tracker.users.take_touched().map(MatrixTouch::User));
        all.extend(
            self.withheld
                .notices
                .take_touched()
                .map(MatrixTouch::Withheld),
        );
        all.extend(
            self.inbound
                .touched
                .take()
                .into_iter()
                .map(MatrixTouch::Megolm),
        );
        for room in self.rooms.take_touched() {
            all.insert(MatrixTouch::OutboundSession(room.clone()));
            all.insert(MatrixTouch::Recipients(room));
        }
        all.extend(
            self.advanced
                .take()
                .into_iter()
                .map(MatrixTouch::OutboundSession),
        );
        all.extend(self.settings.take_touched().map(MatrixTouch::Settings));
        all.extend(self.discarded.take_touched().map(MatrixTouch::Discarded));
        all.extend(self.pending.take_touched().map(MatrixTouch::Request));
        all.extend(self.queued.take_touched().map(MatrixTouch::Request));
        all.extend(self.no_olm.take_touched().map(MatrixTouch::NoOlm));
        all.extend(
            self.trust
                .take_touched()
                .map(|(u, d)| MatrixTouch::Trust(u, d)),
        );
        all.into_iter().collect()
    }

    /// Every record of the endpoint (to save it whole: a migration).
    pub(crate) fn all_records(&self) -> Vec<MatrixTouch> {
        let mut all = vec![MatrixTouch::State, MatrixTouch::Account];
        all.extend(self.sessions.peers.keys().copied().map(MatrixTouch::Peer));
        all.extend(self.tracker.users.keys().cloned().map(MatrixTouch::User));
        all.extend(self.no_olm.keys().copied().map(MatrixTouch::NoOlm));
        all.extend(
            self.trust
                .keys()
                .cloned()
                .map(|(u, d)| MatrixTouch::Trust(u, d)),
        );
        all.extend(self.settings.keys().cloned().map(MatrixTouch::Settings));
        for room in self.rooms.keys() {
            all.push(MatrixTouch::OutboundSession(room.clone()));
            all.push(MatrixTouch::Recipients(room.clone()));
        }
        all.extend(self.discarded.keys().cloned().map(MatrixTouch::Discarded));
        all.extend(self.pending.keys().copied().map(MatrixTouch::Request));
        all.extend(
            self.withheld
                .notices
                .keys()
                .cloned()
                .map(MatrixTouch::Withheld),
        );
        all.extend(
            self.inbound
                .all_records()
                .into_iter()
                .map(MatrixTouch::Megolm),
        );
        all
    }

    /// Writes the contents of the record `touch` names; false when the
    /// endpoint no longer holds it (the record is to be deleted).
    pub(super) fn write_record(&self, touch: &MatrixTouch, w: &mut Writer) -> bool {
        match touch {
            MatrixTouch::State => {
                w.short_bytes(self.user_id.as_str().as_bytes())
                    .short_bytes(self.device_id.as_str().as_bytes());
                self.write_server_state(w);
                w.u64(self.tracker.next_mark())
                    .u64(self.sessions.tick())
                    .bool(self.policy.only_verified);
                true
            }
            MatrixTouch::Account => {
                self.account.write_contents(w);
                true
            }
            MatrixTouch::Peer(key) => self.sessions.write_peer(key, w),
            MatrixTouch::User(user) => self.tracker.write_user_record(user, w),
            MatrixTouch::NoOlm(key) => self.no_olm.get(key).map(|s| w.bool(*s)).is_some(),
            MatrixTouch::Trust(user, device) => self
                .trust
                .get(&(user.clone(), device.clone()))
                .map(|t| write_trust(w, t))
                .is_some(),
            MatrixTouch::Settings(room) => self
                .settings
                .get(room)
                .map(|s| write_settings(w, s))
                .is_some(),
            MatrixTouch::OutboundSession(room) => {
                self.rooms.get(room).map(|r| r.write_session(w)).is_some()
            }
            MatrixTouch::Recipients(room) => self
                .rooms
                .get(room)
                .map(|r| r.write_recipients(w))
                .is_some(),
            MatrixTouch::Discarded(room) => {
                self.discarded.get(room).map(|r| w.u8(r.code())).is_some()
            }
            MatrixTouch::Request(id) => match self.pending.get(id) {
                Some(mark) => {
                    mark.write(w);
                    match self.queued.get(id) {
                        Some(request) => {
                            w.bool(true);
                            write_queued(w, request);
                        }
                        None => {
                            w.bool(false);
                        }
                    }
                    true
                }
                None => false,
            },
            MatrixTouch::Withheld(slot) => self.withheld.write_slot(slot, w),
            MatrixTouch::Megolm(touch) => self.inbound.write_record(touch, w),
        }
    }

    /// Applies the record `touch` names as a store holds it (`None`:
    /// absent). Records of one commit apply in [`MatrixTouch`] order.
    pub(super) fn apply_record(
        &mut self,
        touch: &MatrixTouch,
        contents: Option<&[u8]>,
    ) -> Result<(), DecodeError> {
        let mut reader = contents.map(Reader::new);
        let own = self.identity_keys();
        match (touch, reader.as_mut()) {
            (MatrixTouch::State, Some(r)) => {
                let user = read_id(r, "user id", UserId::parse)?;
                let device = read_id(r, "device id", DeviceId::parse)?;
                if user != self.user_id || device != self.device_id {
                    return Err(DecodeError::InvalidValue("ids"));
                }
                self.read_server_state(r)?;
                self.tracker.set_next_mark(r.u64("tracker mark")?);
                self.sessions.set_tick(r.u64("olm session tick")?);
                self.policy = SharePolicy {
                    only_verified: r.bool("only verified")?,
                };
            }
            (MatrixTouch::Account, Some(r)) => {
                let account = Account::read_contents(r)?;
                if account.identity_keys() != own {
                    return Err(DecodeError::InvalidValue("account"));
                }
                self.account = account;
            }
            (MatrixTouch::State | MatrixTouch::Account, None) => {
                return Err(DecodeError::InvalidValue("account"));
            }
            (MatrixTouch::Peer(key), r) => self.sessions.apply_peer(key, r, &own.curve25519)?,
            (MatrixTouch::User(user), r) => self.tracker.apply_user_record(user, r)?,
            (MatrixTouch::NoOlm(key), r) => match r {
                Some(r) => {
                    self.no_olm.insert(*key, r.bool("notice sent")?);
                }
                None => {
                    self.no_olm.remove(key);
                }
            },
            (MatrixTouch::Trust(user, device), r) => {
                let id = (user.clone(), device.clone());
                match r {
                    Some(r) => {
                        self.trust.insert(id, read_trust(r)?);
                    }
                    None => {
                        self.trust.remove(&id);
                    }
                }
            }
            (MatrixTouch::Settings(room), r) => match r {
                Some(r) => {
                    self.settings.insert(room.clone(), read_settings(r)?);
                }
                None => {
                    self.settings.remove(room);
                }
            },
            (MatrixTouch::OutboundSession(room), r) => match r {
                Some(r) => self.apply_outbound_session(room, r)?,
                None => {
                    self.rooms.remove(room);
                }
            },
            (MatrixTouch::Recipients(room), r) => {
                if let Some(r) = r {
                    self.rooms
                        .get_mut(room)
                        .ok_or(DecodeError::InvalidValue("recipients without session"))?
                        .read_recipients(r)?;
                }
            }
            (MatrixTouch::Discarded(room), r) => match r {
                Some(r) => {
                    let reason = RotationReason::from_code(r.u8("discard reason")?)
                        .ok_or(DecodeError::InvalidValue("discard reason"))?;
                    self.discarded.insert(room.clone(), reason);
                }
                None => {
                    self.discarded.remove(room);
                }
            },
            (MatrixTouch::Request(id), r) => {
                self.pending.remove(id);
                self.queued.remove(id);
                if let Some(r) = r {
                    let mark = PendingMark::read(r)?;
                    if id.0 >= self.next_request
                        || self.pending.len() >= MAX_PENDING_TO_DEVICE_REQUESTS
                    {
                        return Err(DecodeError::InvalidValue("pending requests"));
                    }
                    if r.bool("queued flag")? {
                        self.queued.insert(*id, read_queued(r)?);
                    }
                    self.pending.insert(*id, mark);
                }
            }
            (MatrixTouch::Withheld(slot), r) => self.withheld.apply_slot(slot, r)?,
            (MatrixTouch::Megolm(touch), r) => self.inbound.apply_record(touch, r)?,
        }
        match reader {
            Some(r) => r.finish(),
            None => Ok(()),
        }
    }

    /// Applies a room's outbound session record: the same session keeps
    /// its recipients, another one starts without any.
    fn apply_outbound_session(
        &mut self,
        room: &RoomId,
        r: &mut Reader<'_>,
    ) -> Result<(), DecodeError> {
        let read = OutboundMegolmRoom::read_session(r)?;
        match self.rooms.get_mut(room) {
            Some(held) if held.session_id() == read.session_id() => {
                held.session = read.session;
                held.created_ms = read.created_ms;
            }
            _ => {
                self.rooms.insert(room.clone(), read);
            }
        }
        Ok(())
    }

    /// Builds an endpoint from every record of a store, opened and sorted.
    pub(crate) fn from_opened(
        opened: Vec<(MatrixTouch, Zeroizing<Vec<u8>>)>,
    ) -> Result<Self, StoreError> {
        let mut opened = opened.into_iter();
        let corrupt = |_| StoreError::Corrupt("record contents");
        let state = match opened.next() {
            Some((MatrixTouch::State, contents)) => contents,
            Some(_) => return Err(StoreError::Corrupt("no endpoint record")),
            None => return Err(StoreError::Empty),
        };
        let (user_id, device_id) = {
            let mut r = Reader::new(&state);
            (
                read_id(&mut r, "user id", UserId::parse).map_err(corrupt)?,
                read_id(&mut r, "device id", DeviceId::parse).map_err(corrupt)?,
            )
        };
        let account = match opened.next() {
            Some((MatrixTouch::Account, contents)) => {
                let mut r = Reader::new(&contents);
                let account = Account::read_contents(&mut r).map_err(corrupt)?;
                r.finish().map_err(corrupt)?;
                account
            }
            _ => return Err(StoreError::Corrupt("no account record")),
        };
        let mut endpoint = MatrixEndpoint::new(account, user_id, device_id);
        endpoint
            .apply_record(&MatrixTouch::State, Some(&state))
            .map_err(corrupt)?;
        for (touch, contents) in opened {
            endpoint
                .apply_record(&touch, Some(&contents))
                .map_err(corrupt)?;
        }
        let inconsistent = endpoint
            .rooms
            .keys()
            .any(|room| endpoint.discarded.contains_key(room));
        if inconsistent || !endpoint.tracker.holds_own_device() {
            return Err(StoreError::Corrupt("inconsistent records"));
        }
        Ok(endpoint)
    }
}
