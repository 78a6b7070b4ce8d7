//! Middleware in isolation, around a scripted inner model.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use psyche_core::{
    Capabilities, Choice, Conversation, GenerateRequest, GenerateResponse, LogLikelihood, Model,
    ModelError, Usage,
};
use psyche_models::{
    AdaptiveConfig, ConcurrencyLimit, LimitChange, Retry, RetryConfig, TokenPriceTable, UsageMeter,
};

/// Replies from a script (then successes), tracking attempts and concurrency.
#[derive(Debug, Default)]
struct Scripted {
    script: Mutex<VecDeque<ModelError>>,
    attempts: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    delay: Duration,
}

fn http(status: u16, retry_after: Option<Duration>, message: &str) -> ModelError {
    ModelError::Http {
        status,
        endpoint: "/chat/completions".into(),
        message: message.into(),
        retry_after,
    }
}

#[async_trait]
impl Model for Scripted {
    fn id(&self) -> &str {
        "scripted"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn generate(&self, _r: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(e) = self.script.lock().pop_front() {
            return Err(e);
        }
        Ok(GenerateResponse {
            model: "scripted-v1".into(),
            choices: vec![Choice::text("ok")],
            usage: Usage {
                prompt_tokens: 1000,
                completion_tokens: 500,
            },
        })
    }
    async fn loglikelihood(
        &self,
        _c: &Conversation,
        _s: &str,
    ) -> Result<LogLikelihood, ModelError> {
        Ok(LogLikelihood {
            logprob: -1.5,
            is_greedy: true,
            token_logprobs: vec![-1.5],
        })
    }
}

fn scripted(errors: Vec<ModelError>) -> Arc<Scripted> {
    Arc::new(Scripted {
        script: Mutex::new(errors.into()),
        ..Scripted::default()
    })
}

fn req() -> GenerateRequest {
    GenerateRequest::new(Conversation::user("x"))
}

fn retry_cfg() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        attempt_timeout: Duration::from_millis(200),
        deadline: Duration::from_secs(5),
        ..RetryConfig::default()
    }
}

#[tokio::test]
async fn retry_recovers_from_transient_errors_and_honours_retry_after() {
    let inner = scripted(vec![
        http(429, Some(Duration::from_millis(60)), "slow down"),
        http(503, None, "busy"),
        ModelError::Connection("reset".into()),
    ]);
    let model = Retry::new(inner.clone(), retry_cfg()).unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(model.generate(&req()).await.unwrap().text(), "ok");
    assert_eq!(inner.attempts.load(Ordering::SeqCst), 4);
    assert!(
        start.elapsed() >= Duration::from_millis(60),
        "Retry-After honoured"
    );
}

#[tokio::test]
async fn retry_gives_up_and_skips_permanent_errors() {
    let inner = scripted(vec![http(400, None, "bad field `x`")]);
    let err = Retry::new(inner.clone(), retry_cfg())
        .unwrap()
        .generate(&req())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(inner.attempts.load(Ordering::SeqCst), 1);

    let quota = scripted(vec![http(
        429,
        None,
        "You exceeded your quota (insufficient_quota)",
    )]);
    Retry::new(quota.clone(), retry_cfg())
        .unwrap()
        .generate(&req())
        .await
        .unwrap_err();
    assert_eq!(
        quota.attempts.load(Ordering::SeqCst),
        1,
        "quota 429 is permanent"
    );

    let always = scripted((0..10).map(|_| http(500, None, "boom")).collect());
    let err = Retry::new(always.clone(), retry_cfg())
        .unwrap()
        .generate(&req())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(
        always.attempts.load(Ordering::SeqCst),
        4,
        "1 attempt + 3 retries"
    );
}

#[tokio::test]
async fn retry_times_out_stalled_attempts() {
    let inner = Arc::new(Scripted {
        delay: Duration::from_millis(500),
        ..Scripted::default()
    });
    let cfg = RetryConfig {
        attempt_timeout: Duration::from_millis(20),
        deadline: Duration::from_millis(200),
        ..retry_cfg()
    };
    let err = Retry::new(inner.clone(), cfg)
        .unwrap()
        .generate(&req())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Timeout(_)), "{err:?}");
    assert!(inner.attempts.load(Ordering::SeqCst) >= 2);
}

#[test]
fn retry_config_is_checked() {
    let bad = RetryConfig {
        jitter: 1.5,
        ..RetryConfig::default()
    };
    assert!(
        Retry::new(scripted(vec![]), bad)
            .unwrap_err()
            .to_string()
            .contains("retry.jitter")
    );
    let cfg = RetryConfig::default();
    assert_eq!(cfg.backoff(0), Duration::from_secs(1));
    assert_eq!(cfg.backoff(3), Duration::from_secs(8));
    assert_eq!(cfg.backoff(20), Duration::from_secs(60));
}

#[tokio::test]
async fn wrappers_forward_overridden_provided_methods() {
    // The scripted model overrides loglikelihood; every wrapper must pass it through.
    let inner = scripted(vec![]);
    let stack = UsageMeter::new(
        Retry::new(ConcurrencyLimit::fixed(inner, 2).unwrap(), retry_cfg()).unwrap(),
    );
    let ll = stack
        .loglikelihood(&Conversation::user("x"), "y")
        .await
        .unwrap();
    assert_eq!(ll.logprob, -1.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_limit_caps_in_flight_calls() {
    let inner = Arc::new(Scripted {
        delay: Duration::from_millis(5),
        ..Scripted::default()
    });
    let model = Arc::new(ConcurrencyLimit::fixed(inner.clone(), 3).unwrap());
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let m = model.clone();
            tokio::spawn(async move { m.generate(&req()).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(inner.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn adaptive_limit_grows_then_shrinks_on_rate_limits() {
    let inner = scripted(vec![]);
    let cfg = AdaptiveConfig {
        min: 2,
        initial: 4,
        max: 20,
        decrease_factor: 0.8,
        cooldown: Duration::from_secs(60),
    };
    let model = ConcurrencyLimit::adaptive(inner.clone(), cfg).unwrap();
    for _ in 0..6 {
        model.generate(&req()).await.unwrap();
    }
    assert_eq!(
        model.limiter().limit(),
        10,
        "slow start adds one per success"
    );
    inner
        .script
        .lock()
        .extend([http(429, None, "rl"), http(429, None, "rl")]);
    model.generate(&req()).await.unwrap_err();
    assert_eq!(model.limiter().limit(), 8, "×0.8 on a 429");
    model.generate(&req()).await.unwrap_err();
    assert_eq!(
        model.limiter().limit(),
        8,
        "second 429 within the cooldown is ignored"
    );
    for _ in 0..10 {
        model.generate(&req()).await.unwrap();
    }
    assert_eq!(
        model.limiter().limit(),
        9,
        "additive increase after the first 429"
    );
    let kinds: Vec<LimitChange> = model.limiter().history().iter().map(|(c, _)| *c).collect();
    assert!(kinds.contains(&LimitChange::SlowStart));
    assert!(kinds.contains(&LimitChange::RateLimit));
    assert!(kinds.contains(&LimitChange::SteadyStateUp));
}

#[tokio::test]
async fn usage_meter_counts_tokens_and_cost() {
    let meter = UsageMeter::with_prices(
        scripted(vec![]),
        TokenPriceTable::default().with("scripted", 2.5, 10.0),
    );
    for _ in 0..4 {
        meter.generate(&req()).await.unwrap();
    }
    let report = meter.report();
    let u = &report.models["scripted-v1"];
    assert_eq!(u.calls, 4);
    assert_eq!(u.prompt_tokens, 4000);
    assert_eq!(u.completion_tokens, 2000);
    // 4000 × 2.5 / 1e6 + 2000 × 10 / 1e6 = 0.03
    assert!((report.total_cost_usd() - 0.03).abs() < 1e-12);
}
