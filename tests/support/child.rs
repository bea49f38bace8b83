//! What the tests that run their own binary again as a child process share
//! (`tests/store_crash*.rs`, `tests/store_processes*.rs`): a fresh scratch
//! directory, the child's arguments, the journal of what a crash child
//! released (fsynced line by line), and the loop that starts the crash
//! child (`crash_child`) and kills it with SIGKILL at random points.

#![allow(dead_code, unreachable_pub)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The variable that names a child run's directory.
pub const CHILD_DIR: &str = "ROOMSEAL_CRASH_CHILD";
/// The variable that gives a child run its seed.
pub const CHILD_SEED: &str = "ROOMSEAL_CRASH_SEED";

/// Entries, one JSON line each, every one durable before what it records
/// is released.
pub struct Journal<E> {
    file: File,
    /// The entries, oldest first.
    pub entries: Vec<E>,
}

impl<E: Serialize + DeserializeOwned> Journal<E> {
    /// Opens the journal, dropping a torn last line (never released).
    pub fn open(path: &Path) -> Self {
        let mut entries = Vec::new();
        let mut good = 0u64;
        if let Ok(file) = File::open(path) {
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 {
                if !line.ends_with('\n') {
                    break;
                }
                match serde_json::from_str(&line) {
                    Ok(entry) => entries.push(entry),
                    Err(_) => break,
                }
                good += line.len() as u64;
                line.clear();
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.set_len(good).unwrap();
        Self { file, entries }
    }

    /// Appends an entry and makes it durable; returns its line number.
    pub fn push(&mut self, entry: E) -> usize {
        let mut text = serde_json::to_string(&entry).unwrap();
        text.push('\n');
        self.file.write_all(text.as_bytes()).unwrap();
        self.file.sync_data().unwrap();
        self.entries.push(entry);
        self.entries.len() - 1
    }
}

/// An empty scratch directory for this process.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roomseal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// In a crash child run, its directory and seed; `None` in a normal run.
pub fn crash_child_args() -> Option<(PathBuf, u64)> {
    let dir = std::env::var(CHILD_DIR).ok()?;
    let seed = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    Some((PathBuf::from(dir), seed))
}

/// A variable's number, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the kill loop did.
pub struct Kills {
    /// Children killed.
    pub kills: u64,
    /// Children started (the last, unkilled run excepted).
    pub runs: u64,
    /// Children that finished before their kill.
    pub finished: u64,
    /// Seconds the whole loop took.
    pub seconds: f64,
}

/// A crash test's parent: in a fresh directory `name`, the kill loop with
/// `ROOMSEAL_CRASH_KILLS` kills (default `kills`) within
/// `ROOMSEAL_CRASH_SECS` seconds (default `secs`), each child killed after
/// a random `pause_ms`; at least `min_kills` (or the number asked for, if
/// fewer) must have happened. Returns the directory and the figures.
pub fn crash_parent(
    name: &str,
    (kills, secs, min_kills): (u64, u64, u64),
    pause_ms: std::ops::Range<u64>,
    seed: u64,
) -> (PathBuf, Kills) {
    let kills_wanted = env_or("ROOMSEAL_CRASH_KILLS", kills);
    let budget = Duration::from_secs(env_or("ROOMSEAL_CRASH_SECS", secs));
    let dir = fresh_dir(name);
    let done = kill_loop(&dir, kills_wanted, budget, pause_ms, seed);
    assert!(
        done.kills >= kills_wanted.min(min_kills),
        "only {} kills in the time budget",
        done.kills
    );
    (dir, done)
}

/// Starts the child on `dir` again and again, killing each after a random
/// `pause_ms`, until `kills_wanted` kills or `budget`; then runs it once to
/// the end (its start checks what the kills left). A child that fails
/// fails the test with its stderr.
pub fn kill_loop(
    dir: &Path,
    kills_wanted: u64,
    budget: Duration,
    pause_ms: std::ops::Range<u64>,
    seed: u64,
) -> Kills {
    let exe = std::env::current_exe().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let start = Instant::now();
    let mut done = Kills {
        kills: 0,
        runs: 0,
        finished: 0,
        seconds: 0.0,
    };
    let spawn = |seed: u64| {
        Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .env(CHILD_SEED, seed.to_string())
            .stdout(Stdio::null())
            .stderr(File::create(dir.join("stderr")).unwrap())
            .spawn()
            .unwrap()
    };
    while done.kills < kills_wanted && start.elapsed() < budget {
        done.runs += 1;
        let mut child = spawn(done.runs);
        std::thread::sleep(Duration::from_millis(rng.random_range(pause_ms.clone())));
        match child.try_wait().unwrap() {
            Some(status) => {
                let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
                assert!(
                    status.success(),
                    "child run {} failed:\n{stderr}",
                    done.runs
                );
                done.finished += 1;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                done.kills += 1;
            }
        }
    }
    // A last run checks everything the killed runs left, then continues.
    let status = spawn(done.runs + 1).wait().unwrap();
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    assert!(status.success(), "final check failed:\n{stderr}");
    done.seconds = start.elapsed().as_secs_f64();
    done
}
