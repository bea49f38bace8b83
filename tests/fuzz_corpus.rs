//! Runs the fuzz targets' entry functions on stable Rust, as part of
//! `cargo test`: every committed seed (`fuzz/seeds/<target>/`), every saved
//! crash (`fuzz/regressions/<target>/`), and a few hundred deterministic
//! pseudo-random inputs per target. The entry functions are the very ones
//! the cargo-fuzz targets call (`fuzz/src/entry.rs`).
//!
//! Regenerate the seeds (after a change to the fixture or the wire format):
//! `cargo test --test fuzz_corpus -- --ignored generate_seeds`.

#[path = "../fuzz/src/entry.rs"]
mod entry;
#[path = "../fuzz/src/matrix.rs"]
mod matrix;
#[path = "../fuzz/src/olm.rs"]
mod olm;

use std::fs;
use std::path::{Path, PathBuf};

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};

/// Pseudo-random inputs per target.
const RANDOM_INPUTS: usize = 300;

/// Largest committed seed file.
const MAX_SEED_LEN: usize = 4096;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files in `dir`, sorted by name; empty if `dir` does not exist.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join("seeds").join(target);
    let seeds = files(&dir);
    assert!(
        !seeds.is_empty(),
        "no seeds in {} (run the ignored test generate_seeds)",
        dir.display()
    );
    seeds
}

/// Derives an input from the seeds: random bytes, a mutated seed, or the
/// base64 text of a mutated seed.
fn random_input(rng: &mut ChaCha20Rng, seeds: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let strategy = rng.random_range(0..4u8);
    if strategy == 0 {
        let len = rng.random_range(0..300usize);
        return (0..len).map(|_| rng.random()).collect();
    }
    let mut bytes = seeds[rng.random_range(0..seeds.len())].1.clone();
    for _ in 0..rng.random_range(1..4) {
        if bytes.is_empty() {
            bytes.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..4u8) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = rng.random(),
            2 => bytes.truncate(at),
            _ => bytes.insert(at, rng.random()),
        }
    }
    if strategy == 3 {
        entry::base64_encode(&bytes).into_bytes()
    } else {
        bytes
    }
}

/// The entry function of a native or an Olm/Megolm target.
fn entry_of(target: &str) -> Option<fn(&[u8])> {
    entry::entry(target)
        .or_else(|| olm::olm_entry(target))
        .or_else(|| matrix::matrix_entry(target))
}

/// Every target: the native ones and the Olm/Megolm ones.
fn all_targets() -> Vec<&'static str> {
    entry::TARGETS
        .iter()
        .chain(olm::OLM_TARGETS.iter())
        .chain(matrix::MATRIX_TARGETS.iter())
        .copied()
        .collect()
}

fn replay(target: &str, rng_seed: u64) {
    let run = entry_of(target).unwrap();
    let seeds = seeds(target);
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    for (path, bytes) in seeds.iter().chain(&regressions) {
        eprintln!("{target}: {}", path.display());
        run(bytes);
    }
    let mut rng = ChaCha20Rng::seed_from_u64(rng_seed);
    for i in 0..RANDOM_INPUTS {
        let input = random_input(&mut rng, &seeds);
        eprintln!("{target}: random input {i}: {input:02x?}");
        run(&input);
    }
}

#[test]
fn decode_device_message() {
    replay("decode_device_message", 1);
}

#[test]
fn session_decrypt() {
    replay("session_decrypt", 2);
}

#[test]
fn inbound_session() {
    replay("inbound_session", 3);
}

#[test]
fn unpickle() {
    replay("unpickle", 4);
}

#[test]
fn decode_group_message() {
    replay("decode_group_message", 5);
}

#[test]
fn group_decrypt() {
    replay("group_decrypt", 6);
}

#[test]
fn decode_session_keys() {
    replay("decode_session_keys", 7);
}

#[test]
fn decode_room_key_share() {
    replay("decode_room_key_share", 8);
}

#[test]
fn decode_event_envelope() {
    replay("decode_event_envelope", 9);
}

#[test]
fn endpoint_receive() {
    replay("endpoint_receive", 10);
}

#[test]
fn unpickle_contents() {
    replay("unpickle_contents", 11);
}

/// The Olm/Megolm targets (`fuzz/src/olm.rs`), each from its own seed.
#[test]
fn olm_and_megolm_targets() {
    for (i, target) in olm::OLM_TARGETS.iter().enumerate() {
        assert!(!seeds(target).is_empty(), "no seeds for {target}");
        replay(target, 100 + i as u64);
    }
}

/// The Matrix layer's targets (`fuzz/src/matrix.rs`), each from its own
/// seed.
#[test]
fn matrix_targets() {
    for (i, target) in matrix::MATRIX_TARGETS.iter().enumerate() {
        replay(target, 200 + i as u64);
    }
}

/// Every fuzz target has an entry function, committed small seeds, and a
/// replay test above; every seed directory belongs to a target.
#[test]
fn targets_seeds_and_entries_agree() {
    let mut targets: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .into_iter()
        .map(|(p, _)| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    targets.sort();
    let mut known = all_targets();
    known.sort_unstable();
    assert_eq!(targets, known, "fuzz/fuzz_targets/ and the entry tables");
    for target in all_targets() {
        assert!(entry_of(target).is_some(), "no entry for {target}");
        for (path, bytes) in seeds(target) {
            assert!(
                bytes.len() < MAX_SEED_LEN,
                "{} is {} bytes",
                path.display(),
                bytes.len()
            );
        }
    }
    for dir in fs::read_dir(fuzz_dir().join("seeds")).unwrap() {
        let name = dir.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            all_targets().contains(&name.as_str()),
            "seeds for unknown target {name}"
        );
    }
}

/// Writes `fuzz/seeds/<target>/` from `entry::seed_inputs`, replacing what
/// is there. Review the diff before committing.
#[test]
#[ignore = "writes fuzz/seeds/; run on purpose"]
fn generate_seeds() {
    let mut inputs = entry::seed_inputs();
    inputs.extend(olm::seed_inputs());
    inputs.extend(matrix::seed_inputs());
    for target in all_targets() {
        let dir = fuzz_dir().join("seeds").join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
    }
    for (target, name, bytes) in inputs {
        assert!(all_targets().contains(&target), "unknown target {target}");
        assert!(bytes.len() < MAX_SEED_LEN, "{target}/{name} is too large");
        // Every seed must run cleanly before it is committed.
        entry_of(target).unwrap()(&bytes);
        let path = fuzz_dir().join("seeds").join(target).join(&name);
        assert!(!path.exists(), "two seeds named {target}/{name}");
        fs::write(path, bytes).unwrap();
    }
}
