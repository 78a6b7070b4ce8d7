//! Shared test helpers: arithmetic samples, an exact-match judge and a scripted model.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Choice, Conversation, GenerateRequest, GenerateResponse, Judge, JudgeError,
    Model, ModelError, ModelInfo, Sample, Score, Usage, Verdict,
};

/// `n` samples "What is a + b?" with the sum as target, grouped by `a % 3` as task.
pub fn arithmetic_samples(n: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let a = (i * 7919) % 1000;
            let b = (i * 104_729) % 997;
            Sample::new(
                format!("s{i:05}"),
                Conversation::user(format!("What is {a} + {b}?")),
            )
            .with_target((a + b).to_string())
            .with_meta("task", format!("t{}", i % 3))
        })
        .collect()
}

/// Scores 1 when the trimmed output equals the sample's target.
#[derive(Debug)]
pub struct ExactMatch;

#[async_trait]
impl Judge for ExactMatch {
    fn id(&self) -> &str {
        "exact"
    }
    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let target = sample.target.as_deref().ok_or_else(|| JudgeError::Sample {
            sample: sample.id.clone(),
            message: "no target".into(),
        })?;
        Ok(Verdict::new("exact", Score::Bool(output.trim() == target.trim())).with_answer(output))
    }
}

/// A scripted model: answers `"<seed % 10>"` for prompts containing "digit", the sum for
/// arithmetic prompts (wrong for every 4th sample), fails with HTTP 500 for prompts containing
/// "fail", and counts calls.
#[derive(Debug, Default)]
pub struct Scripted {
    pub id: String,
    pub weights: Option<String>,
    pub calls: AtomicU64,
}

impl Scripted {
    pub fn new(id: &str) -> Arc<Self> {
        Arc::new(Self {
            id: id.into(),
            weights: None,
            calls: AtomicU64::new(0),
        })
    }

    /// The same scripted answers, reported as coming from `weights`.
    #[allow(dead_code)]
    pub fn with_weights(id: &str, weights: &str) -> Arc<Self> {
        Arc::new(Self {
            id: id.into(),
            weights: Some(weights.into()),
            calls: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl Model for Scripted {
    fn id(&self) -> &str {
        &self.id
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn info(&self) -> ModelInfo {
        ModelInfo {
            id: self.id.clone(),
            backend: "scripted-test".into(),
            weights: self.weights.clone(),
            settings: serde_json::json!({"api_key": "sk-test-should-never-appear-1234"}),
        }
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let text = req.messages.last_user_text().unwrap_or("");
        if text.contains("fail") {
            return Err(ModelError::Http {
                status: 500,
                endpoint: "/v1/chat/completions".into(),
                message: "scripted failure".into(),
                retry_after: None,
            });
        }
        let answer = if text.contains("digit") {
            (req.seed.unwrap_or(0) % 10).to_string()
        } else {
            let nums: Vec<i64> = text
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            match nums.as_slice() {
                [a, b] if a % 4 == 0 => (a + b + 1).to_string(),
                [a, b] => (a + b).to_string(),
                _ => format!("echo: {text}"),
            }
        };
        Ok(GenerateResponse {
            model: self.id.clone(),
            choices: vec![Choice::text(answer)],
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 1,
            },
        })
    }
}
