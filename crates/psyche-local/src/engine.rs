//! The inference worker and its dynamic batcher.
//!
//! Every [`LocalModel`](crate::LocalModel) owns one worker thread. Requests arrive as jobs on a
//! channel; the worker takes the first job, waits `batch_wait` for more, and then runs
//! - all scoring jobs (next-token distributions, continuation log-likelihoods, hidden states)
//!   sorted by prompt length, in left-padded batches of at most `max_batch` sequences and
//!   `max_batch_tokens` padded tokens, and
//! - all generation jobs together, `max_batch` sampled sequences at a time, prefilling each
//!   distinct prompt once and sharing its KV cache between that prompt's samples.
//!
//! So the runner's concurrency turns into batch throughput without any caller-side batching.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use candle_core::{D, Tensor};
use futures::channel::oneshot;
use psyche_core::{FinishReason, TokenLogprob};
use rand_chacha::ChaCha8Rng;

use crate::LocalError;
use crate::llama::{Ctx, KvCache, LoraSet, SteeringTensor, Weights, build_mask};
use crate::prefix::{KvKey, PrefixCache};
use crate::sampling::{argmax, sample, token_logprob};
use crate::tokenizer::ChatTokenizer;
use crate::tree::TreeJob;

/// What a scoring job wants from one forward pass over `ids`.
pub(crate) struct ScoreJob {
    pub(crate) ids: Vec<u32>,
    /// Score `ids[start..]` as a continuation of `ids[..start]`.
    pub(crate) cont_start: Option<usize>,
    /// The full next-token log-distribution after the last token.
    pub(crate) want_dist: bool,
    /// The residual stream at the last position after the embedding and every block.
    pub(crate) want_hidden: bool,
    /// The first position of `ids` the model's steering vector is added at (0: every one).
    pub(crate) steer_from: usize,
    /// The rest of the continuation may be left unscored (`-inf`) when its prefix is among
    /// the least probable ones, summing to at most this fraction of the complete
    /// continuations of its prompt already found (0: never); see
    /// [`LocalConfig::option_prune_below`](crate::LocalConfig).
    pub(crate) prune_below: f32,
    pub(crate) reply: oneshot::Sender<Result<ScoreOut, LocalError>>,
}

/// The result of a scoring job.
#[derive(Debug, Default)]
pub(crate) struct ScoreOut {
    pub(crate) last_logprobs: Option<Vec<f32>>,
    /// `(logprob, was the argmax)` per continuation token.
    pub(crate) cont: Vec<(f32, bool)>,
    pub(crate) hidden: Option<Vec<Vec<f32>>>,
}

/// Sampling parameters of one generation job.
#[derive(Debug, Clone)]
pub(crate) struct GenParams {
    pub(crate) n: usize,
    pub(crate) max_tokens: usize,
    pub(crate) temperature: f32,
    pub(crate) top_p: f32,
    pub(crate) seed: u64,
    pub(crate) stop: Vec<String>,
    pub(crate) top_logprobs: Option<u32>,
}

pub(crate) struct GenJob {
    pub(crate) ids: Vec<u32>,
    pub(crate) params: GenParams,
    /// The first position (prompt tokens, then generated ones) the model's steering vector is
    /// added at (0: every one).
    pub(crate) steer_from: usize,
    pub(crate) reply: oneshot::Sender<Result<Vec<GenOut>, LocalError>>,
}

/// One generated sample.
#[derive(Debug, Clone)]
pub(crate) struct GenOut {
    pub(crate) ids: Vec<u32>,
    pub(crate) text: String,
    pub(crate) finish: FinishReason,
    pub(crate) logprobs: Option<Vec<TokenLogprob>>,
}

pub(crate) enum Job {
    Score(ScoreJob),
    /// Scoring jobs that go into one batch together (the answer forms of one option query).
    Scores(Vec<ScoreJob>),
    Generate(GenJob),
}

/// Batching limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub(crate) max_batch: usize,
    pub(crate) max_batch_tokens: usize,
    pub(crate) wait: Duration,
}

/// Everything the worker computes with.
pub(crate) struct Engine {
    pub(crate) weights: Arc<Weights>,
    pub(crate) tokenizer: Arc<ChatTokenizer>,
    pub(crate) lora: Option<Arc<LoraSet>>,
    pub(crate) steering: Option<SteeringTensor>,
    pub(crate) limits: BatchLimits,
    /// The prefix cache shared with the models derived from the same load.
    pub(crate) cache: Arc<parking_lot::Mutex<PrefixCache>>,
    /// What besides the tokens this engine's key/value states depend on.
    pub(crate) key: KvKey,
}

/// Starts the worker thread; it ends when every sender is dropped.
pub(crate) fn spawn_worker(
    engine: Engine,
    threads: Option<usize>,
    name: &str,
) -> Result<mpsc::Sender<Job>, LocalError> {
    let (tx, rx) = mpsc::channel::<Job>();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .thread_name(|i| format!("psyche-local-compute-{i}"))
        .build()
        .map_err(|e| LocalError::config("threads", e.to_string()))?;
    std::thread::Builder::new()
        .name(format!("psyche-local-{name}"))
        .spawn(move || pool.install(move || engine.run(&rx)))
        .map_err(|e| LocalError::io("<worker thread>", e))?;
    Ok(tx)
}

fn fail(message: &str) -> LocalError {
    LocalError::Candle(candle_core::Error::Msg(message.to_owned()))
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

impl Engine {
    fn run(&self, rx: &mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            let deadline = Instant::now() + self.limits.wait;
            let cap = self.limits.max_batch * 8;
            while jobs.len() < cap {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            while jobs.len() < cap {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let mut scores = Vec::new();
            let mut gens = Vec::new();
            for j in jobs {
                match j {
                    Job::Score(s) => scores.push(s),
                    Job::Scores(s) => scores.extend(s),
                    Job::Generate(g) => gens.push(g),
                }
            }
            if !scores.is_empty() {
                self.run_scores(scores);
            }
            if !gens.is_empty() {
                self.run_generations(gens);
            }
        }
        tracing::debug!("psyche-local worker stopped");
    }

    fn run_scores(&self, jobs: Vec<ScoreJob>) {
        // The tree scorer and the prefix cache do not know where steering starts: a steered
        // engine scores on the uncached path, which steers from each job's position.
        if self.steering.is_some() || !self.cache.lock().enabled() {
            return self.run_scores_uncached(jobs);
        }
        // Hidden states need the last position of left-padded rows: the uncached path.
        let (hidden, jobs): (Vec<ScoreJob>, Vec<ScoreJob>) =
            jobs.into_iter().partition(|j| j.want_hidden);
        if !hidden.is_empty() {
            self.run_scores_uncached(hidden);
        }
        if jobs.is_empty() {
            return;
        }
        let specs: Vec<TreeJob> = jobs
            .iter()
            .map(|j| TreeJob {
                ids: j.ids.clone(),
                cont_start: j.cont_start,
                want_dist: j.want_dist,
                prune_below: j.prune_below,
            })
            .collect();
        let outs = self.score_cached(&specs);
        for (job, out) in jobs.into_iter().zip(outs) {
            let _ = job.reply.send(out);
        }
    }

    fn run_scores_uncached(&self, mut jobs: Vec<ScoreJob>) {
        jobs.sort_by_key(|j| j.ids.len());
        let mut batch: Vec<ScoreJob> = Vec::new();
        let mut pending = jobs.into_iter().peekable();
        while let Some(job) = pending.next() {
            batch.push(job);
            let next_fits = pending.peek().is_some_and(|n| {
                let count = batch.len() + 1;
                count <= self.limits.max_batch
                    && count * n.ids.len() <= self.limits.max_batch_tokens
            });
            if !next_fits {
                self.score_batch(std::mem::take(&mut batch));
            }
        }
    }

    fn score_batch(&self, jobs: Vec<ScoreJob>) {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.score_batch_inner(&jobs)));
        let outs = match result {
            Ok(Ok(outs)) => outs.into_iter().map(Ok).collect::<Vec<_>>(),
            Ok(Err(e)) => {
                let msg = e.to_string();
                jobs.iter().map(|_| Err(fail(&msg))).collect()
            }
            Err(p) => {
                let msg = format!("scoring panicked: {}", panic_message(&*p));
                jobs.iter().map(|_| Err(fail(&msg))).collect()
            }
        };
        for (job, out) in jobs.into_iter().zip(outs) {
            let _ = job.reply.send(out);
        }
    }

    fn pad_id(&self) -> u32 {
        self.tokenizer.stop_ids.first().copied().unwrap_or(0)
    }

    fn score_batch_inner(&self, jobs: &[ScoreJob]) -> Result<Vec<ScoreOut>, LocalError> {
        let w = &self.weights;
        let t = jobs.iter().map(|j| j.ids.len()).max().unwrap_or(0);
        let b = jobs.len();
        if t == 0 {
            return Err(fail("empty input"));
        }
        if t > w.hp.context_length {
            return Err(LocalError::ContextLength {
                tokens: t,
                max_new: 0,
                context: w.hp.context_length,
            });
        }
        let mut ids = Vec::with_capacity(b * t);
        let mut valid = Vec::with_capacity(b);
        let mut steer_from = Vec::with_capacity(b);
        for j in jobs {
            let pad = t - j.ids.len();
            ids.extend(std::iter::repeat_n(self.pad_id(), pad));
            ids.extend_from_slice(&j.ids);
            valid.push((0..t).map(|k| k >= pad).collect::<Vec<_>>());
            steer_from.push(pad + j.steer_from);
        }
        let ids = Tensor::from_vec(ids, (b, t), &w.device)?;
        let mask = build_mask(&valid, t, &w.device)?;
        let mut ctx = Ctx::infer(self.lora.as_deref(), self.steering.as_ref());
        ctx.steer_from = Some(steer_from);
        ctx.hidden_last = jobs.iter().any(|j| j.want_hidden);
        let (h, hidden) = w.forward(&ids, mask.as_ref(), None, &mut ctx)?;

        // Rows of the flat [b * t] hidden states whose logits are needed.
        let mut rows: Vec<u32> = Vec::new();
        let mut spans = Vec::with_capacity(b);
        for (r, j) in jobs.iter().enumerate() {
            let pad = t - j.ids.len();
            let base = (r * t) as u32;
            let first = rows.len();
            if j.want_dist {
                rows.push(base + (t - 1) as u32);
            }
            if let Some(start) = j.cont_start {
                for p in start.max(1)..j.ids.len() {
                    rows.push(base + (pad + p - 1) as u32);
                }
            }
            spans.push(first..rows.len());
        }
        let logprobs: Vec<Vec<f32>> = if rows.is_empty() {
            Vec::new()
        } else {
            let logits = w.logits_at(&h, &rows, false)?;
            candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?
        };
        let hidden: Vec<Vec<Vec<f32>>> = hidden
            .iter()
            .map(|t| t.to_vec2::<f32>())
            .collect::<candle_core::Result<_>>()?;
        let mut outs = Vec::with_capacity(b);
        for (r, j) in jobs.iter().enumerate() {
            let mut span = spans[r].clone();
            let mut out = ScoreOut::default();
            if j.want_dist {
                out.last_logprobs = span.next().map(|i| logprobs[i].clone());
            }
            if let Some(start) = j.cont_start {
                for (p, i) in (start.max(1)..j.ids.len()).zip(span) {
                    let row = &logprobs[i];
                    let target = j.ids[p] as usize;
                    let lp = row.get(target).copied().unwrap_or(f32::NEG_INFINITY);
                    out.cont.push((lp, argmax(row) == target));
                }
            }
            if j.want_hidden {
                out.hidden = Some(hidden.iter().map(|l| l[r].clone()).collect());
            }
            outs.push(out);
        }
        Ok(outs)
    }

    fn run_generations(&self, jobs: Vec<GenJob>) {
        // Rows: (job, choice). Groups of at most max_batch rows.
        let mut rows: Vec<(usize, usize)> = Vec::new();
        for (ji, j) in jobs.iter().enumerate() {
            for c in 0..j.params.n {
                rows.push((ji, c));
            }
        }
        let mut results: Vec<Result<Vec<Option<GenOut>>, String>> =
            jobs.iter().map(|j| Ok(vec![None; j.params.n])).collect();
        for group in rows.chunks(self.limits.max_batch.max(1)) {
            let r =
                std::panic::catch_unwind(AssertUnwindSafe(|| self.generate_group(&jobs, group)));
            let r = match r {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(p) => Err(format!("generation panicked: {}", panic_message(&*p))),
            };
            match r {
                Ok(outs) => {
                    for (&(ji, c), out) in group.iter().zip(outs) {
                        if let Ok(slots) = &mut results[ji] {
                            slots[c] = Some(out);
                        }
                    }
                }
                Err(msg) => {
                    for &(ji, _) in group {
                        results[ji] = Err(msg.clone());
                    }
                }
            }
        }
        for (job, res) in jobs.into_iter().zip(results) {
            let out = res.map_err(|m| fail(&m)).and_then(|slots| {
                slots
                    .into_iter()
                    .map(|s| s.ok_or_else(|| fail("a sample was not generated")))
                    .collect()
            });
            let _ = job.reply.send(out);
        }
    }

    /// The distinct prompts `distinct` (indices into `jobs`) left-padded and prefilled once
    /// each (through the prefix cache when it applies): the decode batch, and per row its key
    /// mask and the first steered position.
    fn prefill_distinct(
        &self,
        jobs: &[GenJob],
        distinct: &[usize],
    ) -> Result<PrefilledRows, LocalError> {
        let w = &self.weights;
        let ctx_len = w.hp.context_length;
        let t = distinct
            .iter()
            .map(|&j| jobs[j].ids.len())
            .max()
            .unwrap_or(0);
        for &j in distinct {
            let len = jobs[j].ids.len();
            if len == 0 {
                return Err(fail("empty prompt"));
            }
            if len >= ctx_len {
                return Err(LocalError::ContextLength {
                    tokens: len,
                    max_new: jobs[j].params.max_tokens,
                    context: ctx_len,
                });
            }
        }
        let mut ids = Vec::new();
        let mut valid: Vec<Vec<bool>> = Vec::new();
        let mut steer_from: Vec<usize> = Vec::new();
        for &j in distinct {
            let pad = t - jobs[j].ids.len();
            ids.extend(std::iter::repeat_n(self.pad_id(), pad));
            ids.extend_from_slice(&jobs[j].ids);
            valid.push((0..t).map(|k| k >= pad).collect());
            steer_from.push(pad + jobs[j].steer_from);
        }
        let nd = distinct.len();
        let prompts: Vec<&[u32]> = distinct.iter().map(|&j| jobs[j].ids.as_slice()).collect();
        // A steered engine steers from a position onward, which the prefix cache does not key
        // on: it prefills without the cache.
        let cached = if self.steering.is_none() && self.cache.lock().enabled() {
            self.cached_prefill(&prompts, t)?
        } else {
            None
        };
        let prefilled = match cached {
            Some(c) => c,
            None => {
                let ids_t = Tensor::from_vec(ids, (nd, t), &w.device)?;
                let mask = build_mask(&valid, t, &w.device)?;
                let mut cache = KvCache::new(w.n_layer());
                let mut ctx = Ctx::infer(self.lora.as_deref(), self.steering.as_ref());
                ctx.steer_from = Some(steer_from.clone());
                let (h, _) = w.forward(&ids_t, mask.as_ref(), Some(&mut cache), &mut ctx)?;
                let last_rows: Vec<u32> = (0..nd).map(|r| (r * t + t - 1) as u32).collect();
                (cache, w.logits_at(&h, &last_rows, false)?.to_vec2::<f32>()?)
            }
        };
        Ok(PrefilledRows {
            prefilled,
            valid,
            steer_from,
        })
    }

    fn generate_group(
        &self,
        jobs: &[GenJob],
        group: &[(usize, usize)],
    ) -> Result<Vec<GenOut>, LocalError> {
        let w = &self.weights;
        let ctx_len = w.hp.context_length;
        // Distinct prompts of this group, prefilled once each.
        let mut distinct: Vec<usize> = group.iter().map(|&(j, _)| j).collect();
        distinct.dedup();
        let PrefilledRows {
            prefilled: (mut cache, first_logits),
            valid,
            steer_from,
        } = self.prefill_distinct(jobs, &distinct)?;

        // Expand to one row per sample.
        let row_src: Vec<u32> = group
            .iter()
            .map(|&(j, _)| distinct.iter().position(|&d| d == j).unwrap_or(0) as u32)
            .collect();
        cache.select_rows(&row_src)?;
        let mut valid: Vec<Vec<bool>> =
            row_src.iter().map(|&s| valid[s as usize].clone()).collect();
        let mut steer_from: Vec<usize> = row_src.iter().map(|&s| steer_from[s as usize]).collect();
        let mut logits: Vec<Vec<f32>> = row_src
            .iter()
            .map(|&s| first_logits[s as usize].clone())
            .collect();

        struct RowState {
            rng: ChaCha8Rng,
            ids: Vec<u32>,
            text: String,
            logprobs: Vec<TokenLogprob>,
            finish: Option<FinishReason>,
            max_new: usize,
        }
        let mut states: Vec<RowState> = group
            .iter()
            .map(|&(j, c)| {
                let p = &jobs[j].params;
                RowState {
                    rng: psyche_core::seeded_rng(psyche_core::derive_seed(
                        p.seed,
                        &format!("choice/{c}"),
                    )),
                    ids: Vec::new(),
                    text: String::new(),
                    logprobs: Vec::new(),
                    finish: None,
                    max_new: p.max_tokens.min(ctx_len - jobs[j].ids.len()),
                }
            })
            .collect();
        // `active[k]` = index into `states` of cache row k.
        let mut active: Vec<usize> = (0..group.len()).collect();
        let texts = self.tokenizer.token_texts();
        loop {
            let mut next_ids = Vec::with_capacity(active.len());
            let mut keep = Vec::with_capacity(active.len());
            for (k, &si) in active.iter().enumerate() {
                let (j, _) = group[si];
                let p = &jobs[j].params;
                let st = &mut states[si];
                let row = &logits[k];
                let id = sample(row, p.temperature, p.top_p, &mut st.rng);
                if let Some(top) = p.top_logprobs {
                    st.logprobs
                        .push(token_logprob(row, id, top as usize, texts));
                }
                if self.tokenizer.stop_ids.contains(&id) {
                    st.finish = Some(FinishReason::Stop);
                    continue;
                }
                st.ids.push(id);
                st.text = self.tokenizer.decode(&st.ids, true)?;
                if let Some(cut) = p.stop.iter().filter_map(|s| st.text.find(s.as_str())).min() {
                    st.text.truncate(cut);
                    st.finish = Some(FinishReason::Stop);
                    continue;
                }
                if st.ids.len() >= st.max_new {
                    st.finish = Some(FinishReason::Length);
                    continue;
                }
                keep.push(k as u32);
                next_ids.push(id);
            }
            if keep.is_empty() {
                break;
            }
            if keep.len() < active.len() {
                cache.select_rows(&keep)?;
                valid = keep.iter().map(|&k| valid[k as usize].clone()).collect();
                steer_from = keep.iter().map(|&k| steer_from[k as usize]).collect();
                active = keep.iter().map(|&k| active[k as usize]).collect();
            }
            for v in &mut valid {
                v.push(true);
            }
            let b = active.len();
            let ids_t = Tensor::from_vec(next_ids, (b, 1), &w.device)?;
            let mask = build_mask(&valid, 1, &w.device)?;
            let mut ctx = Ctx::infer(self.lora.as_deref(), self.steering.as_ref());
            ctx.steer_from = Some(steer_from.clone());
            let (h, _) = w.forward(&ids_t, mask.as_ref(), Some(&mut cache), &mut ctx)?;
            let rows: Vec<u32> = (0..b as u32).collect();
            logits = w.logits_at(&h, &rows, false)?.to_vec2::<f32>()?;
        }
        Ok(states
            .into_iter()
            .zip(group)
            .map(|(st, &(j, _))| GenOut {
                ids: st.ids,
                text: st.text,
                finish: st.finish.unwrap_or(FinishReason::Length),
                logprobs: jobs[j].params.top_logprobs.map(|_| st.logprobs),
            })
            .collect())
    }
}

/// A prefilled decode batch and the log-distributions after each of its prompts.
type Prefilled = (KvCache, Vec<Vec<f32>>);

/// A prefilled group of distinct prompts, with each row's key mask and first steered position.
struct PrefilledRows {
    prefilled: Prefilled,
    valid: Vec<Vec<bool>>,
    steer_from: Vec<usize>,
}

impl Engine {
    /// The prompts' states through the prefix cache (each computed from its longest cached
    /// prefix and added to the cache), assembled into one left-padded batch of `t` positions
    /// as the uncached prefill lays it out: a row padded by `p` has its keys moved `p`
    /// positions on. Also the log-distributions after each prompt. `None` when a state did
    /// not stay in the cache (a cap smaller than the prompts).
    fn cached_prefill(
        &self,
        prompts: &[&[u32]],
        t: usize,
    ) -> Result<Option<Prefilled>, LocalError> {
        let specs: Vec<TreeJob> = prompts
            .iter()
            .map(|p| TreeJob {
                ids: p.to_vec(),
                cont_start: None,
                want_dist: true,
                prune_below: 0.0,
            })
            .collect();
        let mut first = Vec::with_capacity(prompts.len());
        for out in self.score_cached(&specs) {
            first.push(out?.last_logprobs.ok_or_else(|| fail("no distribution"))?);
        }
        let mut states = Vec::with_capacity(prompts.len());
        {
            let mut cache = self.cache.lock();
            for p in prompts {
                match cache.peek(&self.key, p, p.len()) {
                    Some(h) if h.len == p.len() => states.push(h.layers),
                    _ => return Ok(None),
                }
            }
        }
        let w = &self.weights;
        let mut layers = Vec::with_capacity(w.n_layer());
        for l in 0..w.n_layer() {
            let mut ks = Vec::with_capacity(prompts.len());
            let mut vs = Vec::with_capacity(prompts.len());
            for (state, p) in states.iter().zip(prompts) {
                let Some((k, v)) = state.get(l) else {
                    return Ok(None);
                };
                let (len, pad) = (p.len(), t - p.len());
                let k = w.shift_keys(&k.narrow(2, 0, len)?, pad as i64)?;
                let v = v.narrow(2, 0, len)?.contiguous()?;
                if pad > 0 {
                    let (_, kvh, _, hd) = k.dims4()?;
                    let z = Tensor::zeros((1, kvh, pad, hd), k.dtype(), k.device())?;
                    ks.push(Tensor::cat(&[&z, &k], 2)?);
                    vs.push(Tensor::cat(&[&z, &v], 2)?);
                } else {
                    ks.push(k);
                    vs.push(v);
                }
            }
            layers.push((Tensor::cat(&ks, 0)?, Tensor::cat(&vs, 0)?));
        }
        Ok(Some((KvCache::from_layers(layers), first)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut rng = psyche_core::seeded_rng(0);
        assert_eq!(sample(&[0.1, 2.0, 2.0, -1.0], 0.0, 1.0, &mut rng), 1);
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // p ≈ [0.88, 0.12, ~0]: top_p 0.5 must always pick token 0.
        let logits = [4.0f32, 2.0, -20.0];
        let mut rng = psyche_core::seeded_rng(1);
        for _ in 0..200 {
            assert_eq!(sample(&logits, 1.0, 0.5, &mut rng), 0);
        }
        // Without top_p both likely tokens appear.
        let mut seen = [0usize; 3];
        for _ in 0..400 {
            seen[sample(&logits, 1.0, 1.0, &mut rng) as usize] += 1;
        }
        assert!(seen[0] > 300 && seen[1] > 20 && seen[2] == 0, "{seen:?}");
    }

    #[test]
    fn token_logprob_is_normalised() {
        let texts: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let lp = token_logprob(&[1.0, 2.0, 3.0], 2, 2, &texts);
        let total: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
        assert!((lp.logprob - (3.0 - total.ln())).abs() < 1e-9);
        assert_eq!(lp.top_logprobs.len(), 2);
        assert_eq!(lp.top_logprobs[0].token, "c");
        assert_eq!(lp.top_logprobs[1].token, "b");
    }

    #[test]
    fn mask_blocks_padding_and_the_future() {
        let valid = vec![vec![false, true, true], vec![true, true, true]];
        let m = build_mask(&valid, 3, &candle_core::Device::Cpu)
            .unwrap()
            .unwrap();
        let v = m.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // row 0, query 0 (a pad) may see only itself
        assert_eq!(&v[0..3], &[0.0, f32::NEG_INFINITY, f32::NEG_INFINITY]);
        // row 0, query 2 sees keys 1, 2 but not the pad key 0
        assert_eq!(&v[6..9], &[f32::NEG_INFINITY, 0.0, 0.0]);
        // row 1, query 1 sees keys 0, 1
        assert_eq!(&v[12..15], &[0.0, 0.0, f32::NEG_INFINITY]);
    }
}
