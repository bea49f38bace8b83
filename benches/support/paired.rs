//! Paired ratios: an operation and its floor timed in alternating short
//! batches, so both see the same machine load. On a shared, noisy machine
//! this is the figure to judge targets by; criterion's separate estimates
//! can drift by tens of percent between benchmarks.
//!
//! Shared by the `pairwise` and `room` benches (included with `#[path]`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Runs `n` iterations and returns the time they took (setup excluded).
pub(crate) type Timed<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

pub(crate) fn timed<'a, O>(mut f: impl FnMut() -> O + 'a) -> Timed<'a> {
    Box::new(move |n| {
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(f());
        }
        start.elapsed()
    })
}

pub(crate) struct Estimate {
    name: String,
    batch: u64,
    rounds: usize,
    op_ns: f64,
    floor_ns: f64,
    ratios: Vec<f64>,
    op_min_ns: f64,
    floor_min_ns: f64,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - pos.floor())
}

/// Alternates batches of `op` and `floor` (order swapped every round)
/// for `budget`; each round yields one op/floor ratio.
pub(crate) fn measure(
    name: &str,
    mut op: Timed<'_>,
    mut floor: Timed<'_>,
    budget: Duration,
) -> Estimate {
    // Batch size: about 2 ms of floor work per batch.
    let mut batch = 1u64;
    while floor(batch) < Duration::from_millis(2) && batch < 1 << 24 {
        batch *= 2;
    }
    let warm = Instant::now();
    while warm.elapsed() < budget / 8 {
        op(batch);
        floor(batch);
    }
    let (mut ops, mut floors, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while start.elapsed() < budget || ratios.len() < 20 {
        let (o, f) = if ratios.len() % 2 == 0 {
            let o = op(batch);
            (o, floor(batch))
        } else {
            let f = floor(batch);
            (op(batch), f)
        };
        let (o, f) = (o.as_nanos() as f64, f.as_nanos() as f64);
        ops.push(o / batch as f64);
        floors.push(f / batch as f64);
        ratios.push(o / f);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        quantile(v, 0.5)
    };
    ratios.sort_by(f64::total_cmp);
    Estimate {
        name: name.to_owned(),
        batch,
        rounds: ratios.len(),
        op_min_ns: ops.iter().copied().fold(f64::INFINITY, f64::min),
        floor_min_ns: floors.iter().copied().fold(f64::INFINITY, f64::min),
        op_ns: median(&mut ops),
        floor_ns: median(&mut floors),
        ratios,
    }
}

/// Where criterion writes its results (and these files go).
pub(crate) fn output_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// Prints the estimates and writes them to `target/criterion/<file>` (for
/// example `pairwise_paired.json`) for `benches/ratios.py`.
pub(crate) fn report(estimates: &[Estimate], file: &str) {
    println!("\npaired op/composite-floor ratios (interleaved batches):");
    // Merge into earlier results, so a filtered run updates only the
    // pairs it measured.
    let dir = output_dir();
    let path = dir.join(file);
    let mut json = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|value| match value {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    let width = estimates.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for e in estimates {
        let (p25, p50, p75) = (
            quantile(&e.ratios, 0.25),
            quantile(&e.ratios, 0.5),
            quantile(&e.ratios, 0.75),
        );
        let min_ratio = e.op_min_ns / e.floor_min_ns;
        println!(
            "  {:<width$} op {:>11.0} ns  floor {:>11.0} ns  ratio {p50:.3} \
             [IQR {p25:.3}..{p75:.3}]  ratio of minima {min_ratio:.3}  \
             ({} rounds x {})",
            e.name, e.op_ns, e.floor_ns, e.rounds, e.batch
        );
        json.insert(
            e.name.clone(),
            serde_json::json!({
                "op_ns": e.op_ns,
                "floor_ns": e.floor_ns,
                "ratio_median": p50,
                "ratio_p25": p25,
                "ratio_p75": p75,
                "op_min_ns": e.op_min_ns,
                "floor_min_ns": e.floor_min_ns,
                "ratio_of_minima": min_ratio,
                "rounds": e.rounds,
                "batch": e.batch,
            }),
        );
    }
    match std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, serde_json::Value::Object(json).to_string()))
    {
        Ok(()) => println!("  written to {}", path.display()),
        Err(e) => println!("  could not write {}: {e}", path.display()),
    }
}

/// Which paired estimates to run, and for how long each.
pub(crate) struct Plan {
    filters: Vec<String>,
    /// Time spent alternating one operation with its floor.
    pub(crate) budget: Duration,
}

impl Plan {
    /// Whether `name` passes the criterion filter arguments.
    pub(crate) fn wanted(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f))
    }
}

/// Whether the paired estimate should run, and for which names: skipped in
/// criterion's `--test`/`--list`/`--profile-time` modes and when
/// `<PREFIX>_PAIRED=0`; a criterion filter argument selects names by
/// substring, with `|` separating alternatives (criterion itself reads the
/// filter as a regular expression, so plain names and `a|b` agree).
/// `<PREFIX>_PAIRED_SECS` sets the time per operation (default 4).
pub(crate) fn plan(prefix: &str) -> Option<Plan> {
    if std::env::var(format!("{prefix}_PAIRED")).is_ok_and(|v| v == "0") {
        return None;
    }
    const WITH_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--load-baseline",
        "--color",
        "-c",
        "--output-format",
        "--format",
        "--plotting-backend",
        "--sampling-mode",
    ];
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--test" | "--list" | "--profile-time" => return None,
            a if WITH_VALUE.contains(&a) => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => filters.extend(a.split('|').map(str::to_owned)),
        }
    }
    let secs: f64 = std::env::var(format!("{prefix}_PAIRED_SECS"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    Some(Plan {
        filters,
        budget: Duration::from_secs_f64(secs),
    })
}
