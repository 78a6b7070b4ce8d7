//! Regression test for issue 14.3: the report's mode baseline and accuracy must be computed on
//! the same items.

use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Conversation, GenerateRequest, GenerateResponse, Model, ModelError, Record,
    Sample, Score, Usage, Verdict,
};
use psyche_runner::Eval;
use psyche_runner::log::write_log;
use psyche_runner::report::{ReportConfig, summarize};

/// A stand-in subject, only needed to build a log header.
struct Unused;

#[async_trait]
impl Model for Unused {
    fn id(&self) -> &str {
        "m"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn generate(&self, _: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        Err(ModelError::Backend("not called".into()))
    }
}

/// Defect: the baseline was computed over every record's target while accuracy excluded the
/// records the judge declined (`Score::None`), so the two had different denominators.
#[test]
fn mode_baseline_uses_the_same_items_as_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let samples: Vec<Sample> = (0..6)
        .map(|i| Sample::new(format!("s{i}"), Conversation::user("?")).with_meta("property", "p"))
        .collect();
    let eval = Eval::builder("baseline")
        .samples(samples.clone())
        .model(Arc::new(Unused) as Arc<dyn Model>)
        .build()
        .unwrap();
    // Targets: a a a x x x. The three `x` items are declined by the judge (e.g. object-level
    // refusals), so the scored items all have target `a`: baseline 1.0 on n = 3, not 0.5.
    let records: Vec<Record> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut r = Record::for_sample("baseline", s, "m", 0);
            r.output = Some("a".into());
            let (target, score) = if i < 3 {
                ("a", Score::Bool(i == 0))
            } else {
                ("x", Score::none("object-level refusal"))
            };
            r.metadata.insert("target".into(), target.into());
            r.scores.insert("j".into(), Verdict::new("j", score));
            r.usage = Usage::default();
            r
        })
        .collect();
    write_log(&path, &eval.header(), &records).unwrap();
    let cfg = ReportConfig {
        group_by: vec!["property".into()],
        ..ReportConfig::default()
    };
    let summary = summarize(&path, &cfg).unwrap();
    let row = summary.rows.iter().find(|r| r.judge == "j").unwrap();
    assert_eq!(row.n, 3);
    assert_eq!(row.declined, 3);
    let (mode, acc) = row.mode_baseline.clone().unwrap();
    assert_eq!(mode, "a");
    assert!(
        (acc - 1.0).abs() < 1e-12,
        "baseline over the scored items only: {acc}"
    );
}
