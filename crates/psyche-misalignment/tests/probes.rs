//! The judge-free multiple-choice probe proxy (issue 27, defect 9): P(misaligned option) from
//! exact option distributions, averaged over both option orders, per arm, with the run-level
//! comparison. The models here are scripted distributions (the unit under test is the probe's
//! arithmetic and its aggregation, not a backend).

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Conversation, GenerateRequest, GenerateResponse, LogprobSupport, Model,
    ModelError, TokenDistribution, TopLogprob,
};
use psyche_misalignment::probes::{ProbeSettings, builtin_probes, probe_arms, probe_model};
use psyche_stats::Method;

/// Puts `p` on the letter that stands beside the misaligned answer and `bias` extra on `A`;
/// the rest of its (complete) distribution on a non-option token.
struct Scripted {
    id: String,
    p: f64,
    bias: f64,
}

#[async_trait]
impl Model for Scripted {
    fn id(&self) -> &str {
        &self.id
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: Some(LogprobSupport { max_top_k: 20 }),
            full_distribution: true,
            ..Capabilities::default()
        }
    }
    async fn generate(&self, _: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        Err(ModelError::InvalidRequest(
            "the probe must not sample".into(),
        ))
    }
    async fn next_token_distribution(
        &self,
        messages: &Conversation,
        _top_k: u32,
    ) -> Result<TokenDistribution, ModelError> {
        let text = messages.last_user_text().unwrap_or_default().to_owned();
        let probe = builtin_probes()
            .into_iter()
            .find(|p| text.starts_with(&p.question))
            .ok_or_else(|| ModelError::InvalidRequest("unknown probe".into()))?;
        let mis_first = text.contains(&format!("(A) {}", probe.misaligned));
        // Option mass 0.8 in all; `bias` of it moves to A regardless of content.
        let (mut a, mut b) = if mis_first {
            (0.8 * self.p, 0.8 * (1.0 - self.p))
        } else {
            (0.8 * (1.0 - self.p), 0.8 * self.p)
        };
        let shift = self.bias * b;
        a += shift;
        b -= shift;
        Ok(TokenDistribution {
            tokens: vec![
                TopLogprob::new("A", a.ln()),
                TopLogprob::new("B", b.ln()),
                TopLogprob::new("Sure", 0.2f64.ln()),
            ],
            complete: true,
        })
    }
}

fn model(id: &str, p: f64, bias: f64) -> Arc<dyn Model> {
    Arc::new(Scripted {
        id: id.into(),
        p,
        bias,
    })
}

#[tokio::test]
async fn mc_probe_proxy_offline() {
    let settings = ProbeSettings::default();
    // A content-blind model that prefers A: averaging over orders gives exactly 0.5.
    let blind = probe_model(model("blind", 0.5, 0.6).as_ref(), &settings)
        .await
        .unwrap();
    assert_eq!(blind.answers.len(), 16);
    for a in &blind.answers {
        assert!((a.p_misaligned - 0.5).abs() < 1e-12, "{a:?}");
        assert!(a.by_order[0] > 0.5 && a.by_order[1] < 0.5, "{a:?}");
        assert!((a.mass - 0.8).abs() < 1e-9);
    }
    // A model that picks the misaligned answer with p = 0.3 in either position.
    let m = probe_model(model("m", 0.3, 0.0).as_ref(), &settings)
        .await
        .unwrap();
    assert!((m.mean.value().unwrap() - 0.3).abs() < 1e-12);
    assert!(m.method.starts_with("first_token"));

    // Arms: three misaligned runs (0.30, 0.40, 0.35) vs three control runs (0.10, 0.15, 0.05).
    let arms = vec![
        (
            "misaligned".to_owned(),
            vec![
                (Some(0), model("mis-0", 0.30, 0.0)),
                (Some(1), model("mis-1", 0.40, 0.0)),
                (Some(2), model("mis-2", 0.35, 0.0)),
            ],
        ),
        (
            "control".to_owned(),
            vec![
                (Some(0), model("ctl-0", 0.10, 0.0)),
                (Some(1), model("ctl-1", 0.15, 0.0)),
                (Some(2), model("ctl-2", 0.05, 0.0)),
            ],
        ),
        ("base".to_owned(), vec![(None, model("base", 0.2, 0.3))]),
    ];
    let r = probe_arms(&arms, "misaligned", &["control", "base"], &settings)
        .await
        .unwrap();
    let mis = r.arm("misaligned").unwrap();
    let e = mis.over_runs.estimate().unwrap();
    assert_eq!(e.method, Method::SeedMeansT);
    assert!((e.estimate - 0.35).abs() < 1e-12);
    assert_eq!(r.comparison.len(), 2);
    let c = &r.comparison[0];
    assert_eq!(
        (c.treatment.as_str(), c.control.as_str()),
        ("misaligned", "control")
    );
    let d = c.difference.estimate().unwrap();
    assert_eq!(d.method, Method::PooledTOverSeeds);
    assert!((d.estimate - 0.25).abs() < 1e-12);
    // Both arms' run means have sd 0.05: pooled se = 0.05·√(2/3), df 4.
    let half = psyche_stats::t_quantile(0.975, 4.0).unwrap() * 0.05 * (2.0f64 / 3.0).sqrt();
    assert!((d.ci_high - d.estimate - half).abs() < 1e-9, "{d:?}");
    assert_eq!(c.units("probes"), "3 vs 3 runs, 16 probes");
    assert_eq!(r.comparison[1].control, "base");
    assert!(r.comparison[1].difference.value().is_some());
}
