//! The prefix cache: key/value states of token prefixes already run through the model, reused
//! by later requests that begin with the same tokens.
//!
//! An entry holds the per-layer keys and values of one token sequence at its true positions
//! `0..len`. Keys and values at position `p` depend only on the tokens up to `p` (causal
//! attention), so an entry serves every request that shares any prefix with it: a lookup takes
//! the longest common prefix over the entries of the same [`KvKey`] and narrows the entry to
//! it. The cache is shared by a loaded model and every model derived from it (adapters,
//! steering); the key holds everything besides the tokens that changes the state. Entries are
//! evicted least recently used first when their bytes exceed the cap.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::model::Steering;

/// Everything besides the tokens that the key/value state depends on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KvKey {
    /// Identity of the weights (a merged adapter gets new weights).
    pub(crate) weights: u64,
    /// Identity of an unmerged LoRA adapter.
    pub(crate) lora: Option<u64>,
    /// The steering configuration, compared as a whole.
    pub(crate) steering: Option<Steering>,
}

/// Hit, miss and eviction counts of a [`LocalModel`](crate::LocalModel)'s prefix cache (shared
/// with the models derived from it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixCacheStats {
    /// The cap in bytes (`LocalConfig::prefix_cache_bytes`); 0 when disabled.
    pub capacity_bytes: u64,
    /// Bytes held now.
    pub bytes: u64,
    /// Entries held now.
    pub entries: u64,
    /// Lookups that reused a cached prefix.
    pub hits: u64,
    /// Lookups that found nothing to reuse.
    pub misses: u64,
    /// Prompt tokens taken from the cache instead of being recomputed.
    pub reused_tokens: u64,
    /// Entries added.
    pub inserted: u64,
    /// Entries dropped to stay under the cap.
    pub evicted: u64,
}

struct Entry {
    key: KvKey,
    tokens: Vec<u32>,
    /// Per layer `(k, v)`, each `[1, kvh, tokens.len(), hd]`.
    layers: Vec<(Tensor, Tensor)>,
    bytes: u64,
    last_used: u64,
}

/// A cached prefix handed out by [`PrefixCache::lookup`].
#[derive(Clone)]
pub(crate) struct Hit {
    /// Identifies the entry within this lookup's batch (its token sequence's start).
    pub(crate) id: u64,
    /// Reusable length.
    pub(crate) len: usize,
    /// The entry's full per-layer state (longer than `len` in general).
    pub(crate) layers: Vec<(Tensor, Tensor)>,
}

/// A bounded, least-recently-used map from token prefixes to key/value states.
pub(crate) struct PrefixCache {
    entries: Vec<Entry>,
    ids: Vec<u64>,
    capacity: u64,
    clock: u64,
    next_id: u64,
    stats: PrefixCacheStats,
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn bytes_of(layers: &[(Tensor, Tensor)]) -> u64 {
    layers
        .iter()
        .map(|(k, v)| ((k.elem_count() + v.elem_count()) * k.dtype().size_in_bytes()) as u64)
        .sum()
}

impl PrefixCache {
    /// An empty cache holding at most `capacity` bytes (0: disabled).
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            entries: Vec::new(),
            ids: Vec::new(),
            capacity,
            clock: 0,
            next_id: 1,
            stats: PrefixCacheStats {
                capacity_bytes: capacity,
                ..PrefixCacheStats::default()
            },
        }
    }

    /// Whether the cache is on.
    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> PrefixCacheStats {
        PrefixCacheStats {
            bytes: self.entries.iter().map(|e| e.bytes).sum(),
            entries: self.entries.len() as u64,
            ..self.stats
        }
    }

    /// The entry sharing the longest prefix with `tokens`, at most `max_len` long, counted as a
    /// hit or a miss.
    pub(crate) fn lookup(&mut self, key: &KvKey, tokens: &[u32], max_len: usize) -> Option<Hit> {
        let found = self.peek(key, tokens, max_len);
        match &found {
            Some(h) => {
                self.stats.hits += 1;
                self.stats.reused_tokens += h.len as u64;
            }
            None => self.stats.misses += 1,
        }
        found
    }

    /// As [`lookup`](Self::lookup), without counting (internal probes).
    pub(crate) fn peek(&mut self, key: &KvKey, tokens: &[u32], max_len: usize) -> Option<Hit> {
        if !self.enabled() {
            return None;
        }
        let mut best: Option<(usize, usize)> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if &e.key != key {
                continue;
            }
            let n = common_prefix(&e.tokens, tokens).min(max_len);
            if n > 0 && best.is_none_or(|(_, b)| n > b) {
                best = Some((i, n));
            }
        }
        let (i, len) = best?;
        self.clock += 1;
        self.entries[i].last_used = self.clock;
        Some(Hit {
            id: self.ids[i],
            len,
            layers: self.entries[i].layers.clone(),
        })
    }

    /// The length of the longest cached prefix of `tokens` (no side effects).
    pub(crate) fn covered(&self, key: &KvKey, tokens: &[u32]) -> usize {
        self.entries
            .iter()
            .filter(|e| &e.key == key)
            .map(|e| common_prefix(&e.tokens, tokens))
            .max()
            .unwrap_or(0)
    }

    /// Adds the state of `tokens`; entries that are prefixes of it are dropped (it serves
    /// their lookups), and the least recently used entries go while over the cap. An entry
    /// larger than the whole cap is not kept.
    pub(crate) fn insert(&mut self, key: KvKey, tokens: Vec<u32>, layers: Vec<(Tensor, Tensor)>) {
        if !self.enabled() || tokens.is_empty() {
            return;
        }
        let bytes = bytes_of(&layers);
        if bytes > self.capacity {
            return;
        }
        if self.covered(&key, &tokens) == tokens.len() {
            return;
        }
        let mut i = 0;
        while i < self.entries.len() {
            let e = &self.entries[i];
            if e.key == key && tokens.starts_with(&e.tokens) {
                self.entries.swap_remove(i);
                self.ids.swap_remove(i);
            } else {
                i += 1;
            }
        }
        self.clock += 1;
        self.entries.push(Entry {
            key,
            tokens,
            layers,
            bytes,
            last_used: self.clock,
        });
        self.ids.push(self.next_id);
        self.next_id += 1;
        self.stats.inserted += 1;
        let mut total: u64 = self.entries.iter().map(|e| e.bytes).sum();
        while total > self.capacity {
            let Some((victim, _)) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
            else {
                break;
            };
            total -= self.entries[victim].bytes;
            self.entries.swap_remove(victim);
            self.ids.swap_remove(victim);
            self.stats.evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn layers(len: usize) -> Vec<(Tensor, Tensor)> {
        let t = Tensor::zeros((1, 1, len, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        vec![(t.clone(), t)]
    }

    fn key(steer: Option<f32>) -> KvKey {
        KvKey {
            weights: 1,
            lora: None,
            steering: steer.map(|scale| Steering::new(0, vec![1.0, 0.0], scale)),
        }
    }

    #[test]
    fn longest_prefix_wins_and_is_capped() {
        let mut c = PrefixCache::new(1 << 20);
        c.insert(key(None), vec![1, 2, 3], layers(3));
        c.insert(key(None), vec![1, 2, 9, 9, 9], layers(5));
        let h = c.lookup(&key(None), &[1, 2, 9, 9, 4], 100).unwrap();
        assert_eq!(h.len, 4);
        assert_eq!(c.lookup(&key(None), &[1, 2, 9, 9, 4], 2).unwrap().len, 2);
        assert!(c.lookup(&key(None), &[7, 1, 2], 100).is_none());
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.reused_tokens, s.entries), (2, 1, 6, 2));
    }

    #[test]
    fn the_key_separates_steering_and_adapters() {
        let mut c = PrefixCache::new(1 << 20);
        c.insert(key(Some(1.0)), vec![1, 2, 3], layers(3));
        assert!(c.lookup(&key(None), &[1, 2, 3], 100).is_none());
        assert!(c.lookup(&key(Some(2.0)), &[1, 2, 3], 100).is_none());
        assert_eq!(c.lookup(&key(Some(1.0)), &[1, 2, 3], 100).unwrap().len, 3);
        let other = KvKey {
            lora: Some(7),
            ..key(Some(1.0))
        };
        assert!(c.lookup(&other, &[1, 2, 3], 100).is_none());
    }

    #[test]
    fn evicts_the_least_recently_used_and_drops_covered_prefixes() {
        // 3 tokens x 2 values x 2 tensors x 4 bytes = 48 bytes per 3-token entry.
        let mut c = PrefixCache::new(100);
        c.insert(key(None), vec![1, 2, 3], layers(3));
        c.insert(key(None), vec![4, 5, 6], layers(3));
        c.lookup(&key(None), &[1, 2, 3], 100);
        c.insert(key(None), vec![7, 8, 9], layers(3));
        let s = c.stats();
        assert_eq!((s.entries, s.evicted), (2, 1));
        assert!(c.lookup(&key(None), &[4, 5, 6], 100).is_none());
        assert!(c.lookup(&key(None), &[1, 2, 3], 100).is_some());
        // A longer sequence replaces the entry it extends (and the other goes for the cap); a
        // covered one is not added.
        c.insert(key(None), vec![1, 2, 3, 4], layers(4));
        c.insert(key(None), vec![1, 2], layers(2));
        let s = c.stats();
        assert_eq!((s.entries, s.evicted, s.inserted), (1, 2, 4));
        assert_eq!(c.lookup(&key(None), &[1, 2, 3, 4], 100).unwrap().len, 4);
        // Disabled: nothing is kept.
        let mut off = PrefixCache::new(0);
        off.insert(key(None), vec![1], layers(1));
        assert!(off.lookup(&key(None), &[1], 100).is_none());
    }
}
