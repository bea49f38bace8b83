//! The one Double Ratchet behind both pairwise protocols: root key, sending
//! chain, receiving chains and the bounded store of skipped message keys,
//! with decryption staged and committed only once the message has
//! authenticated.
//!
//! What differs between the native protocol and Olm v1 is a [`Spec`]: the
//! KDF labels, the bounds, whether old receiving chains are kept (Olm has
//! no previous-chain counter, so late messages of an earlier chain are read
//! from the kept chain) and whether the next sending chain is made as soon
//! as the peer ratchets (native) or on our next encryption (Olm, as libolm
//! and vodozemac do, so a libolm pickle of a session that has not replied
//! yet can be imported). The cipher is not part of the ratchet: the session
//! types seal and open with the message seed the ratchet hands them.

use std::collections::VecDeque;
use std::marker::PhantomData;

use zeroize::Zeroizing;

use super::SessionError;
use super::chain::{ChainKey, MessageSeed, RatchetKeyPair, RootKey};
use super::skipped::{SkippedKey, SkippedKeys};
use crate::crypto::{Secret, diffie_hellman};
use crate::keys::Curve25519PublicKey;

/// What one pairwise protocol fixes about the ratchet.
pub(crate) trait Spec {
    /// HKDF info of a root-key step.
    const ROOT_INFO: &'static [u8];
    /// HMAC input of a chain step that gives the message seed.
    const CHAIN_MESSAGE: &'static [u8];
    /// HMAC input of a chain step that gives the next chain key.
    const CHAIN_NEXT: &'static [u8];
    /// Skipped message keys kept in all.
    const MAX_SKIPPED_KEYS: usize;
    /// Skipped message keys kept per chain.
    const MAX_SKIPPED_PER_CHAIN: usize;
    /// Distinct chains skipped keys are kept for.
    const MAX_SKIPPED_CHAINS: usize;
    /// Receiving chains kept (the newest is the live one).
    const RECEIVING_CHAINS: usize;
    /// Chain steps one message may force.
    const MAX_JUMP: u32;
    /// Whether the next sending chain is made when the peer ratchets (true)
    /// or on our next encryption (false).
    const EAGER_SENDING: bool;
}

/// Our sending ratchet key and chain.
#[derive(Clone, Debug)]
pub(crate) struct SendingChain {
    pub(crate) key: RatchetKeyPair,
    pub(crate) chain: ChainKey,
}

/// One of the peer's chains: its ratchet key and our copy of its chain key.
#[derive(Clone, Debug)]
pub(crate) struct ReceivingChain {
    pub(crate) ratchet_key: Curve25519PublicKey,
    pub(crate) chain: ChainKey,
}

/// The ratchet fields of a message header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) ratchet_key: Curve25519PublicKey,
    pub(crate) counter: u32,
    /// The length of the sender's previous chain (native only).
    pub(crate) previous_counter: Option<u32>,
}

/// The ratchet state of one session.
pub(crate) struct DoubleRatchet<P: Spec> {
    pub(crate) root: RootKey,
    /// Absent only between reading a new chain and our next encryption,
    /// when `P::EAGER_SENDING` is false.
    pub(crate) sending: Option<SendingChain>,
    /// The length of our previous sending chain (sent in native headers).
    pub(crate) previous_counter: u32,
    /// Oldest first; the last is the live chain.
    pub(crate) receiving: VecDeque<ReceivingChain>,
    pub(crate) skipped: SkippedKeys,
    spec: PhantomData<P>,
}

/// A decryption's changes, computed without touching the ratchet.
pub(crate) enum Staged {
    /// A stored skipped key was used: remove it.
    Skipped(usize),
    /// A kept receiving chain advanced.
    Chain {
        position: usize,
        chain: ChainKey,
        skipped: Vec<SkippedKey>,
    },
    /// The peer ratcheted: a new root and receiving chain (and, when eager,
    /// our next sending chain).
    NewChain {
        root: RootKey,
        receiving: ReceivingChain,
        sending: Option<SendingChain>,
        skipped: Vec<SkippedKey>,
    },
}

/// An encryption's seed and header, and the state to commit once sealed.
pub(crate) struct StagedSend {
    pub(crate) seed: MessageSeed,
    pub(crate) ratchet_key: Curve25519PublicKey,
    pub(crate) counter: u32,
    pub(crate) previous_counter: u32,
    next: ChainKey,
    /// A sending chain made on this encryption (lazy ratchets only).
    new: Option<(RootKey, RatchetKeyPair)>,
}

pub(crate) fn dh(
    ours: &x25519_dalek::StaticSecret,
    theirs: &Curve25519PublicKey,
) -> Result<Secret<32>, SessionError> {
    diffie_hellman(ours, theirs.as_bytes()).map_err(|_| SessionError::LowOrderKey)
}

/// One chain step with the spec's labels.
pub(crate) fn step<P: Spec>(chain: &ChainKey) -> Result<(MessageSeed, ChainKey), SessionError> {
    chain
        .step(P::CHAIN_MESSAGE, P::CHAIN_NEXT)
        .ok_or(SessionError::ChainExhausted)
}

/// Advances `chain` to index `to`, keeping the seeds of the skipped indices
/// (at most the newest `P::MAX_SKIPPED_PER_CHAIN`).
fn advance<P: Spec>(
    chain: &ChainKey,
    ratchet_key: Curve25519PublicKey,
    to: u32,
    skipped: &mut Vec<SkippedKey>,
) -> Result<ChainKey, SessionError> {
    let mut current = chain.clone();
    while current.index < to {
        let (mut seed, next) = step::<P>(&current)?;
        let distance = usize::try_from(to.saturating_sub(current.index)).unwrap_or(usize::MAX);
        if distance <= P::MAX_SKIPPED_PER_CHAIN {
            skipped.push(SkippedKey {
                ratchet_key,
                counter: current.index,
                seed: Secret::from_mut(&mut seed),
            });
        }
        current = next;
    }
    Ok(current)
}

impl<P: Spec> DoubleRatchet<P> {
    /// A ratchet from its parts (new sessions and pickles).
    pub(crate) fn from_parts(
        root: RootKey,
        sending: Option<SendingChain>,
        previous_counter: u32,
        receiving: VecDeque<ReceivingChain>,
        skipped: SkippedKeys,
    ) -> Self {
        Self {
            root,
            sending,
            previous_counter,
            receiving,
            skipped,
            spec: PhantomData,
        }
    }

    /// A full copy, for staging changes to a whole session.
    pub(crate) fn duplicate(&self) -> Self {
        Self::from_parts(
            self.root.clone(),
            self.sending.clone(),
            self.previous_counter,
            self.receiving.clone(),
            self.skipped.clone(),
        )
    }

    /// The live receiving chain.
    pub(crate) fn live(&self) -> Option<&ReceivingChain> {
        self.receiving.back()
    }

    /// The root step from our `secret` and the peer's ratchet key.
    fn ratchet_root(
        root: &RootKey,
        ours: &x25519_dalek::StaticSecret,
        theirs: &Curve25519PublicKey,
    ) -> Result<(RootKey, ChainKey), SessionError> {
        Ok(root.ratchet(&dh(ours, theirs)?, P::ROOT_INFO))
    }

    /// The seed and header fields of our next message, touching nothing.
    /// A lazy ratchet makes its sending chain here, from `rng`.
    pub(crate) fn stage_send<R: rand::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<StagedSend, SessionError> {
        let (chain, key, new) = match &self.sending {
            Some(sending) => (sending.chain.clone(), sending.key.public(), None),
            None => {
                let remote = self.live().ok_or(SessionError::ChainExhausted)?;
                let pair = RatchetKeyPair::generate(rng);
                let (root, chain) =
                    Self::ratchet_root(&self.root, &pair.secret, &remote.ratchet_key)?;
                (chain, pair.public(), Some((root, pair)))
            }
        };
        let counter = chain.index;
        let (seed, next) = step::<P>(&chain)?;
        Ok(StagedSend {
            seed,
            ratchet_key: key,
            counter,
            previous_counter: self.previous_counter,
            next,
            new,
        })
    }

    /// Commits a sealed message's chain step.
    pub(crate) fn commit_send(&mut self, staged: StagedSend) {
        match staged.new {
            Some((root, key)) => {
                self.root = root;
                self.sending = Some(SendingChain {
                    key,
                    chain: staged.next,
                });
            }
            None => {
                if let Some(sending) = self.sending.as_mut() {
                    sending.chain = staged.next;
                }
            }
        }
    }

    /// Computes everything decrypting a message with `header` changes,
    /// touching nothing. `open` decrypts with a message seed.
    pub(crate) fn stage<R: rand::CryptoRng + ?Sized>(
        &self,
        header: &Header,
        open: impl Fn(&[u8; 32]) -> Result<Zeroizing<Vec<u8>>, SessionError>,
        rng: &mut R,
    ) -> Result<(Staged, Zeroizing<Vec<u8>>), SessionError> {
        let ratchet_key = header.ratchet_key;
        let counter = header.counter;

        if let Some(index) = self.skipped.find(&ratchet_key, counter) {
            let key = self
                .skipped
                .get(index)
                .ok_or(SessionError::MessageKeyGone { counter })?;
            return Ok((Staged::Skipped(index), open(key.seed.expose())?));
        }

        if let Some(position) = self
            .receiving
            .iter()
            .rposition(|r| r.ratchet_key == ratchet_key)
        {
            let receiving = self
                .receiving
                .get(position)
                .ok_or(SessionError::MessageKeyGone { counter })?;
            let index = receiving.chain.index;
            if counter < index {
                return Err(SessionError::MessageKeyGone { counter });
            }
            let jump = counter.saturating_sub(index);
            if jump > P::MAX_JUMP {
                return Err(SessionError::TooFarAhead {
                    jump: u64::from(jump),
                    max: P::MAX_JUMP,
                });
            }
            let mut skipped = Vec::new();
            let (seed, chain) = if jump == 0 {
                // The common case: the next message in order, nothing skipped.
                step::<P>(&receiving.chain)?
            } else {
                step::<P>(&advance::<P>(
                    &receiving.chain,
                    ratchet_key,
                    counter,
                    &mut skipped,
                )?)?
            };
            let plaintext = open(&seed)?;
            return Ok((
                Staged::Chain {
                    position,
                    chain,
                    skipped,
                },
                plaintext,
            ));
        }

        // The peer has ratcheted. Its new chain may skip at most MAX_JUMP
        // keys. With a previous-chain counter (native), the keys left on
        // the live chain are kept only if that fits in the same budget;
        // otherwise those messages are given up but the session carries on.
        // Without one (Olm), the old chain itself is kept instead.
        if counter > P::MAX_JUMP {
            return Err(SessionError::TooFarAhead {
                jump: u64::from(counter),
                max: P::MAX_JUMP,
            });
        }
        let ours = self.sending.as_ref().ok_or(SessionError::Authentication)?;
        let (root, new_chain) = Self::ratchet_root(&self.root, &ours.key.secret, &ratchet_key)?;
        let mut skipped = Vec::new();
        if let (Some(previous_counter), Some(previous)) = (header.previous_counter, self.live()) {
            let rest = previous_counter.saturating_sub(previous.chain.index);
            if u64::from(rest) + u64::from(counter) <= u64::from(P::MAX_JUMP) {
                advance::<P>(
                    &previous.chain,
                    previous.ratchet_key,
                    previous_counter,
                    &mut skipped,
                )?;
            }
        }
        let at = advance::<P>(&new_chain, ratchet_key, counter, &mut skipped)?;
        let (seed, chain) = step::<P>(&at)?;
        let plaintext = open(&seed)?;

        // Authenticated: an eager ratchet prepares our next sending chain
        // against the peer's new key now.
        let (root, sending) = if P::EAGER_SENDING {
            let our_next = RatchetKeyPair::generate(rng);
            let (root, sending_chain) = Self::ratchet_root(&root, &our_next.secret, &ratchet_key)?;
            (
                root,
                Some(SendingChain {
                    key: our_next,
                    chain: sending_chain,
                }),
            )
        } else {
            (root, None)
        };
        Ok((
            Staged::NewChain {
                root,
                receiving: ReceivingChain { ratchet_key, chain },
                sending,
                skipped,
            },
            plaintext,
        ))
    }

    /// Applies a staged decryption.
    pub(crate) fn commit(&mut self, staged: Staged) {
        match staged {
            Staged::Skipped(index) => self.skipped.remove(index),
            Staged::Chain {
                position,
                chain,
                skipped,
            } => {
                if let Some(receiving) = self.receiving.get_mut(position) {
                    receiving.chain = chain;
                }
                self.extend_skipped(skipped);
            }
            Staged::NewChain {
                root,
                receiving,
                sending,
                skipped,
            } => {
                self.root = root;
                self.receiving.push_back(receiving);
                while self.receiving.len() > P::RECEIVING_CHAINS {
                    self.receiving.pop_front();
                }
                if let Some(current) = &self.sending {
                    self.previous_counter = current.chain.index;
                }
                self.sending = sending;
                self.extend_skipped(skipped);
            }
        }
    }

    fn extend_skipped(&mut self, skipped: Vec<SkippedKey>) {
        self.skipped.extend(
            skipped,
            P::MAX_SKIPPED_KEYS,
            P::MAX_SKIPPED_PER_CHAIN,
            P::MAX_SKIPPED_CHAINS,
        );
    }
}
