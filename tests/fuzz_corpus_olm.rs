//! Runs the Olm/Megolm fuzz targets' entry functions (`fuzz/src/olm.rs`)
//! on stable Rust: every committed seed (`fuzz/seeds/<target>/`), every
//! saved crash (`fuzz/regressions/<target>/`) and a few hundred
//! deterministic pseudo-random inputs per target.
//!
//! Regenerate the seeds: `cargo test --test fuzz_corpus_olm -- --ignored
//! generate_seeds`.

#[path = "../fuzz/src/olm.rs"]
mod olm;

use std::fs;
use std::path::{Path, PathBuf};

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};

const RANDOM_INPUTS: usize = 300;
const MAX_SEED_LEN: usize = 4096;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

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
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn random_input(rng: &mut ChaCha20Rng, seeds: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    if rng.random_range(0..4u8) == 0 {
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
    bytes
}

fn replay(target: &str, seed: u64) {
    let run = olm::olm_entry(target).unwrap();
    let seeds = files(&fuzz_dir().join("seeds").join(target));
    assert!(
        !seeds.is_empty(),
        "no seeds for {target} (run the ignored generate_seeds)"
    );
    for (path, bytes) in seeds
        .iter()
        .chain(&files(&fuzz_dir().join("regressions").join(target)))
    {
        assert!(bytes.len() < MAX_SEED_LEN, "{}", path.display());
        run(bytes);
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for _ in 0..RANDOM_INPUTS {
        run(&random_input(&mut rng, &seeds));
    }
}

#[test]
fn every_target_replays() {
    for (i, target) in olm::OLM_TARGETS.iter().enumerate() {
        replay(target, 100 + i as u64);
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{target}.rs"))
                .exists(),
            "no fuzz target file for {target}"
        );
    }
}

#[test]
#[ignore = "writes fuzz/seeds/; run on purpose"]
fn generate_seeds() {
    for target in olm::OLM_TARGETS {
        let dir = fuzz_dir().join("seeds").join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
    }
    for (target, name, bytes) in olm::seed_inputs() {
        olm::olm_entry(target).unwrap()(&bytes);
        fs::write(fuzz_dir().join("seeds").join(target).join(name), bytes).unwrap();
    }
}
