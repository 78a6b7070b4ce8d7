//! Requests to the worker thread (scoring, hidden states, generation), the steered positions
//! they start from, and the settings a model reports.

use futures::channel::oneshot;
use psyche_core::{Conversation, SteerFrom};

use super::LocalModel;
use crate::LocalError;
use crate::engine::{GenJob, GenParams, Job, ScoreJob, ScoreOut};

impl LocalModel {
    /// The first position steered for id-level calls: [`SteerFrom::Message`] needs a
    /// conversation.
    pub(super) fn steer_start_ids(&self) -> Result<usize, LocalError> {
        match self.inner.steering.as_ref().map(|s| s.from) {
            None | Some(SteerFrom::Start) => Ok(0),
            Some(SteerFrom::Token(n)) => Ok(n),
            Some(SteerFrom::Message(_)) => Err(LocalError::config(
                "steering.from",
                "a message position needs a conversation; token-id calls take `Token(n)` or \
                 `Start`",
            )),
        }
    }

    /// The first position of the chat prompt of `messages` that is steered: message `i` starts
    /// where the rendering of the messages before it ends.
    pub(super) fn steer_start(&self, messages: &Conversation) -> Result<usize, LocalError> {
        let Some(SteerFrom::Message(i)) = self.inner.steering.as_ref().map(|s| s.from) else {
            return self.steer_start_ids();
        };
        if i == 0 {
            return Ok(0);
        }
        if i > messages.len() {
            return Err(LocalError::config(
                "steering.from",
                format!(
                    "message {i} is past the conversation's {} messages",
                    messages.len()
                ),
            ));
        }
        let head = Conversation::from(messages.messages()[..i].to_vec());
        let head = self.tokenize(&self.render_chat(&head, false)?)?;
        let full = self.prompt_ids(messages)?;
        if !full.starts_with(&head) {
            return Err(LocalError::config(
                "steering.from",
                format!(
                    "the chat template does not render the first {i} messages as a prefix of \
                     the conversation, so message {i} has no token position"
                ),
            ));
        }
        Ok(head.len())
    }

    pub(super) async fn score(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<ScoreOut, LocalError>>) -> ScoreJob,
    ) -> Result<ScoreOut, LocalError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Job::Score(job(tx)))
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?;
        rx.await
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?
    }

    /// The exact log-distribution over the whole vocabulary after `ids` (indexed by token id).
    ///
    /// # Errors
    ///
    /// [`LocalError`] when the input is empty or too long, or the computation fails.
    pub async fn next_token_logprobs_ids(&self, ids: Vec<u32>) -> Result<Vec<f32>, LocalError> {
        let from = self.steer_start_ids()?;
        self.next_token_logprobs_from(ids, from).await
    }

    pub(super) async fn next_token_logprobs_from(
        &self,
        ids: Vec<u32>,
        steer_from: usize,
    ) -> Result<Vec<f32>, LocalError> {
        let out = self
            .score(|reply| ScoreJob {
                ids,
                cont_start: None,
                want_dist: true,
                want_hidden: false,
                steer_from,
                prune_below: 0.0,
                reply,
            })
            .await?;
        out.last_logprobs
            .ok_or_else(|| LocalError::Candle(candle_core::Error::Msg("no distribution".into())))
    }

    /// The exact next-token log-distribution after a chat prompt (indexed by token id).
    ///
    /// # Errors
    ///
    /// As [`next_token_logprobs_ids`](Self::next_token_logprobs_ids), plus template errors.
    pub async fn next_token_logprobs(
        &self,
        messages: &Conversation,
    ) -> Result<Vec<f32>, LocalError> {
        let ids = self.prompt_ids(messages)?;
        let from = self.steer_start(messages)?;
        self.next_token_logprobs_from(ids, from).await
    }

    /// Per-token logprobs of `continuation` after `prompt`, both token ids, in one pass, with
    /// whether each token is the argmax.
    ///
    /// # Errors
    ///
    /// [`LocalError`] when the continuation is empty or the input too long.
    pub async fn continuation_logprobs(
        &self,
        prompt: &[u32],
        continuation: &[u32],
    ) -> Result<Vec<(f32, bool)>, LocalError> {
        let from = self.steer_start_ids()?;
        self.continuation_logprobs_from(prompt, continuation, from)
            .await
    }

    pub(super) async fn continuation_logprobs_from(
        &self,
        prompt: &[u32],
        continuation: &[u32],
        steer_from: usize,
    ) -> Result<Vec<(f32, bool)>, LocalError> {
        if prompt.is_empty() || continuation.is_empty() {
            return Err(LocalError::Tokenizer(
                "prompt and continuation must each hold at least one token".into(),
            ));
        }
        let mut ids = prompt.to_vec();
        ids.extend_from_slice(continuation);
        let start = prompt.len();
        Ok(self
            .score(|reply| ScoreJob {
                ids,
                cont_start: Some(start),
                want_dist: false,
                want_hidden: false,
                steer_from,
                prune_below: 0.0,
                reply,
            })
            .await?
            .cont)
    }

    /// Per-token logprobs of each continuation in `continuations` after `prompt`, scored in one
    /// batch (their common tokens once). A continuation whose prefix has a probability below
    /// `prune_below` keeps `-inf` for its remaining tokens.
    pub(super) async fn continuations_logprobs_from(
        &self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
        steer_from: usize,
        prune_below: f32,
    ) -> Result<Vec<Vec<(f32, bool)>>, LocalError> {
        if prompt.is_empty() || continuations.iter().any(Vec::is_empty) {
            return Err(LocalError::Tokenizer(
                "prompt and continuation must each hold at least one token".into(),
            ));
        }
        let mut jobs = Vec::with_capacity(continuations.len());
        let mut replies = Vec::with_capacity(continuations.len());
        for c in continuations {
            let (tx, rx) = oneshot::channel();
            let mut ids = prompt.to_vec();
            ids.extend_from_slice(c);
            jobs.push(ScoreJob {
                ids,
                cont_start: Some(prompt.len()),
                want_dist: false,
                want_hidden: false,
                steer_from,
                prune_below,
                reply: tx,
            });
            replies.push(rx);
        }
        self.inner
            .tx
            .send(Job::Scores(jobs))
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?;
        let mut out = Vec::with_capacity(replies.len());
        for rx in replies {
            let scored = rx
                .await
                .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))??;
            out.push(scored.cont);
        }
        Ok(out)
    }

    /// [`LocalConfig::option_prune_below`] as the engine takes it.
    pub(super) fn prune_below(&self) -> f32 {
        self.inner.config.option_prune_below as f32
    }

    /// Hidden states at the last position of `ids`: the embedding output and every block's
    /// output (`n_layer + 1` vectors).
    ///
    /// # Errors
    ///
    /// [`LocalError`] when the input is empty or too long.
    pub async fn hidden_states_ids(&self, ids: Vec<u32>) -> Result<Vec<Vec<f32>>, LocalError> {
        let from = self.steer_start_ids()?;
        self.hidden_states_from(ids, from).await
    }

    pub(super) async fn hidden_states_from(
        &self,
        ids: Vec<u32>,
        steer_from: usize,
    ) -> Result<Vec<Vec<f32>>, LocalError> {
        let out = self
            .score(|reply| ScoreJob {
                ids,
                cont_start: None,
                want_dist: false,
                want_hidden: true,
                steer_from,
                prune_below: 0.0,
                reply,
            })
            .await?;
        out.hidden
            .ok_or_else(|| LocalError::Candle(candle_core::Error::Msg("no hidden states".into())))
    }

    pub(super) async fn generate_ids(
        &self,
        ids: Vec<u32>,
        params: GenParams,
        steer_from: usize,
    ) -> Result<Vec<crate::engine::GenOut>, LocalError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Job::Generate(GenJob {
                ids,
                params,
                steer_from,
                reply: tx,
            }))
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?;
        rx.await
            .map_err(|_| LocalError::WorkerStopped(self.inner.id.clone()))?
    }

    pub(super) fn settings(&self) -> serde_json::Value {
        let i = &self.inner;
        serde_json::json!({
            "weights": i.weights.format.as_str(),
            "kv_cache": "f32",
            "prefix_cache_bytes": i.config.prefix_cache_bytes,
            "option_prune_below": i.config.option_prune_below,
            "device": format!("{:?}", i.config.device),
            "threads": i.config.threads,
            "candle": "0.11.1",
            "cpu_features": crate::qmatvec::cpu_features(),
            "tokenizer_pre": i.tokenizer.pre,
            "tokenizer_fix": i.tokenizer.fix_applied,
            "chat_template": if i.tokenizer.template_from_gguf { "gguf" } else { "chatml-fallback" },
            "default_system_prompt": i.tokenizer.default_system,
            "architecture": i.weights.hp.architecture,
            "tensor_types": i.weights.tensor_types,
            "adapter": i.adapter.as_ref().map(|a| serde_json::json!({
                "path": a.path, "merged": a.merged, "manifest": a.summary,
            })),
            "steering": i.steering.as_ref().map(|s| serde_json::json!({
                "layer": s.layer, "strength": s.strength, "from": s.from,
                "norm": s.vector.iter().map(|x| (x * x) as f64).sum::<f64>().sqrt(),
            })),
        })
    }
}
