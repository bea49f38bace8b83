//! The native side of the bindings benchmark (`scripts/bench-bindings.sh`,
//! not part of the tests): the same `roomseal::ffi` calls the Python and
//! Kotlin benchmarks time through the foreign boundary, made here from Rust
//! with no boundary at all. Prints `RESULT rust <what> <ns per call>` lines.
//!
//! - `trivial_call`: `Endpoint::device_id` (lock the state, copy a short
//!   string), best of three runs;
//! - `event_round_trip`: `native_event_round_trip_ns`, one event encrypted
//!   and decrypted with JSON in and out, best of three runs.

use std::hint::black_box;
use std::time::Instant;

use roomseal::ffi::{Endpoint, RoomsealError, native_event_round_trip_ns};

const TRIVIAL_CALLS: u32 = 1_000_000;
const EVENTS: u32 = 5_000;

fn main() -> Result<(), RoomsealError> {
    let endpoint = Endpoint::new("@alice:bench".into(), "A".into())?;
    let mut trivial = f64::MAX;
    let mut event = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..TRIVIAL_CALLS {
            black_box(endpoint.device_id()?);
        }
        trivial = trivial.min(start.elapsed().as_nanos() as f64 / f64::from(TRIVIAL_CALLS));
        event = event.min(native_event_round_trip_ns(EVENTS)?);
    }
    println!("RESULT rust trivial_call {trivial:.1}");
    println!("RESULT rust event_round_trip {event:.1}");
    Ok(())
}
