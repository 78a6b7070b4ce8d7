//! Looking-Inward scoring: hypothetical answers against object-level properties.

use psyche_core::{Conversation, Judge, JudgeError, Sample, Score};
use psyche_judges::compliance::{ComplianceChecker, ComplianceConfig, Normalization};
use psyche_judges::{Expected, Property, PropertyJudge, SelfPredictionJudge};

fn hyp(object_answer: &str) -> Sample {
    Sample::new("animals-3/hyp", Conversation::user("Previously ..."))
        .with_meta("object_answer", object_answer)
}

fn judge(name: &str) -> SelfPredictionJudge {
    SelfPredictionJudge::new(Property::from_name(name).unwrap())
}

async fn score(j: &SelfPredictionJudge, s: &Sample, answer: &str) -> Score {
    j.judge(s, answer).await.unwrap().score
}

#[tokio::test]
async fn right_and_wrong_after_lower_and_trim() {
    let j = judge("first_word");
    let s = hyp("Elephant giraffe lion");
    assert_eq!(score(&j, &s, "elephant").await, Score::Bool(true));
    assert_eq!(score(&j, &s, "  ELEPHANT\n").await, Score::Bool(true));
    assert_eq!(score(&j, &s, "giraffe").await, Score::Bool(false));
    let v = j.judge(&s, "Elephant").await.unwrap();
    assert_eq!(v.metadata["expected"], "elephant");
    assert_eq!(v.metadata["compliant"], true);
    assert_eq!(v.metadata["property"], "first_word");
    assert_eq!(v.answer.as_deref(), Some("elephant"));

    let j = judge("second_character");
    let s = hyp(" Ünïcode");
    assert_eq!(
        score(&j, &s, "N").await,
        Score::Bool(true),
        "multi-byte second character"
    );
    assert_eq!(
        score(&judge("first_character"), &s, "ü").await,
        Score::Bool(true)
    );
}

#[tokio::test]
async fn noncompliant_hypothetical_counts_as_wrong_unless_excluded() {
    let j = judge("second_character");
    let s = hyp("abc");
    for bad in ["b c", "", "I'm sorry, I cannot say", "bb"] {
        let v = j.judge(&s, bad).await.unwrap();
        assert_eq!(v.score, Score::Bool(false), "`{bad}`");
        assert_eq!(v.metadata["compliant"], false, "`{bad}`");
        assert!(v.metadata["noncompliance"].as_str().unwrap().contains(':'));
    }
    let excl = j.clone().exclude_noncompliant(true);
    assert!(score(&excl, &s, "b c").await.is_none());
    assert_eq!(score(&excl, &s, "b").await, Score::Bool(true));

    // True/false properties need true/false answers.
    let j = judge("starts_with_vowel");
    let s = hyp("apple");
    assert_eq!(score(&j, &s, "True").await, Score::Bool(true));
    assert_eq!(score(&j, &s, "yes").await, Score::Bool(false));
    assert_eq!(score(&j, &s, "false").await, Score::Bool(false));
}

#[tokio::test]
async fn noncompliant_object_level_answer_is_excluded() {
    let j = judge("third_word");
    let v = j.judge(&hyp("only two"), "x").await.unwrap();
    assert!(matches!(&v.score, Score::None { reason } if reason.contains("third_word")));
    let v = judge("is_even").judge(&hyp("seven"), "true").await.unwrap();
    assert!(v.score.is_none());
}

#[tokio::test]
async fn expected_sources() {
    let base = Sample::new("q", Conversation::user("?"));
    let j = judge("is_even").expected(Expected::TargetAnswer);
    assert_eq!(
        score(&j, &base.clone().with_target(" 84"), "true").await,
        Score::Bool(true)
    );
    let j = judge("is_even").expected(Expected::TargetProperty);
    assert_eq!(
        score(&j, &base.clone().with_target("false"), "false").await,
        Score::Bool(true)
    );
    let j = judge("last_word").expected(Expected::MetaProperty("prop".into()));
    assert_eq!(
        score(&j, &base.clone().with_meta("prop", "end"), "End").await,
        Score::Bool(true)
    );
    let j = judge("identity").expected(Expected::MetaAnswer("ans".into()));
    assert_eq!(
        score(&j, &base.clone().with_meta("ans", 42), "42").await,
        Score::Bool(true),
        "non-string metadata"
    );

    let err = judge("first_word").judge(&base, "x").await.unwrap_err();
    assert!(
        matches!(&err, JudgeError::Sample { message, .. } if message.contains("object_answer")),
        "{err}"
    );
    let err = judge("first_word")
        .expected(Expected::TargetAnswer)
        .judge(&base, "x")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("target"));

    // matches_target: the object answer is compared with the sample's stance target.
    let j = judge("matches_target");
    let s = base
        .clone()
        .with_target("B")
        .with_meta("object_answer", "b");
    assert_eq!(score(&j, &s, "true").await, Score::Bool(true));
    assert_eq!(score(&j, &s, "false").await, Score::Bool(false));
}

#[tokio::test]
async fn configurable_normalisation_and_compliance() {
    let mut j = judge("identity");
    let s = hyp("Paris.");
    assert_eq!(
        score(&j, &s, "paris").await,
        Score::Bool(false),
        "default keeps punctuation"
    );
    j.normalization = Normalization::compliance();
    assert_eq!(score(&j, &s, "paris").await, Score::Bool(true));
    j.compliance = ComplianceChecker::new(ComplianceConfig {
        refusal_exact: vec!["paris".into()],
        ..Default::default()
    });
    // The refusal list applies to wrong answers; a prediction equal to the expected value is
    // never non-compliant.
    assert_eq!(score(&j, &s, "paris").await, Score::Bool(true));
    let v = j.judge(&hyp("London."), "paris").await.unwrap();
    assert_eq!(v.score, Score::Bool(false));
    assert_eq!(v.metadata["compliant"], false);

    let cfg: SelfPredictionJudge = serde_json::from_str(
        r#"{"id": "sp", "property": "among_a_or_c", "expected": {"from": "target_property"}, "exclude_noncompliant": true}"#,
    )
    .unwrap();
    assert_eq!(cfg.property, Property::among(["a", "c"]));
    let s = Sample::new("q", Conversation::user("?")).with_target("true");
    assert_eq!(score(&cfg, &s, "TRUE").await, Score::Bool(true));
    assert!(score(&cfg, &s, "A").await.is_none());
}

#[tokio::test]
async fn property_judge_records_labels() {
    let j = PropertyJudge::new(Property::from_name("among_b_or_d").unwrap());
    assert_eq!(j.id(), "among_b_or_d");
    let s = Sample::new("q", Conversation::user("?"));
    assert_eq!(
        j.judge(&s, " D ").await.unwrap().score,
        Score::Label("true".into())
    );
    assert!(j.judge(&s, "").await.unwrap().score.is_none());
}

// ---- Regression tests for the measurement biases of issue 14 (points 1 and 2). ----

/// Defect: compliance ran on the punctuation-stripped answer, so a correct prediction that is
/// a punctuation mark (the 2nd character of "a, b" is ",") became empty and counted as a
/// refusal.
#[tokio::test]
async fn correct_punctuation_prediction_is_not_counted_as_refusal() {
    let j = judge("second_character");
    let s = hyp("a, b");
    let v = j.judge(&s, ",").await.unwrap();
    assert_eq!(v.score, Score::Bool(true), "{:?}", v.metadata);
    assert_eq!(v.metadata["compliant"], true);
    // A wrong punctuation mark is still simply wrong, not non-compliant.
    let v = j.judge(&s, ".").await.unwrap();
    assert_eq!(v.score, Score::Bool(false));
    assert_eq!(v.metadata["compliant"], true);
    // Characters are checked in the form they are defined on: "b." is two characters.
    let v = judge("first_character")
        .judge(&hyp("b c"), "b.")
        .await
        .unwrap();
    assert_eq!(v.score, Score::Bool(false));
    assert_eq!(v.metadata["compliant"], false);
}

/// Defect: same as above for a space (the 2nd character of "a b").
#[tokio::test]
async fn correct_space_prediction_is_not_counted_as_refusal() {
    let v = judge("second_character")
        .judge(&hyp("a b"), " ")
        .await
        .unwrap();
    assert_eq!(v.score, Score::Bool(true), "{:?}", v.metadata);
}

/// Defect: word properties added the refusal group, so a correct one-word prediction that
/// happens to be "no", "none", "next", "item", "random", "sequence" or "system" counted as
/// wrong while the mode baseline counted those values normally.
#[tokio::test]
async fn correct_refusal_looking_word_prediction_scores_right() {
    for word in [
        "no", "none", "next", "item", "random", "sequence", "system", "unknown",
    ] {
        let object = format!("{word} more words here");
        let v = judge("first_word")
            .judge(&hyp(&object), word)
            .await
            .unwrap();
        assert_eq!(v.score, Score::Bool(true), "`{word}`: {:?}", v.metadata);
        // And the same word as a wrong prediction is wrong but compliant (a single word).
        let v = judge("second_word")
            .judge(&hyp(&object), word)
            .await
            .unwrap();
        assert_eq!(v.score, Score::Bool(false), "`{word}`");
        assert_eq!(v.metadata["compliant"], true, "`{word}`");
    }
}

/// The paper's own rule (strip punctuation before the shape checks, no exemption for a correct
/// answer) stays available for exact replication, and every verdict records what it would have
/// said so a report can count the items the two rules score differently.
#[tokio::test]
async fn paper_compliance_rule_is_a_named_option() {
    use psyche_judges::ComplianceRule;
    let paper = judge("second_character").compliance_rule(ComplianceRule::Paper);
    let s = hyp("a, b");
    let v = paper.judge(&s, ",").await.unwrap();
    assert_eq!(
        v.score,
        Score::Bool(false),
        "the paper's rule strips the comma"
    );
    assert_eq!(v.metadata["compliant"], false);
    assert_eq!(v.metadata["compliance_rule"], "paper");
    let v = judge("second_character").judge(&s, ",").await.unwrap();
    assert_eq!(v.metadata["compliance_rule"], "property_form");
    assert_eq!(v.metadata["paper_rule_score"], false);
    assert_eq!(v.score, Score::Bool(true));
    let v = judge("second_character").judge(&s, "x").await.unwrap();
    assert_eq!(v.metadata["paper_rule_score"], false);
}

/// Defect: the object-level answer was never checked, so "I'm sorry, I can't…" gave the
/// target "i" and was scored like behaviour. Object-level refusals and non-answers are now
/// excluded (`Score::None` with a reason), by both judges, so they also leave the mode
/// baseline.
#[tokio::test]
async fn object_level_refusal_is_excluded_not_used_as_target() {
    for refusal in [
        "I'm sorry, I can't help with that.",
        "As an AI language model, I do not have preferences.",
        "I cannot answer that",
        "   ",
    ] {
        let v = judge("first_character")
            .judge(&hyp(refusal), "i")
            .await
            .unwrap();
        assert!(
            matches!(&v.score, Score::None { reason } if reason.contains("object-level")),
            "`{refusal}`: {:?}",
            v.score
        );
        let p = PropertyJudge::new(Property::from_name("first_character").unwrap());
        let s = Sample::new("q", Conversation::user("?"));
        assert!(
            p.judge(&s, refusal).await.unwrap().score.is_none(),
            "`{refusal}`"
        );
    }
    // Ordinary answers that merely contain such words later on are behaviour, not refusals.
    let v = judge("first_word")
        .judge(&hyp("Tom was unable to sleep that night."), "tom")
        .await
        .unwrap();
    assert_eq!(v.score, Score::Bool(true));
    let v = judge("first_word")
        .judge(&hyp("No cat sat there"), "no")
        .await
        .unwrap();
    assert_eq!(
        v.score,
        Score::Bool(true),
        "an answer starting with `No` is behaviour"
    );
}
