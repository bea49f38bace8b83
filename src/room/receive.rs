//! Taking in pairwise messages: [`Endpoint::receive_device_message`].
//!
//! Guarantees: transactional (the pairwise decryption is staged on a copy,
//! and the session, the one-time or fallback key, the peer store and the key
//! store change only once every check has passed); a pre-key message is
//! refused before any work when it would add a stranger and every peer slot
//! holds a device the app named; a device is bound to its identity (both
//! keys) and to its user and device ids.

use super::RoomError;
use super::endpoint::{Endpoint, ReceivedRoomKey};
use super::peers::PeerStore;
use super::share::RoomKeyShare;
use crate::account::{Account, KeyUse};
use crate::group::InboundGroupSession;
use crate::keys::Curve25519PublicKey;
use crate::plaintext::Plaintext;
use crate::session::{DeviceMessage, Session};

/// Where a staged pairwise decryption came from.
enum Staged {
    Existing { index: usize, session: Session },
    New { session: Session, used: KeyUse },
}

impl Staged {
    fn session(&self) -> &Session {
        match self {
            Staged::Existing { session, .. } | Staged::New { session, .. } => session,
        }
    }
}

impl Endpoint {
    /// Takes a pairwise message the server delivered from user
    /// `sender_user_id` (as the server asserts it) and the device whose
    /// X25519 identity key is `sender_key` (as the transport claims; it is
    /// checked). Creates the inbound session from a pre-key message if
    /// needed, and stores the room key the message carries.
    ///
    /// The share must name this device as its recipient, the pairwise
    /// session's peer as its sender and as the key's creator, the key's
    /// room, and `sender_user_id` as the sender's user; its device id must
    /// match the one the device is bound to, if any.
    ///
    /// Transactional: if anything fails (decryption, the share's checks,
    /// the key's signature, a conflicting stored key), nothing changes.
    /// What outside input adds is bounded: a pre-key message from a new
    /// device evicts the stranger unused for longest when strangers are at
    /// their bound and is refused with [`RoomError::TooManyPeers`] only when
    /// every peer is one the app named; a share of a new key evicts as
    /// [`crate::consts::MAX_ROOM_KEYS`] describes, or is refused with
    /// [`RoomError::TooManyRoomKeys`].
    pub fn receive_device_message(
        &mut self,
        sender_user_id: &str,
        sender_key: &Curve25519PublicKey,
        message: &DeviceMessage,
    ) -> Result<ReceivedRoomKey, RoomError> {
        super::endpoint::check_id(sender_user_id, "sender user id")?;
        if matches!(message, DeviceMessage::PreKey(_)) && self.peers.get(sender_key).is_none() {
            self.peers.check_room_for_stranger(&self.limits)?;
        }
        let (staged, plaintext) = stage_receive(
            &self.account,
            &self.peers,
            &mut *self.rng,
            sender_key,
            message,
        )?;
        let session = staged.session();
        let share = RoomKeyShare::from_bytes(&plaintext)?;
        share.check(session, &self.identity_keys())?;
        if share.sender_user_id != sender_user_id {
            return Err(RoomError::ShareSenderMismatch);
        }
        if let Some(peer) = self.peers.get(sender_key) {
            peer.check_ids(&share.sender_user_id, &share.sender_device_id)?;
        }
        let inbound = InboundGroupSession::new(&share.session_key)?;
        let first_index = inbound.first_known_index();
        let session_id = inbound.session_id();
        let own = self.identity_keys();
        let peers = &self.peers;
        let outbound = &self.outbound;
        let (added, evicted) = self.inbound.add_from_peer(
            &share.room_id,
            inbound,
            &share.sender_user_id,
            &share.sender_device_id,
            &own,
            |sender| {
                peers
                    .get(&sender.curve25519)
                    .is_some_and(|p| p.identity() == *sender && p.is_known())
                    || outbound.values().any(|room| room.recipients.holds(sender))
            },
        )?;
        // Everything checked: commit the pairwise state.
        match staged {
            Staged::Existing { index, session } => {
                self.peers.commit_session(sender_key, index, session);
            }
            Staged::New { session, used } => {
                self.touched.mark(|| super::touched::Touch::Account);
                self.account.commit_key_use(used);
                self.peers.add_session(session, None, &self.limits);
            }
        }
        self.peers
            .bind_ids(sender_key, &share.sender_user_id, &share.sender_device_id);
        Ok(ReceivedRoomKey {
            room_id: share.room_id,
            session_id,
            sender: share.sender,
            sender_user_id: share.sender_user_id,
            sender_device_id: share.sender_device_id,
            first_index,
            added,
            evicted,
        })
    }
}

/// Decrypts with a copy of the right session (or a new inbound one),
/// changing nothing.
fn stage_receive(
    account: &Account,
    peers: &PeerStore,
    rng: &mut (dyn rand::CryptoRng + Send),
    sender_key: &Curve25519PublicKey,
    message: &DeviceMessage,
) -> Result<(Staged, Plaintext), RoomError> {
    let sessions = peers.get(sender_key).map_or(&[][..], |p| p.sessions());
    if let DeviceMessage::PreKey(pre_key) = message {
        let claimed = pre_key.identity_keys();
        if claimed.curve25519 != *sender_key {
            return Err(RoomError::SenderMismatch);
        }
        peers.check_identity(&claimed)?;
        let id = pre_key.session_id();
        if let Some((index, existing)) = sessions
            .iter()
            .enumerate()
            .find(|(_, s)| s.session_id() == id)
        {
            let mut session = existing.duplicate();
            let plaintext = session.decrypt_with_rng(message, rng)?;
            return Ok((Staged::Existing { index, session }, plaintext));
        }
        let (creation, used) = account.stage_inbound_session(pre_key, rng)?;
        return Ok((
            Staged::New {
                session: creation.session,
                used,
            },
            creation.plaintext,
        ));
    }
    // Report the newest session's error: that is the one the peer uses.
    let mut last_error = None;
    for (index, existing) in sessions.iter().enumerate().rev() {
        let mut session = existing.duplicate();
        match session.decrypt_with_rng(message, rng) {
            Ok(plaintext) => return Ok((Staged::Existing { index, session }, plaintext)),
            Err(e) => {
                last_error.get_or_insert(e);
            }
        }
    }
    Err(last_error.map_or(RoomError::NoSession, RoomError::Session))
}
