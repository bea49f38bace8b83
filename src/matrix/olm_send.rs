//! Encrypting one to-device event for one device with Olm: the plaintext
//! the specification defines (`type`, `content`, `sender`, `recipient`,
//! `recipient_keys`, `keys`), and the `m.room.encrypted` content around the
//! Olm message (`algorithm`, `sender_key`, `ciphertext` keyed by the
//! recipient's Curve25519 key).
//!
//! The same event often goes to many devices (a room key to every device of
//! a room): [`OlmSender::template`] writes everything but the recipient
//! once, and [`OlmSender::encrypt_with`] adds each recipient in a buffer
//! reused from one device to the next. The bytes are those serde writes for
//! the whole payload (a test compares them).
//!
//! Guarantees: the plaintext names the recipient's user and Ed25519 key and
//! our own Ed25519 key, so the receiver's checks (PROTOCOL.md 18, "Olm
//! payloads") bind it to both ends and no unknown key-share is possible;
//! every buffer that held plaintext is wiped (none is reallocated while it
//! holds some).

use serde::Serialize;
use zeroize::Zeroizing;

use super::device_keys::OLM_V1;
use super::ids::UserId;
use super::to_device::ToDeviceMessage;
use crate::keys::{IdentityKeys, base64_encode_append};
use crate::olm::{OlmMessage, OlmSession};
use crate::session::SessionError;

/// Room for the recipient's part of a payload beyond its user id's escaped
/// length: `,"recipient_keys":{"ed25519":"` (30), the key (43), `"}` (2).
const RECIPIENT_PART_LEN: usize = 80;

/// Why an event could not be encrypted for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OlmSendError {
    /// The Olm session refused (the plaintext is too long).
    Session(SessionError),
    /// The content could not be written as JSON.
    Json,
}

impl From<SessionError> for OlmSendError {
    fn from(error: SessionError) -> Self {
        Self::Session(error)
    }
}

/// Who sends: our user and identity keys.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OlmSender<'a> {
    pub(crate) user_id: &'a UserId,
    pub(crate) keys: IdentityKeys,
}

/// One event's plaintext for any number of recipients, written up to the
/// recipient, and the buffers reused between recipients.
pub(crate) struct PayloadTemplate {
    /// `{"type":…,"content":…,"sender":…,"recipient":` (holds the content,
    /// which may be secret).
    prefix: Zeroizing<Vec<u8>>,
    /// `,"keys":{"ed25519":"<our key>"}}`.
    suffix: Vec<u8>,
    /// Our Curve25519 key, base64.
    sender_key: String,
    /// The plaintext for the current recipient.
    plaintext: Zeroizing<Vec<u8>>,
}

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `value` as JSON at the end of `out`. The values written here
/// (strings, ids and serde structs with string keys) cannot fail.
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(out, value);
}

impl OlmSender<'_> {
    /// The plaintext of the event `event_type` with `content`, up to the
    /// recipient.
    pub(crate) fn template<C: Serialize + ?Sized>(
        &self,
        event_type: &str,
        content: &C,
    ) -> PayloadTemplate {
        // Measured first, then written without growing: no copy of the
        // content is left unwiped by a reallocation. The rest is at most
        // the type and the sender escaped (twice their length) and 44 bytes.
        let mut counter = Counter(0);
        let _ = serde_json::to_writer(&mut counter, content);
        let capacity = counter.0 + 2 * (event_type.len() + self.user_id.as_str().len()) + 64;
        let mut prefix = Zeroizing::new(Vec::with_capacity(capacity));
        prefix.extend_from_slice(b"{\"type\":");
        write_json(&mut prefix, event_type);
        prefix.extend_from_slice(b",\"content\":");
        write_json(&mut prefix, content);
        prefix.extend_from_slice(b",\"sender\":");
        write_json(&mut prefix, self.user_id);
        prefix.extend_from_slice(b",\"recipient\":");
        let mut suffix = Vec::with_capacity(64);
        suffix.extend_from_slice(b",\"keys\":{\"ed25519\":\"");
        base64_encode_append(self.keys.ed25519.as_bytes(), &mut suffix);
        suffix.extend_from_slice(b"\"}}");
        PayloadTemplate {
            plaintext: Zeroizing::new(Vec::with_capacity(
                prefix.len() + 2 * 255 + RECIPIENT_PART_LEN + suffix.len(),
            )),
            prefix,
            suffix,
            sender_key: self.keys.curve25519.to_base64(),
        }
    }

    /// Encrypts the event `event_type` with `content` for `recipient` on
    /// `session` (whose peer is the recipient's Curve25519 key), and
    /// returns the `m.room.encrypted` content to send to that device.
    pub(crate) fn encrypt<C: Serialize + ?Sized, R: rand::CryptoRng + ?Sized>(
        &self,
        session: &mut OlmSession,
        recipient: (&UserId, &IdentityKeys),
        event_type: &str,
        content: &C,
        rng: &mut R,
    ) -> Result<ToDeviceMessage, OlmSendError> {
        let mut template = self.template(event_type, content);
        self.encrypt_with(&mut template, session, recipient, rng)
    }

    /// [`OlmSender::encrypt`] of the event a template holds.
    pub(crate) fn encrypt_with<R: rand::CryptoRng + ?Sized>(
        &self,
        template: &mut PayloadTemplate,
        session: &mut OlmSession,
        (user, keys): (&UserId, &IdentityKeys),
        rng: &mut R,
    ) -> Result<ToDeviceMessage, OlmSendError> {
        let plaintext = template.write_plaintext(user, keys);
        let message = session.encrypt_with_rng(plaintext, rng)?;
        plaintext.clear();
        let message_type = match message {
            OlmMessage::PreKey(_) => 0,
            OlmMessage::Normal(_) => 1,
        };
        olm_content(
            &template.sender_key,
            &keys.curve25519,
            &message.to_bytes(),
            message_type,
        )
        .ok_or(OlmSendError::Json)
    }
}

impl PayloadTemplate {
    /// The whole plaintext for one recipient, in the reused buffer.
    fn write_plaintext(&mut self, user: &UserId, keys: &IdentityKeys) -> &mut Vec<u8> {
        // A user id escapes to at most twice its length, plus its quotes.
        let needed = self.prefix.len()
            + 2 * user.as_str().len()
            + 2
            + RECIPIENT_PART_LEN
            + self.suffix.len();
        if self.plaintext.capacity() < needed {
            // The old buffer is wiped as it is dropped; the new one is
            // never grown while it holds plaintext.
            self.plaintext = Zeroizing::new(Vec::with_capacity(needed));
        }
        let plaintext = &mut *self.plaintext;
        plaintext.clear();
        plaintext.extend_from_slice(&self.prefix);
        write_json(plaintext, user);
        plaintext.extend_from_slice(b",\"recipient_keys\":{\"ed25519\":\"");
        base64_encode_append(keys.ed25519.as_bytes(), plaintext);
        plaintext.extend_from_slice(b"\"}");
        plaintext.extend_from_slice(&self.suffix);
        plaintext
    }
}

/// The `m.room.encrypted` content carrying one Olm message (`message`,
/// its bytes) for the device with Curve25519 key `recipient`, from our key
/// `sender_key` (base64), members in sorted order:
/// `{"algorithm":…,"ciphertext":{"<recipient>":{"body":…,"type":…}},"sender_key":…}`.
/// Written straight into one buffer (base64 and the algorithm name need no
/// escaping), then checked as JSON once.
fn olm_content(
    sender_key: &str,
    recipient: &crate::keys::Curve25519PublicKey,
    message: &[u8],
    message_type: u8,
) -> Option<ToDeviceMessage> {
    let mut out = Vec::with_capacity(message.len().div_ceil(3) * 4 + sender_key.len() + 160);
    out.extend_from_slice(b"{\"algorithm\":\"");
    out.extend_from_slice(OLM_V1.as_bytes());
    out.extend_from_slice(b"\",\"ciphertext\":{\"");
    base64_encode_append(recipient.as_bytes(), &mut out);
    out.extend_from_slice(b"\":{\"body\":\"");
    base64_encode_append(message, &mut out);
    out.extend_from_slice(b"\",\"type\":");
    out.push(if message_type == 0 { b'0' } else { b'1' });
    out.extend_from_slice(b"}},\"sender_key\":\"");
    out.extend_from_slice(sender_key.as_bytes());
    out.extend_from_slice(b"\"}");
    ToDeviceMessage::from_json(String::from_utf8(out).ok()?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Account;
    use crate::matrix::events::{
        EncryptedContent, OlmCiphertext, OlmEncryptedContent, OlmMessageType,
    };
    use crate::matrix::olm_payload::SigningKeys;

    /// The plaintext as serde writes it whole (the form before templates).
    #[derive(Serialize)]
    struct WholePayload<'a> {
        #[serde(rename = "type")]
        event_type: &'a str,
        content: &'a serde_json::Value,
        sender: &'a UserId,
        recipient: &'a UserId,
        recipient_keys: SigningKeys,
        keys: SigningKeys,
    }

    #[test]
    fn template_writes_the_bytes_serde_writes() {
        let ours = Account::new().identity_keys();
        let theirs = Account::new().identity_keys();
        let sender_id = UserId::parse("@al\"ice:a.org").unwrap();
        let content = serde_json::json!({"room_id": "!r:a.org", "k": "caf\u{e9}\n\"", "n": 1});
        let sender = OlmSender {
            user_id: &sender_id,
            keys: ours,
        };
        let mut template = sender.template("m.room_key", &content);
        for name in ["@bob:b.org", "@b\\ob\u{e9}:b.org"] {
            let recipient = UserId::parse(name).unwrap();
            let whole = serde_json::to_vec(&WholePayload {
                event_type: "m.room_key",
                content: &content,
                sender: &sender_id,
                recipient: &recipient,
                recipient_keys: SigningKeys {
                    ed25519: theirs.ed25519,
                },
                keys: SigningKeys {
                    ed25519: ours.ed25519,
                },
            })
            .unwrap();
            assert_eq!(*template.write_plaintext(&recipient, &theirs), whole);
        }
    }

    #[test]
    fn content_is_what_the_value_tree_wrote() {
        let ours = Account::new().identity_keys();
        let theirs = Account::new().identity_keys();
        for (message_type, kind) in [(0, OlmMessageType::PreKey), (1, OlmMessageType::Normal)] {
            let old = EncryptedContent::Olm(OlmEncryptedContent {
                sender_key: ours.curve25519,
                ciphertext: BTreeMap::from([(
                    theirs.curve25519.to_base64(),
                    OlmCiphertext {
                        message_type: kind,
                        body: "AwogAbc+/w".to_owned(),
                    },
                )]),
            })
            .to_json_value()
            .to_string();
            let message = crate::keys::base64_decode("AwogAbc+/w").unwrap();
            let new = olm_content(
                &ours.curve25519.to_base64(),
                &theirs.curve25519,
                &message,
                message_type,
            )
            .unwrap();
            assert_eq!(new.json(), old);
        }
    }
}
