//! Model-based property test of the pairwise session (`Session`): random
//! schedules between Alice (initiator) and Bob (responder), each checked
//! step by step against a reference model of the Double Ratchet's failure
//! rules (`tests/model_support/mod.rs`).
//!
//! Run many schedules by hand (the default is a quick run for `cargo test`):
//!
//! ```text
//! ROOMSEAL_MODEL_CASES=10000 cargo test --release --test model_pairwise --test model_room
//! ```
//!
//! A failure prints the seed and the shrunk schedule (proptest's "minimal
//! failing input") and the last steps of the run with what the model
//! expected and what the library did.
//!
//! Actions: Alice or Bob sends (one message, a few, or a burst of up to 130
//! to overflow the skipped-key store); a conversation turn (a few messages,
//! only the last delivered at once); the network delivers any in-flight
//! message (so out of order) or the newest one for a side, drops one,
//! redelivers one already delivered, or delivers a copy of one with a byte
//! flipped; a side is pickled and restored, or rolled back to an older
//! pickle (see below).
//!
//! For every delivery the model predicts success (and the exact plaintext)
//! or the exact `SessionError` (`MessageKeyGone`, `Authentication`,
//! `TooFarAhead`, `SessionMismatch`), and for Bob's first message the
//! `AccountError` of session creation. After every failure the receiver's
//! pickle (fixed-seed generator) must be unchanged, and Bob's account must
//! be unchanged when creation fails (the one-time key is kept). Every sent
//! message's header must be what the model expects (pre-key flag, counters,
//! one ratchet key per chain, a fresh key for each chain). At the end both
//! directions must still work ("sessions never diverge").
//!
//! Beside the random schedules: `schedules_reach_every_rule` runs a fixed
//! sample of schedules and fails unless every outcome the model knows
//! happened at least once (so the model cannot pass vacuously), and
//! `forward_jump_edges` checks `MAX_FORWARD_JUMP` exactly at its edge with
//! genuine messages (the random schedules stay within a send budget).
//!
//! Restoring from pickles. A pickle taken just now round-trips: the restored
//! session must pickle identically (same generation), it restores only as a
//! session of its own account (not under the peer's identity), and the
//! schedule goes on. Restoring an OLD pickle is modelled only for a side
//! that has not *sent* since the pickle was taken: a side that sent and then
//! rolls back would send again on chain positions the peer may already have
//! used (the per-message salt keeps the AES-GCM key and nonce fresh, but the
//! peer refuses such messages as replays, and the recovery is a new session:
//! `Endpoint::recover_from_rollback`, tested at the room layer), which this
//! model does not follow. A side that has only *received* since is safe to
//! roll back: the peer never saw anything derived from the forgotten state
//! (a new ratchet key generated on receipt was never used to send), and the
//! model side is rolled back with it, so messages it had already read become
//! readable again. So `Snapshot` records a pickle together with the model
//! side; `Restore` uses one only if that side has not sent since (sending
//! discards the side's snapshots).

mod model_support;

use std::collections::BTreeMap;

use model_support::{
    Journal, Origin, PRE_KEY_BINDING, PeerModel, Pick, cases, fixed_rng, pick, pickle_key,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use roomseal::consts::MAX_FORWARD_JUMP;
use roomseal::{
    Account, AccountError, DeviceMessage, PickleKey, Session, SessionError, SessionId,
    SignedOneTimeKey, pickle_generation,
};

/// Schedules per `cargo test` run unless `ROOMSEAL_MODEL_CASES` says.
const DEFAULT_CASES: u32 = 200;

/// Schedules of the coverage check.
const COVERAGE_CASES: usize = 100;

/// Most actions in one schedule.
const MAX_ACTIONS: usize = 160;

/// Messages one side may send in a schedule: keeps every genuine gap below
/// `MAX_FORWARD_JUMP`, so the final exchange must work. (Genuine
/// `TooFarAhead` is covered by `forward_jump_edges`; forged counters reach
/// it in the model.)
const SEND_BUDGET: u32 = MAX_FORWARD_JUMP - 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Alice,
    Bob,
}

impl Side {
    fn ix(self) -> usize {
        match self {
            Side::Alice => 0,
            Side::Bob => 1,
        }
    }

    fn peer(self) -> Side {
        match self {
            Side::Alice => Side::Bob,
            Side::Bob => Side::Alice,
        }
    }
}

#[derive(Clone, Debug)]
enum Action {
    /// `from` encrypts `count` messages (Bob only once he has a session).
    Send { from: Side, count: u16 },
    /// A turn of conversation: `from` sends `1 + delayed` messages and the
    /// last one arrives at once (the others stay in flight).
    Turn { from: Side, delayed: u8 },
    /// Deliver an in-flight message to its recipient.
    Deliver(Pick),
    /// Deliver the newest in-flight message to `to` (skipping over the
    /// older ones: many chains with skipped keys).
    DeliverNewest { to: Side },
    /// Lose an in-flight message.
    Drop(Pick),
    /// Deliver again a message that was already delivered.
    Duplicate(Pick),
    /// Deliver a copy of a message (in flight or delivered) with the byte
    /// at `at` XORed with `mask`.
    Tamper {
        pick: Pick,
        delivered: bool,
        at: Pick,
        mask: u8,
    },
    /// Pickle the side and restore it at once.
    RoundTrip(Side),
    /// Keep a pickle of the side (with the model's copy) for `Restore`.
    Snapshot(Side),
    /// Restore the side from a snapshot if it has not sent since.
    Restore { side: Side, pick: Pick },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Alice), Just(Side::Bob)]
}

fn action() -> impl Strategy<Value = Action> {
    let count = prop_oneof![12 => Just(1u16), 4 => 2u16..=5, 1 => 20u16..=130];
    prop_oneof![
        20 => (side(), count).prop_map(|(from, count)| Action::Send { from, count }),
        10 => (side(), 0u8..=2).prop_map(|(from, delayed)| Action::Turn { from, delayed }),
        30 => pick().prop_map(Action::Deliver),
        10 => side().prop_map(|to| Action::DeliverNewest { to }),
        6 => pick().prop_map(Action::Drop),
        6 => pick().prop_map(Action::Duplicate),
        8 => (pick(), any::<bool>(), pick(), 1u8..=255).prop_map(
            |(pick, delivered, at, mask)| Action::Tamper { pick, delivered, at, mask }
        ),
        3 => side().prop_map(Action::RoundTrip),
        5 => side().prop_map(Action::Snapshot),
        6 => (side(), pick()).prop_map(|(side, pick)| Action::Restore { side, pick }),
    ]
}

/// A message as sent.
struct Sent {
    from: Side,
    generation: u32,
    counter: u32,
    plaintext: Vec<u8>,
    message: DeviceMessage,
}

struct Snapshot {
    pickle: String,
    model: PeerModel,
}

/// Both devices, the network and the model.
struct World {
    rng: ChaCha20Rng,
    key: PickleKey,
    alice: Session,
    bob_account: Account,
    bob: Option<Session>,
    /// The model of Alice's and Bob's side (Bob's once his session exists).
    model: [Option<PeerModel>; 2],
    session_id: SessionId,
    /// The one-time key Alice's session was started from.
    one_time_key: SignedOneTimeKey,
    sent: Vec<Sent>,
    in_flight: Vec<usize>,
    delivered: Vec<usize>,
    snapshots: [Vec<Snapshot>; 2],
    sends: [u32; 2],
    /// Messages each side may send before `send` refuses.
    budget: u32,
    /// Times each message decrypted (more than once only after a restore).
    reads: Vec<u32>,
    journal: Journal,
}

/// An error's variant name, without its fields.
fn name<E: std::fmt::Debug>(error: &E) -> String {
    let text = format!("{error:?}");
    text.split([' ', '{']).next().unwrap_or_default().to_owned()
}

fn session_state(session: &Session) -> String {
    session.pickle_with_rng(&pickle_key(), &mut fixed_rng())
}

fn account_state(account: &Account) -> String {
    account.pickle_with_rng(&pickle_key(), &mut fixed_rng())
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let alice_account = Account::new_with_rng(&mut rng);
        let mut bob_account = Account::new_with_rng(&mut rng);
        bob_account.generate_one_time_keys_with_rng(3, &mut rng);
        let bob_device = bob_account
            .device_keys("@bob:example.org", "BOB")
            .unwrap()
            .check_self_signature()
            .unwrap();
        let published = bob_account.one_time_keys();
        let one_time_key = published[1].clone();
        bob_account.mark_keys_as_published(&published);
        assert!(bob_account.one_time_keys().is_empty());
        let alice = alice_account
            .create_outbound_session_with_rng(&bob_device, &one_time_key, &mut rng)
            .unwrap();
        Self {
            key: PickleKey::random_with_rng(&mut rng),
            session_id: alice.session_id(),
            rng,
            alice,
            bob_account,
            bob: None,
            model: [Some(PeerModel::initiator()), None],
            one_time_key,
            sent: Vec::new(),
            in_flight: Vec::new(),
            delivered: Vec::new(),
            snapshots: [Vec::new(), Vec::new()],
            sends: [0, 0],
            budget: SEND_BUDGET,
            reads: Vec::new(),
            journal: Journal::default(),
        }
    }

    fn note(&mut self, line: String) {
        self.journal.note(line);
    }

    fn count(&mut self, what: String) {
        self.journal.count(what);
    }

    /// The error message of a failed check: what happened last, then why.
    fn fail(&self, why: String) -> String {
        self.journal.fail(25, why)
    }

    fn session(&mut self, side: Side) -> Option<&mut Session> {
        match side {
            Side::Alice => Some(&mut self.alice),
            Side::Bob => self.bob.as_mut(),
        }
    }

    /// Encrypts one message from `from`; returns its id.
    fn send(&mut self, from: Side) -> Result<Option<usize>, String> {
        if self.sends[from.ix()] >= self.budget || self.model[from.ix()].is_none() {
            return Ok(None);
        }
        let id = self.sent.len();
        let plaintext = format!("{from:?} says #{id}")
            .repeat(1 + id % 3)
            .into_bytes();
        // The message salt from the schedule's generator, so a seed replays
        // the same bytes.
        let mut salts = ChaCha20Rng::from_rng(&mut self.rng);
        let session = self.session(from).expect("model and sessions agree");
        let message = session
            .encrypt_with_rng(&plaintext, &mut salts)
            .map_err(|e| format!("{e}"))?;
        let model = self.model[from.ix()].as_mut().expect("checked above");
        let (generation, counter) = model.sent(&message).map_err(|e| self.fail(e))?;
        self.sends[from.ix()] += 1;
        self.snapshots[from.ix()].clear();
        self.reads.push(0);
        self.sent.push(Sent {
            from,
            generation,
            counter,
            plaintext,
            message,
        });
        self.in_flight.push(id);
        Ok(Some(id))
    }

    /// Delivers `message` to `to` and checks the outcome against the model.
    /// `genuine` is the id of the sent message it is an unaltered copy of.
    /// Returns whether it decrypted.
    fn deliver(
        &mut self,
        to: Side,
        message: &DeviceMessage,
        genuine: Option<usize>,
        label: &str,
    ) -> Result<bool, String> {
        let kind = if genuine.is_some() {
            "genuine"
        } else {
            "forged"
        };
        let origin = match genuine {
            Some(id) => Origin::Genuine {
                generation: self.sent[id].generation,
            },
            None => Origin::Forged,
        };
        let expected_plaintext = genuine.map(|id| self.sent[id].plaintext.clone());
        let header = format!(
            "{label} -> {to:?} [{} ratchet {:?} previous {} counter {}]",
            if message.is_pre_key() {
                "pre-key"
            } else {
                "normal"
            },
            &message.normal().ratchet_key().to_base64()[..6],
            message.normal().previous_counter(),
            message.normal().counter()
        );

        // Bob before his session exists: the message creates it.
        if to == Side::Bob && self.bob.is_none() {
            let DeviceMessage::PreKey(pre_key) = message else {
                self.note(format!(
                    "{header}: Bob has no session, not a pre-key message"
                ));
                return Ok(false);
            };
            let expected: Result<PeerModel, AccountError> =
                if pre_key.one_time_key() != self.one_time_key.key {
                    Err(AccountError::UnknownOneTimeKey)
                } else if pre_key.session_id() != self.session_id || self.binding_changed(message) {
                    Err(AccountError::Session(SessionError::BadBinding))
                } else {
                    PeerModel::responder(message, origin)
                        .map(|(model, _)| model)
                        .map_err(AccountError::Session)
                };
            let before = account_state(&self.bob_account);
            let actual = self
                .bob_account
                .create_inbound_session_with_rng(pre_key, &mut self.rng);
            let outcome = match (&expected, actual) {
                (Ok(model), Ok(created)) => {
                    if Some(created.plaintext.as_slice()) != expected_plaintext.as_deref() {
                        return Err(self.fail(format!("{header}: wrong plaintext on creation")));
                    }
                    if created.session.session_id() != self.session_id {
                        return Err(self.fail(format!("{header}: wrong session id")));
                    }
                    self.bob = Some(created.session);
                    self.model[1] = Some(model.clone());
                    self.count("genuine create: ok".to_owned());
                    "created Bob's session".to_owned()
                }
                (Err(want), Err(got)) if *want == got => {
                    if account_state(&self.bob_account) != before {
                        return Err(self.fail(format!(
                            "{header}: failed creation ({got}) changed Bob's account"
                        )));
                    }
                    self.count(format!("{kind} create: {}", name(&got)));
                    format!("creation failed as expected: {got:?}")
                }
                (want, got) => {
                    let got = got.map(|_| "created");
                    return Err(self.fail(format!(
                        "{header}: creation: model expected {:?}, library returned {got:?}",
                        want.as_ref().map(|_| "created")
                    )));
                }
            };
            let ok = expected.is_ok();
            self.note(format!("{header}: {outcome}"));
            return Ok(ok);
        }

        let model = self.model[to.ix()].as_ref().expect("session exists");
        let expected = model.receive(self.session_id, message, origin);
        let mut rng = ChaCha20Rng::from_rng(&mut self.rng);
        let session = self.session(to).expect("session exists");
        let before = session_state(session);
        let actual = session.decrypt_with_rng(message, &mut rng);
        let after = session_state(session);
        match (expected, actual) {
            (Ok((next, path)), Ok(plaintext)) => {
                if Some(plaintext.as_slice()) != expected_plaintext.as_deref() {
                    return Err(self.fail(format!("{header}: decrypted to the wrong plaintext")));
                }
                self.model[to.ix()] = Some(next);
                self.count(format!("{kind} ok: {}", path.kind));
                if path.evicted_keys > 0 {
                    self.count("evicted oldest skipped keys".to_owned());
                }
                if path.evicted_chains > 0 {
                    self.count("evicted oldest chain".to_owned());
                }
                if let Some(id) = genuine {
                    self.reads[id] += 1;
                    if self.reads[id] > 1 {
                        self.count("read again after a restore".to_owned());
                    }
                }
                self.note(format!("{header}: decrypted"));
                Ok(true)
            }
            (Err(want), Err(got)) if want == got => {
                if before != after {
                    return Err(self.fail(format!(
                        "{header}: failed with {got:?} as expected but changed the session"
                    )));
                }
                self.count(format!("{kind} err: {}", name(&got)));
                self.note(format!("{header}: failed as expected: {got:?}"));
                Ok(false)
            }
            (want, got) => Err(self.fail(format!(
                "{header}: model expected {:?}, library returned {:?}",
                want.map(|_| "plaintext"),
                got.map(|_| "plaintext")
            ))),
        }
    }

    /// Whether a copy of a pre-key message has a different binding
    /// signature than the session's genuine one.
    fn binding_changed(&self, message: &DeviceMessage) -> bool {
        let genuine = self
            .sent
            .iter()
            .find(|s| s.message.is_pre_key())
            .expect("a pre-key message was sent");
        genuine.message.to_bytes()[PRE_KEY_BINDING] != message.to_bytes()[PRE_KEY_BINDING]
    }

    fn deliver_sent(&mut self, id: usize, label: &str) -> Result<bool, String> {
        let to = self.sent[id].from.peer();
        let message = self.sent[id].message.clone();
        let label = format!(
            "{label} #{id} ({:?} gen {} ctr {})",
            self.sent[id].from, self.sent[id].generation, self.sent[id].counter
        );
        self.deliver(to, &message, Some(id), &label)
    }

    fn step(&mut self, step: usize, action: &Action) -> Result<(), String> {
        self.note(format!("step {step}: {action:?}"));
        match action {
            Action::Send { from, count } => {
                for _ in 0..*count {
                    if self.send(*from)?.is_none() {
                        break;
                    }
                }
            }
            Action::Deliver(pick) => {
                if !self.in_flight.is_empty() {
                    let id = self.in_flight.remove(pick.of(self.in_flight.len()));
                    self.delivered.push(id);
                    self.deliver_sent(id, "deliver")?;
                }
            }
            Action::Turn { from, delayed } => {
                let mut last = None;
                for _ in 0..=*delayed {
                    last = self.send(*from)?.or(last);
                }
                if let Some(id) = last {
                    self.in_flight.retain(|&i| i != id);
                    self.delivered.push(id);
                    self.deliver_sent(id, "turn")?;
                }
            }
            Action::DeliverNewest { to } => {
                let newest = self
                    .in_flight
                    .iter()
                    .rposition(|&id| self.sent[id].from == to.peer());
                if let Some(at) = newest {
                    let id = self.in_flight.remove(at);
                    self.delivered.push(id);
                    self.deliver_sent(id, "deliver newest")?;
                }
            }
            Action::Drop(pick) => {
                if !self.in_flight.is_empty() {
                    let id = self.in_flight.remove(pick.of(self.in_flight.len()));
                    self.note(format!("dropped #{id}"));
                }
            }
            Action::Duplicate(pick) => {
                if !self.delivered.is_empty() {
                    let id = self.delivered[pick.of(self.delivered.len())];
                    self.deliver_sent(id, "redeliver")?;
                }
            }
            Action::Tamper {
                pick,
                delivered,
                at,
                mask,
            } => {
                let pool = if *delivered && !self.delivered.is_empty() {
                    &self.delivered
                } else {
                    &self.in_flight
                };
                if !pool.is_empty() {
                    let id = pool[pick.of(pool.len())];
                    let mut bytes = self.sent[id].message.to_bytes();
                    let at = at.of(bytes.len());
                    bytes[at] ^= mask;
                    let label = format!("tampered #{id} (byte {at} ^ {mask:#04x})");
                    match DeviceMessage::from_bytes(&bytes) {
                        Ok(forged) => {
                            let to = self.sent[id].from.peer();
                            if self.deliver(to, &forged, None, &label)? {
                                return Err(self.fail(format!("{label} decrypted")));
                            }
                        }
                        Err(e) => self.note(format!("{label}: does not decode ({e})")),
                    }
                }
            }
            Action::RoundTrip(side) => {
                let key = self.key.clone();
                let mut rng = ChaCha20Rng::from_rng(&mut self.rng);
                if let Some(session) = self.session(*side) {
                    let before = session_state(session);
                    let pickle = session.pickle_with_rng(&key, &mut rng);
                    let generation = session.pickle_generation();
                    let owner = session.local_identity();
                    let as_peer = Session::from_pickle(&pickle, &key, &session.peer_identity());
                    let restored = Session::from_pickle(&pickle, &key, &owner).unwrap();
                    let problem = if session_state(&restored) != before {
                        Some("round-tripped session differs")
                    } else if pickle_generation(&pickle) != Ok(generation)
                        || restored.pickle_generation() != generation
                    {
                        Some("round trip changed the generation")
                    } else if as_peer.is_ok() {
                        Some("a session pickle restored under the peer's identity")
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        return Err(self.fail(problem.to_owned()));
                    }
                    *session = restored;
                }
            }
            Action::Snapshot(side) => {
                let key = self.key.clone();
                let mut rng = ChaCha20Rng::from_rng(&mut self.rng);
                let model = self.model[side.ix()].clone();
                if let (Some(session), Some(model)) = (self.session(*side), model) {
                    let pickle = session.pickle_with_rng(&key, &mut rng);
                    let snapshots = &mut self.snapshots[side.ix()];
                    snapshots.push(Snapshot { pickle, model });
                    if snapshots.len() > 4 {
                        snapshots.remove(0);
                    }
                }
            }
            Action::Restore { side, pick } => {
                let snapshots = &self.snapshots[side.ix()];
                if !snapshots.is_empty() {
                    let snapshot = &snapshots[pick.of(snapshots.len())];
                    let owner = match side {
                        Side::Alice => self.alice.local_identity(),
                        Side::Bob => self.bob_account.identity_keys(),
                    };
                    let restored = Session::from_pickle(&snapshot.pickle, &self.key, &owner)
                        .unwrap_or_else(|e| panic!("snapshot of {side:?} does not restore: {e}"));
                    let model = snapshot.model.clone();
                    self.note(format!(
                        "restored {side:?} to tx {:?} / live {:?}",
                        (model.tx.generation, model.tx.counter),
                        model.rx.live.as_ref().map(|l| (l.generation, l.next))
                    ));
                    *self.session(*side).expect("snapshots need a session") = restored;
                    self.model[side.ix()] = Some(model);
                    self.count(format!("restored {side:?} from an old pickle"));
                }
            }
        }
        Ok(())
    }

    /// Sessions never diverge: a fresh message each way decrypts (Alice's
    /// first if Bob has no session yet).
    fn finish(&mut self) -> Result<(), String> {
        self.note("final exchange".to_owned());
        for from in [Side::Alice, Side::Bob, Side::Alice, Side::Bob] {
            self.sends[from.ix()] = 0;
            let id = self.send(from)?.expect("both sides can send");
            self.in_flight.retain(|&i| i != id);
            if !self.deliver_sent(id, "fresh")? {
                return Err(self.fail(format!("fresh message #{id} did not decrypt")));
            }
        }
        Ok(())
    }
}

fn run(seed: u64, actions: &[Action]) -> Result<World, String> {
    let mut world = World::new(seed);
    // Alice's first message: without it neither side can do much.
    world.send(Side::Alice)?;
    for (step, action) in actions.iter().enumerate() {
        world.step(step, action)?;
    }
    world.finish()?;
    Ok(world)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(DEFAULT_CASES),
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every delivery in a random schedule does what the model predicts.
    #[test]
    fn pairwise_schedules_follow_the_model(
        seed in any::<u64>(),
        actions in proptest::collection::vec(action(), 0..MAX_ACTIONS),
    ) {
        run(seed, &actions).map_err(TestCaseError::fail)?;
    }
}

/// The schedules are not vacuous: a fixed sample of them reaches every rule
/// the model knows (each outcome below happens at least once).
#[test]
fn schedules_reach_every_rule() {
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = (
        any::<u64>(),
        proptest::collection::vec(action(), 0..MAX_ACTIONS),
    );
    let mut stats: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..COVERAGE_CASES {
        let (seed, actions) = strategy.new_tree(&mut runner).unwrap().current();
        let world = run(seed, &actions).unwrap_or_else(|e| panic!("{e}"));
        for (what, n) in world.journal.stats {
            *stats.entry(what).or_default() += n;
        }
    }
    eprintln!("outcomes over {COVERAGE_CASES} schedules: {stats:#?}");
    for required in [
        "genuine create: ok",
        "forged create: UnknownOneTimeKey",
        "forged create: Session(BadBinding)",
        "forged create: Session(Authentication)",
        "genuine ok: live",
        "genuine ok: skipped",
        "genuine ok: new chain",
        "genuine err: MessageKeyGone",
        "genuine err: Authentication",
        "forged err: Authentication",
        "forged err: MessageKeyGone",
        "forged err: TooFarAhead",
        "forged err: SessionMismatch",
        "evicted oldest skipped keys",
        "evicted oldest chain",
        "restored Alice from an old pickle",
        "restored Bob from an old pickle",
        "read again after a restore",
    ] {
        assert!(
            stats.contains_key(required),
            "no schedule reached {required:?}"
        );
    }
}

/// The forward-jump bound at its edges, where the random schedules (which
/// stay within a send budget) do not go with genuine messages: skipping
/// exactly `MAX_FORWARD_JUMP` keys works, one more is `TooFarAhead` and
/// changes nothing on the live chain; when a new chain arrives after more
/// lost messages than that on the previous chain, those are given up and the
/// new chain is read (lost messages never cut a direction off); a new chain
/// that itself skips too far is `TooFarAhead`.
#[test]
fn forward_jump_edges() {
    let gap = MAX_FORWARD_JUMP as usize;
    for (extra, new_chain, gap_on_new_chain) in [
        (0, false, false),
        (1, false, false),
        (0, true, false),
        (1, true, false),
        (0, true, true),
        (1, true, true),
    ] {
        let mut world = World::new(7);
        world.budget = u32::MAX;
        world.send(Side::Alice).unwrap();
        world.deliver_sent(0, "first").unwrap();
        let reply = world.send(Side::Bob).unwrap().unwrap();
        world.deliver_sent(reply, "reply").unwrap();
        // Alice's chain is now generation 1; Bob reads its first message.
        let first = world.send(Side::Alice).unwrap().unwrap();
        world.deliver_sent(first, "first of generation 1").unwrap();
        // Then `gap + extra` messages are lost, on this chain or on the
        // next one.
        if !gap_on_new_chain {
            for _ in 0..gap + extra {
                world.send(Side::Alice).unwrap();
            }
        }
        if new_chain {
            // Bob replies and Alice ratchets: her next chain announces how
            // long the previous one was.
            let reply = world.send(Side::Bob).unwrap().unwrap();
            world.deliver_sent(reply, "reply").unwrap();
        }
        if gap_on_new_chain {
            for _ in 0..gap + extra {
                world.send(Side::Alice).unwrap();
            }
        }
        let last = world.send(Side::Alice).unwrap().unwrap();
        let expected_jump = (gap + extra) as u64;
        let before = session_state(world.bob.as_ref().unwrap());
        let result = world
            .bob
            .as_mut()
            .unwrap()
            .decrypt(&world.sent[last].message);
        let readable = extra == 0 || (new_chain && !gap_on_new_chain);
        if readable {
            assert_eq!(result.unwrap(), world.sent[last].plaintext);
        } else {
            assert_eq!(
                result.unwrap_err(),
                SessionError::TooFarAhead {
                    jump: expected_jump,
                    max: MAX_FORWARD_JUMP
                }
            );
            assert_eq!(session_state(world.bob.as_ref().unwrap()), before);
        }
        // Either way the model agrees (the send budget is not in play here).
        let model = world.model[1].as_ref().unwrap();
        let predicted = model.receive(
            world.session_id,
            &world.sent[last].message,
            Origin::Genuine {
                generation: world.sent[last].generation,
            },
        );
        assert_eq!(predicted.is_ok(), readable, "{predicted:?}");
    }
}
