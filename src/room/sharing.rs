//! Handing a room's key to its devices: [`Endpoint::share_room_key`],
//! [`Endpoint::reshare_room_key`] and [`Endpoint::mark_room_key_sent`].
//!
//! Guarantees: the targets of one call are distinct devices with consistent
//! identities (a duplicate, or two devices sharing an X25519 key, or a
//! device held under other keys or ids, is refused and nothing changes); a
//! share is encrypted only on a session whose peer is exactly the target
//! device (both keys); a device counts as a recipient from the moment a
//! message for it is produced, and as served only once the app confirms it
//! was sent; the room's key rotates first whenever a device that may hold
//! it is not among the targets, or the policy says so.

use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use super::RoomError;
use super::endpoint::{Endpoint, RoomKeyShareOutcome, ToDeviceMessage};
use super::outbound::Recipient;
use super::policy::RotationReason;
use super::recipients::rotation_due;
use super::share::RoomKeyShare;
use super::touched::Touch;
use crate::account::SelfSignedDevice;
use crate::crypto::{SALT_LEN, salt};
use crate::group::{GroupSessionId, SessionKey, check_room_id};
use crate::keys::{Curve25519PublicKey, Ed25519PublicKey, IdentityKeys};
use crate::session::{DeviceMessage, Session, SessionError};

/// One share message to encrypt: the device, the session to encrypt on, and
/// the payload.
type Job<'a> = (&'a SelfSignedDevice, &'a mut Session, Zeroizing<Vec<u8>>);

impl Endpoint {
    /// Makes sure `devices` (the room's devices; ours is skipped) hold the
    /// room's current key: rotates first if a device that may hold it is not
    /// listed (it left, or was forgotten) or the policy says so, then
    /// encrypts the key for every listed device that was not yet confirmed
    /// as served and has a pairwise session.
    ///
    /// Persist the endpoint before sending the messages, and confirm them
    /// with [`Endpoint::mark_room_key_sent`] once sent.
    ///
    /// Errors (nothing changed): [`RoomError::DuplicateRecipient`] when a
    /// device is listed twice or two listed devices share an X25519 key;
    /// [`RoomError::IdentityConflict`] when a listed device's X25519 key is
    /// held under another Ed25519 key or other ids.
    pub fn share_room_key(
        &mut self,
        room_id: &str,
        devices: &[SelfSignedDevice],
    ) -> Result<RoomKeyShareOutcome, RoomError> {
        check_room_id(room_id)?;
        let us = self.identity_keys();
        let targets = self.check_targets(devices, &us)?;
        let listed: BTreeMap<Curve25519PublicKey, Ed25519PublicKey> = targets
            .iter()
            .map(|d| (d.identity_keys().curve25519, d.identity_keys().ed25519))
            .collect();
        let now = self.clock.now_ms();
        let reason = match self.outbound.get(room_id) {
            None => Some(
                self.discarded
                    .get(room_id)
                    .copied()
                    .unwrap_or(RotationReason::NotShared),
            ),
            Some(room) => rotation_due(
                &self.policy,
                room.session.message_index(),
                room.created_ms,
                now,
                &room.recipients,
                &listed,
            ),
        };
        if let Some(reason) = reason {
            self.start_room_session(room_id, now)?;
            if self.discarded.remove(room_id).is_some() {
                self.touched.mark(|| Touch::Discarded(room_id.to_owned()));
            }
            let rotated = reason != RotationReason::NotShared;
            let mut outcome = self.serve(room_id, &targets, false)?;
            outcome.rotated = rotated;
            outcome.rotation_reason = rotated.then_some(reason);
            return Ok(outcome);
        }
        self.serve(room_id, &targets, false)
    }

    /// Produces the share message for one device that was already offered
    /// the room's current key (for example because it reports the key
    /// missing), from the index it was first offered, whether or not it was
    /// confirmed as sent. `Ok(None)` when the device was never offered the
    /// current key (share with [`Endpoint::share_room_key`]) or has no
    /// session to encrypt on.
    pub fn reshare_room_key(
        &mut self,
        room_id: &str,
        device: &SelfSignedDevice,
    ) -> Result<Option<ToDeviceMessage>, RoomError> {
        check_room_id(room_id)?;
        let offered = self
            .outbound
            .get(room_id)
            .is_some_and(|room| room.recipients.holds(&device.identity_keys()));
        if !offered {
            return Ok(None);
        }
        let outcome = self.serve(room_id, std::slice::from_ref(device), true)?;
        Ok(outcome.messages.into_iter().next())
    }

    /// Confirms that every message of `outcome` was sent: those devices now
    /// count as served and are not sent the key again. Returns how many were
    /// marked (messages of a session that has since been replaced are
    /// ignored).
    pub fn mark_room_key_sent(&mut self, outcome: &RoomKeyShareOutcome) -> usize {
        outcome
            .messages
            .iter()
            .filter(|m| {
                self.mark_room_key_sent_to(&outcome.room_id, &outcome.session_id, &m.recipient_key)
            })
            .count()
    }

    /// Confirms that the share of `session_id` in `room_id` to the device
    /// with X25519 key `recipient` was sent. Returns whether it was marked.
    pub fn mark_room_key_sent_to(
        &mut self,
        room_id: &str,
        session_id: &GroupSessionId,
        recipient: &Curve25519PublicKey,
    ) -> bool {
        let marked = self
            .outbound
            .get_mut(room_id)
            .filter(|room| room.session.session_id() == *session_id)
            .is_some_and(|room| room.recipients.mark_sent(recipient));
        if marked {
            self.touched.mark(|| Touch::Recipients(room_id.to_owned()));
        }
        marked
    }

    /// The distinct devices to serve, ours left out; refuses duplicates and
    /// identity conflicts.
    fn check_targets(
        &self,
        devices: &[SelfSignedDevice],
        us: &IdentityKeys,
    ) -> Result<Vec<SelfSignedDevice>, RoomError> {
        let mut seen_keys = BTreeSet::new();
        let mut seen_ids = BTreeSet::new();
        let mut targets = Vec::with_capacity(devices.len());
        for device in devices {
            let keys = device.identity_keys();
            if keys.curve25519 == us.curve25519 || keys.ed25519 == us.ed25519 {
                continue;
            }
            let ids = (device.user_id(), device.device_id());
            if !seen_keys.insert(keys.curve25519)
                || !seen_keys.insert(Curve25519PublicKey::from_bytes(keys.ed25519.to_bytes()))
                || !seen_ids.insert(ids)
            {
                return Err(RoomError::DuplicateRecipient);
            }
            self.peers.check_device(device)?;
            // A recipient of a current key is held under its identity too
            // (named devices are never evicted, and forgetting one drops
            // the keys it was offered); checked again all the same.
            let conflicting = self
                .outbound
                .values()
                .any(|room| room.recipients.conflicts(&keys));
            if conflicting {
                return Err(RoomError::IdentityConflict);
            }
            targets.push(device.clone());
        }
        Ok(targets)
    }

    /// Encrypts the room's current key for each target that needs it (all
    /// of them when `again`; otherwise those not yet confirmed), in order.
    fn serve(
        &mut self,
        room_id: &str,
        targets: &[SelfSignedDevice],
        again: bool,
    ) -> Result<RoomKeyShareOutcome, RoomError> {
        let us = self.identity_keys();
        let sender_user_id = self.user_id().to_owned();
        let sender_device_id = self.device_id().to_owned();
        for device in targets {
            self.peers.name(device);
        }
        let room = self
            .outbound
            .get_mut(room_id)
            .ok_or(RoomError::ShareRequired(RotationReason::NotShared))?;
        let current = room.session.message_index();
        // Which index each device gets: where it was first offered the key,
        // or now.
        let mut plan: Vec<(&SelfSignedDevice, u32)> = Vec::new();
        for device in targets {
            let key = device.identity_keys().curve25519;
            if let Some(index) = room.recipients.index_to_serve(&key, current, again) {
                plan.push((device, index));
            }
        }
        let mut payloads: BTreeMap<u32, (Zeroizing<Vec<u8>>, usize)> = BTreeMap::new();
        for &(_, index) in &plan {
            if let std::collections::btree_map::Entry::Vacant(slot) = payloads.entry(index) {
                let key = room.key_at(index);
                slot.insert(encode_share(
                    room_id,
                    &sender_user_id,
                    &sender_device_id,
                    us,
                    key,
                ));
            }
        }
        let mut missing = Vec::new();
        let mut jobs: Vec<Job<'_>> = Vec::new();
        let mut indices = Vec::new();
        let mut sessions: BTreeMap<Curve25519PublicKey, &mut Session> = self
            .peers
            .sending_sessions(plan.iter().map(|(d, _)| d.identity_keys()));
        for &(device, index) in &plan {
            let session = sessions.remove(&device.identity_keys().curve25519);
            match (session, payloads.get(&index)) {
                (Some(session), Some((template, at))) => {
                    let mut plaintext = Zeroizing::new(template.to_vec());
                    if let Some(slot) = plaintext.get_mut(*at..*at + 64) {
                        slot.copy_from_slice(&device.identity_keys().to_bytes());
                    }
                    jobs.push((device, session, plaintext));
                    indices.push(index);
                }
                _ => missing.push(device.clone()),
            }
        }
        let results = encrypt_all(&mut jobs, self.share_threads, &mut *self.rng);
        let mut messages = Vec::with_capacity(jobs.len());
        for (((device, _, _), index), result) in jobs.iter().zip(&indices).zip(results) {
            match result {
                Ok(message) => {
                    let identity = device.identity_keys();
                    let recipient = Recipient {
                        identity,
                        user_id: device.user_id().to_owned(),
                        device_id: device.device_id().to_owned(),
                    };
                    room.recipients.offered(recipient, *index);
                    messages.push(ToDeviceMessage {
                        user_id: device.user_id().to_owned(),
                        device_id: device.device_id().to_owned(),
                        recipient_key: identity.curve25519,
                        sender_key: us.curve25519,
                        message,
                    });
                }
                Err(_) => missing.push((*device).clone()),
            }
        }
        room.recipients.prune_keys();
        self.touched.mark(|| Touch::Recipients(room_id.to_owned()));
        Ok(RoomKeyShareOutcome {
            room_id: room_id.to_owned(),
            session_id: room.session.session_id(),
            rotated: false,
            rotation_reason: None,
            messages,
            missing_sessions: missing,
        })
    }
}

/// The share payload for every recipient of one key, and the offset of the
/// recipient's 64 key bytes in it.
fn encode_share(
    room_id: &str,
    sender_user_id: &str,
    sender_device_id: &str,
    us: IdentityKeys,
    session_key: SessionKey,
) -> (Zeroizing<Vec<u8>>, usize) {
    RoomKeyShare {
        room_id: room_id.to_owned(),
        sender_user_id: sender_user_id.to_owned(),
        sender_device_id: sender_device_id.to_owned(),
        session_key,
        sender: us,
        recipient: us,
    }
    .encode_with_recipient_slot()
}

/// Encrypts each job's plaintext with its session, on up to `threads`
/// threads when there are many jobs. Each message's salt is drawn up front
/// from `rng` on the calling thread (worker threads never share the
/// generator).
fn encrypt_all(
    jobs: &mut [Job<'_>],
    threads: usize,
    rng: &mut (dyn rand::CryptoRng + Send),
) -> Vec<Result<DeviceMessage, SessionError>> {
    let salts: Vec<[u8; SALT_LEN]> = (0..jobs.len()).map(|_| salt(rng)).collect();
    let run = |chunk: &mut [Job<'_>], salts: &[[u8; SALT_LEN]]| -> Vec<_> {
        chunk
            .iter_mut()
            .zip(salts)
            .map(|((_, session, plaintext), salt)| session.encrypt_with_salt(plaintext, *salt))
            .collect()
    };
    if !cfg!(feature = "parallel")
        || threads < 2
        || jobs.len() < crate::consts::PARALLEL_SHARE_THRESHOLD
    {
        return run(jobs, &salts);
    }
    let chunk_len = jobs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = jobs.chunks_mut(chunk_len).zip(salts.chunks(chunk_len));
        let first = chunks.next();
        let handles: Vec<_> = chunks
            .map(|(chunk, salts)| scope.spawn(move || run(chunk, salts)))
            .collect();
        let mut results = first.map(|(c, s)| run(c, s)).unwrap_or_default();
        for handle in handles {
            match handle.join() {
                Ok(part) => results.extend(part),
                // Encrypting cannot panic; if it ever did, surface it.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        results
    })
}
