//! Encrypting one to-device event for one device with Olm: the plaintext
//! the specification defines (`type`, `content`, `sender`, `recipient`,
//! `recipient_keys`, `keys`), written by serde, and the `m.room.encrypted`
//! content around the Olm message (`algorithm`, `sender_key`, `ciphertext`
//! keyed by the recipient's Curve25519 key).
//!
//! Guarantees: the plaintext names the recipient's user and Ed25519 key and
//! our own Ed25519 key, so the receiver's checks (PROTOCOL.md 18, "Olm
//! payloads") bind it to both ends and no unknown key-share is possible; it
//! is wiped once encrypted.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::device_keys::Device;
use super::events::{EncryptedContent, OlmCiphertext, OlmEncryptedContent, OlmMessageType};
use super::ids::UserId;
use super::olm_payload::SigningKeys;
use crate::keys::IdentityKeys;
use crate::olm::{OlmMessage, OlmSession};
use crate::session::SessionError;

/// The plaintext of an outgoing Olm message.
#[derive(Serialize)]
struct OutgoingPayload<'a, C: Serialize + ?Sized> {
    #[serde(rename = "type")]
    event_type: &'a str,
    content: &'a C,
    sender: &'a UserId,
    recipient: &'a UserId,
    recipient_keys: SigningKeys,
    keys: SigningKeys,
}

/// Who sends: our user and identity keys.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OlmSender<'a> {
    pub(crate) user_id: &'a UserId,
    pub(crate) keys: IdentityKeys,
}

impl OlmSender<'_> {
    /// Encrypts the event `event_type` with `content` for `recipient` on
    /// `session` (whose peer is the recipient's Curve25519 key), and
    /// returns the `m.room.encrypted` content to send to that device.
    pub(crate) fn encrypt<C: Serialize + ?Sized, R: rand::CryptoRng + ?Sized>(
        &self,
        session: &mut OlmSession,
        recipient: &Device,
        event_type: &str,
        content: &C,
        rng: &mut R,
    ) -> Result<Value, SessionError> {
        let payload = OutgoingPayload {
            event_type,
            content,
            sender: self.user_id,
            recipient: recipient.user_id(),
            recipient_keys: SigningKeys {
                ed25519: recipient.keys().ed25519,
            },
            keys: SigningKeys {
                ed25519: self.keys.ed25519,
            },
        };
        // Serializing these types cannot fail (string keys, no maps with
        // other keys); an empty plaintext would be refused by the peer.
        let plaintext = Zeroizing::new(serde_json::to_vec(&payload).unwrap_or_default());
        let message = session.encrypt_with_rng(&plaintext, rng)?;
        let message_type = match message {
            OlmMessage::PreKey(_) => OlmMessageType::PreKey,
            OlmMessage::Normal(_) => OlmMessageType::Normal,
        };
        let content = OlmEncryptedContent {
            sender_key: self.keys.curve25519,
            ciphertext: BTreeMap::from([(
                recipient.keys().curve25519.to_base64(),
                OlmCiphertext {
                    message_type,
                    body: message.body(),
                },
            )]),
        };
        Ok(EncryptedContent::Olm(content).to_json_value())
    }
}
