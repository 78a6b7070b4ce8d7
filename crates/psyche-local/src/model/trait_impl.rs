//! The [`Model`] implementation of [`LocalModel`].

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Choice, Conversation, FineTuneSupport, GenerateRequest, GenerateResponse,
    HiddenStates, LogLikelihood, LogprobSupport, Model, ModelError, ModelInfo, OptionProbabilities,
    OptionQuery, ProbabilityMethod, TokenDistribution, TopLogprob, Usage,
    option_probabilities_from_distribution,
};

use super::{LocalModel, Steering};
use crate::config::WeightFormat;
use crate::engine::GenParams;

#[async_trait]
impl Model for LocalModel {
    fn id(&self) -> &str {
        &self.inner.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: Some(LogprobSupport {
                max_top_k: self.inner.weights.hp.vocab_size as u32,
            }),
            full_distribution: true,
            loglikelihood: true,
            hidden_states: true,
            seeded_sampling: true,
            fine_tuning: (self.inner.weights.format == WeightFormat::F32)
                .then_some(FineTuneSupport::Lora),
            steering: true,
        }
    }

    /// [`with_steering`](LocalModel::with_steering) behind the core seam: the view runs its own
    /// worker on the shared weights, so its calls batch among themselves.
    fn steered(&self, steering: &Steering) -> Result<Arc<dyn Model>, ModelError> {
        let hp = &self.inner.weights.hp;
        steering.check(hp.n_layer, hp.d_model)?;
        Ok(Arc::new(self.with_steering(steering.clone())?))
    }

    fn info(&self) -> ModelInfo {
        let file = self
            .inner
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let weights = match self.sha256() {
            Ok(h) => format!("{file} sha256:{h}"),
            Err(_) => file,
        };
        ModelInfo {
            id: self.inner.id.clone(),
            backend: "psyche-local".into(),
            weights: Some(weights),
            settings: self.settings(),
        }
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        request.validate()?;
        let ids = self.prompt_ids(&request.messages)?;
        let steer_from = self.steer_start(&request.messages)?;
        let prompt_tokens = ids.len() as u64;
        let seed = request.seed.unwrap_or_else(rand::random);
        let params = GenParams {
            n: request.n as usize,
            max_tokens: request.max_tokens as usize,
            temperature: request.temperature,
            top_p: request.top_p,
            seed,
            stop: request.stop.clone(),
            top_logprobs: request.top_logprobs,
        };
        let outs = self.generate_ids(ids, params, steer_from).await?;
        let completion_tokens = outs.iter().map(|o| o.ids.len() as u64).sum();
        Ok(GenerateResponse {
            model: self.inner.id.clone(),
            choices: outs
                .into_iter()
                .map(|o| Choice {
                    text: o.text,
                    finish_reason: o.finish,
                    logprobs: o.logprobs,
                })
                .collect(),
            usage: Usage {
                prompt_tokens,
                completion_tokens,
            },
        })
    }

    /// The exact distribution over the whole vocabulary (`complete: true`), most likely first;
    /// `top_k` is ignored because nothing is truncated.
    async fn next_token_distribution(
        &self,
        messages: &Conversation,
        top_k: u32,
    ) -> Result<TokenDistribution, ModelError> {
        let _ = top_k;
        let lp = self.next_token_logprobs(messages).await?;
        let texts = self.inner.tokenizer.token_texts();
        let mut order: Vec<usize> = (0..lp.len()).collect();
        order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]).then(a.cmp(&b)));
        Ok(TokenDistribution {
            tokens: order
                .into_iter()
                .map(|i| TopLogprob::new(texts.get(i).cloned().unwrap_or_default(), lp[i] as f64))
                .collect(),
            complete: true,
        })
    }

    async fn loglikelihood(
        &self,
        context: &Conversation,
        continuation: &str,
    ) -> Result<LogLikelihood, ModelError> {
        if continuation.is_empty() {
            return Err(ModelError::InvalidRequest(
                "field `continuation`: must not be empty".into(),
            ));
        }
        let prompt = self.prompt_ids(context)?;
        let from = self.steer_start(context)?;
        let cont = self.tokenize(continuation)?;
        let scored = self
            .continuation_logprobs_from(&prompt, &cont, from)
            .await?;
        let token_logprobs: Vec<f64> = scored.iter().map(|s| s.0 as f64).collect();
        Ok(LogLikelihood {
            logprob: token_logprobs.iter().sum(),
            is_greedy: scored.iter().all(|s| s.1),
            token_logprobs,
        })
    }

    async fn hidden_states(&self, messages: &Conversation) -> Result<HiddenStates, ModelError> {
        let ids = self.prompt_ids(messages)?;
        let from = self.steer_start(messages)?;
        Ok(HiddenStates {
            layers: self.hidden_states_from(ids, from).await?,
        })
    }

    /// The same semantics as every backend ([`OptionQuery`]), computed exactly. When every
    /// option is a single token, the mass of the first-token distribution over the whole
    /// vocabulary that designates each option ([`ProbabilityMethod::FirstToken`] with
    /// `complete: true`). Otherwise, for each option the sum over its
    /// [`answer_forms`](OptionQuery::answer_forms) (`o`, `(o)`, `o)`) of the probability of the
    /// form followed by the chat template's end-of-turn token
    /// ([`ProbabilityMethod::CompleteAnswer`]): complete answers are disjoint events, so an
    /// option that prefixes another (`"1"` and `"10"`) is not counted twice.
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        query.check()?;
        let mut single = true;
        for o in &query.options {
            single &= self.tokenize(o)?.len() == 1;
        }
        if single {
            let dist = self.next_token_distribution(messages, 0).await?;
            return option_probabilities_from_distribution(&dist, query);
        }
        let from = self.steer_start(messages)?;
        let (owner, forms): (Vec<usize>, Vec<String>) = query.answer_forms().into_iter().unzip();
        let (prompt, answers) = self.inner.tokenizer.encode_answers(messages, &forms)?;
        let results = self
            .continuations_logprobs_from(&prompt, &answers, from, self.prune_below())
            .await?;
        let mut masses = vec![0.0; query.options.len()];
        for (i, scored) in owner.into_iter().zip(results) {
            masses[i] += scored.iter().map(|s| s.0 as f64).sum::<f64>().exp();
        }
        Ok(OptionProbabilities::from_masses(
            query.options.clone(),
            masses,
            ProbabilityMethod::CompleteAnswer,
        ))
    }
}
