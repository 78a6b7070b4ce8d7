//! Small deterministic models for unit tests that isolate one step.

use psyche_core::{
    Capabilities, Choice, Conversation, GenerateRequest, GenerateResponse, LogprobSupport, Model,
    ModelError, TokenDistribution, TopLogprob,
};

type NextFn = dyn Fn(&str) -> Vec<(String, f64)> + Send + Sync;

type ReplyFn = dyn Fn(&str, usize) -> String + Send + Sync;

/// A model scripted by two functions of the last user message: its next-token distribution
/// (token, probability) and its reply (choice index → text).
pub(crate) struct Scripted {
    pub(crate) id: String,
    pub(crate) full_distribution: bool,
    pub(crate) fine_tuning: Option<psyche_core::FineTuneSupport>,
    pub(crate) next: Box<NextFn>,
    pub(crate) reply: Box<ReplyFn>,
    /// Model calls made (generate and next-token distributions).
    pub(crate) calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Scripted {
    pub(crate) fn new(
        id: &str,
        next: impl Fn(&str) -> Vec<(String, f64)> + Send + Sync + 'static,
        reply: impl Fn(&str, usize) -> String + Send + Sync + 'static,
    ) -> Self {
        Self {
            id: id.to_owned(),
            full_distribution: false,
            fine_tuning: None,
            next: Box::new(next),
            reply: Box::new(reply),
            calls: Default::default(),
        }
    }
}

fn last_user(c: &Conversation) -> String {
    c.last_user_text().unwrap_or_default().to_owned()
}

#[async_trait::async_trait]
impl Model for Scripted {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: Some(LogprobSupport { max_top_k: 20 }),
            full_distribution: self.full_distribution,
            fine_tuning: self.fine_tuning,
            ..Capabilities::default()
        }
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let text = last_user(&request.messages);
        Ok(GenerateResponse {
            model: self.id.clone(),
            choices: (0..request.n.max(1) as usize)
                .map(|i| Choice::text((self.reply)(&text, i)))
                .collect(),
            usage: Default::default(),
        })
    }

    async fn next_token_distribution(
        &self,
        messages: &Conversation,
        _top_k: u32,
    ) -> Result<TokenDistribution, ModelError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(TokenDistribution {
            tokens: (self.next)(&last_user(messages))
                .into_iter()
                .map(|(t, p)| TopLogprob::new(t, p.ln()))
                .collect(),
            complete: self.full_distribution,
        })
    }
}

/// One fine-tune as the fake tuner saw it: the new model's id, the config, the data.
pub(crate) type TuneLog = Vec<(String, psyche_core::FineTuneConfig, Vec<Conversation>)>;

/// A fine-tuner that trains nothing: it records each call, and every tuned model answers
/// every prompt with `reply`.
pub(crate) struct FakeTuner {
    pub(crate) reply: String,
    pub(crate) log: std::sync::Mutex<TuneLog>,
    /// Model calls made by every model it loads.
    pub(crate) calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeTuner {
    pub(crate) fn new(reply: &str) -> Self {
        Self {
            reply: reply.to_owned(),
            log: std::sync::Mutex::new(Vec::new()),
            calls: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl psyche_core::FineTuner for FakeTuner {
    fn engine(&self) -> &str {
        "fake"
    }

    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &psyche_core::FineTuneConfig,
    ) -> Result<psyche_core::TrainedModel, psyche_core::FineTuneError> {
        let mut log = self.log.lock().unwrap();
        let id = format!("ft{}", log.len());
        log.push((id.clone(), config.clone(), data.to_vec()));
        Ok(psyche_core::TrainedModel {
            model_id: id,
            engine: "fake".into(),
            config: config.clone(),
            data_hash: psyche_core::conversations_hash(data),
            artifact: None,
            details: serde_json::Map::new(),
        })
    }

    async fn load(
        &self,
        trained: &psyche_core::TrainedModel,
    ) -> Result<std::sync::Arc<dyn Model>, psyche_core::FineTuneError> {
        let reply = self.reply.clone();
        let mut model = Scripted::new(
            &trained.model_id,
            |_| vec![("a".to_owned(), 1.0)],
            move |_, _| reply.clone(),
        );
        model.calls = self.calls.clone();
        Ok(std::sync::Arc::new(model))
    }
}
