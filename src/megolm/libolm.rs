//! Importing libolm's outbound (version 1) and inbound (version 2) group
//! session pickles (PROTOCOL.md, "libolm pickles").

use zeroize::Zeroizing;

use super::session::{MegolmInboundSession, MegolmOutboundSession};
use crate::codec::{DecodeError, Reader};
use crate::group::lines::{Lines, leads_to};
use crate::group::ratchet::{MegolmV1, Ratchet};
use crate::keys::Ed25519PublicKey;
use crate::libolm::{LibolmPickleError, open, parse};
use crate::olm::ed25519_pair;
use crate::pickle::Generation;

/// A libolm Megolm ratchet: 128 bytes, then the big-endian u32 index.
fn ratchet(r: &mut Reader<'_>) -> Result<Ratchet<MegolmV1>, DecodeError> {
    let parts = Zeroizing::new(r.array::<128>("ratchet")?);
    let index = r.u32("ratchet index")?;
    Ok(Ratchet::from_parts(&parts, index))
}

impl MegolmOutboundSession {
    /// Imports an outbound group session pickled by libolm (version 1),
    /// encrypted under `pickle_key`; it keeps signing with libolm's
    /// expanded Ed25519 key.
    pub fn from_libolm_pickle(pickle: &str, pickle_key: &[u8]) -> Result<Self, LibolmPickleError> {
        let contents = open(pickle, pickle_key, 1)?;
        parse(&contents, |r| {
            let ratchet = ratchet(r)?;
            let signing = ed25519_pair(r)?;
            Ok(Self {
                signing,
                ratchet,
                generation: Generation::default(),
            })
        })
    }
}

impl MegolmInboundSession {
    /// Imports an inbound group session pickled by libolm (version 2),
    /// encrypted under `pickle_key`. Its initial ratchet is authenticated
    /// if libolm recorded its signing key as verified (the session came
    /// from a signed session key), and an unauthenticated prefix otherwise;
    /// the latest ratchet must follow from the initial one.
    pub fn from_libolm_pickle(pickle: &str, pickle_key: &[u8]) -> Result<Self, LibolmPickleError> {
        let contents = open(pickle, pickle_key, 2)?;
        parse(&contents, |r| {
            let initial = ratchet(r)?;
            let latest = ratchet(r)?;
            let signing_key = Ed25519PublicKey::from_bytes(&r.array("signing key")?)
                .map_err(|_| LibolmPickleError::InvalidKey("signing key"))?;
            let verified = r.bool("signing key verified")?;
            if !leads_to(&initial, &latest) {
                return Err(DecodeError::InvalidValue("latest ratchet").into());
            }
            let mut lines = if verified {
                Lines::signed(initial)
            } else {
                Lines::unsigned(initial)
            };
            lines.remember(latest, verified);
            Ok(Self {
                signing_key,
                lines,
                generation: Generation::default(),
            })
        })
    }
}
