//! Olm v1 and Megolm v1: roomseal and vodozemac on the same operations in
//! the same run, and the primitive floor (X25519, Ed25519, AES-256-CBC,
//! HMAC-SHA-256) measured beside them, so ratios survive a noisy machine.
//!
//! Run: `cargo bench --bench olm`; then `python3 benches/olm_ratios.py`
//! prints each roomseal/vodozemac ratio from criterion's separate
//! estimates. On a shared, noisy machine judge by the *paired* section at
//! the end instead: roomseal and vodozemac timed in alternating short
//! batches (benches/support/paired.rs), one ratio per round
//! (`OLM_PAIRED=0` skips it, `OLM_PAIRED_SECS` sets its time per
//! operation, `OLM_PAIRED_ONLY=1` runs only it). The paired section also
//! times the native protocol against vodozemac (`native/...` rows, with
//! floor rows for the work only the native protocol does; PROTOCOL.md
//! 17.1). Pickle sizes are printed once (not timed).

#[path = "support/paired.rs"]
mod paired;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::{MegolmInboundSession, MegolmOutboundSession, OlmAccount, OlmMessage, PickleKey};
use vodozemac::megolm::{
    GroupSession as VOutbound, InboundGroupSession as VInbound, MegolmMessage as VMegolm,
    SessionConfig as VGroupConfig,
};
use vodozemac::olm::{Account as VAccount, OlmMessage as VOlm, SessionConfig};

/// `OLM_PAIRED_ONLY=1` runs only the paired ratios.
fn paired_only() -> bool {
    std::env::var_os("OLM_PAIRED_ONLY").is_some_and(|v| v == "1")
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(1)
}

fn floor(c: &mut Criterion) {
    if paired_only() {
        return;
    }
    use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
    use ed25519_dalek::{Signer, SigningKey};
    use hmac::{KeyInit, Mac};
    let mut g = c.benchmark_group("floor");
    let mut r = rng();
    let a = x25519_dalek::StaticSecret::random_from_rng(&mut r);
    let b = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(&mut r));
    g.bench_function("x25519_dh", |bench| {
        bench.iter(|| black_box(&a).diffie_hellman(black_box(&b)))
    });
    g.bench_function("x25519_keygen", |bench| {
        bench.iter(|| {
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(&mut r))
        })
    });
    let signing = SigningKey::from_bytes(&[7; 32]);
    let verifying = signing.verifying_key();
    let signature = signing.sign(b"message");
    g.bench_function("ed25519_sign", |bench| {
        bench.iter(|| signing.sign(black_box(b"message")))
    });
    g.bench_function("ed25519_verify_strict", |bench| {
        bench.iter(|| {
            verifying
                .verify_strict(black_box(b"message"), &signature)
                .unwrap()
        })
    });
    let data = vec![0x5au8; 1024];
    g.bench_function("aes256cbc_1k", |bench| {
        bench.iter(|| {
            let mut buf = vec![0u8; 1040];
            buf[..1024].copy_from_slice(&data);
            cbc::Encryptor::<aes::Aes256>::new(&[1u8; 32].into(), &[2u8; 16].into())
                .encrypt_padded::<Pkcs7>(&mut buf, 1024)
                .unwrap()
                .len()
        })
    });
    g.bench_function("hmac_sha256_32", |bench| {
        bench.iter(|| {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[3u8; 32]).unwrap();
            m.update(black_box(&[1u8]));
            m.finalize()
        })
    });
    g.finish();
}

fn olm(c: &mut Criterion) {
    if paired_only() {
        return;
    }
    let mut g = c.benchmark_group("olm");
    let mut r = rng();
    // Session creation, outbound.
    let alice = OlmAccount::new_with_rng(&mut r);
    let mut bob = OlmAccount::new_with_rng(&mut r);
    bob.generate_one_time_keys_with_rng(1, &mut r);
    let (_, otk) = bob.one_time_keys()[0];
    g.bench_function("create_outbound/roomseal", |bench| {
        bench.iter(|| {
            alice
                .create_outbound_session(bob.identity_keys().curve25519, otk)
                .unwrap()
        })
    });
    let valice = VAccount::new();
    let mut vbob = VAccount::new();
    vbob.generate_one_time_keys(1);
    let votk = *vbob.one_time_keys().values().next().unwrap();
    g.bench_function("create_outbound/vodozemac", |bench| {
        bench.iter(|| {
            valice
                .create_outbound_session(SessionConfig::version_1(), vbob.curve25519_key(), votk)
                .unwrap()
        })
    });
    // Session creation, inbound (with its first message).
    let key = PickleKey::from_bytes(&mut [1; 32]);
    let bob_pickle = bob.pickle(&key);
    let OlmMessage::PreKey(pre_key) = alice
        .create_outbound_session(bob.identity_keys().curve25519, otk)
        .unwrap()
        .encrypt(b"first")
        .unwrap()
    else {
        unreachable!()
    };
    g.bench_function("create_inbound/roomseal", |bench| {
        bench.iter_batched(
            || OlmAccount::from_pickle(&bob_pickle, &key).unwrap(),
            |mut account| {
                account
                    .create_inbound_session(alice.identity_keys().curve25519, &pre_key)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    let vbob_pickle = vbob.pickle();
    let VOlm::PreKey(vpre) = valice
        .create_outbound_session(SessionConfig::version_1(), vbob.curve25519_key(), votk)
        .unwrap()
        .encrypt(b"first")
        .unwrap()
    else {
        unreachable!()
    };
    g.bench_function("create_inbound/vodozemac", |bench| {
        bench.iter_batched(
            || {
                let json = serde_json::to_string(&vbob_pickle).unwrap();
                VAccount::from_pickle(serde_json::from_str(&json).unwrap())
            },
            |mut account| {
                account
                    .create_inbound_session(
                        SessionConfig::version_1(),
                        valice.curve25519_key(),
                        &vpre,
                    )
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    // Same direction: encrypt then decrypt, 64 bytes.
    let mut bob2 = OlmAccount::from_pickle(&bob_pickle, &key).unwrap();
    let mut a = alice
        .create_outbound_session(bob.identity_keys().curve25519, otk)
        .unwrap();
    let OlmMessage::PreKey(m) = a.encrypt(b"x").unwrap() else {
        unreachable!()
    };
    let mut b = bob2
        .create_inbound_session(alice.identity_keys().curve25519, &m)
        .unwrap()
        .session;
    a.decrypt(&b.encrypt(b"reply").unwrap()).unwrap();
    let plaintext = [0x42u8; 64];
    // Encryption alone on a session of its own (its messages are never
    // read, so the pairs below stay within the forward-jump bound).
    let mut a_only = alice
        .create_outbound_session(bob.identity_keys().curve25519, otk)
        .unwrap();
    g.bench_function("encrypt/roomseal", |bench| {
        bench.iter(|| a_only.encrypt(&plaintext).unwrap())
    });
    g.bench_function("encrypt_decrypt/roomseal", |bench| {
        bench.iter(|| b.decrypt(&a.encrypt(&plaintext).unwrap()).unwrap())
    });
    g.bench_function("ping_pong/roomseal", |bench| {
        bench.iter(|| {
            b.decrypt(&a.encrypt(&plaintext).unwrap()).unwrap();
            a.decrypt(&b.encrypt(&plaintext).unwrap()).unwrap()
        })
    });
    let mut vb_account = VAccount::from_pickle(vbob_pickle);
    let mut va = valice
        .create_outbound_session(SessionConfig::version_1(), vbob.curve25519_key(), votk)
        .unwrap();
    let VOlm::PreKey(m) = va.encrypt(b"x").unwrap() else {
        unreachable!()
    };
    let mut vb = vb_account
        .create_inbound_session(SessionConfig::version_1(), valice.curve25519_key(), &m)
        .unwrap()
        .session;
    va.decrypt(&vb.encrypt(b"reply").unwrap()).unwrap();
    let mut va_only = valice
        .create_outbound_session(SessionConfig::version_1(), vbob.curve25519_key(), votk)
        .unwrap();
    g.bench_function("encrypt/vodozemac", |bench| {
        bench.iter(|| va_only.encrypt(plaintext).unwrap())
    });
    g.bench_function("encrypt_decrypt/vodozemac", |bench| {
        bench.iter(|| vb.decrypt(&va.encrypt(plaintext).unwrap()).unwrap())
    });
    g.bench_function("ping_pong/vodozemac", |bench| {
        bench.iter(|| {
            vb.decrypt(&va.encrypt(plaintext).unwrap()).unwrap();
            va.decrypt(&vb.encrypt(plaintext).unwrap()).unwrap()
        })
    });
    // Pickle sizes (printed, not timed).
    let session_pickle = a.pickle(&key);
    let vsession_pickle = va.pickle().encrypt(&[1; 32]);
    eprintln!(
        "pickle sizes (characters): account roomseal {} vodozemac {}; session roomseal {} vodozemac {}",
        bob2.pickle(&key).len(),
        vb_account.pickle().encrypt(&[1; 32]).len(),
        session_pickle.len(),
        vsession_pickle.len()
    );
    g.bench_function("session_unpickle/roomseal", |bench| {
        let owner = alice.identity_keys().curve25519;
        bench.iter(|| roomseal::OlmSession::from_pickle(&session_pickle, &key, &owner).unwrap())
    });
    g.bench_function("session_unpickle/vodozemac", |bench| {
        bench.iter(|| {
            vodozemac::olm::Session::from_pickle(
                vodozemac::olm::SessionPickle::from_encrypted(&vsession_pickle, &[1; 32]).unwrap(),
            )
        })
    });
    g.finish();
}

fn megolm(c: &mut Criterion) {
    if paired_only() {
        return;
    }
    let mut g = c.benchmark_group("megolm");
    g.measurement_time(Duration::from_secs(4));
    let kib = vec![0x33u8; 1024];
    let mut out = MegolmOutboundSession::new_with_rng(&mut rng());
    let key0 = out.session_key();
    let mut vout = VOutbound::new(VGroupConfig::version_1());
    let vkey0 = vout.session_key();
    g.bench_function("encrypt_1k/roomseal", |bench| {
        bench.iter(|| out.encrypt(&kib).unwrap())
    });
    g.bench_function("encrypt_1k/vodozemac", |bench| {
        bench.iter(|| vout.encrypt(&kib))
    });
    let mut fresh = MegolmOutboundSession::new_with_rng(&mut rng());
    let fresh_key = fresh.session_key();
    let m0 = fresh.encrypt(&kib).unwrap();
    let mut inbound = MegolmInboundSession::new(&fresh_key).unwrap();
    g.bench_function("decrypt_1k/roomseal", |bench| {
        bench.iter(|| inbound.decrypt(&m0).unwrap())
    });
    let mut vfresh = VOutbound::new(VGroupConfig::version_1());
    let mut vinbound = VInbound::new(&vfresh.session_key(), VGroupConfig::version_1());
    let vm0: VMegolm = vfresh.encrypt(&kib);
    g.bench_function("decrypt_1k/vodozemac", |bench| {
        bench.iter(|| vinbound.decrypt(&vm0).unwrap())
    });
    // Decrypt at index 100,000 from a session that starts at 0.
    let mut r = rng();
    let mut far = MegolmOutboundSession::new_with_rng(&mut r);
    let far_key = far.session_key();
    let mut vfar = VOutbound::new(VGroupConfig::version_1());
    let vfar_key = vfar.session_key();
    let (mut m, mut vm) = (None, None);
    for _ in 0..=100_000 {
        m = Some(far.encrypt(b"").unwrap());
        vm = Some(vfar.encrypt(b""));
    }
    let (m, vm) = (m.unwrap(), vm.unwrap());
    g.bench_function("decrypt_at_100000/roomseal", |bench| {
        bench.iter_batched(
            || MegolmInboundSession::new(&far_key).unwrap(),
            |mut s| s.decrypt(&m).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decrypt_at_100000/vodozemac", |bench| {
        bench.iter_batched(
            || VInbound::new(&vfar_key, VGroupConfig::version_1()),
            |mut s| s.decrypt(&vm).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("export_import/roomseal", |bench| {
        bench.iter(|| MegolmInboundSession::import(&inbound.export_at(0).unwrap()))
    });
    g.bench_function("export_import/vodozemac", |bench| {
        bench.iter(|| VInbound::import(&vinbound.export_at(0).unwrap(), VGroupConfig::version_1()))
    });
    let key = PickleKey::from_bytes(&mut [2; 32]);
    eprintln!(
        "pickle sizes (characters): megolm inbound roomseal {} vodozemac {}; outbound roomseal {} vodozemac {}; session key {} / {}",
        MegolmInboundSession::new(&key0).unwrap().pickle(&key).len(),
        VInbound::new(&vkey0, VGroupConfig::version_1())
            .pickle()
            .encrypt(&[2; 32])
            .len(),
        out.pickle(&key).len(),
        vout.pickle().encrypt(&[2; 32]).len(),
        key0.to_base64().len(),
        vkey0.to_base64().len(),
    );
    g.finish();
}

/// roomseal over vodozemac on each operation, in interleaved batches.
fn paired_ratios(_: &mut Criterion) {
    use paired::timed;
    let Some(plan) = paired::plan("OLM") else {
        return;
    };
    let mut estimates = Vec::new();
    let mut run = |name: &str, ours: paired::Timed<'_>, theirs: paired::Timed<'_>| {
        if plan.wanted(name) {
            estimates.push(paired::measure(name, ours, theirs, plan.budget));
        }
    };
    let mut r = rng();
    let alice = OlmAccount::new_with_rng(&mut r);
    let mut bob = OlmAccount::new_with_rng(&mut r);
    bob.generate_one_time_keys_with_rng(1, &mut r);
    let (_, otk) = bob.one_time_keys()[0];
    let bob_key = bob.identity_keys().curve25519;
    let valice = VAccount::new();
    let mut vbob = VAccount::new();
    vbob.generate_one_time_keys(1);
    let votk = *vbob.one_time_keys().values().next().unwrap();
    let vbob_key = vbob.curve25519_key();
    run(
        "olm/create_outbound",
        timed(|| alice.create_outbound_session(bob_key, otk).unwrap()),
        timed(|| {
            valice
                .create_outbound_session(SessionConfig::version_1(), vbob_key, votk)
                .unwrap()
        }),
    );
    // The same with a seeded generator on our side: the difference is the
    // operating system's randomness (one getrandom call per session here,
    // a user-space generator in vodozemac).
    let mut seeded = rng();
    run(
        "olm/create_outbound_without_getrandom",
        timed(|| {
            alice
                .create_outbound_session_with_rng(bob_key, otk, &mut seeded)
                .unwrap()
        }),
        timed(|| {
            valice
                .create_outbound_session(SessionConfig::version_1(), vbob_key, votk)
                .unwrap()
        }),
    );
    let plaintext = [0x42u8; 64];
    let mut a_only = alice.create_outbound_session(bob_key, otk).unwrap();
    let mut va_only = valice
        .create_outbound_session(SessionConfig::version_1(), vbob_key, votk)
        .unwrap();
    run(
        "olm/encrypt",
        timed(|| a_only.encrypt(&plaintext).unwrap()),
        timed(|| va_only.encrypt(plaintext).unwrap()),
    );
    // Established pairs on both sides.
    let key = PickleKey::from_bytes(&mut [1; 32]);
    let mut bob2 = OlmAccount::from_pickle(&bob.pickle(&key), &key).unwrap();
    let mut a = alice.create_outbound_session(bob_key, otk).unwrap();
    let OlmMessage::PreKey(m) = a.encrypt(b"x").unwrap() else {
        unreachable!()
    };
    let mut b = bob2
        .create_inbound_session(alice.identity_keys().curve25519, &m)
        .unwrap()
        .session;
    a.decrypt(&b.encrypt(b"reply").unwrap()).unwrap();
    let mut va = valice
        .create_outbound_session(SessionConfig::version_1(), vbob_key, votk)
        .unwrap();
    let VOlm::PreKey(m) = va.encrypt(b"x").unwrap() else {
        unreachable!()
    };
    let mut vb = vbob
        .create_inbound_session(SessionConfig::version_1(), valice.curve25519_key(), &m)
        .unwrap()
        .session;
    va.decrypt(&vb.encrypt(b"reply").unwrap()).unwrap();
    {
        let (a, b, va, vb) = (&mut a, &mut b, &mut va, &mut vb);
        run(
            "olm/encrypt_decrypt",
            timed(|| b.decrypt(&a.encrypt(&plaintext).unwrap()).unwrap()),
            timed(|| vb.decrypt(&va.encrypt(plaintext).unwrap()).unwrap()),
        );
    }
    {
        let (a, b, va, vb) = (&mut a, &mut b, &mut va, &mut vb);
        run(
            "olm/ping_pong",
            timed(|| {
                b.decrypt(&a.encrypt(&plaintext).unwrap()).unwrap();
                a.decrypt(&b.encrypt(&plaintext).unwrap()).unwrap()
            }),
            timed(|| {
                vb.decrypt(&va.encrypt(plaintext).unwrap()).unwrap();
                va.decrypt(&vb.encrypt(plaintext).unwrap()).unwrap()
            }),
        );
    }
    let session_pickle = a.pickle(&key);
    let owner = alice.identity_keys().curve25519;
    let vsession_pickle = va.pickle().encrypt(&[1; 32]);
    run(
        "olm/session_unpickle",
        timed(|| roomseal::OlmSession::from_pickle(&session_pickle, &key, &owner).unwrap()),
        timed(|| {
            vodozemac::olm::Session::from_pickle(
                vodozemac::olm::SessionPickle::from_encrypted(&vsession_pickle, &[1; 32]).unwrap(),
            )
        }),
    );
    // Megolm.
    let kib = vec![0x33u8; 1024];
    let mut out = MegolmOutboundSession::new_with_rng(&mut r);
    let mut vout = VOutbound::new(VGroupConfig::version_1());
    run(
        "megolm/encrypt_1k",
        timed(|| out.encrypt(&kib).unwrap()),
        timed(|| vout.encrypt(&kib)),
    );
    let mut fresh = MegolmOutboundSession::new_with_rng(&mut r);
    let mut inbound = MegolmInboundSession::new(&fresh.session_key()).unwrap();
    let m0 = fresh.encrypt(&kib).unwrap();
    let mut vfresh = VOutbound::new(VGroupConfig::version_1());
    let mut vinbound = VInbound::new(&vfresh.session_key(), VGroupConfig::version_1());
    let vm0: VMegolm = vfresh.encrypt(&kib);
    {
        let (inbound, vinbound) = (&mut inbound, &mut vinbound);
        run(
            "megolm/decrypt_1k",
            timed(|| inbound.decrypt(&m0).unwrap()),
            timed(|| vinbound.decrypt(&vm0).unwrap()),
        );
    }
    run(
        "megolm/export_import",
        timed(|| MegolmInboundSession::import(&inbound.export_at(0).unwrap())),
        timed(|| VInbound::import(&vinbound.export_at(0).unwrap(), VGroupConfig::version_1())),
    );
    // From a session key at 0 to the message at 100,000: parse the key
    // (both verify its signature once), then decrypt.
    let mut far = MegolmOutboundSession::new_with_rng(&mut r);
    let far_key = far.session_key().to_bytes();
    let mut vfar = VOutbound::new(VGroupConfig::version_1());
    let vfar_key = vfar.session_key().to_bytes();
    let (mut m, mut vm) = (None, None);
    for _ in 0..=100_000 {
        m = Some(far.encrypt(b"").unwrap());
        vm = Some(vfar.encrypt(b""));
    }
    let (m, vm) = (m.unwrap(), vm.unwrap());
    run(
        "megolm/decrypt_at_100000",
        timed(|| {
            let key = roomseal::MegolmSessionKey::from_bytes(&far_key).unwrap();
            MegolmInboundSession::new(&key)
                .unwrap()
                .decrypt(&m)
                .unwrap()
        }),
        timed(|| {
            let key = vodozemac::megolm::SessionKey::from_bytes(&vfar_key).unwrap();
            VInbound::new(&key, VGroupConfig::version_1())
                .decrypt(&vm)
                .unwrap()
        }),
    );
    native_rows(&mut run, &mut r);
    paired::report(&estimates, "olm_paired.json");
}

/// A batch of `n` operations on fresh state made by `setup` (not timed).
fn with_setup<'a, S, O>(
    mut setup: impl FnMut() -> S + 'a,
    mut op: impl FnMut(&mut S) -> O + 'a,
) -> paired::Timed<'a> {
    Box::new(move |n| {
        let mut states: Vec<S> = (0..n).map(|_| setup()).collect();
        let mut outputs = Vec::with_capacity(states.len());
        let start = std::time::Instant::now();
        for state in &mut states {
            outputs.push(op(state));
        }
        let elapsed = start.elapsed();
        drop(black_box(outputs));
        elapsed
    })
}

/// Two timed operations one after the other (a vodozemac operation plus
/// the extra work the native protocol does on top of it).
fn both<'a>(mut first: paired::Timed<'a>, mut second: paired::Timed<'a>) -> paired::Timed<'a> {
    Box::new(move |n| first(n) + second(n))
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// The native protocol (PROTOCOL.md sections 6 and 11) against vodozemac
/// on the operations that do comparable work. Each row whose native
/// operation does work vodozemac does not has two more rows: `/extra`
/// times exactly that work (written against the primitive crates) over the
/// vodozemac operation, so the note can say "of which the extra work
/// accounts for Y"; `/vs_vodozemac_plus_extra` times the native operation
/// over the vodozemac operation followed by that extra work.
fn native_rows(
    run: &mut impl FnMut(&str, paired::Timed<'_>, paired::Timed<'_>),
    r: &mut ChaCha20Rng,
) {
    use ed25519_dalek::{Signer, SigningKey};
    use paired::timed;
    use roomseal::{
        Account, DeviceMessage, GroupMessage, InboundGroupSession, OutboundGroupSession, Session,
        SessionKey,
    };
    use std::cell::RefCell;

    // What the extra work signs, verifies and hashes: the same lengths as
    // the native protocol's inputs (PROTOCOL.md 5.1, 6.2, 6.3, 6.5).
    let signer = SigningKey::generate(r);
    let verifier = signer.verifying_key();
    let otk_signed = [0x11u8; 24 + 8 + 32];
    let otk_signature = signer.sign(&otk_signed);
    let binding_signed = [0x22u8; 27 + 32 + 32];
    let binding_signature = signer.sign(&binding_signed);
    let identity = [0x33u8; 64];
    let key32 = [0x44u8; 32];
    let session_id = || sha256(&[b"roomseal/v2/session-id", &identity, &key32, &key32]);
    let ad_binding = || {
        sha256(&[
            b"roomseal/v2/session-ad",
            &[2],
            &key32,
            &identity,
            &identity,
        ])
    };
    // Validating an Ed25519 key as the native decoder does (a canonical
    // encoding, checked on the bytes; a point, not of small order).
    let ed25519_key = verifier.to_bytes();
    let validate = |bytes: &[u8; 32]| {
        let y_at_least_p =
            bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed;
        assert!(!y_at_least_p);
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).unwrap();
        assert!(!key.is_weak());
        key
    };

    // Pairwise session creation. roomseal draws from the operating system
    // (one call per session), vodozemac from its thread-local user-space
    // generator; `olm/create_outbound_without_getrandom` shows what that
    // difference costs.
    let alice = Account::new_with_rng(r);
    let mut bob = Account::new_with_rng(r);
    bob.generate_one_time_keys_with_rng(1, r);
    let otk = bob.one_time_keys().remove(0);
    bob.mark_keys_as_published(std::slice::from_ref(&otk));
    let bob_device = bob
        .device_keys("@bob:example.org", "BOBDEV")
        .unwrap()
        .check_self_signature()
        .unwrap();
    let valice = VAccount::new();
    let mut vbob = VAccount::new();
    vbob.generate_one_time_keys(1);
    let votk = *vbob.one_time_keys().values().next().unwrap();
    vbob.mark_keys_as_published();
    let vbob_key = vbob.curve25519_key();
    let v_outbound = || {
        valice
            .create_outbound_session(SessionConfig::version_1(), vbob_key, votk)
            .unwrap()
    };
    // Verify the one-time key's signature, sign the binding, hash the
    // session id and the associated-data binding.
    let outbound_extra = || {
        verifier
            .verify_strict(black_box(&otk_signed), &otk_signature)
            .unwrap();
        (signer.sign(&binding_signed), session_id(), ad_binding())
    };
    let native_outbound = || alice.create_outbound_session(&bob_device, &otk).unwrap();
    run(
        "native/create_outbound",
        timed(native_outbound),
        timed(v_outbound),
    );
    run(
        "native/create_outbound/extra",
        timed(outbound_extra),
        timed(v_outbound),
    );
    run(
        "native/create_outbound/vs_vodozemac_plus_extra",
        timed(native_outbound),
        both(timed(v_outbound), timed(outbound_extra)),
    );

    // Inbound session creation from a pre-key message, with its first
    // message (64 bytes); each account is restored from a pickle before
    // the batch (not timed), so each holds the one-time key.
    let pickle_key = PickleKey::from_bytes(&mut [3; 32]);
    let bob_pickle = bob.pickle(&pickle_key);
    let DeviceMessage::PreKey(pre_key) = native_outbound().encrypt(&[0x42; 64]).unwrap() else {
        unreachable!()
    };
    let vbob_pickle = serde_json::to_string(&vbob.pickle()).unwrap();
    let VOlm::PreKey(vpre) = v_outbound().encrypt([0x42u8; 64]).unwrap() else {
        unreachable!()
    };
    let valice_key = valice.curve25519_key();
    let native_inbound = || {
        with_setup(
            || Account::from_pickle(&bob_pickle, &pickle_key).unwrap(),
            |bob: &mut Account| bob.create_inbound_session(&pre_key).unwrap(),
        )
    };
    let v_inbound = || {
        with_setup(
            || VAccount::from_pickle(serde_json::from_str(&vbob_pickle).unwrap()),
            |vbob: &mut VAccount| {
                vbob.create_inbound_session(SessionConfig::version_1(), valice_key, &vpre)
                    .unwrap()
            },
        )
    };
    // Verify the binding signature; the eager first ratchet step (draw a
    // ratchet key, one X25519, the root HKDF); hash the session id and the
    // associated-data binding.
    let their_ratchet =
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(&mut *r));
    let root = [0x55u8; 32];
    let inbound_extra = || {
        verifier
            .verify_strict(black_box(&binding_signed), &binding_signature)
            .unwrap();
        let ours = x25519_dalek::StaticSecret::random_from_rng(&mut rand::rand_core::UnwrapErr(
            rand::rngs::SysRng,
        ));
        let shared = ours.diffie_hellman(&their_ratchet);
        assert!(shared.was_contributory());
        let mut okm = [0u8; 64];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&root), shared.as_bytes())
            .expand(b"roomseal/v2/root", &mut okm)
            .unwrap();
        (okm, session_id(), ad_binding())
    };
    run("native/create_inbound", native_inbound(), v_inbound());
    run(
        "native/create_inbound/extra",
        timed(inbound_extra),
        v_inbound(),
    );
    run(
        "native/create_inbound/vs_vodozemac_plus_extra",
        native_inbound(),
        both(v_inbound(), timed(inbound_extra)),
    );

    // Group: from a signed session key at 0 to the message at 100,000
    // (parse the key, verify its signature, verify the message's, jump,
    // decrypt), against the same in vodozemac. The native key also names
    // its creator, whose Ed25519 key is validated when the key is parsed.
    let room = "!room:example.org";
    let mut far = OutboundGroupSession::new_with_rng(room, alice.identity_keys(), r).unwrap();
    let far_key = far.session_key().to_bytes();
    let mut vfar = VOutbound::new(VGroupConfig::version_1());
    let vfar_key = vfar.session_key().to_bytes();
    let (mut m, mut vm) = (None, None);
    for _ in 0..=100_000 {
        m = Some(far.encrypt_with_rng(b"", r).unwrap());
        vm = Some(vfar.encrypt(b""));
    }
    let (m, vm): (GroupMessage, VMegolm) = (m.unwrap(), vm.unwrap());
    let native_far = || {
        let key = SessionKey::from_bytes(&far_key).unwrap();
        InboundGroupSession::new(&key)
            .unwrap()
            .decrypt(room, &m)
            .unwrap()
    };
    let v_far = || {
        let key = vodozemac::megolm::SessionKey::from_bytes(&vfar_key).unwrap();
        VInbound::new(&key, VGroupConfig::version_1())
            .decrypt(&vm)
            .unwrap()
    };
    // The creator's key validated; the session's key checked for small
    // order when parsed (vodozemac leaves that to verify_strict, which
    // both call).
    let weak_check = |key: &ed25519_dalek::VerifyingKey| assert!(!black_box(key).is_weak());
    let far_extra = || {
        weak_check(&verifier);
        validate(black_box(&ed25519_key))
    };
    run("native/decrypt_at_100000", timed(native_far), timed(v_far));
    run(
        "native/decrypt_at_100000/extra",
        timed(far_extra),
        timed(v_far),
    );
    run(
        "native/decrypt_at_100000/vs_vodozemac_plus_extra",
        timed(native_far),
        both(timed(v_far), timed(far_extra)),
    );

    // Group: export at the first index and import (no extra work: both
    // copy a ratchet and a public key).
    let mut outbound = OutboundGroupSession::new_with_rng(room, alice.identity_keys(), r).unwrap();
    let mut inbound = InboundGroupSession::new(&outbound.session_key()).unwrap();
    inbound
        .decrypt(room, &outbound.encrypt_with_rng(&[0x33; 1024], r).unwrap())
        .unwrap();
    let vinbound = {
        let mut vout = VOutbound::new(VGroupConfig::version_1());
        let mut vin = VInbound::new(&vout.session_key(), VGroupConfig::version_1());
        vin.decrypt(&vout.encrypt([0x33u8; 1024])).unwrap();
        RefCell::new(vin)
    };
    run(
        "native/export_import",
        timed(|| InboundGroupSession::import(&inbound.export_at(0).unwrap())),
        timed(|| {
            VInbound::import(
                &vinbound.borrow_mut().export_at(0).unwrap(),
                VGroupConfig::version_1(),
            )
        }),
    );

    // The same through the binary forms (encode the export, decode it:
    // both validate the session's Ed25519 key).
    run(
        "native/export_import_bytes",
        timed(|| {
            let bytes = inbound.export_at(0).unwrap().to_bytes();
            InboundGroupSession::import(&roomseal::ExportedSessionKey::from_bytes(&bytes).unwrap())
        }),
        timed(|| {
            let bytes = vinbound.borrow_mut().export_at(0).unwrap().to_bytes();
            VInbound::import(
                &vodozemac::megolm::ExportedSessionKey::from_bytes(&bytes).unwrap(),
                VGroupConfig::version_1(),
            )
        }),
    );

    // The native decoder checks the session's key for small order;
    // vodozemac's only decompresses it.
    run(
        "native/export_import_bytes/extra",
        timed(|| weak_check(&verifier)),
        timed(|| {
            let bytes = vinbound.borrow_mut().export_at(0).unwrap().to_bytes();
            VInbound::import(
                &vodozemac::megolm::ExportedSessionKey::from_bytes(&bytes).unwrap(),
                VGroupConfig::version_1(),
            )
        }),
    );

    // Pairwise session unpickle: an established initiator session (its
    // first message read by the responder, a reply read back). The native
    // pickle holds both devices' Ed25519 identity keys, validated when
    // read (the peer's validated, our own compared with the owner's), and
    // the associated-data binding is recomputed from them; vodozemac's holds
    // no Ed25519 key.
    let mut a = native_outbound();
    let DeviceMessage::PreKey(first) = a.encrypt(b"x").unwrap() else {
        unreachable!()
    };
    let mut bob2 = Account::from_pickle(&bob_pickle, &pickle_key).unwrap();
    let mut b = bob2.create_inbound_session(&first).unwrap().session;
    a.decrypt(&b.encrypt(b"reply").unwrap()).unwrap();
    let session_pickle = a.pickle(&pickle_key);
    let owner = alice.identity_keys();
    let mut va = v_outbound();
    let VOlm::PreKey(vfirst) = va.encrypt(b"x").unwrap() else {
        unreachable!()
    };
    let mut vbob2 = VAccount::from_pickle(serde_json::from_str(&vbob_pickle).unwrap());
    let mut vb = vbob2
        .create_inbound_session(SessionConfig::version_1(), valice_key, &vfirst)
        .unwrap()
        .session;
    va.decrypt(&vb.encrypt(b"reply").unwrap()).unwrap();
    let vsession_pickle = va.pickle().encrypt(&[3; 32]);
    let native_unpickle = || Session::from_pickle(&session_pickle, &pickle_key, &owner).unwrap();
    let v_unpickle = || {
        vodozemac::olm::Session::from_pickle(
            vodozemac::olm::SessionPickle::from_encrypted(&vsession_pickle, &[3; 32]).unwrap(),
        )
    };
    let owner_bytes = [owner.ed25519.to_bytes(), owner.curve25519.to_bytes()];
    let unpickle_extra = || {
        assert!(
            black_box(&owner_bytes) == &[owner.ed25519.to_bytes(), owner.curve25519.to_bytes()]
        );
        (validate(black_box(&ed25519_key)), ad_binding())
    };
    run(
        "native/session_unpickle",
        timed(native_unpickle),
        timed(v_unpickle),
    );
    run(
        "native/session_unpickle/extra",
        timed(unpickle_extra),
        timed(v_unpickle),
    );
    run(
        "native/session_unpickle/vs_vodozemac_plus_extra",
        timed(native_unpickle),
        both(timed(v_unpickle), timed(unpickle_extra)),
    );
}

criterion_group!(benches, floor, olm, megolm, paired_ratios);
criterion_main!(benches);
