//! The verdict cache: what the firewall found in a text it has already read.
//!
//! Agents resend their whole conversation on every turn; without a cache each
//! turn pays the scan of all of it again. The firewall's analysis of one text
//! is a pure function of the text, how it is read (tier and source for the
//! injection rules, form for PII and secrets), the firewall's configuration and
//! its compiled weights. The cache lives inside one [`Firewall`](super::Firewall),
//! built from one configuration and one set of weights, and dies with it; the
//! rest is in the key. So a cached analysis is exactly the one a scan would
//! produce, and the request built from it (verdict, sanitised and redacted
//! text, placeholders numbered per request) is byte for byte the same.
//!
//! **Keys.** 128 bits, under two 128-bit SipHash-1-3 keys (std's
//! `RandomState`) drawn from the platform's randomness when the firewall is
//! built (WASI `random_get` in the Wasm VM). A text is hashed once per request
//! into its [`TextDigest`] (both sums of the agent's ID, see [`Scope`], and
//! the text); each reading's key is both sums again over the digest and how
//! the text is read. The keys never leave the VM, so nobody outside can
//! compute a key, let alone craft two texts that share one; a chance
//! collision takes about 2^64 texts.
//!
//! **Bounds.** At most [`VerdictCacheConfig::entries`] entries and
//! [`VerdictCacheConfig::bytes`] bytes of cached analyses (the texts themselves
//! are never kept). Eviction is CLOCK (second chance): an entry read since the
//! hand last passed survives one more sweep, and new entries start unread, so
//! a flood of texts seen once evicts each other before the conversation
//! history read on every turn. Every operation is O(1) amortised: the hand
//! clears a mark at most once per read that set it.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::work;

/// How large the verdict cache may grow (`firewall.verdict_cache` in the plugin
/// configuration). `entries: 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictCacheConfig {
    /// Most texts remembered.
    pub entries: usize,
    /// Most bytes of remembered analyses (an estimate of their heap size).
    pub bytes: usize,
}

impl VerdictCacheConfig {
    /// Upper bound on `entries`.
    pub const MAX_ENTRIES: usize = 1 << 20;
    /// Upper bound on `bytes`.
    pub const MAX_BYTES: usize = 256 << 20;
}

impl Default for VerdictCacheConfig {
    /// 8,192 texts within 4 MiB: a few hundred 30-turn sessions per worker.
    fn default() -> Self {
        VerdictCacheConfig {
            entries: 8192,
            bytes: 4 << 20,
        }
    }
}

/// Bytes an entry costs beyond its analysis: its slot, its place in the
/// index, the shared pointer's header.
pub(super) const ENTRY_OVERHEAD_BYTES: usize = 96;

/// What the cache has done since the VM started, for Envoy stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Texts whose analysis was found.
    pub hits: u64,
    /// Texts scanned because their analysis was not there.
    pub misses: u64,
    /// Analyses dropped to make room.
    pub evictions: u64,
    /// Analyses held now.
    pub entries: usize,
    /// Their estimated size now, in bytes.
    pub bytes: usize,
}

/// How a text is read, which decides what is found in it. Part of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// Injection rules and scorer; the bytes are the tier and the source.
    Verdict(u8, u8),
    /// PII and secret findings; the byte is the text's form.
    Findings(u8),
}

/// Whose texts an entry may answer for: the agent whose request it came
/// from. An agent resends its own history, so nothing is lost; and no agent
/// can learn from a faster answer whether another one sent a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a>(pub &'a str);

/// A text's key: see the module head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key(u64, u64);

/// A text's 128-bit keyed digest within a [`Scope`], tied to the very
/// `&str` it was computed from: a request's texts are hashed once, and the
/// digest serves every reading of them (injection rules, PII and secrets).
#[derive(Debug, Clone, Copy)]
pub struct TextDigest<'t> {
    sums: (u64, u64),
    /// The text it was computed from (its first byte and length): a digest
    /// offered with any other text is ignored, and that text hashed.
    of: (usize, usize),
    text: PhantomData<&'t str>,
}

impl TextDigest<'_> {
    /// Whether this is the digest of `text` itself. The same address and
    /// length while the text is borrowed (`'t`) is the same bytes.
    fn is_of(&self, text: &str) -> bool {
        self.of == (text.as_ptr() as usize, text.len())
    }
}

/// The per-VM secret keys.
#[derive(Debug)]
struct Keyer(RandomState, RandomState);

impl Keyer {
    fn random() -> Keyer {
        Keyer(RandomState::new(), RandomState::new())
    }

    /// One keyed pass over `text` (two SipHash sums of it).
    fn digest<'t>(&self, scope: Scope, text: &'t str) -> TextDigest<'t> {
        work::charge(2 * text.len());
        let sum = |state: &RandomState| {
            let mut hasher = state.build_hasher();
            // Lengths first: no two (scope, text) pairs feed the same bytes.
            hasher.write_usize(scope.0.len());
            hasher.write(scope.0.as_bytes());
            hasher.write_usize(text.len());
            hasher.write(text.as_bytes());
            hasher.finish()
        };
        TextDigest {
            sums: (sum(&self.0), sum(&self.1)),
            of: (text.as_ptr() as usize, text.len()),
            text: PhantomData,
        }
    }

    /// The key of a digested text read as `reading`: both sums again, keyed,
    /// over the reading and the digest (constant work).
    fn key(&self, digest: &TextDigest, reading: Reading) -> Key {
        let sum = |state: &RandomState| {
            let mut hasher = state.build_hasher();
            let (tag, a, b) = match reading {
                Reading::Verdict(tier, source) => (1, tier, source),
                Reading::Findings(form) => (2, form, 0),
            };
            hasher.write(&[tag, a, b]);
            hasher.write_u64(digest.sums.0);
            hasher.write_u64(digest.sums.1);
            hasher.finish()
        };
        Key(sum(&self.0), sum(&self.1))
    }
}

/// One remembered analysis.
#[derive(Debug)]
struct Slot<V> {
    key: Key,
    value: V,
    bytes: usize,
    /// Read since the hand last passed it.
    referenced: bool,
}

/// A bounded CLOCK map from keys to analyses.
#[derive(Debug)]
struct Clock<V> {
    index: HashMap<Key, usize>,
    slots: Vec<Slot<V>>,
    hand: usize,
    limits: VerdictCacheConfig,
    counts: CacheCounts,
}

impl<V: Clone> Clock<V> {
    fn new(limits: VerdictCacheConfig) -> Clock<V> {
        Clock {
            index: HashMap::new(),
            slots: Vec::new(),
            hand: 0,
            limits,
            counts: CacheCounts::default(),
        }
    }

    fn get(&mut self, key: &Key) -> Option<V> {
        let Some(slot) = self.index.get(key).and_then(|&i| self.slots.get_mut(i)) else {
            self.counts.misses += 1;
            return None;
        };
        slot.referenced = true;
        self.counts.hits += 1;
        Some(slot.value.clone())
    }

    fn insert(&mut self, key: Key, value: V, bytes: usize) {
        if self.limits.entries == 0 || bytes > self.limits.bytes || self.index.contains_key(&key) {
            return;
        }
        while !self.slots.is_empty()
            && (self.slots.len() >= self.limits.entries
                || self.counts.bytes + bytes > self.limits.bytes)
        {
            self.evict_one();
        }
        self.index.insert(key, self.slots.len());
        self.slots.push(Slot {
            key,
            value,
            bytes,
            referenced: false,
        });
        self.counts.bytes += bytes;
        self.counts.entries = self.slots.len();
    }

    /// Advances the hand to the first slot not read since it last passed,
    /// clearing marks on the way, and drops that slot.
    fn evict_one(&mut self) {
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let Some(slot) = self.slots.get_mut(self.hand) else {
                return;
            };
            if slot.referenced {
                slot.referenced = false;
                self.hand += 1;
                continue;
            }
            let gone = self.slots.swap_remove(self.hand);
            self.index.remove(&gone.key);
            // The last slot moved into the hand's place, which the hand reads next.
            if let Some(moved) = self.slots.get(self.hand) {
                self.index.insert(moved.key, self.hand);
            }
            self.counts.bytes -= gone.bytes;
            self.counts.evictions += 1;
            self.counts.entries = self.slots.len();
            return;
        }
    }
}

/// The verdict cache of one firewall, shared by its redaction sessions. `V` is
/// the injection analysis, `F` the findings of PII and secrets.
#[derive(Debug)]
pub(super) struct VerdictCache<V, F> {
    keyer: Keyer,
    maps: Mutex<(Clock<V>, Clock<F>)>,
}

impl<V: Clone, F: Clone> VerdictCache<V, F> {
    /// An empty cache within `limits`, shared between both kinds of analysis, or
    /// `None` when `limits` turn it off.
    pub(super) fn new(limits: VerdictCacheConfig) -> Option<Arc<VerdictCache<V, F>>> {
        (limits.entries > 0 && limits.bytes > 0).then(|| {
            // Each kind gets half: neither can starve the other.
            let half = VerdictCacheConfig {
                entries: limits.entries.div_ceil(2),
                bytes: limits.bytes / 2,
            };
            Arc::new(VerdictCache {
                keyer: Keyer::random(),
                maps: Mutex::new((Clock::new(half), Clock::new(half))),
            })
        })
    }

    /// The digest of `text` within `scope`: `known` when it is that text's,
    /// else computed.
    pub(super) fn digest<'t>(
        &self,
        scope: Scope,
        text: &'t str,
        known: Option<TextDigest<'t>>,
    ) -> TextDigest<'t> {
        known
            .filter(|digest| digest.is_of(text))
            .unwrap_or_else(|| self.keyer.digest(scope, text))
    }

    /// The injection analysis of the text `digest` stands for, read as
    /// `reading`: the remembered one, else `analyse`'s, remembered with its
    /// estimated size.
    pub(super) fn verdict(
        &self,
        digest: &TextDigest,
        reading: Reading,
        analyse: impl FnOnce() -> (V, usize),
    ) -> V {
        let key = self.keyer.key(digest, reading);
        if let Some(found) = self.with_maps(|(verdicts, _)| verdicts.get(&key)).flatten() {
            return found;
        }
        let (value, bytes) = analyse();
        self.with_maps(|(verdicts, _)| verdicts.insert(key, value.clone(), bytes));
        value
    }

    /// As [`VerdictCache::verdict`], for PII and secret findings.
    pub(super) fn findings(
        &self,
        digest: &TextDigest,
        reading: Reading,
        analyse: impl FnOnce() -> (F, usize),
    ) -> F {
        let key = self.keyer.key(digest, reading);
        if let Some(found) = self.with_maps(|(_, findings)| findings.get(&key)).flatten() {
            return found;
        }
        let (value, bytes) = analyse();
        self.with_maps(|(_, findings)| findings.insert(key, value.clone(), bytes));
        value
    }

    /// Both kinds' counts added up.
    pub(super) fn counts(&self) -> CacheCounts {
        self.with_maps(|(verdicts, findings)| {
            let (a, b) = (verdicts.counts, findings.counts);
            CacheCounts {
                hits: a.hits + b.hits,
                misses: a.misses + b.misses,
                evictions: a.evictions + b.evictions,
                entries: a.entries + b.entries,
                bytes: a.bytes + b.bytes,
            }
        })
        .unwrap_or_default()
    }

    /// Runs `f` on the maps. A lock poisoned by a panic elsewhere (never in the
    /// Wasm VM, where a panic aborts) leaves the cache out of the way: `None`,
    /// and the caller scans as if it missed.
    fn with_maps<T>(&self, f: impl FnOnce(&mut (Clock<V>, Clock<F>)) -> T) -> Option<T> {
        self.maps.lock().ok().map(|mut maps| f(&mut maps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(entries: usize, bytes: usize) -> Clock<u32> {
        Clock::new(VerdictCacheConfig { entries, bytes })
    }

    fn key(n: u64) -> Key {
        Key(n, !n)
    }

    #[test]
    fn a_read_entry_survives_a_flood_of_new_ones() {
        let mut c = clock(4, 1 << 20);
        c.insert(key(0), 0, 1);
        for n in 1..1000 {
            assert_eq!(c.get(&key(0)), Some(0), "hot entry lost at {n}");
            assert_eq!(c.get(&key(n)), None);
            c.insert(key(n), n as u32, 1);
            assert!(c.slots.len() <= 4 && c.index.len() == c.slots.len());
        }
        assert!(c.counts.evictions >= 990);
    }

    #[test]
    fn entries_and_bytes_stay_within_their_bounds() {
        let mut c = clock(100, 50);
        for n in 0..10_000u64 {
            c.insert(key(n), n as u32, 1 + (n as usize % 7));
            assert!(c.slots.len() <= 100 && c.counts.bytes <= 50, "at {n}");
            assert_eq!(
                c.counts.bytes,
                c.slots.iter().map(|s| s.bytes).sum::<usize>()
            );
            for (i, slot) in c.slots.iter().enumerate() {
                assert_eq!(c.index.get(&slot.key), Some(&i));
            }
        }
        // Too large for the cache at all: not kept, nothing evicted for it.
        let before = c.counts;
        c.insert(key(1 << 40), 0, 51);
        assert_eq!(c.counts, before);
        assert_eq!(c.get(&key(1 << 40)), None);
    }

    #[test]
    fn an_entry_is_found_with_its_value_until_evicted() {
        let mut c = clock(3, 100);
        for n in 0..3 {
            c.insert(key(n), n as u32 * 10, 1);
        }
        assert_eq!(c.get(&key(1)), Some(10));
        c.insert(key(3), 30, 1);
        // Entry 0, unread, went first; 1 was read and stays.
        assert_eq!(c.get(&key(0)), None);
        assert_eq!(c.get(&key(1)), Some(10));
        assert_eq!(c.get(&key(3)), Some(30));
    }

    #[test]
    fn keys_depend_on_the_agent_the_reading_and_every_byte() {
        let keyer = Keyer::random();
        let key = |scope: &str, reading: Reading, text: &str| {
            keyer.key(&keyer.digest(Scope(scope), text), reading)
        };
        let base = key("agent-a", Reading::Verdict(0, 1), "hello");
        assert_eq!(base, key("agent-a", Reading::Verdict(0, 1), "hello"));
        assert_ne!(base, key("agent-b", Reading::Verdict(0, 1), "hello"));
        // The scope's length is hashed: `ab` + `c` is not `a` + `bc`.
        assert_ne!(
            key("agent-a", Reading::Verdict(0, 1), "xhello"),
            key("agent-ax", Reading::Verdict(0, 1), "hello")
        );
        assert_ne!(base, key("agent-a", Reading::Verdict(1, 1), "hello"));
        assert_ne!(base, key("agent-a", Reading::Verdict(0, 2), "hello"));
        assert_ne!(base, key("agent-a", Reading::Findings(0), "hello"));
        assert_ne!(base, key("agent-a", Reading::Verdict(0, 1), "hellp"));
        assert_ne!(base, key("agent-a", Reading::Verdict(0, 1), "hello "));
        // Another VM's keys differ: nothing learnt in one carries over.
        let other = Keyer::random();
        let elsewhere = other.key(
            &other.digest(Scope("agent-a"), "hello"),
            Reading::Verdict(0, 1),
        );
        assert_ne!(base, elsewhere);
    }

    #[test]
    fn a_digest_serves_only_the_text_it_was_made_from() {
        let cache = VerdictCache::<u8, u8>::new(VerdictCacheConfig::default()).unwrap();
        let text = String::from("hello there");
        let same = String::from("hello there");
        let other = String::from("hello world");
        let digest = cache.digest(Scope("a"), &text, None);
        // Offered with another text, equal or not, it is set aside and that text hashed.
        let of_same = cache.digest(Scope("a"), &same, Some(digest));
        let of_other = cache.digest(Scope("a"), &other, Some(digest));
        assert_eq!(of_same.sums, digest.sums);
        assert_ne!(of_other.sums, digest.sums);
        assert!(of_other.is_of(&other) && !digest.is_of(&other));
        // A sub-slice at the same address is another text.
        let head = &text[..5];
        assert_ne!(
            cache.digest(Scope("a"), head, Some(digest)).sums,
            digest.sums
        );
    }

    #[test]
    fn zero_entries_turn_the_cache_off() {
        let off = VerdictCache::<u8, u8>::new(VerdictCacheConfig {
            entries: 0,
            bytes: 1 << 20,
        });
        assert!(off.is_none());
    }
}
