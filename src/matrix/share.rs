//! Sharing a room's Megolm key with its devices:
//! [`MatrixEndpoint::share_room_key`], the app's trust decisions
//! ([`MatrixEndpoint::set_device_trust`], [`SharePolicy`]), forwarding a key
//! to one of our own devices, and what confirming a to-device request marks.
//!
//! Guarantees:
//! - the room key rotates before it is shared whenever the room's
//!   `m.room.encryption` settings say so (`rotation_period_msgs`,
//!   `rotation_period_ms`, or their defaults), or a device that may hold it
//!   is no longer among the room's eligible devices, however it went (not a
//!   member's device any more, removed from its user's device list, its user
//!   left, blacklisted since): the same rule as the native endpoint
//!   (PROTOCOL.md 12.4);
//! - `m.room_key` is sent only over an Olm session with exactly that device
//!   (the Curve25519 key the tracker holds for it), inside the payload that
//!   names its user and Ed25519 key;
//! - a device counts as served only once the request carrying its key is
//!   confirmed ([`MatrixEndpoint::mark_request_as_sent`]); until then every
//!   share serves it again, from the index it was first offered;
//! - withheld notices: `m.blacklisted` to a device the app blacklisted,
//!   `m.unverified` to a device the app did not verify when the policy
//!   shares only with verified devices, `m.no_olm` (once per device until a
//!   session exists) to a device a key claim found no key for; each is sent
//!   until confirmed, once per session (`m.no_olm`: per device).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use thiserror::Error;

use super::device_keys::{Device, MEGOLM_V1, OLM_V1};
use super::endpoint::{MatrixEndpoint, OutgoingRequest};
use super::events::{
    FORWARDED_ROOM_KEY, ForwardedRoomKeyContent, ROOM_ENCRYPTED, ROOM_KEY, ROOM_KEY_WITHHELD,
    RoomEncryptionContent, RoomKeyWithheldContent, SessionKeyText, WithheldCode,
};
use super::ids::{DeviceId, RoomId, UserId};
use super::olm_send::{OlmSender, PayloadTemplate};
use super::outbound::{OutboundMegolmRoom, PendingMark, Recipient};
use super::room_keys::{RoomKeySender, RoomKeySource};
use super::to_device::{SendToDeviceRequest, ToDeviceMessage};
use crate::consts::{MAX_DEVICE_TRUST_ENTRIES, MAX_TO_DEVICE_PER_REQUEST};
use crate::group::GroupSessionId;
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey};
use crate::megolm::{MegolmInboundSession, MegolmOutboundSession};
use crate::room::RotationReason;
use crate::room::recipients::{Offer, rotation_due};

/// Why a room key could not be shared (or forwarded). Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ShareError {
    /// The room's `m.room.encryption` names an algorithm other than
    /// `m.megolm.v1.aes-sha2`.
    #[error("the room's encryption algorithm is not supported")]
    UnsupportedAlgorithm,
    /// No key for this room and session is held (forwarding).
    #[error("no such room key")]
    UnknownRoomKey,
    /// The device is not a known device of our own user with an Olm session
    /// (forwarding goes only to our own devices).
    #[error("keys are forwarded only to our own devices with an Olm session")]
    NotOwnDevice,
}

/// The app's trust decision for a device (roomseal has no cross-signing:
/// verification is the app's own, for example comparing keys in person).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceTrust {
    /// No decision.
    #[default]
    Unset,
    /// The app verified the device.
    Verified,
    /// The app blacklisted the device: it gets `m.blacklisted` instead of
    /// room keys.
    Blacklisted,
}

/// Who room keys go to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharePolicy {
    /// Share only with devices the app marked [`DeviceTrust::Verified`];
    /// others get `m.unverified`. Off by default (as Element's default).
    pub only_verified: bool,
}

/// The result of [`MatrixEndpoint::share_room_key`].
#[derive(Clone, Debug)]
pub struct ShareOutcome {
    /// The room.
    pub room_id: RoomId,
    /// The room's current Megolm session.
    pub session_id: GroupSessionId,
    /// Whether a new session replaced an earlier one.
    pub rotated: bool,
    /// Why, if it did.
    pub rotation_reason: Option<RotationReason>,
    /// The to-device requests to send (`m.room.encrypted` carrying
    /// `m.room_key`, and `m.room_key.withheld`), at most
    /// [`MAX_TO_DEVICE_PER_REQUEST`] devices each. Confirm each with
    /// [`MatrixEndpoint::mark_request_as_sent`] once sent.
    pub requests: Vec<OutgoingRequest>,
    /// Devices a room key was produced for in this call.
    pub served: Vec<(UserId, DeviceId)>,
    /// Devices told the key is withheld in this call, and why.
    pub withheld: Vec<(UserId, DeviceId, WithheldCode)>,
    /// Devices that lack the key and have no Olm session: claim keys for
    /// them ([`MatrixEndpoint::keys_claim_request`]) and share again.
    pub missing_sessions: Vec<(UserId, DeviceId)>,
}

/// `m.room_key` as sent.
#[derive(Serialize)]
struct RoomKeyOut<'a> {
    algorithm: &'static str,
    room_id: &'a RoomId,
    session_id: &'a str,
    session_key: &'a SessionKeyText,
}

/// What one eligible device gets.
enum Plan {
    /// The room key.
    Key,
    /// A withheld notice with this code.
    Withheld(WithheldCode),
}

impl MatrixEndpoint {
    /// Sets a room's `m.room.encryption` settings (from its state event);
    /// the next share rotates if the new periods say the current key is
    /// expired. Rooms without settings use the defaults (a week, 100
    /// messages).
    pub fn set_room_encryption(&mut self, room: &RoomId, settings: RoomEncryptionContent) {
        self.settings.insert(room.clone(), settings);
    }

    /// The room's settings (the defaults when none were set).
    pub fn room_encryption(&self, room: &RoomId) -> RoomEncryptionContent {
        self.settings
            .get(room)
            .cloned()
            .unwrap_or_else(RoomEncryptionContent::megolm)
    }

    /// Sets who room keys go to.
    pub fn set_share_policy(&mut self, policy: SharePolicy) {
        self.policy = policy;
    }

    /// Records the app's trust decision for a device the tracker knows
    /// (bound to its Ed25519 key); returns false for an unknown device or
    /// when [`MAX_DEVICE_TRUST_ENTRIES`] decisions are held. A device that
    /// held a room key and is now blacklisted (or unverified under
    /// [`SharePolicy::only_verified`]) makes the next share rotate.
    pub fn set_device_trust(
        &mut self,
        user: &UserId,
        device: &DeviceId,
        trust: DeviceTrust,
    ) -> bool {
        let Some(known) = self.tracker.device(user, device) else {
            return false;
        };
        let id = (user.clone(), device.clone());
        if trust == DeviceTrust::Unset {
            self.trust.remove(&id);
            return true;
        }
        if !self.trust.contains_key(&id) && self.trust.len() >= MAX_DEVICE_TRUST_ENTRIES {
            return false;
        }
        self.trust.insert(id, (known.keys().ed25519, trust));
        true
    }

    /// The app's trust decision for a device.
    pub fn device_trust(&self, device: &Device) -> DeviceTrust {
        if self.trust.is_empty() {
            return DeviceTrust::Unset;
        }
        match self
            .trust
            .get(&(device.user_id().clone(), device.device_id().clone()))
        {
            Some((key, trust)) if *key == device.keys().ed25519 => *trust,
            _ => DeviceTrust::Unset,
        }
    }

    /// Drops the room's outbound session: the next share rotates
    /// ([`RotationReason::Requested`]). Returns whether there was one.
    pub fn rotate_room_key(&mut self, room: &RoomId) -> bool {
        self.discard(room, RotationReason::Requested)
    }

    fn discard(&mut self, room: &RoomId, reason: RotationReason) -> bool {
        if self.rooms.remove(room).is_some() {
            self.discarded.insert(room.clone(), reason);
            true
        } else {
            false
        }
    }

    /// A device went (removed from its user's list, or its user left every
    /// shared room): every room whose current key it may hold rotates.
    pub(super) fn device_left(&mut self, key: &Curve25519PublicKey) {
        let rooms: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, room)| room.recipients.contains(key))
            .map(|(id, _)| id.clone())
            .collect();
        for room in rooms {
            self.discard(&room, RotationReason::DeviceLeft);
        }
    }

    /// Makes sure every device of `users` (the room's members; this device
    /// is skipped) that may read the room holds its current key: rotates
    /// first when the settings or a departed device say so, encrypts
    /// `m.room_key` with Olm for every eligible device not yet confirmed as
    /// served and holding a session, and withheld notices for the others
    /// (see the module docs). Devices the tracker does not know are not
    /// served: let the outgoing key queries finish first.
    pub fn share_room_key(
        &mut self,
        room: &RoomId,
        users: &[UserId],
    ) -> Result<ShareOutcome, ShareError> {
        let settings = self.room_encryption(room);
        if !settings.is_megolm() {
            return Err(ShareError::UnsupportedAlgorithm);
        }
        let unique: BTreeSet<&UserId> = users.iter().collect();
        let mut plans: Vec<(Recipient, Plan)> = Vec::new();
        let mut eligible: BTreeMap<Curve25519PublicKey, Ed25519PublicKey> = BTreeMap::new();
        let devices = unique
            .into_iter()
            .flat_map(|u| self.tracker.devices(u))
            .filter(|d| d.supports(OLM_V1) && !self.is_own_device(d));
        for device in devices {
            match self.withheld_code(device) {
                Some(code) => plans.push((Recipient::new(device), Plan::Withheld(code))),
                None => {
                    eligible.insert(device.keys().curve25519, device.keys().ed25519);
                    plans.push((Recipient::new(device), Plan::Key));
                }
            }
        }
        let now = self.now_ms();
        let policy = settings.rotation_policy();
        let reason = match self.rooms.get(room) {
            None => Some(
                self.discarded
                    .get(room)
                    .copied()
                    .unwrap_or(RotationReason::NotShared),
            ),
            Some(current) => rotation_due(
                &policy,
                current.session.message_index(),
                current.created_ms,
                now,
                &current.recipients,
                &eligible,
            ),
        };
        if let Some(reason) = reason {
            self.start_room_session(room, now);
            self.discarded.remove(room);
            let mut outcome = self.serve(room, plans)?;
            outcome.rotated = reason != RotationReason::NotShared;
            outcome.rotation_reason = outcome.rotated.then_some(reason);
            return Ok(outcome);
        }
        self.serve(room, plans)
    }

    /// The withheld code for a device the policy excludes, if it does.
    fn withheld_code(&self, device: &Device) -> Option<WithheldCode> {
        match self.device_trust(device) {
            DeviceTrust::Blacklisted => Some(WithheldCode::Blacklisted),
            DeviceTrust::Verified => None,
            DeviceTrust::Unset if self.policy.only_verified => Some(WithheldCode::Unverified),
            DeviceTrust::Unset => None,
        }
    }

    /// A new outbound session for the room, with our own inbound copy (so
    /// we read our own events).
    fn start_room_session(&mut self, room: &RoomId, now: u64) {
        let session = MegolmOutboundSession::new_with_rng(&mut *self.rng);
        let own_keys = self.account.identity_keys();
        let sender = RoomKeySender {
            sender_key: own_keys.curve25519,
            sender_ed25519: Some(own_keys.ed25519),
            user_id: Some(self.user_id().clone()),
            device_id: Some(self.device_id().clone()),
            source: RoomKeySource::Own,
            forwarded_by: None,
        };
        if let Ok(inbound) = MegolmInboundSession::new(&session.session_key()) {
            // Our own keys are never refused or evicted.
            let _ = self
                .inbound
                .add(room, inbound, sender, &own_keys.curve25519, |_| true);
        }
        self.rooms
            .insert(room.clone(), OutboundMegolmRoom::new(session, now));
    }

    /// Serves every planned device the room's current key (or its withheld
    /// notice), in order.
    fn serve(
        &mut self,
        room_id: &RoomId,
        plans: Vec<(Recipient, Plan)>,
    ) -> Result<ShareOutcome, ShareError> {
        let sender = OlmSender {
            user_id: &self.user_id,
            keys: self.account.identity_keys(),
        };
        let own_device = self.device_id.clone();
        let Some(room) = self.rooms.get_mut(room_id) else {
            return Err(ShareError::UnknownRoomKey);
        };
        let session_id = room.session_id();
        let session_text = session_id.to_base64();
        let current = room.session.message_index();
        let mut keys_out = SendBatch::new(ROOM_ENCRYPTED);
        let mut withheld_out = SendBatch::new(ROOM_KEY_WITHHELD);
        let mut no_olm_out = SendBatch::new(ROOM_KEY_WITHHELD);
        let mut outcome = ShareOutcome {
            room_id: room_id.clone(),
            session_id,
            rotated: false,
            rotation_reason: None,
            requests: Vec::new(),
            served: Vec::new(),
            withheld: Vec::new(),
            missing_sessions: Vec::new(),
        };
        // The payload up to the recipient, per index offered (usually one).
        let mut templates: BTreeMap<u32, PayloadTemplate> = BTreeMap::new();
        for (device, plan) in plans {
            let curve = device.keys.curve25519;
            let code = match plan {
                Plan::Withheld(code) => code,
                Plan::Key => {
                    let Some(index) = room.recipients.index_to_serve(&curve, current, false) else {
                        continue;
                    };
                    let Some(session) = self.sessions.sending_session(&curve) else {
                        match self.no_olm.get(&curve) {
                            Some(true) => {}
                            Some(false) => no_olm_out.add(&device, curve, WithheldCode::NoOlm),
                            None => outcome.missing_sessions.push(device.ids()),
                        }
                        continue;
                    };
                    let template = templates.entry(index).or_insert_with(|| {
                        let text = SessionKeyText::new(room.key_at(index).to_base64().to_string());
                        let content = RoomKeyOut {
                            algorithm: MEGOLM_V1,
                            room_id,
                            session_id: &session_text,
                            session_key: &text,
                        };
                        sender.template(ROOM_KEY, &content)
                    });
                    let to = (&device.user_id, &device.keys);
                    match sender.encrypt_with(template, session, to, &mut *self.rng) {
                        Ok(encrypted) => {
                            room.recipients.offered(device.clone(), index);
                            outcome.served.push(device.ids());
                            keys_out.push(device, curve, encrypted);
                        }
                        Err(_) => outcome.missing_sessions.push(device.ids()),
                    }
                    continue;
                }
            };
            if room.withheld.get(&curve).is_some_and(|(t, _)| t.sent) {
                continue;
            }
            let offer = Offer {
                device: device.clone(),
                first_index: current,
                sent: false,
            };
            room.withheld.insert(curve, (offer, code.clone()));
            outcome.withheld.push((
                device.user_id.clone(),
                device.device_id.clone(),
                code.clone(),
            ));
            withheld_out.add(&device, curve, code);
        }
        room.recipients.prune_keys();
        let our_key = self.account.identity_keys().curve25519;
        let withheld_content = |code: &WithheldCode, with_session: bool| RoomKeyWithheldContent {
            algorithm: MEGOLM_V1.to_owned(),
            room_id: with_session.then(|| room_id.clone()),
            session_id: with_session.then(|| session_text.clone()),
            sender_key: our_key,
            reason: Some(withheld_reason(code).to_owned()),
            code: code.clone(),
            from_device: Some(own_device.clone()),
        };
        let batches = [
            (keys_out.chunks, 0u8),
            (withheld_out.finish(|code| withheld_content(code, true)), 1),
            (no_olm_out.finish(|code| withheld_content(code, false)), 2),
        ];
        for (chunks, kind) in batches {
            for (mut request, devices) in chunks {
                request.txn_id = self.txn_id();
                let mark = match kind {
                    0 => PendingMark::RoomKey {
                        room: room_id.clone(),
                        session: session_id,
                        devices,
                    },
                    1 => PendingMark::Withheld {
                        room: room_id.clone(),
                        session: session_id,
                        devices,
                    },
                    _ => PendingMark::NoOlm { devices },
                };
                outcome
                    .requests
                    .push(self.register_to_device(request, mark, false));
            }
        }
        Ok(outcome)
    }

    /// Applies a confirmed to-device request; returns how many devices it
    /// marked (a request of a session since replaced marks nothing).
    pub(super) fn mark_sent(&mut self, mark: &PendingMark) -> usize {
        match mark {
            PendingMark::RoomKey {
                room,
                session,
                devices,
            }
            | PendingMark::Withheld {
                room,
                session,
                devices,
            } => {
                let Some(room) = self
                    .rooms
                    .get_mut(room)
                    .filter(|r| r.session_id() == *session)
                else {
                    return 0;
                };
                let withheld = matches!(mark, PendingMark::Withheld { .. });
                devices
                    .iter()
                    .filter(|key| {
                        if withheld {
                            room.withheld
                                .get_mut(key)
                                .map(|(o, _)| o.sent = true)
                                .is_some()
                        } else {
                            room.recipients.mark_sent(key)
                        }
                    })
                    .count()
            }
            PendingMark::NoOlm { devices } => devices
                .iter()
                .filter(|key| self.no_olm.get_mut(key).map(|sent| *sent = true).is_some())
                .count(),
            PendingMark::Nothing => 0,
        }
    }

    /// Forwards a held room key (`m.forwarded_room_key`, exported at its
    /// first known index) to one of our own devices over Olm, for example a
    /// new device that should read the room's history. The request is also
    /// returned by [`MatrixEndpoint::outgoing_requests`] until confirmed.
    /// The receiver reports events it decrypts with it as not
    /// authenticated.
    pub fn forward_room_key(
        &mut self,
        room: &RoomId,
        session_id: &GroupSessionId,
        to: &DeviceId,
    ) -> Result<OutgoingRequest, ShareError> {
        let user = self.user_id.clone();
        let device = self
            .tracker
            .device(&user, to)
            .filter(|d| !self.is_own_device(d))
            .cloned()
            .ok_or(ShareError::NotOwnDevice)?;
        let (export, creator) = self
            .inbound
            .export(room, session_id)
            .ok_or(ShareError::UnknownRoomKey)?;
        let mut chain: Vec<String> = Vec::new();
        if let Some(forwarder) = creator.forwarded_by {
            chain.push(forwarder.to_base64());
        }
        let content = ForwardedRoomKeyContent {
            algorithm: MEGOLM_V1.to_owned(),
            room_id: room.clone(),
            sender_key: creator.sender_key,
            session_id: session_id.to_base64(),
            session_key: SessionKeyText::new(export.to_base64().to_string()),
            sender_claimed_ed25519_key: creator
                .sender_ed25519
                .unwrap_or(self.account.identity_keys().ed25519),
            forwarding_curve25519_key_chain: chain,
            withheld: None,
        };
        let sender = OlmSender {
            user_id: &self.user_id,
            keys: self.account.identity_keys(),
        };
        let session = self
            .sessions
            .sending_session(&device.keys().curve25519)
            .ok_or(ShareError::NotOwnDevice)?;
        let encrypted = sender
            .encrypt(
                session,
                (device.user_id(), &device.keys()),
                FORWARDED_ROOM_KEY,
                &content,
                &mut *self.rng,
            )
            .map_err(|_| ShareError::NotOwnDevice)?;
        let mut request = SendToDeviceRequest::new(ROOM_ENCRYPTED, self.txn_id());
        request.add(device.user_id(), device.device_id().clone(), encrypted);
        Ok(self.register_to_device(request, PendingMark::Nothing, true))
    }
}

/// A human-readable reason for each code (what Element's engine sends).
fn withheld_reason(code: &WithheldCode) -> &'static str {
    match code {
        WithheldCode::Blacklisted => "The sender has blocked you.",
        WithheldCode::Unverified => "The sender has disabled encrypting to unverified devices.",
        WithheldCode::NoOlm => "Unable to establish a secure channel.",
        _ => "The key is withheld.",
    }
}

/// To-device messages of one event type, split into requests of at most
/// [`MAX_TO_DEVICE_PER_REQUEST`] devices.
struct SendBatch {
    event_type: &'static str,
    chunks: Vec<(SendToDeviceRequest, Vec<Curve25519PublicKey>)>,
    /// Withheld notices: the device and its code, made into content at the
    /// end.
    notices: Vec<(UserId, DeviceId, Curve25519PublicKey, WithheldCode)>,
}

impl SendBatch {
    fn new(event_type: &'static str) -> Self {
        Self {
            event_type,
            chunks: Vec::new(),
            notices: Vec::new(),
        }
    }

    /// Adds a device's content.
    fn push(&mut self, device: Recipient, key: Curve25519PublicKey, content: ToDeviceMessage) {
        self.append(&device.user_id, device.device_id, key, content);
    }

    fn append(
        &mut self,
        user: &UserId,
        device: DeviceId,
        key: Curve25519PublicKey,
        content: ToDeviceMessage,
    ) {
        if self
            .chunks
            .last()
            .is_none_or(|(_, keys)| keys.len() >= MAX_TO_DEVICE_PER_REQUEST)
        {
            self.chunks
                .push((SendToDeviceRequest::new(self.event_type, ""), Vec::new()));
        }
        if let Some((request, keys)) = self.chunks.last_mut() {
            request.add(user, device, content);
            keys.push(key);
        }
    }

    /// Adds a device to tell `code`.
    fn add(&mut self, device: &Recipient, key: Curve25519PublicKey, code: WithheldCode) {
        self.notices
            .push((device.user_id.clone(), device.device_id.clone(), key, code));
    }

    /// The requests, the notices' contents made by `notice`.
    fn finish(
        mut self,
        notice: impl Fn(&WithheldCode) -> RoomKeyWithheldContent,
    ) -> Vec<(SendToDeviceRequest, Vec<Curve25519PublicKey>)> {
        for (user, device, key, code) in std::mem::take(&mut self.notices) {
            // A notice is strings only; one that could not be written is
            // not sent (and so not marked: the next share tries again).
            if let Ok(content) = ToDeviceMessage::new(&notice(&code)) {
                self.append(&user, device, key, content);
            }
        }
        self.chunks
    }
}
