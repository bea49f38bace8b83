//! Taking in a sync: [`MatrixEndpoint::receive_sync_changes`] applies the
//! device lists and key counts, then decrypts and checks every to-device
//! event on its own.
//!
//! For an Olm event (`m.room.encrypted` with `m.olm.v1.curve25519-aes-sha2`):
//! the ciphertext for this device's Curve25519 key is decrypted on a copy of
//! a session with the sender's key (most recently received first), or a new
//! session is staged from a pre-key message (its one-time key consumed, or
//! its fallback key use recorded, only at commit); the plaintext must pass
//! the specification's payload checks ([`super::OlmPayload::check`], with the
//! sender's device from the tracker); then `m.room_key` becomes an
//! authenticated Megolm key, `m.forwarded_room_key` (from our own user's
//! devices only) a key reported as not authenticated, `m.dummy` only moves
//! the session, and any other type is handed to the app. Only when all of
//! that succeeded is anything committed.
//!
//! Guarantees: one bad event never stops the others (each gets its own
//! [`ToDeviceError`]) and changes nothing, with one documented exception: a
//! message no session of a known device can read marks that device's
//! session wedged, so the next key claim replaces it (rate-limited). A
//! to-device message delivered twice fails the second time (its message key
//! is gone) and changes nothing.

use serde_json::value::RawValue;
use thiserror::Error;

use super::device_keys::MEGOLM_V1;
use super::endpoint::MatrixEndpoint;
use super::events::{
    DUMMY, EventError, FORWARDED_ROOM_KEY, ForwardedRoomKeyContent, OlmEncryptedContent, ROOM_KEY,
    RoomKeyContent,
};
use super::ids::{RoomId, UserId};
use super::json::{JsonError, parse};
use super::olm_payload::{
    CheckedOlmPayload, OlmContext, OlmPayload, OlmPayloadError, SenderDevice,
};
use super::room_keys::{RoomKeyError, RoomKeySender, RoomKeySource};
use super::sync::{SyncChanges, ToDeviceContent, ToDeviceEvent};
use super::withheld::WithheldNotice;
use crate::account::{AccountError, KeyUse};
use crate::codec::DecodeError;
use crate::consts::MAX_KEY_ALGORITHMS;
use crate::group::GroupSessionId;
use crate::keys::Curve25519PublicKey;
use crate::megolm::{MegolmExportedKey, MegolmInboundSession, MegolmSessionKey};
use crate::olm::{OlmMessage, OlmSession};
use crate::plaintext::Plaintext;
use crate::room::KeyAdded;
use crate::session::{SessionError, SessionId};

/// Why one to-device event was not taken. Nothing changed (see the module
/// docs for the wedged-session mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ToDeviceError {
    /// The event is malformed, of an unsupported algorithm, or a key event
    /// sent in the clear.
    #[error("{0}")]
    Event(#[from] EventError),
    /// The Olm event has no ciphertext for this device's key.
    #[error("no ciphertext for this device")]
    NotForThisDevice,
    /// The event claims to come from this device's own key.
    #[error("event claims to come from this device")]
    FromOwnDevice,
    /// The Olm message does not decode.
    #[error("Olm message does not decode: {0}")]
    Message(DecodeError),
    /// A pre-key message names another identity key than the event's
    /// `sender_key`.
    #[error("pre-key message from another identity key than the event's")]
    SenderKeyMismatch,
    /// A normal message from a device we hold no session with.
    #[error("no Olm session with the sending device")]
    NoSession,
    /// No session with the sender could decrypt the message.
    #[error("Olm decryption failed: {0}")]
    Decryption(SessionError),
    /// A pre-key message could not start a session (an unknown or used
    /// one-time key, a fallback key replay, a failed first message).
    #[error("Olm session could not be created: {0}")]
    Account(AccountError),
    /// A new device would not fit: every slot holds a device the app knows.
    #[error("too many devices")]
    TooManyPeers,
    /// The plaintext failed the payload checks.
    #[error("Olm payload refused: {0}")]
    Payload(#[from] OlmPayloadError),
    /// The inner event's content is not of its type's shape.
    #[error("malformed content: {0}")]
    Content(JsonError),
    /// The room key was not stored.
    #[error("room key refused: {0}")]
    RoomKey(#[from] RoomKeyError),
}

/// A room key stored from a to-device event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRoomKey {
    /// The room.
    pub room_id: RoomId,
    /// The Megolm session.
    pub session_id: GroupSessionId,
    /// Who the key is attributed to, and how it came.
    pub sender: RoomKeySender,
    /// The first index it can decrypt.
    pub first_index: u32,
    /// What the store did.
    pub added: KeyAdded,
    /// Keys evicted to make room.
    pub evicted: Vec<(RoomId, GroupSessionId)>,
}

/// A decrypted to-device event of a type this layer does not handle
/// itself, for the app.
#[derive(Debug)]
pub struct DecryptedToDevice {
    /// The sending user (checked against the payload).
    pub sender: UserId,
    /// The sending device's Curve25519 key (the Olm session's peer).
    pub sender_key: Curve25519PublicKey,
    /// The sending device, confirmed by device keys or only claimed.
    pub sender_device: SenderDevice,
    /// The event type.
    pub event_type: String,
    /// The content.
    pub content: Box<RawValue>,
}

/// One to-device event, taken.
#[derive(Debug)]
pub enum ProcessedToDevice {
    /// `m.room_key` over Olm: an authenticated Megolm key.
    RoomKey(ReceivedRoomKey),
    /// `m.forwarded_room_key` over Olm: a key reported as not
    /// authenticated.
    ForwardedRoomKey(ReceivedRoomKey),
    /// `m.room_key.withheld`, recorded.
    Withheld(WithheldNotice),
    /// `m.dummy` over Olm: the session it came on is now the one we send
    /// on.
    Dummy {
        /// The sending user.
        sender: UserId,
        /// The sending device's Curve25519 key.
        sender_key: Curve25519PublicKey,
    },
    /// Another type, decrypted.
    Decrypted(DecryptedToDevice),
    /// Another type, sent in the clear (verification, custom types).
    Plain(ToDeviceEvent),
}

/// A to-device event that was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedToDevice {
    /// Its position in the sync's list.
    pub index: usize,
    /// The sender, when the event was well-formed enough to say.
    pub sender: Option<UserId>,
    /// Why.
    pub error: ToDeviceError,
}

/// What a sync changed.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    /// The to-device events taken, in order, each with its position.
    pub to_device: Vec<(usize, ProcessedToDevice)>,
    /// The to-device events refused, each with its own error.
    pub rejected: Vec<RejectedToDevice>,
    /// Users whose device lists changed (now outdated: the next outgoing
    /// requests query them).
    pub changed_users: Vec<UserId>,
    /// Users who no longer share an encrypted room (no longer tracked; the
    /// room keys their devices held rotate).
    pub left_users: Vec<UserId>,
    /// Entries of `changed` or `left` that are not valid user ids.
    pub invalid_user_ids: usize,
    /// Unclaimed `signed_curve25519` keys on the server.
    pub one_time_key_count: u64,
    /// Unused fallback key algorithms, if the server said.
    pub unused_fallback_key_types: Option<Vec<String>>,
}

/// Where a staged Olm decryption came from.
enum Staged {
    Existing { id: SessionId, session: OlmSession },
    New { session: OlmSession, used: KeyUse },
}

impl MatrixEndpoint {
    /// Reads a sync's JSON text (the whole `/sync` response, or an object
    /// with just its end-to-end encryption members): applies `device_lists`
    /// (users who left: their devices' room keys rotate), records the key
    /// counts (the next outgoing requests top keys up or replace the
    /// fallback key), then takes every to-device event on its own. Only
    /// text that is not JSON, not of a sync's shape or over a bound is
    /// refused whole, before anything changed.
    pub fn receive_sync_changes(&mut self, sync: &str) -> Result<SyncOutcome, JsonError> {
        let changes = SyncChanges::from_json(sync)?;
        Ok(self.receive_changes(changes))
    }

    /// [`MatrixEndpoint::receive_sync_changes`] for a parsed sync.
    pub fn receive_changes(&mut self, changes: SyncChanges) -> SyncOutcome {
        for user in &changes.left_users {
            let gone: Vec<Curve25519PublicKey> = self
                .tracker
                .devices(user)
                .map(|d| d.keys().curve25519)
                .collect();
            for key in gone {
                self.device_left(&key);
            }
        }
        self.tracker
            .receive_device_lists(&changes.changed_users, &changes.left_users);
        self.record_key_counts(
            changes.one_time_key_count,
            changes.unused_fallback_key_types.as_deref(),
        );
        let mut outcome = SyncOutcome {
            to_device: Vec::with_capacity(changes.to_device.len()),
            rejected: changes
                .rejected_events
                .iter()
                .map(|r| RejectedToDevice {
                    index: r.index,
                    sender: None,
                    error: ToDeviceError::Event(r.error),
                })
                .collect(),
            changed_users: changes.changed_users,
            left_users: changes.left_users,
            invalid_user_ids: changes.invalid_user_ids,
            one_time_key_count: changes.one_time_key_count,
            unused_fallback_key_types: changes.unused_fallback_key_types,
        };
        for event in changes.to_device {
            let index = event.index;
            let sender = event.sender.clone();
            match self.receive_to_device(event) {
                Ok(processed) => outcome.to_device.push((index, processed)),
                Err(error) => outcome.rejected.push(RejectedToDevice {
                    index,
                    sender: Some(sender),
                    error,
                }),
            }
        }
        outcome.rejected.sort_by_key(|r| r.index);
        outcome
    }

    /// Takes one to-device event.
    pub fn receive_to_device(
        &mut self,
        event: ToDeviceEvent,
    ) -> Result<ProcessedToDevice, ToDeviceError> {
        match event.content {
            ToDeviceContent::Olm(content) => self.receive_olm(&event.sender, &content),
            ToDeviceContent::RoomKeyWithheld(content) => {
                let notice = WithheldNotice::new(event.sender, content);
                self.withheld.record(notice.clone());
                Ok(ProcessedToDevice::Withheld(notice))
            }
            ToDeviceContent::Other(_) => Ok(ProcessedToDevice::Plain(event)),
        }
    }

    fn record_key_counts(&mut self, count: u64, fallback_types: Option<&[String]>) {
        if self.upload.is_none() {
            self.server_key_count = Some(count);
            if let Some(types) = fallback_types {
                self.unused_fallback_key_types =
                    Some(types.iter().take(MAX_KEY_ALGORITHMS).cloned().collect());
            }
        }
    }

    fn receive_olm(
        &mut self,
        sender: &UserId,
        content: &OlmEncryptedContent,
    ) -> Result<ProcessedToDevice, ToDeviceError> {
        let own = self.identity_keys();
        let ciphertext = content
            .ciphertext_for(&own.curve25519)
            .ok_or(ToDeviceError::NotForThisDevice)?;
        let sender_key = content.sender_key;
        if sender_key == own.curve25519 {
            return Err(ToDeviceError::FromOwnDevice);
        }
        let message =
            OlmMessage::from_base64_parts(ciphertext.message_type as u8, &ciphertext.body)
                .map_err(ToDeviceError::Message)?;
        let (staged, plaintext) = self.stage_olm(&sender_key, &message)?;
        let text = std::str::from_utf8(&plaintext)
            .map_err(|_| OlmPayloadError::Malformed(JsonError::Syntax { line: 1, column: 1 }))?;
        let payload = OlmPayload::from_json(text)?;
        let checked = payload.check(&OlmContext {
            event_sender: sender,
            sender_key: &sender_key,
            own_user: self.user_id(),
            own_ed25519: &own.ed25519,
            known_sender: self.tracker.device_by_curve25519(&sender_key),
        })?;
        let processed = match checked.event_type.as_str() {
            ROOM_KEY => ProcessedToDevice::RoomKey(self.store_room_key(&sender_key, &checked)?),
            FORWARDED_ROOM_KEY => ProcessedToDevice::ForwardedRoomKey(
                self.store_forwarded_key(&sender_key, &checked)?,
            ),
            DUMMY => ProcessedToDevice::Dummy {
                sender: checked.sender,
                sender_key,
            },
            _ => ProcessedToDevice::Decrypted(DecryptedToDevice {
                sender: checked.sender,
                sender_key,
                sender_device: checked.sender_device,
                event_type: checked.event_type,
                content: checked.content,
            }),
        };
        // Everything checked: commit the Olm state.
        match staged {
            Staged::Existing { id, session } => {
                self.sessions.commit_received(&sender_key, id, session);
            }
            Staged::New { session, used } => {
                self.account.commit_key_use(used);
                let named = self.tracker.device_by_curve25519(&sender_key).is_some();
                self.sessions
                    .add(sender_key, session, named, None, &self.limits);
            }
        }
        Ok(processed)
    }

    /// Decrypts on a copy of the right session, or stages a new inbound
    /// session from a pre-key message; changes nothing but the wedged mark.
    fn stage_olm(
        &mut self,
        sender_key: &Curve25519PublicKey,
        message: &OlmMessage,
    ) -> Result<(Staged, Plaintext), ToDeviceError> {
        let peer = self.sessions.get(sender_key);
        let candidates = peer.map(|p| p.by_recency()).unwrap_or_default();
        if let OlmMessage::PreKey(pre_key) = message {
            if pre_key.identity_key() != *sender_key {
                return Err(ToDeviceError::SenderKeyMismatch);
            }
            let id = pre_key.session_id();
            if let Some(entry) = candidates.iter().find(|e| e.session.session_id() == id) {
                let mut session = entry.session.duplicate();
                let plaintext = session
                    .decrypt_with_rng(message, &mut *self.rng)
                    .map_err(ToDeviceError::Decryption)?;
                return Ok((Staged::Existing { id, session }, plaintext));
            }
            if peer.is_none() && !self.sessions.has_room_for_stranger(&self.limits) {
                return Err(ToDeviceError::TooManyPeers);
            }
            return match self.account.stage_olm_inbound_session(pre_key) {
                Ok((creation, used)) => Ok((
                    Staged::New {
                        session: creation.session,
                        used,
                    },
                    creation.plaintext,
                )),
                Err(error) => {
                    if matches!(error, AccountError::UnknownOneTimeKey) {
                        self.wedged(sender_key);
                    }
                    Err(ToDeviceError::Account(error))
                }
            };
        }
        let mut last_error = None;
        for entry in &candidates {
            let mut session = entry.session.duplicate();
            match session.decrypt_with_rng(message, &mut *self.rng) {
                Ok(plaintext) => {
                    let id = session.session_id();
                    return Ok((Staged::Existing { id, session }, plaintext));
                }
                Err(e) => {
                    last_error.get_or_insert(e);
                }
            }
        }
        match last_error {
            None => {
                self.wedged(sender_key);
                Err(ToDeviceError::NoSession)
            }
            // A message key already used: a duplicate delivery, not a
            // broken session.
            Some(e @ SessionError::MessageKeyGone { .. }) => Err(ToDeviceError::Decryption(e)),
            Some(e) => {
                self.wedged(sender_key);
                Err(ToDeviceError::Decryption(e))
            }
        }
    }

    /// Marks the session with a device the tracker knows as wedged.
    fn wedged(&mut self, sender_key: &Curve25519PublicKey) {
        let known = self.tracker.device_by_curve25519(sender_key).is_some();
        self.sessions.mark_wedged(sender_key, known);
    }

    /// The attribution of a key the Olm sender shared itself.
    fn direct_sender(
        &self,
        sender_key: &Curve25519PublicKey,
        checked: &CheckedOlmPayload,
    ) -> RoomKeySender {
        let (ed25519, device_id) = match &checked.sender_device {
            SenderDevice::Confirmed(device) => {
                (device.keys().ed25519, Some(device.device_id().clone()))
            }
            SenderDevice::Unconfirmed { claimed_ed25519 } => (*claimed_ed25519, None),
        };
        RoomKeySender {
            sender_key: *sender_key,
            sender_ed25519: Some(ed25519),
            user_id: Some(checked.sender.clone()),
            device_id,
            source: RoomKeySource::Direct,
            forwarded_by: None,
        }
    }

    fn store_room_key(
        &mut self,
        sender_key: &Curve25519PublicKey,
        checked: &CheckedOlmPayload,
    ) -> Result<ReceivedRoomKey, ToDeviceError> {
        let content: RoomKeyContent =
            parse(checked.content.get()).map_err(ToDeviceError::Content)?;
        if content.algorithm != MEGOLM_V1 {
            return Err(RoomKeyError::UnsupportedAlgorithm.into());
        }
        let key = MegolmSessionKey::from_base64(content.session_key.expose())
            .map_err(|_| RoomKeyError::Malformed)?;
        let session = MegolmInboundSession::new(&key).map_err(|_| RoomKeyError::BadSignature)?;
        check_session_id(&session, &content.session_id)?;
        let sender = self.direct_sender(sender_key, checked);
        self.store_key(&content.room_id, session, sender)
    }

    fn store_forwarded_key(
        &mut self,
        sender_key: &Curve25519PublicKey,
        checked: &CheckedOlmPayload,
    ) -> Result<ReceivedRoomKey, ToDeviceError> {
        if &checked.sender != self.user_id() {
            return Err(RoomKeyError::ForwardNotAllowed.into());
        }
        let content: ForwardedRoomKeyContent =
            parse(checked.content.get()).map_err(ToDeviceError::Content)?;
        if content.algorithm != MEGOLM_V1 {
            return Err(RoomKeyError::UnsupportedAlgorithm.into());
        }
        let key = MegolmExportedKey::from_base64(content.session_key.expose())
            .map_err(|_| RoomKeyError::Malformed)?;
        let session = MegolmInboundSession::import(&key);
        check_session_id(&session, &content.session_id)?;
        if content.sender_key == self.identity_keys().curve25519
            && !self
                .inbound
                .contains(&content.room_id, &session.session_id())
        {
            return Err(RoomKeyError::ClaimsToBeOurs.into());
        }
        let sender = RoomKeySender {
            sender_key: content.sender_key,
            sender_ed25519: Some(content.sender_claimed_ed25519_key),
            user_id: None,
            device_id: None,
            source: RoomKeySource::Forwarded,
            forwarded_by: Some(*sender_key),
        };
        self.store_key(&content.room_id, session, sender)
    }

    fn store_key(
        &mut self,
        room: &RoomId,
        session: MegolmInboundSession,
        sender: RoomKeySender,
    ) -> Result<ReceivedRoomKey, ToDeviceError> {
        let session_id = session.session_id();
        let first_index = session.first_known_index();
        let own = self.identity_keys().curve25519;
        let tracker = &self.tracker;
        let (added, evicted) = self
            .inbound
            .add(room, session, sender.clone(), &own, |key| {
                tracker.device_by_curve25519(key).is_some()
            })?;
        Ok(ReceivedRoomKey {
            room_id: room.clone(),
            session_id,
            sender,
            first_index,
            added,
            evicted,
        })
    }
}

/// Refuses a content whose `session_id` is not the id of the key it
/// carries.
fn check_session_id(session: &MegolmInboundSession, claimed: &str) -> Result<(), RoomKeyError> {
    match GroupSessionId::from_base64(claimed) {
        Ok(id) if id == session.session_id() => Ok(()),
        _ => Err(RoomKeyError::SessionIdMismatch),
    }
}
