//! Option probabilities: one meaning on every backend (issue 14, defect 4).
//!
//! The provided `Model::option_probabilities` reads first-token logprobs (API backends) or
//! samples answers (backends without logprobs). Each test isolates that provided method with a
//! scripted model returning a fixed response.

use std::sync::Mutex;

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Choice, Conversation, FinishReason, GenerateRequest, GenerateResponse,
    LogprobSupport, Model, ModelError, OptionQuery, ProbabilityMethod, TokenLogprob, TopLogprob,
    Usage,
};

struct Scripted {
    caps: Capabilities,
    response: GenerateResponse,
    seen: Mutex<Vec<GenerateRequest>>,
}

#[async_trait]
impl Model for Scripted {
    fn id(&self) -> &str {
        "scripted"
    }
    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        self.seen.lock().unwrap().push(request.clone());
        let mut r = self.response.clone();
        r.choices.truncate(request.n as usize);
        Ok(r)
    }
}

/// A backend that returns these top logprobs (probabilities) for the first answer token.
fn top_k(top: &[(&str, f64)]) -> Scripted {
    Scripted {
        caps: Capabilities {
            logprobs: Some(LogprobSupport { max_top_k: 20 }),
            ..Capabilities::default()
        },
        response: GenerateResponse {
            model: "scripted".into(),
            choices: vec![Choice {
                text: top[0].0.into(),
                finish_reason: FinishReason::Length,
                logprobs: Some(vec![TokenLogprob {
                    token: top[0].0.into(),
                    logprob: top[0].1.ln(),
                    bytes: None,
                    top_logprobs: top
                        .iter()
                        .map(|(t, p)| TopLogprob::new(*t, p.ln()))
                        .collect(),
                }]),
            }],
            usage: Usage::default(),
        },
        seen: Mutex::new(Vec::new()),
    }
}

/// A backend without logprobs whose sampled answers are these.
fn sampler(answers: &[&str]) -> Scripted {
    Scripted {
        caps: Capabilities::default(),
        response: GenerateResponse {
            model: "scripted".into(),
            choices: answers.iter().map(|a| Choice::text(*a)).collect(),
            usage: Usage::default(),
        },
        seen: Mutex::new(Vec::new()),
    }
}

fn conv() -> Conversation {
    Conversation::user("Pick one.")
}

#[tokio::test]
async fn first_token_probabilities_refuse_a_multi_token_option_instead_of_returning_zero() {
    // "10" is two tokens here: the listing shows its first token "1", never "10". Reading
    // first-token mass would give "10" probability 0 and hand "1" the mass of "10".
    let model = top_k(&[("1", 0.6), ("2", 0.3), ("3", 0.05)]);
    let err = model
        .option_probabilities(&conv(), &OptionQuery::new(["1", "10"]))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::InvalidRequest(_)), "{err}");
    assert!(err.to_string().contains("`10`"), "{err}");

    // A multi-word option is several tokens on any tokenizer.
    let err = top_k(&[("Yes", 0.9)])
        .option_probabilities(&conv(), &OptionQuery::new(["Yes", "No way"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`No way`"), "{err}");

    // A single-token option that is simply below the listed top-k gets 0, as before.
    let p = top_k(&[("A", 0.7), ("B", 0.2)])
        .option_probabilities(&conv(), &OptionQuery::new(["A", "B", "C"]))
        .await
        .unwrap();
    assert_eq!(p.get("C"), Some(0.0));
}

#[tokio::test]
async fn parenthesised_answers_count_for_their_letter_on_logprob_and_sampling_paths() {
    // First token "(A" (one token on many tokenizers) designates A; " B" designates B.
    let p = top_k(&[("(A", 0.3), (" B", 0.1), ("A", 0.3), ("Sure", 0.3)])
        .option_probabilities(&conv(), &OptionQuery::new(["A", "B"]))
        .await
        .unwrap();
    assert!((p.mass - 0.7).abs() < 1e-12, "{p:?}");
    assert!((p.get("A").unwrap() - 0.6 / 0.7).abs() < 1e-12, "{p:?}");

    // Sampled answers: "(B)", "B)" and "(B) because" all designate B; "Both" does not.
    let p = sampler(&["(B)", "B)", "(B) because", "A", "Both", "[A]"])
        .option_probabilities(&conv(), &OptionQuery::new(["A", "B"]).sampling(6, 1))
        .await
        .unwrap();
    assert!((p.get("B").unwrap() - 0.6).abs() < 1e-12, "{p:?}");
    assert!((p.mass - 5.0 / 6.0).abs() < 1e-12, "{p:?}");
}

#[tokio::test]
async fn a_sampled_answer_counts_for_the_longest_option_it_designates() {
    // "10" designates "10", not "1"; "1." designates "1".
    let p = sampler(&["10", "10.", "1.", "1"])
        .option_probabilities(&conv(), &OptionQuery::new(["1", "10"]).sampling(4, 1))
        .await
        .unwrap();
    assert_eq!(p.probabilities, vec![0.5, 0.5]);
}

#[tokio::test]
async fn options_that_are_equal_under_the_case_rule_are_rejected() {
    let model = top_k(&[("Yes", 0.9)]);
    let q = OptionQuery::new(["yes", "Yes"]).case_insensitive(true);
    let err = model.option_probabilities(&conv(), &q).await.unwrap_err();
    assert!(matches!(err, ModelError::InvalidRequest(_)), "{err}");
    let err = model
        .option_probabilities(&conv(), &OptionQuery::new(["A", ""]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("options[1]"), "{err}");
}

#[tokio::test]
async fn the_method_used_is_recorded_and_old_names_still_read() {
    let p = top_k(&[("A", 0.7)])
        .option_probabilities(&conv(), &OptionQuery::new(["A", "B"]))
        .await
        .unwrap();
    assert_eq!(p.method, ProbabilityMethod::FirstToken { complete: false });
    let p = sampler(&["A"])
        .option_probabilities(&conv(), &OptionQuery::new(["A", "B"]).sampling(1, 0))
        .await
        .unwrap();
    assert_eq!(p.method, ProbabilityMethod::Sampled { samples: 1 });
    let old: ProbabilityMethod =
        serde_json::from_str(r#"{"kind":"logprobs","complete":true}"#).unwrap();
    assert_eq!(old, ProbabilityMethod::FirstToken { complete: true });
    let old: ProbabilityMethod = serde_json::from_str(r#"{"kind":"exact"}"#).unwrap();
    assert_eq!(old, ProbabilityMethod::CompleteAnswer);
}

#[test]
fn answer_forms_map_parentheses_to_the_option_and_never_repeat() {
    let q = OptionQuery::new(["A", "(A)"]);
    let forms = q.answer_forms();
    // "(A)" is an option of its own, so A's derived "(A)" is not counted for A as well.
    assert!(forms.contains(&(0, "A)".into())));
    assert!(forms.contains(&(1, "(A)".into())));
    assert!(!forms.contains(&(0, "(A)".into())));
    let mut all: Vec<&String> = forms.iter().map(|(_, f)| f).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), forms.len());
    let ci = OptionQuery::new(["yes"])
        .case_insensitive(true)
        .answer_forms();
    for f in ["yes", "YES", "Yes", "(Yes)", "yes)"] {
        assert!(ci.iter().any(|(_, g)| g == f), "{f} missing in {ci:?}");
    }
}
