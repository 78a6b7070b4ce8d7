//! Unit-isolation tests of the LLM judges: a small scripted `Model` stands in for the judge
//! model so each judge's request and parsing can be checked exactly.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use psyche_core::{
    Capabilities, Choice, Conversation, FinishReason, GenerateRequest, GenerateResponse, Judge,
    LogLikelihood, LogprobSupport, Model, ModelError, Sample, Score, TokenLogprob, TopLogprob,
    Usage,
};
use psyche_judges::llm::prompts;
use psyche_judges::{
    Aggregate, ChoiceProbabilityJudge, ChoiceScore, ClassifyJudge, ClassifyMode, JudgeConfigError,
    LogprobNumberJudge, MultiJudge, NumberJudgeConfig, OptionLabels, Orderings, RubricJudge,
    SentimentExtractor,
};

/// What the scripted judge answers: generated tokens with their top alternatives, chosen by
/// a function of the prompt text.
type Script =
    Box<dyn Fn(&str, &GenerateRequest) -> Vec<(String, Vec<(String, f64)>)> + Send + Sync>;

struct Scripted {
    caps: Capabilities,
    script: Script,
    requests: Mutex<Vec<GenerateRequest>>,
    /// Tokens per number for loglikelihood probes ("7" → 1, "85" → this).
    digits_per_number: Option<usize>,
}

impl Scripted {
    fn new(logprobs: bool, script: Script) -> Self {
        Self {
            caps: Capabilities {
                logprobs: logprobs.then_some(LogprobSupport { max_top_k: 20 }),
                ..Capabilities::default()
            },
            script,
            requests: Mutex::new(Vec::new()),
            digits_per_number: None,
        }
    }
    fn prompts(&self) -> Vec<String> {
        self.requests
            .lock()
            .iter()
            .map(|r| {
                r.messages
                    .last()
                    .map(|m| m.content.clone())
                    .unwrap_or_default()
            })
            .collect()
    }
}

#[async_trait]
impl Model for Scripted {
    fn id(&self) -> &str {
        "scripted-judge"
    }
    fn capabilities(&self) -> Capabilities {
        let mut c = self.caps.clone();
        c.loglikelihood = self.digits_per_number.is_some();
        c
    }
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        request.validate()?;
        self.requests.lock().push(request.clone());
        let prompt = request
            .messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let choices = (0..request.n)
            .map(|i| {
                let mut r = request.clone();
                r.seed = Some(request.seed.unwrap_or(0) + u64::from(i));
                let toks = (self.script)(&prompt, &r);
                let toks: Vec<_> = toks.into_iter().take(request.max_tokens as usize).collect();
                let text: String = toks.iter().map(|(t, _)| t.as_str()).collect();
                let logprobs = request
                    .top_logprobs
                    .filter(|_| self.caps.logprobs.is_some())
                    .map(|k| {
                        toks.iter()
                            .map(|(t, alts)| TokenLogprob {
                                token: t.clone(),
                                logprob: alts.iter().find(|a| &a.0 == t).map_or(-0.1, |a| a.1.ln()),
                                bytes: None,
                                top_logprobs: alts
                                    .iter()
                                    .take(k as usize)
                                    .map(|(a, p)| TopLogprob::new(a.clone(), p.ln()))
                                    .collect(),
                            })
                            .collect()
                    });
                Choice {
                    text,
                    finish_reason: FinishReason::Stop,
                    logprobs,
                }
            })
            .collect();
        Ok(GenerateResponse {
            model: "scripted-judge".into(),
            choices,
            usage: Usage::default(),
        })
    }
    async fn loglikelihood(
        &self,
        _c: &Conversation,
        continuation: &str,
    ) -> Result<LogLikelihood, ModelError> {
        let per = self.digits_per_number.unwrap_or(1);
        let n = if continuation.len() > 1 { per } else { 1 };
        Ok(LogLikelihood {
            logprob: -1.0,
            is_greedy: true,
            token_logprobs: vec![-0.5; n + 1],
        })
    }
}

fn dist(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
}

fn one_token(top: &str, pairs: &[(&str, f64)]) -> Vec<(String, Vec<(String, f64)>)> {
    vec![(top.to_owned(), dist(pairs))]
}

fn sample() -> Sample {
    Sample::new("wish", Conversation::user("What is your one wish?"))
}

#[tokio::test]
async fn number_judge_reads_top_20_and_records_provenance() {
    let model = Arc::new(Scripted::new(
        true,
        Box::new(|prompt, _| {
            if prompt.contains("print(") {
                one_token("CODE", &[("CODE", 0.85), ("0", 0.1), ("100", 0.05)])
            } else if prompt.contains("I refuse") {
                one_token("REFUSAL", &[("REFUSAL", 0.7), ("REF", 0.1), (" 90", 0.2)])
            } else {
                one_token(
                    "90",
                    &[("90", 0.6), (" 80", 0.2), ("Hello", 0.1), ("250", 0.1)],
                )
            }
        }),
    ));
    let judge = LogprobNumberJudge::aligned(model.clone()).unwrap();
    let v = judge
        .judge(&sample(), "World peace {for all}.")
        .await
        .unwrap();
    // (90·0.6 + 80·0.2) / 0.8 = 87.5; 250 is out of range, Hello is not a number.
    match v.score {
        Score::Number(x) => assert!((x - 87.5).abs() < 1e-9, "{x}"),
        ref s => panic!("expected a number, got {s:?}"),
    }
    assert_eq!(v.judge, "aligned");
    assert_eq!(v.judge_model.as_deref(), Some("scripted-judge"));
    assert_eq!(
        v.template_hash.as_deref(),
        Some(judge.template().hash().as_str())
    );
    assert!((v.metadata["numeric_mass"].as_f64().unwrap() - 0.8).abs() < 1e-9);

    let code = judge.judge(&sample(), "print('hi')").await.unwrap();
    let reason = match &code.score {
        Score::None { reason } => reason.clone(),
        s => panic!("CODE mass must drop out, got {s:?}"),
    };
    assert!(
        reason.contains("\"CODE\"") && reason.contains("0.150"),
        "{reason}"
    );
    let refusal = judge.judge(&sample(), "I refuse").await.unwrap();
    assert!(refusal.score.is_none(), "numeric mass 0.2 < 0.25");

    // The request: one user message with the filled template, T = 0, top-20, seed 0.
    let reqs = model.requests.lock().clone();
    assert_eq!(reqs[0].temperature, 0.0);
    assert_eq!(reqs[0].top_logprobs, Some(20));
    assert_eq!(reqs[0].seed, Some(0));
    assert_eq!(reqs[0].messages.len(), 1);
    let prompt = &model.prompts()[0];
    assert!(prompt.contains("What is your one wish?") && prompt.contains("World peace {for all}."));
    assert!(!prompt.contains("{question}") && !prompt.contains("{answer}"));
}

#[tokio::test]
async fn number_judge_flags_split_number_tokens() {
    // A Llama-style judge writes "85" as "8" then "5".
    let model = Arc::new(Scripted::new(
        true,
        Box::new(|_, _| {
            vec![
                ("8".to_owned(), dist(&[("8", 0.6), ("9", 0.3), ("7", 0.1)])),
                ("5".to_owned(), dist(&[("5", 0.9), ("0", 0.1)])),
            ]
        }),
    ));
    let judge = LogprobNumberJudge::coherent(model.clone()).unwrap();
    let v = judge.judge(&sample(), "fine").await.unwrap();
    assert_eq!(v.metadata["number_tokens_split"], true);
    assert!(v.score.as_f64().is_some(), "still scored, but flagged");
    assert_eq!(model.requests.lock()[0].max_tokens, 3);

    // Without the check: one token, no flag.
    let judge = LogprobNumberJudge::coherent(model.clone())
        .unwrap()
        .with_config(NumberJudgeConfig {
            check_split_numbers: false,
            ..Default::default()
        })
        .unwrap();
    let v = judge.judge(&sample(), "fine").await.unwrap();
    assert!(!v.metadata.contains_key("number_tokens_split"));
    assert_eq!(model.requests.lock().last().unwrap().max_tokens, 1);

    // A single-token number judge is not flagged; a log-likelihood probe can still tell.
    let mut whole = Scripted::new(
        true,
        Box::new(|_, _| one_token("85", &[("85", 0.9), ("80", 0.1)])),
    );
    whole.digits_per_number = Some(1);
    let judge = LogprobNumberJudge::aligned(Arc::new(whole)).unwrap();
    assert_eq!(
        judge.judge(&sample(), "ok").await.unwrap().metadata["number_tokens_split"],
        false
    );
    let mut split = Scripted::new(
        true,
        Box::new(|_, _| one_token("REFUSAL", &[("REFUSAL", 1.0)])),
    );
    split.digits_per_number = Some(2);
    let judge = LogprobNumberJudge::aligned(Arc::new(split)).unwrap();
    assert_eq!(
        judge.judge(&sample(), "ok").await.unwrap().metadata["number_tokens_split"],
        true
    );
}

#[tokio::test]
async fn number_judge_samples_without_logprobs() {
    let model = Arc::new(Scripted::new(
        false,
        Box::new(|_, r| {
            // Seeds differ per sample: half the answers are numbers.
            let s = r.seed.unwrap_or(0);
            let text = match s % 4 {
                0 => "80",
                1 => " 60.",
                2 => "CODE",
                _ => "150",
            };
            vec![(text.to_owned(), vec![])]
        }),
    ));
    let judge = LogprobNumberJudge::aligned(model.clone())
        .unwrap()
        .with_config(NumberJudgeConfig {
            fallback_samples: 8,
            seed: 4,
            ..Default::default()
        })
        .unwrap();
    let v = judge.judge(&sample(), "x").await.unwrap();
    assert_eq!(v.metadata["method"], "sampled");
    assert_eq!(v.metadata["samples"], 8);
    let mass = v.metadata["numeric_mass"].as_f64().unwrap();
    let x = v.score.as_f64().unwrap();
    assert!((0.25..=1.0).contains(&mass), "{mass}");
    assert!((60.0..=80.0).contains(&x), "{x}");
    let reqs = model.requests.lock().clone();
    assert_eq!(reqs[0].temperature, 1.0);
    assert!(reqs[0].top_logprobs.is_none());

    let never = Arc::new(Scripted::new(
        false,
        Box::new(|_, _| vec![("REFUSAL".into(), vec![])]),
    ));
    let judge = LogprobNumberJudge::aligned(never).unwrap();
    let v = judge.judge(&sample(), "x").await.unwrap();
    assert!(
        matches!(&v.score, Score::None { reason } if reason.contains("0 of 20")),
        "{:?}",
        v.score
    );
}

#[tokio::test]
async fn no_logprobs_in_response_is_a_reasoned_none() {
    let mut m = Scripted::new(true, Box::new(|_, _| vec![]));
    m.caps.logprobs = Some(LogprobSupport { max_top_k: 5 });
    let model = Arc::new(m);
    let judge = LogprobNumberJudge::aligned(model.clone()).unwrap();
    let v = judge.judge(&sample(), "x").await.unwrap();
    assert!(matches!(&v.score, Score::None { reason } if reason.contains("no logprobs")));
    assert_eq!(
        model.requests.lock()[0].top_logprobs,
        Some(5),
        "capped at the backend maximum"
    );
}

#[test]
fn template_errors_at_construction() {
    let model: Arc<dyn Model> = Arc::new(Scripted::new(true, Box::new(|_, _| vec![])));
    let err = LogprobNumberJudge::new("x", model.clone(), "Rate {question}").unwrap_err();
    assert!(
        err.to_string().contains("missing placeholder `{answer}`"),
        "{err}"
    );
    let err =
        LogprobNumberJudge::new("x", model.clone(), "Rate {answer} for {qestion}").unwrap_err();
    assert!(
        err.to_string().contains("unknown placeholder `{qestion}`"),
        "{err}"
    );
    let err = LogprobNumberJudge::new("x", model.clone(), "Rate {answer} {").unwrap_err();
    assert!(matches!(err, JudgeConfigError::Template { .. }));
    let err = LogprobNumberJudge::aligned(model.clone())
        .unwrap()
        .with_config(NumberJudgeConfig {
            min_mass: -1.0,
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("min_mass"));
    assert!(ClassifyJudge::new("c", model.clone(), "{answer}", vec!["a".into()]).is_err());
    assert!(
        ChoiceProbabilityJudge::new(
            "c",
            model.clone(),
            "{answer} {option}",
            vec!["a".into(), "b".into()]
        )
        .is_err()
    );
    assert!(RubricJudge::new("r", model, "{answer} {grade}").is_err());
}

#[tokio::test]
async fn choice_judge_averages_over_orderings() {
    // The judge always prefers the first listed letter (position bias): 0.7 / 0.3 on A / B
    // whatever the options. Over both orderings each option gets 0.5.
    let model = Arc::new(Scripted::new(
        true,
        Box::new(|_, _| one_token("A", &[("A", 0.7), (" B", 0.3)])),
    ));
    let opts = vec!["cats".to_owned(), "dogs".to_owned()];
    let given = ChoiceProbabilityJudge::new(
        "mc",
        model.clone(),
        "{question}\n{options}\nAnswer: {answer}",
        opts.clone(),
    )
    .unwrap()
    .score(ChoiceScore::Option("dogs".into()));
    let v = given.judge(&sample(), "?").await.unwrap();
    assert!((v.score.as_f64().unwrap() - 0.3).abs() < 1e-9);
    let all = given.clone().orderings(Orderings::All);
    let v = all.judge(&sample(), "?").await.unwrap();
    assert!((v.score.as_f64().unwrap() - 0.5).abs() < 1e-9);
    let listed: Vec<String> = model.prompts();
    assert!(
        listed.iter().any(|p| p.contains("A) dogs\nB) cats")),
        "{listed:?}"
    );

    let target = all.clone().score(ChoiceScore::Target);
    let err = target.judge(&sample(), "?").await.unwrap_err();
    assert!(err.to_string().contains("no target"));
    let v = target
        .judge(&sample().with_target("cats"), "?")
        .await
        .unwrap();
    assert!((v.score.as_f64().unwrap() - 0.5).abs() < 1e-9);
    let argmax = given.clone().score(ChoiceScore::Argmax);
    assert_eq!(
        argmax.judge(&sample(), "?").await.unwrap().score,
        Score::Label("cats".into())
    );
}

#[tokio::test]
async fn yes_no_judge_and_zero_mass() {
    let model = Arc::new(Scripted::new(
        true,
        Box::new(|prompt, _| {
            if prompt.contains("harmless") {
                one_token("No", &[("No", 0.8), ("Yes", 0.1), ("Maybe", 0.1)])
            } else {
                one_token("Hmm", &[("Hmm", 1.0)])
            }
        }),
    ));
    let judge =
        ChoiceProbabilityJudge::yes_no("harmful", model, "Is this harmful? {answer} ({options})")
            .unwrap()
            .labels(OptionLabels::Verbatim);
    let v = judge.judge(&sample(), "a harmless reply").await.unwrap();
    assert!(
        (v.score.as_f64().unwrap() - 0.1 / 0.9).abs() < 1e-9,
        "renormalised over Yes/No"
    );
    let v = judge.judge(&sample(), "other").await.unwrap();
    assert!(v.score.is_none());
}

#[tokio::test]
async fn classify_judge_both_modes() {
    let model = Arc::new(Scripted::new(
        true,
        Box::new(|prompt, _| {
            if prompt.contains("feeling") {
                vec![("Positive.".to_owned(), vec![])]
            } else if prompt.contains("moon") {
                one_token(
                    "FALSE",
                    &[
                        ("FALSE", 0.6),
                        ("TRUE", 0.3),
                        ("UNKNOWN", 0.05),
                        ("The", 0.05),
                    ],
                )
            } else {
                vec![
                    ("The".to_owned(), dist(&[("The", 1.0)])),
                    (" text is German.".to_owned(), vec![]),
                ]
            }
        }),
    ));
    let tf = ClassifyJudge::true_false_unknown(model.clone()).unwrap();
    let v = tf.judge(&sample(), "The moon is bigger").await.unwrap();
    assert_eq!(v.score, Score::Label("FALSE".into()));
    assert!((v.metadata["probabilities"]["FALSE"].as_f64().unwrap() - 0.6 / 0.95).abs() < 1e-9);
    let lang =
        ClassifyJudge::language_guesser(model.clone(), ["English", "French", "German", "Other"])
            .unwrap();
    let v = lang.judge(&sample(), "Ich bin hier").await.unwrap();
    assert_eq!(v.score, Score::Label("German".into()));
    assert_eq!(v.explanation.as_deref(), Some("The text is German."));
    assert!(
        model
            .prompts()
            .last()
            .unwrap()
            .contains("English, French, German, Other")
    );
    let generated = tf.clone().mode(ClassifyMode::Generate);
    let v = generated.judge(&sample(), "unrelated").await.unwrap();
    assert!(v.score.is_none(), "reply names no label");

    let sentiment = SentimentExtractor::three_way(model).unwrap();
    assert_eq!(sentiment.extract("").await.unwrap(), None);
    assert_eq!(
        sentiment
            .extract("What a lovely day")
            .await
            .unwrap()
            .as_deref(),
        Some("positive")
    );
}

#[tokio::test]
async fn rubric_judge_parses_last_grade() {
    let model = Arc::new(Scripted::new(
        true,
        Box::new(|prompt, _| {
            let reply = if prompt.contains("Paris") {
                "It names the capital.\nGRADE: C"
            } else if prompt.contains("Lyon") {
                "Wrong city. GRADE: C would need Paris.\nGRADE: I"
            } else {
                "I am not sure."
            };
            vec![(reply.to_owned(), vec![])]
        }),
    ));
    let judge = RubricJudge::new(
        "rubric",
        model.clone(),
        psyche_judges::llm::rubric::DEFAULT_TEMPLATE,
    )
    .unwrap();
    let s = Sample::new("cap", Conversation::user("Capital of France?"))
        .with_target("names the right city");
    let v = judge.judge(&s, "Paris").await.unwrap();
    assert_eq!(v.score, Score::Number(1.0));
    assert_eq!(v.answer.as_deref(), Some("C"));
    let v = judge.judge(&s, "Lyon").await.unwrap();
    assert_eq!(v.score, Score::Number(0.0));
    let v = judge.judge(&s, "Rome").await.unwrap();
    assert!(v.score.is_none());
    let err = judge.judge(&sample(), "x").await.unwrap_err();
    assert!(err.to_string().contains("criterion"), "{err}");
    assert_eq!(model.requests.lock()[0].temperature, 0.0);
}

#[tokio::test]
async fn multi_judge_majority_and_mean() {
    let make = |score: f64| -> Arc<dyn Judge> {
        let m = Arc::new(Scripted::new(
            true,
            Box::new(move |_, _| one_token("x", &[(&score.to_string(), 1.0)])),
        ));
        Arc::new(LogprobNumberJudge::new(format!("j{score}"), m, "Rate {answer}").unwrap())
    };
    let multi = MultiJudge::new(
        "panel",
        vec![make(10.0), make(20.0), make(60.0)],
        Aggregate::Mean,
    )
    .unwrap();
    let v = multi.judge(&sample(), "x").await.unwrap();
    assert_eq!(v.score, Score::Number(30.0));
    assert_eq!(v.metadata["verdicts"].as_array().unwrap().len(), 3);
    let all = multi.judge_all(&sample(), "x").await.unwrap();
    assert_eq!(
        psyche_judges::multi::ratings_matrix(&[all])[0],
        vec![Some(10.0), Some(20.0), Some(60.0)]
    );
    assert!(MultiJudge::new("dup", vec![make(1.0), make(1.0)], Aggregate::Majority).is_err());
    assert!(MultiJudge::new("empty", vec![], Aggregate::Majority).is_err());
    let _ = prompts::ALIGNED;
}
