//! Scoring through the prefix cache.
//!
//! The scoring jobs of one batch are grouped by the cache entry that covers the longest prefix
//! of their tokens. Within a group the tokens after the cached prefix form a tree (a trie):
//! jobs that share a prompt share its nodes, and the continuations of one prompt hang off it.
//! Every node is computed once:
//! - a chain of single-child nodes (a shared prompt) runs as one ordinary forward pass that
//!   extends the cached keys and values;
//! - where the tree branches, whole subtrees are packed into one sequence of at most
//!   [`PACK_NODES`] tokens with their true positions and a mask that lets each token see the
//!   cached prefix and its own ancestors only (tree attention), so K continuations of a prompt
//!   cost one pass over their distinct tokens.
//!
//! Logits are computed only where a job needs them. The state of each job's prompt (the whole
//! input of a distribution, the context of a continuation) is added to the cache for later
//! requests.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

use candle_core::{D, Tensor};

use crate::LocalError;
use crate::engine::{Engine, ScoreOut};
use crate::llama::{Ctx, KvCache, build_mask};
use crate::prefix::Hit;
use crate::sampling::argmax;

/// The most tokens of one packed forward over a tree's branches.
const PACK_NODES: usize = 256;

/// The most logit rows computed at once (each is a vocabulary-sized row).
const LOGIT_ROWS: usize = 64;

/// One scoring request as the tree scorer sees it.
pub(crate) struct TreeJob {
    pub(crate) ids: Vec<u32>,
    /// Score `ids[start..]` as a continuation of `ids[..start]`.
    pub(crate) cont_start: Option<usize>,
    /// The next-token log-distribution after the last token.
    pub(crate) want_dist: bool,
    /// Continuation prefixes whose probabilities sum to at most this fraction of the mass of
    /// the complete continuations of the prompt already found may be left unscored (0: never).
    pub(crate) prune_below: f32,
}

/// What a job needs from one node's output.
enum Need {
    /// The full log-distribution (member index).
    Dist(usize),
    /// The log-probability of `target` as continuation token `k` of member `job`.
    Cont { job: usize, k: usize, target: u32 },
}

#[derive(Default)]
struct Tree {
    token: Vec<u32>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
    size: Vec<usize>,
    needs: Vec<Vec<Need>>,
    /// A prompt ending at this node to add to the cache: (job, prompt length).
    insert: Vec<Option<(usize, usize)>>,
    /// For a continuation node: a member scoring it and the token's index in its continuation
    /// (where the conditional log-probability of the node's token lands).
    enter: Vec<Option<(usize, usize)>>,
    /// The log of the fraction of the mass of the complete continuations of its prompt found
    /// so far that the prefixes left out may sum to (`-inf`: never left out, e.g. a prompt
    /// node or a member that scores everything).
    floor: Vec<f32>,
    /// For a continuation node: the last prompt node above it.
    anchor: Vec<Option<usize>>,
    /// Per member: the last node of its prompt, when it scores a continuation that may be cut.
    member_anchor: Vec<Option<usize>>,
    index: HashMap<(usize, u32), usize>,
    /// Whether a node of the subtree may be left out (set by `finish`).
    prunable: Vec<bool>,
}

impl Tree {
    /// The nodes of `tokens` as a path from the root, created where missing.
    fn add_path(&mut self, tokens: &[u32]) -> Vec<usize> {
        let mut path = Vec::with_capacity(tokens.len());
        let mut parent: Option<usize> = None;
        for &t in tokens {
            let slot = (parent.unwrap_or(usize::MAX), t);
            let node = match self.index.get(&slot) {
                Some(&n) => n,
                None => {
                    let n = self.token.len();
                    self.token.push(t);
                    self.parent.push(parent);
                    self.children.push(Vec::new());
                    self.needs.push(Vec::new());
                    self.insert.push(None);
                    self.enter.push(None);
                    self.floor.push(f32::INFINITY);
                    self.anchor.push(None);
                    match parent {
                        Some(p) => self.children[p].push(n),
                        None => self.roots.push(n),
                    }
                    self.index.insert(slot, n);
                    n
                }
            };
            path.push(node);
            parent = Some(node);
        }
        path
    }

    /// Subtree sizes (children are always created after their parent).
    fn finish(&mut self) {
        self.size = vec![1; self.token.len()];
        self.prunable = self.floor.iter().map(|f| f.is_finite()).collect();
        for n in (0..self.token.len()).rev() {
            if let Some(p) = self.parent[n] {
                self.size[p] += self.size[n];
                self.prunable[p] |= self.prunable[n];
            }
        }
    }
}

/// Jobs served by one cache entry (or none): the entry, and each member's index with the
/// length of its reusable prefix.
type Group = (Option<Hit>, Vec<(usize, usize)>);

fn fail(message: &str) -> LocalError {
    LocalError::Candle(candle_core::Error::Msg(message.to_owned()))
}

impl Engine {
    /// Scores `jobs` reusing and filling the prefix cache (see the [module docs](self)).
    pub(crate) fn score_cached(&self, jobs: &[TreeJob]) -> Vec<Result<ScoreOut, LocalError>> {
        let ctx_len = self.weights.hp.context_length;
        let mut results: Vec<Option<Result<ScoreOut, LocalError>>> =
            (0..jobs.len()).map(|_| None).collect();
        let mut groups: Vec<Group> = Vec::new();
        let mut by_entry: HashMap<u64, usize> = HashMap::new();
        {
            let mut cache = self.cache.lock();
            for (i, j) in jobs.iter().enumerate() {
                let len = j.ids.len();
                if len == 0 {
                    results[i] = Some(Err(fail("empty input")));
                    continue;
                }
                if len > ctx_len {
                    results[i] = Some(Err(LocalError::ContextLength {
                        tokens: len,
                        max_new: 0,
                        context: ctx_len,
                    }));
                    continue;
                }
                // The first position whose output is needed: everything before it may come
                // from the cache.
                let mut need_from = if j.want_dist { len - 1 } else { usize::MAX };
                if let Some(s) = j.cont_start
                    && s.max(1) < len
                {
                    need_from = need_from.min(s.max(1) - 1);
                }
                if need_from == usize::MAX {
                    results[i] = Some(Ok(ScoreOut::default()));
                    continue;
                }
                match cache.lookup(&self.key, &j.ids, need_from) {
                    Some(hit) => {
                        let g = *by_entry.entry(hit.id).or_insert_with(|| {
                            groups.push((Some(hit.clone()), Vec::new()));
                            groups.len() - 1
                        });
                        groups[g].1.push((i, hit.len));
                    }
                    None => {
                        let g = *by_entry.entry(0).or_insert_with(|| {
                            groups.push((None, Vec::new()));
                            groups.len() - 1
                        });
                        groups[g].1.push((i, 0));
                    }
                }
            }
        }
        for (hit, members) in groups {
            let base_len = members.iter().map(|m| m.1).min().unwrap_or(0);
            let idx: Vec<usize> = members.iter().map(|m| m.0).collect();
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.score_group(jobs, hit.as_ref(), base_len, &idx)
            }));
            match r {
                Ok(Ok(outs)) => {
                    for (&i, out) in idx.iter().zip(outs) {
                        results[i] = Some(Ok(out));
                    }
                }
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    for &i in &idx {
                        results[i] = Some(Err(fail(&msg)));
                    }
                }
                Err(p) => {
                    let msg = format!("scoring panicked: {}", crate::engine::panic_message(&*p));
                    for &i in &idx {
                        results[i] = Some(Err(fail(&msg)));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(fail("a job was not scored"))))
            .collect()
    }

    fn score_group(
        &self,
        jobs: &[TreeJob],
        hit: Option<&Hit>,
        base_len: usize,
        members: &[usize],
    ) -> Result<Vec<ScoreOut>, LocalError> {
        let mut tree = Tree::default();
        let mut outs = Vec::with_capacity(members.len());
        for (m, &ji) in members.iter().enumerate() {
            let j = &jobs[ji];
            let len = j.ids.len();
            let end = if j.want_dist { len } else { len - 1 };
            let path = tree.add_path(&j.ids[base_len..end]);
            let node = |p: usize| path[p - base_len];
            let first = j.cont_start.map(|s| s.max(1));
            let floor = if j.prune_below > 0.0 {
                j.prune_below.ln()
            } else {
                f32::NEG_INFINITY
            };
            let anchor = first
                .filter(|&f| f < len && f > base_len && j.prune_below > 0.0)
                .map(|f| node(f - 1));
            tree.member_anchor.push(anchor);
            for p in base_len..end {
                let x = node(p);
                match first {
                    Some(f) if p >= f => {
                        let k = p - f;
                        if tree.anchor[x].is_none() {
                            tree.anchor[x] = anchor;
                        }
                        match tree.enter[x] {
                            None => tree.enter[x] = Some((m, k)),
                            // Members reach the node at different continuation depths: its
                            // prefix probability is not one number, so it is always computed.
                            Some((_, k0)) if k0 != k => tree.floor[x] = f32::NEG_INFINITY,
                            Some(_) => {}
                        }
                        tree.floor[x] = tree.floor[x].min(floor);
                        if anchor.is_none() {
                            tree.floor[x] = f32::NEG_INFINITY;
                        }
                    }
                    _ => tree.floor[x] = f32::NEG_INFINITY,
                }
            }
            let mut out = ScoreOut::default();
            if j.want_dist {
                tree.needs[node(len - 1)].push(Need::Dist(m));
            }
            if let Some(s) = j.cont_start {
                let first = s.max(1);
                out.cont = vec![(f32::NEG_INFINITY, false); len.saturating_sub(first)];
                for (k, p) in (first..len).enumerate() {
                    tree.needs[node(p - 1)].push(Need::Cont {
                        job: m,
                        k,
                        target: j.ids[p],
                    });
                }
            }
            let prompt = if j.want_dist {
                len
            } else {
                j.cont_start.unwrap_or(0)
            };
            if prompt > base_len {
                tree.insert[node(prompt - 1)] = Some((ji, prompt));
            }
            outs.push(out);
        }
        tree.finish();
        let base = match hit {
            Some(h) if base_len > 0 => {
                let mut layers = Vec::with_capacity(h.layers.len());
                for (k, v) in &h.layers {
                    layers.push((
                        k.narrow(2, 0, base_len)?.contiguous()?,
                        v.narrow(2, 0, base_len)?.contiguous()?,
                    ));
                }
                KvCache::from_layers(layers)
            }
            _ => KvCache::new(self.weights.n_layer()),
        };
        let roots = tree.roots.clone();
        self.process(&base, base_len, &tree, &roots, jobs, &mut outs)?;
        Ok(outs)
    }

    /// Computes the subtrees `start` hanging off the state `base` (`base_len` positions).
    fn process(
        &self,
        base: &KvCache,
        base_len: usize,
        tree: &Tree,
        start: &[usize],
        jobs: &[TreeJob],
        outs: &mut [ScoreOut],
    ) -> Result<(), LocalError> {
        let w = &self.weights;
        let mut chain = Vec::new();
        let mut cur: &[usize] = start;
        while let [only] = cur {
            chain.push(*only);
            cur = &tree.children[*only];
        }
        let mut base = base.clone();
        let mut base_len = base_len;
        if !chain.is_empty() {
            let n = chain.len();
            let ids: Vec<u32> = chain.iter().map(|&c| tree.token[c]).collect();
            let ids = Tensor::from_vec(ids, (1, n), &w.device)?;
            let mask = build_mask(&[vec![true; base_len + n]], n, &w.device)?;
            let mut ctx = Ctx::infer(self.lora.as_deref(), self.steering.as_ref());
            let (h, _) = w.forward(&ids, mask.as_ref(), Some(&mut base), &mut ctx)?;
            self.collect(&h, &chain, tree, outs)?;
            for &c in &chain {
                if let Some((ji, plen)) = tree.insert[c] {
                    let idx: Vec<u32> = (0..plen as u32).collect();
                    self.insert_prefix(&jobs[ji].ids[..plen], || base.gather(0, &idx))?;
                }
            }
            base_len += n;
        }
        let (expand, cur): (Vec<usize>, Vec<usize>) = cur
            .iter()
            .copied()
            .partition(|&s| tree.floor[s].is_finite());
        if !expand.is_empty() {
            self.expand(&base, base_len, tree, &expand, jobs, outs)?;
        }
        let mut pack: Vec<usize> = Vec::new();
        let mut size = 0;
        for &s in &cur {
            // A subtree with continuations that may be left out below a prompt node: its own
            // pass down to where they start.
            if tree.size[s] > PACK_NODES || tree.prunable[s] {
                self.process(&base, base_len, tree, &[s], jobs, outs)?;
                continue;
            }
            if size + tree.size[s] > PACK_NODES {
                self.run_pack(&base, base_len, tree, &pack, jobs, outs)?;
                pack.clear();
                size = 0;
            }
            pack.push(s);
            size += tree.size[s];
        }
        if !pack.is_empty() {
            self.run_pack(&base, base_len, tree, &pack, jobs, outs)?;
        }
        Ok(())
    }

    /// Computes the subtrees `roots` hanging off `base` level by level, leaving out the least
    /// probable continuation prefixes (with their subtrees: the answers under a prefix have at
    /// most its probability together) while their summed probability stays within
    /// `prune_below` times the mass of the complete continuations of their prompt found on
    /// the levels before, so within that fraction of the final mass. Each level's nodes are
    /// packed into passes of at most [`PACK_NODES`] tokens that see the cached prefix and
    /// their ancestors from earlier levels.
    fn expand(
        &self,
        base: &KvCache,
        base_len: usize,
        tree: &Tree,
        roots: &[usize],
        jobs: &[TreeJob],
        outs: &mut [ScoreOut],
    ) -> Result<(), LocalError> {
        let w = &self.weights;
        let mut cache = base.clone();
        // Per computed node: its index in `cache`, its position, its prefix log-probability.
        let mut done: HashMap<usize, (usize, u32, f32)> = HashMap::new();
        let mut skipped = 0usize;
        // The summed probability of the prefixes left out, per prompt.
        let mut cut: HashMap<usize, f64> = HashMap::new();
        let mut frontier = roots.to_vec();
        while !frontier.is_empty() {
            // The mass of the complete continuations found so far, per prompt.
            let mut found: HashMap<usize, f64> = HashMap::new();
            for (m, anchor) in tree.member_anchor.iter().enumerate() {
                if let Some(a) = anchor
                    && outs[m].cont.iter().all(|c| c.0.is_finite())
                {
                    let lp: f64 = outs[m].cont.iter().map(|c| f64::from(c.0)).sum();
                    *found.entry(*a).or_default() += lp.exp();
                }
            }
            let mut level: Vec<(usize, u32, f32)> = frontier
                .iter()
                .map(|&x| {
                    let up = tree.parent[x].and_then(|p| done.get(&p));
                    let cond = tree.enter[x].map_or(0.0, |(m, k)| outs[m].cont[k].0);
                    (
                        x,
                        up.map_or(base_len as u32, |u| u.1 + 1),
                        up.map_or(0.0, |u| u.2) + cond,
                    )
                })
                .collect();
            // The least probable prefixes first, while their sum stays within the budget.
            level.sort_by(|a, b| a.2.total_cmp(&b.2));
            let mut keep = Vec::with_capacity(level.len());
            for (x, pos, lp) in level {
                if let Some(a) = tree.anchor[x]
                    && tree.floor[x].is_finite()
                {
                    let budget =
                        f64::from(tree.floor[x]).exp() * found.get(&a).copied().unwrap_or(0.0);
                    let p = f64::from(lp).exp();
                    let spent = cut.entry(a).or_default();
                    if *spent + p <= budget {
                        *spent += p;
                        skipped += 1;
                        continue;
                    }
                }
                keep.push((x, pos, lp));
            }
            for chunk in keep.chunks(PACK_NODES) {
                let n = chunk.len();
                let past = cache.len();
                let total = past + n;
                let mut mask = vec![f32::NEG_INFINITY; n * total];
                let mut seen: Vec<Vec<u32>> = Vec::with_capacity(n);
                for (i, row) in mask.chunks_mut(total).enumerate() {
                    row[..base_len].fill(0.0);
                    let mut path = vec![(past + i) as u32];
                    let mut a = tree.parent[chunk[i].0];
                    while let Some(&(slot, _, _)) = a.and_then(|p| done.get(&p)) {
                        path.push(slot as u32);
                        a = a.and_then(|p| tree.parent[p]);
                    }
                    for &c in &path {
                        row[c as usize] = 0.0;
                    }
                    seen.push(path);
                }
                let ids: Vec<u32> = chunk.iter().map(|c| tree.token[c.0]).collect();
                let pos: Vec<u32> = chunk.iter().map(|c| c.1).collect();
                let ids = Tensor::from_vec(ids, (1, n), &w.device)?;
                let mask = Tensor::from_vec(mask, (1, 1, n, total), &w.device)?;
                let mut ctx = Ctx::infer(self.lora.as_deref(), self.steering.as_ref());
                ctx.positions = Some(Tensor::from_vec(pos, n, &w.device)?);
                let (h, _) = w.forward(&ids, Some(&mask), Some(&mut cache), &mut ctx)?;
                let nodes: Vec<usize> = chunk.iter().map(|c| c.0).collect();
                self.collect(&h, &nodes, tree, outs)?;
                for (i, &(x, p, lp)) in chunk.iter().enumerate() {
                    done.insert(x, (past + i, p, lp));
                    if let Some((ji, plen)) = tree.insert[x] {
                        let idx: Vec<u32> = (0..base_len as u32)
                            .chain(seen[i].iter().rev().copied())
                            .collect();
                        self.insert_prefix(&jobs[ji].ids[..plen], || cache.gather(0, &idx))?;
                    }
                }
            }
            frontier = keep
                .iter()
                .flat_map(|&(x, _, _)| tree.children[x].iter().copied())
                .collect();
        }
        if skipped > 0 {
            tracing::debug!(
                skipped,
                dropped_mass = cut.values().sum::<f64>(),
                "continuations left out below their probability floor"
            );
        }
        Ok(())
    }

    /// One forward over the subtrees `roots` packed into a single sequence after `base`.
    fn run_pack(
        &self,
        base: &KvCache,
        base_len: usize,
        tree: &Tree,
        roots: &[usize],
        jobs: &[TreeJob],
        outs: &mut [ScoreOut],
    ) -> Result<(), LocalError> {
        let w = &self.weights;
        // Preorder: a parent always precedes its children.
        let mut nodes = Vec::new();
        let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
        while let Some(n) = stack.pop() {
            nodes.push(n);
            stack.extend(tree.children[n].iter().rev());
        }
        let n = nodes.len();
        let local: HashMap<usize, usize> = nodes.iter().enumerate().map(|(i, &x)| (x, i)).collect();
        // Index in the pack of each node's parent, when the parent is in the pack.
        let up: Vec<Option<usize>> = nodes
            .iter()
            .map(|&x| tree.parent[x].and_then(|p| local.get(&p).copied()))
            .collect();
        let mut pos = vec![base_len as u32; n];
        for (i, parent) in up.iter().enumerate() {
            if let Some(p) = *parent {
                pos[i] = pos[p] + 1;
            }
        }
        let total = base_len + n;
        let mut mask = vec![f32::NEG_INFINITY; n * total];
        for (i, row) in mask.chunks_mut(total).enumerate() {
            row[..base_len].fill(0.0);
            let mut a = Some(i);
            while let Some(x) = a {
                row[base_len + x] = 0.0;
                a = up[x];
            }
        }
        let ids: Vec<u32> = nodes.iter().map(|&x| tree.token[x]).collect();
        let ids = Tensor::from_vec(ids, (1, n), &w.device)?;
        let mask = Tensor::from_vec(mask, (1, 1, n, total), &w.device)?;
        let mut cache = base.clone();
        let mut ctx = Ctx::infer(self.lora.as_deref(), self.steering.as_ref());
        ctx.positions = Some(Tensor::from_vec(pos, n, &w.device)?);
        let (h, _) = w.forward(&ids, Some(&mask), Some(&mut cache), &mut ctx)?;
        self.collect(&h, &nodes, tree, outs)?;
        for (i, &x) in nodes.iter().enumerate() {
            if let Some((ji, plen)) = tree.insert[x] {
                let mut path = Vec::new();
                let mut a = Some(i);
                while let Some(y) = a {
                    path.push((base_len + y) as u32);
                    a = up[y];
                }
                let idx: Vec<u32> = (0..base_len as u32).chain(path.into_iter().rev()).collect();
                self.insert_prefix(&jobs[ji].ids[..plen], || cache.gather(0, &idx))?;
            }
        }
        Ok(())
    }

    /// Fills the outputs that the nodes `nodes` (the rows of `h: [1, n, d]`) serve.
    fn collect(
        &self,
        h: &Tensor,
        nodes: &[usize],
        tree: &Tree,
        outs: &mut [ScoreOut],
    ) -> Result<(), LocalError> {
        let wanted: Vec<(u32, usize)> = nodes
            .iter()
            .enumerate()
            .filter(|(_, x)| !tree.needs[**x].is_empty())
            .map(|(i, &x)| (i as u32, x))
            .collect();
        for chunk in wanted.chunks(LOGIT_ROWS) {
            let rows: Vec<u32> = chunk.iter().map(|c| c.0).collect();
            let logits = self.weights.logits_at(h, &rows, false)?;
            let lp = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
            for (row, &(_, x)) in lp.into_iter().zip(chunk) {
                let best = argmax(&row);
                for need in &tree.needs[x] {
                    match *need {
                        Need::Dist(m) => outs[m].last_logprobs = Some(row.clone()),
                        Need::Cont { job, k, target } => {
                            let lp = row.get(target as usize).copied();
                            outs[job].cont[k] =
                                (lp.unwrap_or(f32::NEG_INFINITY), best == target as usize);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the state of `tokens` to the cache unless an entry already covers it.
    fn insert_prefix(
        &self,
        tokens: &[u32],
        layers: impl FnOnce() -> candle_core::Result<Vec<(Tensor, Tensor)>>,
    ) -> Result<(), LocalError> {
        if self.cache.lock().covered(&self.key, tokens) == tokens.len() {
            return Ok(());
        }
        let layers = layers()?;
        self.cache
            .lock()
            .insert(self.key.clone(), tokens.to_vec(), layers);
        Ok(())
    }
}
