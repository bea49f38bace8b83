//! The pickle-contents parsers, reached past the pickle AEAD.
//!
//! roomseal cannot be asked to encrypt arbitrary pickle contents, so the
//! harness seals them itself, exactly as PROTOCOL.md section 8.1 specifies:
//! AES-256-GCM under the type's subkey of the harness's own pickle key
//! ([`super::PICKLE_KEY`]; `HKDF-SHA-256(no salt, pickle key,
//! "roomseal/v2/pickle-key/" || type name)`), a random-but-fixed nonce,
//! associated data `"roomseal/v2/pickle/" || type name || version ||
//! BE64(generation) || owner` (the owner is the account's identity keys for
//! a session, empty otherwise), and the text form unpadded base64 of
//! `version || BE64(generation) || nonce || ciphertext || tag`. This is no
//! bypass: it only encrypts under a key the harness chose, which any app
//! holding its pickle key can do too.

use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use roomseal::{
    Account, Curve25519PublicKey, Ed25519PublicKey, Endpoint, IdentityKeys, InboundGroupSession,
    OutboundGroupSession, SessionOrdering,
};

use super::{
    PICKLE_KEY, PICKLE_SEED, VERSION, account_state, base64_decode, base64_encode,
    check_account_round_trip, check_session_round_trip, pickle_key, rng, session_owner,
    session_state,
};

/// The associated-data prefix (PROTOCOL.md section 3, label `PICKLE`).
const AD_PREFIX: &[u8] = b"roomseal/v2/pickle/";
/// The subkey derivation's info prefix (PROTOCOL.md section 3, label
/// `PICKLE_KEY`).
const SUBKEY_PREFIX: &[u8] = b"roomseal/v2/pickle-key/";
/// The generation of every pickle the harness seals.
const GENERATION: u64 = 7;
/// Where a session's own (local) identity keys sit in its contents
/// (PROTOCOL.md 8.3): after the version, session id and role.
const SESSION_LOCAL: std::ops::Range<usize> = 34..98;
/// The nonce of every pickle the harness seals: random once, then fixed.
const NONCE: [u8; 12] = [
    0x5b, 0xe1, 0x0c, 0x73, 0x9a, 0x2f, 0xd4, 0x46, 0x81, 0xee, 0x17, 0x38,
];

/// The object types that have pickles, in selector order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Account,
    Session,
    OutboundGroupSession,
    InboundGroupSession,
    Endpoint,
}

impl Kind {
    pub(crate) const ALL: [Kind; 5] = [
        Kind::Account,
        Kind::Session,
        Kind::OutboundGroupSession,
        Kind::InboundGroupSession,
        Kind::Endpoint,
    ];

    /// The type name in the associated data (PROTOCOL.md 8.1).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Session => "session",
            Kind::OutboundGroupSession => "outbound-group-session",
            Kind::InboundGroupSession => "inbound-group-session",
            Kind::Endpoint => "endpoint",
        }
    }

    /// The first input byte of `unpickle_contents` that selects this type.
    fn selector(self) -> u8 {
        match self {
            Kind::Account => 0,
            Kind::Session => 1,
            Kind::OutboundGroupSession => 2,
            Kind::InboundGroupSession => 3,
            Kind::Endpoint => 4,
        }
    }

    fn from_selector(byte: u8) -> Self {
        Kind::ALL[usize::from(byte) % Kind::ALL.len()]
    }

    /// The associated data of a pickle at `generation` bound to `owner`
    /// (`None` for every type but the session).
    fn associated_data(self, generation: u64, owner: Option<IdentityKeys>) -> Vec<u8> {
        let owner = owner.map(owner_bytes).unwrap_or_default();
        [
            AD_PREFIX,
            self.name().as_bytes(),
            &[VERSION],
            &generation.to_be_bytes(),
            &owner,
        ]
        .concat()
    }

    /// The owner a pickle of this type is bound to: `session_owner` for a
    /// session, none otherwise.
    fn owner(self, session_owner: IdentityKeys) -> Option<IdentityKeys> {
        (self == Kind::Session).then_some(session_owner)
    }

    /// The type's AES-256-GCM key: its subkey of the fixed pickle key.
    fn cipher(self) -> Aes256Gcm {
        let info = [SUBKEY_PREFIX, self.name().as_bytes()].concat();
        let mut subkey = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(None, &PICKLE_KEY)
            .expand(&info, &mut subkey)
            .expect("32 bytes is a valid HKDF-SHA-256 length");
        Aes256Gcm::new(&subkey.into())
    }
}

/// The owner a session's contents name as their own account (the local
/// identity keys, PROTOCOL.md 8.3), as the library binds its pickles; the
/// fixture's session owner when the contents are too short to name one.
fn contents_owner(contents: &[u8]) -> IdentityKeys {
    contents
        .get(SESSION_LOCAL)
        .and_then(|bytes| {
            let (ed, curve) = bytes.split_at(32);
            Some(IdentityKeys {
                ed25519: Ed25519PublicKey::from_slice(ed).ok()?,
                curve25519: Curve25519PublicKey::from_slice(curve).ok()?,
            })
        })
        .unwrap_or_else(session_owner)
}

/// The 64 bytes an owner is bound by: Ed25519 key, then X25519 key.
fn owner_bytes(keys: IdentityKeys) -> Vec<u8> {
    [&keys.ed25519.to_bytes()[..], keys.curve25519.as_bytes()].concat()
}

/// Seals `contents` as a pickle of `kind` under the fixed pickle key, at
/// [`GENERATION`], bound (for a session) to `session_owner`.
pub(crate) fn seal(kind: Kind, contents: &[u8], session_owner: IdentityKeys) -> String {
    let aad = kind.associated_data(GENERATION, kind.owner(session_owner));
    let sealed = kind
        .cipher()
        .encrypt(
            &Nonce::from(NONCE),
            Payload {
                msg: contents,
                aad: &aad,
            },
        )
        .expect("AES-GCM seals anything below 64 GiB");
    base64_encode(&[&[VERSION][..], &GENERATION.to_be_bytes(), &NONCE, &sealed].concat())
}

/// Opens a genuine pickle of `kind` made under the fixed pickle key (bound,
/// for a session, to `session_owner`), with the same documented
/// construction, and returns its contents.
pub(crate) fn open(kind: Kind, pickle: &str, session_owner: IdentityKeys) -> Vec<u8> {
    let bytes = base64_decode(pickle).expect("pickles are unpadded base64");
    let (&version, rest) = bytes.split_first().expect("a pickle is not empty");
    assert_eq!(version, VERSION, "pickle version");
    let (generation, rest) = rest.split_at(8);
    let generation = u64::from_be_bytes(generation.try_into().expect("8 bytes"));
    assert_eq!(
        roomseal::pickle_generation(pickle),
        Ok(generation),
        "pickle_generation reads another generation than the envelope's"
    );
    let (nonce, sealed) = rest.split_at(NONCE.len());
    let nonce: [u8; 12] = nonce.try_into().expect("12-byte nonce");
    let aad = kind.associated_data(generation, kind.owner(session_owner));
    kind.cipher()
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .unwrap_or_else(|_| {
            panic!(
                "a genuine {} pickle does not open with PROTOCOL.md's construction",
                kind.name()
            )
        })
}

/// A copy of the outbound group session pickled in `pickle`, with its room
/// id replaced by `room` and its ratchet XORed with `ratchet_mask`, made by
/// editing its pickle contents. The copy signs with the same key, so its
/// messages and session keys carry valid signatures.
///
/// This relies only on the two ends of the outbound contents (PROTOCOL.md
/// 11.8): they start with `short(room id)` and end with the 128-byte
/// ratchet. The result is checked, so a layout change fails loudly when the
/// fixture is built.
pub(crate) fn forge_outbound(pickle: &str, room: &str, ratchet_mask: u8) -> OutboundGroupSession {
    let original = OutboundGroupSession::from_pickle(pickle, &pickle_key())
        .expect("the fixture's outbound pickle restores");
    let contents = open(Kind::OutboundGroupSession, pickle, session_owner());
    let old_len = usize::from(u16::from_be_bytes([contents[0], contents[1]]));
    let room_len = u16::try_from(room.len()).expect("room ids are short");
    let mut forged = [
        &room_len.to_be_bytes()[..],
        room.as_bytes(),
        &contents[2 + old_len..],
    ]
    .concat();
    let end = forged.len();
    for byte in &mut forged[end - 128..] {
        *byte ^= ratchet_mask;
    }
    let session = OutboundGroupSession::from_pickle(
        &seal(Kind::OutboundGroupSession, &forged, session_owner()),
        &pickle_key(),
    )
    .expect("forged outbound contents restore (has the layout changed?)");
    assert_eq!(
        session.session_id(),
        original.session_id(),
        "forged signing key"
    );
    assert_eq!(session.creator(), original.creator(), "forged creator");
    assert_eq!(session.room_id(), room, "forged room id");
    assert_eq!(
        session.message_index(),
        original.message_index(),
        "forged index"
    );
    session
}

/// Seals `data[1..]` as the contents of a pickle of the type selected by
/// `data[0]` (see [`Kind::ALL`]) and restores it. A session's contents are
/// sealed for the account they name as their own (as the library seals
/// them), so their pickle is the one the library itself would write.
///
/// Whatever restores must pickle (with a fixed-seed generator) and restore
/// again to the same state, and be usable without panicking. For the
/// account, the session and both group sessions the contents decoding is
/// strict, so re-pickling must give back exactly the input contents. The
/// endpoint's contents hold maps, so for it only the second round trip must
/// be exact.
pub fn unpickle_contents(data: &[u8]) {
    let Some((&selector, contents)) = data.split_first() else {
        return;
    };
    check_construction();
    let kind = Kind::from_selector(selector);
    let owner = contents_owner(contents);
    if let Some(restored) = restore_for(kind, &seal(kind, contents, owner), owner) {
        restored.check(Some(contents));
    }
}

/// Once per process: the genuine contents of every type, sealed by the
/// harness, restore. Otherwise the construction differs from the library's
/// and the target would test nothing past the AEAD.
fn check_construction() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        for (kind, text) in genuine_pickle_texts() {
            let contents = open(kind, &text, session_owner());
            if kind == Kind::Session {
                assert_eq!(
                    contents_owner(&contents),
                    session_owner(),
                    "the fixture's session contents name another account"
                );
            }
            let resealed = seal(kind, &contents, session_owner());
            assert!(
                restore(kind, &resealed).is_some(),
                "genuine {} contents sealed by the harness do not restore",
                kind.name()
            );
        }
    });
}

/// A restored object of any pickled type.
pub(crate) enum Restored {
    Account(Account),
    Session(Box<roomseal::Session>),
    Outbound(OutboundGroupSession),
    Inbound(InboundGroupSession),
    Endpoint(Box<Endpoint>),
}

/// Restores `text` as a pickle of `kind` under the fixed key (a session as
/// one of the fixture's account).
pub(crate) fn restore(kind: Kind, text: &str) -> Option<Restored> {
    restore_for(kind, text, session_owner())
}

/// [`restore`], a session as one of the account `session_owner`.
fn restore_for(kind: Kind, text: &str, session_owner: IdentityKeys) -> Option<Restored> {
    let key = pickle_key();
    match kind {
        Kind::Account => Account::from_pickle(text, &key).ok().map(Restored::Account),
        Kind::Session => roomseal::Session::from_pickle(text, &key, &session_owner)
            .ok()
            .map(|s| Restored::Session(Box::new(s))),
        Kind::OutboundGroupSession => OutboundGroupSession::from_pickle(text, &key)
            .ok()
            .map(Restored::Outbound),
        Kind::InboundGroupSession => InboundGroupSession::from_pickle(text, &key)
            .ok()
            .map(Restored::Inbound),
        Kind::Endpoint => Endpoint::from_pickle(text, &key)
            .ok()
            .map(|e| Restored::Endpoint(Box::new(e))),
    }
}

impl Restored {
    fn kind(&self) -> Kind {
        match self {
            Restored::Account(_) => Kind::Account,
            Restored::Session(_) => Kind::Session,
            Restored::Outbound(_) => Kind::OutboundGroupSession,
            Restored::Inbound(_) => Kind::InboundGroupSession,
            Restored::Endpoint(_) => Kind::Endpoint,
        }
    }

    /// The account a session belongs to (the fixture's for other types).
    fn owner(&self) -> IdentityKeys {
        match self {
            Restored::Session(s) => s.local_identity(),
            _ => session_owner(),
        }
    }

    /// The generation of the pickle it was restored from or last wrote.
    fn generation(&self) -> u64 {
        match self {
            Restored::Account(a) => a.pickle_generation(),
            Restored::Session(s) => s.pickle_generation(),
            Restored::Outbound(s) => s.pickle_generation(),
            Restored::Inbound(s) => s.pickle_generation(),
            Restored::Endpoint(e) => e.pickle_generation(),
        }
    }

    /// The pickle made with the fixed-seed nonce generator.
    fn state(&self) -> String {
        let key = pickle_key();
        match self {
            Restored::Account(a) => account_state(a),
            Restored::Session(s) => session_state(s),
            Restored::Outbound(s) => s.pickle_with_rng(&key, &mut rng(PICKLE_SEED)),
            Restored::Inbound(s) => s.pickle_with_rng(&key, &mut rng(PICKLE_SEED)),
            Restored::Endpoint(e) => e.pickle_with_rng(&key, &mut rng(PICKLE_SEED)),
        }
    }

    /// Round trips and light use. `contents`, when known, are the contents
    /// the object was restored from.
    ///
    /// Pickling the state it was restored from keeps its generation; a
    /// restored copy keeps it too.
    pub(crate) fn check(self, contents: Option<&[u8]>) {
        let kind = self.kind();
        let owner = self.owner();
        let restored_at = self.generation();
        let pickle = self.state();
        let again = restore_for(kind, &pickle, owner)
            .unwrap_or_else(|| panic!("a fresh {} pickle does not restore", kind.name()));
        assert_eq!(
            again.state(),
            pickle,
            "{} pickle round trip changed the state",
            kind.name()
        );
        assert_eq!(again.generation(), self.generation());
        if let Some(contents) = contents
            && kind != Kind::Endpoint
        {
            assert_eq!(
                self.generation(),
                restored_at,
                "{} re-pickled unchanged contents at a new generation",
                kind.name()
            );
            assert!(
                open(kind, &pickle, owner) == contents,
                "{} contents were accepted but re-pickle differently (the decoder is not strict)",
                kind.name()
            );
        }
        match self {
            Restored::Account(account) => {
                check_account_round_trip(&account);
                account
                    .device_keys("@fuzz:example.org", "FUZZDEVICE")
                    .and_then(|keys| keys.check_self_signature())
                    .unwrap_or_else(|e| panic!("a restored account's device keys: {e}"));
                let _ = account.fallback_key();
            }
            Restored::Session(mut session) => {
                check_session_round_trip(&session);
                let _ = session.encrypt(b"from a restored session");
            }
            Restored::Outbound(session) => check_outbound(session),
            Restored::Inbound(session) => check_inbound(&session),
            Restored::Endpoint(endpoint) => {
                let Restored::Endpoint(again) = again else {
                    unreachable!("restored as the same kind")
                };
                assert_eq!(again.identity_keys(), endpoint.identity_keys());
                assert_eq!(again.user_id(), endpoint.user_id());
                assert_eq!(again.device_id(), endpoint.device_id());
                assert_eq!(again.inbound_keys().len(), endpoint.inbound_keys().len());
                endpoint
                    .device_keys()
                    .check_self_signature()
                    .unwrap_or_else(|e| panic!("a restored endpoint's device keys: {e}"));
            }
        }
    }
}

/// A restored outbound session's own signed key must verify, and a message
/// it encrypts must decrypt with that key.
fn check_outbound(mut session: OutboundGroupSession) {
    let key = session.session_key();
    assert_eq!(key.first_index(), session.message_index());
    assert_eq!(key.creator(), session.creator());
    assert_eq!(key.room_id(), session.room_id());
    assert_eq!(key.session_id(), session.session_id());
    let mut inbound = InboundGroupSession::new(&key)
        .unwrap_or_else(|e| panic!("a restored outbound session's own key is rejected: {e}"));
    assert_eq!(inbound.session_id(), session.session_id());
    let room = session.room_id().to_owned();
    match session.encrypt(b"from a restored group session") {
        Ok(message) => {
            let decrypted = inbound.decrypt(&room, &message).unwrap_or_else(|e| {
                panic!("a restored outbound session's message does not decrypt: {e}")
            });
            assert_eq!(decrypted.plaintext, b"from a restored group session");
            assert!(decrypted.authenticated);
        }
        Err(error) => assert_eq!(
            key.first_index(),
            u32::MAX,
            "a restored outbound session failed to encrypt: {error}"
        ),
    }
}

/// A restored inbound session exports and re-imports consistently.
fn check_inbound(session: &InboundGroupSession) {
    let first = session.first_known_index();
    let export = session.export_at_first_known_index();
    assert_eq!(export.first_index(), first);
    let imported = InboundGroupSession::import(&export);
    let expected = if session.is_authenticated() {
        SessionOrdering::Better
    } else {
        SessionOrdering::Equal
    };
    assert_eq!(
        session.compare(&imported),
        expected,
        "compare with own export"
    );
    let merged = session
        .merge(&imported)
        .expect("a session merges with its own export");
    // Unsigned material never changes the authenticated ratchet: the merge
    // keeps it, and keeps the unsigned prefix only if it leads to it (a
    // pickle is not checked for that, so a prefix that does not is dropped).
    assert_eq!(merged.is_authenticated(), session.is_authenticated());
    assert_eq!(merged.authenticated_from(), session.authenticated_from());
    assert_eq!(merged.creator(), session.creator());
    assert_eq!(merged.room_id(), session.room_id());
    match session.authenticated_from() {
        None => assert_eq!(merged.first_known_index(), first),
        Some(authenticated) => {
            assert!(first <= authenticated, "a prefix after the signed ratchet");
            assert!(
                [first, authenticated].contains(&merged.first_known_index()),
                "merging with its own export moved the first index elsewhere"
            );
            let signed = session
                .export_at(authenticated)
                .expect("export at the first authenticated index");
            let kept = merged
                .export_at(authenticated)
                .expect("the merge keeps the authenticated index");
            assert!(
                *kept.to_bytes() == *signed.to_bytes(),
                "merging with an unsigned export changed the authenticated ratchet"
            );
        }
    }
    let at = session
        .export_at(first)
        .expect("export at the first known index");
    assert!(
        *at.to_bytes() == *export.to_bytes(),
        "the two exports at the first index differ"
    );
}

/// Genuine pickles of every type, decoded from base64, for the mutated
/// path of the `unpickle` target.
pub(crate) fn genuine_pickles() -> &'static [(Kind, Vec<u8>)] {
    static PICKLES: OnceLock<Vec<(Kind, Vec<u8>)>> = OnceLock::new();
    PICKLES.get_or_init(|| {
        genuine_pickle_texts()
            .into_iter()
            .map(|(kind, text)| {
                let bytes = base64_decode(&text).expect("pickles are unpadded base64");
                assert_eq!(base64_encode(&bytes), text, "base64 helpers disagree");
                (kind, bytes)
            })
            .collect()
    })
}

/// The text of a genuine pickle of every type, from the fixtures.
pub(crate) fn genuine_pickle_texts() -> Vec<(Kind, String)> {
    let pairwise = super::fixture();
    let group = super::group::group_fixture();
    let endpoint = super::room::endpoint_fixture();
    vec![
        (Kind::Account, pairwise.account_pickle.clone()),
        (Kind::Session, pairwise.session_pickle.clone()),
        (Kind::OutboundGroupSession, group.outbound_pickle.clone()),
        (Kind::InboundGroupSession, group.inbound_pickle.clone()),
        (Kind::Endpoint, endpoint.pickle.clone()),
    ]
}

/// Seeds: the genuine contents of every type behind its selector, and a
/// few near misses.
pub(crate) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    const T: &str = "unpickle_contents";
    let with = |kind: Kind, contents: &[u8]| [&[kind.selector()][..], contents].concat();
    let mut seeds = Vec::new();
    for (kind, text) in genuine_pickle_texts() {
        let contents = open(kind, &text, session_owner());
        let name = |suffix: &str| format!("{}{suffix}", kind.name());
        seeds.push((T, name(".bin"), with(kind, &contents)));
        seeds.push((
            T,
            name("_trailing.bin"),
            with(kind, &[&contents[..], &[0]].concat()),
        ));
        seeds.push((
            T,
            name("_truncated.bin"),
            with(kind, &contents[..contents.len() - 1]),
        ));
        let other = Kind::ALL[(usize::from(kind.selector()) + 1) % Kind::ALL.len()];
        seeds.push((T, name("_as_other_type.bin"), with(other, &contents)));
    }
    seeds.push((
        T,
        "empty_account.bin".into(),
        vec![Kind::Account.selector()],
    ));
    seeds.push((T, "selector_wraps.bin".into(), vec![5, 0, 0]));
    seeds
}
