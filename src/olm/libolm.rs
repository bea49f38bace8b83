//! Importing libolm's account (version 4) and session (version 1) pickles
//! into an [`OlmAccount`] and an [`OlmSession`] (PROTOCOL.md, "libolm
//! pickles").

use std::collections::VecDeque;

use x25519_dalek::StaticSecret;

use super::account::OlmAccount;
use super::session::{OlmSession, OlmSessionKeys, OlmV1};
use crate::account::KeyId;
use crate::account::{FallbackKey, PrivateKey};
use crate::codec::{DecodeError, Reader};
use crate::consts::{
    OLM_MAX_ONE_TIME_KEYS, OLM_MAX_RECEIVING_CHAINS, OLM_MAX_SKIPPED_MESSAGE_KEYS,
};
use crate::crypto::{Ed25519Secret, Secret};
use crate::keys::Curve25519PublicKey;
use crate::libolm::{LibolmPickleError, count, open, parse};
use crate::session::ratchet::{DoubleRatchet, ReceivingChain, SendingChain, Spec};
use crate::session::{ChainKey, RatchetKeyPair, RootKey, SkippedKey, SkippedKeys};

fn curve_key(r: &mut Reader<'_>, field: &'static str) -> Result<Curve25519PublicKey, DecodeError> {
    Ok(Curve25519PublicKey::from_bytes(r.array(field)?))
}

fn secret(r: &mut Reader<'_>, field: &'static str) -> Result<Secret<32>, DecodeError> {
    Ok(Secret::from_mut(&mut r.array::<32>(field)?))
}

/// A stored key pair: public key, then private key; the public key must be
/// the private key's.
fn key_pair(r: &mut Reader<'_>, field: &'static str) -> Result<StaticSecret, LibolmPickleError> {
    let public = curve_key(r, field)?;
    let private = StaticSecret::from(*secret(r, field)?.expose());
    if Curve25519PublicKey::from(&private) != public {
        return Err(LibolmPickleError::InvalidKey(field));
    }
    Ok(private)
}

/// A one-time or fallback key record: id, published flag, key pair.
fn one_time_key(r: &mut Reader<'_>) -> Result<PrivateKey, LibolmPickleError> {
    let id = KeyId(u64::from(r.u32("key id")?));
    let published = r.bool("published flag")?;
    let secret = key_pair(r, "one-time key")?;
    Ok(PrivateKey::new(id, secret, published))
}

/// The libolm Ed25519 key pair: public key, then the 64-byte expanded key.
pub(crate) fn ed25519_pair(r: &mut Reader<'_>) -> Result<Ed25519Secret, LibolmPickleError> {
    let public = r.array::<32>("ed25519 public key")?;
    let expanded = Secret::new(r.array::<64>("ed25519 private key")?);
    let signing = Ed25519Secret::from_expanded(expanded.expose());
    if signing.public().as_bytes() != &public {
        return Err(LibolmPickleError::InvalidKey("ed25519 key"));
    }
    crate::keys::Ed25519PublicKey::from_bytes(&public)
        .map_err(|_| LibolmPickleError::InvalidKey("ed25519 key"))?;
    Ok(signing)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl OlmAccount {
    /// Imports an account pickled by libolm (pickle version 4, as libolm
    /// 3.2 and vodozemac's `to_libolm_pickle` write), encrypted under
    /// `pickle_key`. The identity keys, one-time keys (at most
    /// [`OLM_MAX_ONE_TIME_KEYS`]) and fallback keys carry over.
    pub fn from_libolm_pickle(pickle: &str, pickle_key: &[u8]) -> Result<Self, LibolmPickleError> {
        let contents = open(pickle, pickle_key, 4)?;
        parse(&contents, |r| {
            let signing = ed25519_pair(r)?;
            let curve = key_pair(r, "curve25519 identity key")?;
            let mut account = OlmAccount::from_parts(signing, curve);
            let keys = count(r, OLM_MAX_ONE_TIME_KEYS, "one-time keys")?;
            for _ in 0..keys {
                let key = one_time_key(r)?;
                account.keys.one_time.keys.push_back(key);
            }
            let fallbacks = r.u8("fallback key count")?;
            if fallbacks > 2 {
                return Err(DecodeError::InvalidValue("fallback key count").into());
            }
            if fallbacks >= 1 {
                account.keys.fallback.current = Some(FallbackKey::new(one_time_key(r)?));
            }
            if fallbacks == 2 {
                // libolm keeps no time: the grace period starts at the import.
                let mut previous = FallbackKey::new(one_time_key(r)?);
                previous.retired_ms = Some(now_ms());
                account.keys.fallback.previous = Some(previous);
            }
            // libolm stores the last id it gave out.
            account.keys.next_key_id = u64::from(r.u32("next key id")?) + 1;
            Ok(account)
        })
    }
}

impl OlmSession {
    /// Imports a session pickled by libolm (pickle version 1), encrypted
    /// under `pickle_key`, as a session of the account whose identity key
    /// is `owner` (libolm does not record it). The ratchet, the receiving
    /// chains (at most five) and the skipped message keys carry over, so
    /// messages in flight still decrypt.
    pub fn from_libolm_pickle(
        pickle: &str,
        pickle_key: &[u8],
        owner: &Curve25519PublicKey,
    ) -> Result<Self, LibolmPickleError> {
        let contents = open(pickle, pickle_key, 1)?;
        parse(&contents, |r| {
            // Whether a message was received follows from the chains.
            r.bool("received message flag")?;
            let keys = OlmSessionKeys {
                identity_key: curve_key(r, "identity key")?,
                base_key: curve_key(r, "base key")?,
                one_time_key: curve_key(r, "one-time key")?,
            };
            let root = RootKey(secret(r, "root key")?);
            let sending = match count(r, 1, "sender chains")? {
                0 => None,
                _ => {
                    let pair = key_pair(r, "sender ratchet key")?;
                    Some(SendingChain {
                        key: RatchetKeyPair::from_secret(pair),
                        chain: ChainKey {
                            key: secret(r, "sender chain key")?,
                            index: r.u32("sender chain index")?,
                        },
                    })
                }
            };
            // libolm lists receiver chains newest first; roomseal oldest first.
            let chains = count(r, OLM_MAX_RECEIVING_CHAINS, "receiver chains")?;
            let mut receiving = VecDeque::with_capacity(chains);
            for _ in 0..chains {
                receiving.push_front(ReceivingChain {
                    ratchet_key: curve_key(r, "receiver ratchet key")?,
                    chain: ChainKey {
                        key: secret(r, "receiver chain key")?,
                        index: r.u32("receiver chain index")?,
                    },
                });
            }
            if sending.is_none() && receiving.is_empty() {
                return Err(LibolmPickleError::NoChain);
            }
            let stored = count(r, OLM_MAX_SKIPPED_MESSAGE_KEYS, "message keys")?;
            let mut skipped = Vec::with_capacity(stored);
            for _ in 0..stored {
                let ratchet_key = curve_key(r, "message key ratchet key")?;
                let seed = secret(r, "message key")?;
                let counter = r.u32("message key index")?;
                skipped.push(SkippedKey {
                    ratchet_key,
                    counter,
                    seed,
                });
            }
            let skipped = SkippedKeys::from_stored(
                skipped,
                OlmV1::MAX_SKIPPED_KEYS,
                OlmV1::MAX_SKIPPED_CHAINS,
            )
            .ok_or(DecodeError::InvalidValue("message keys"))?;
            let ratchet = DoubleRatchet::from_parts(root, sending, 0, receiving, skipped);
            Ok(OlmSession::from_imported(keys, *owner, ratchet))
        })
    }
}
