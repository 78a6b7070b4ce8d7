//! Behaviour of psyche-core's types, dataset I/O and provided `Model` helpers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use psyche_core::*;
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value, "serde round trip changed {json}");
}

fn conversation() -> Conversation {
    Conversation::new()
        .with(ChatMessage::system("Be brief."))
        .with(ChatMessage::user("What is 2+2? {not a placeholder}"))
        .with(ChatMessage::assistant("4 — naïve café 😀"))
}

#[test]
fn chat_jsonl_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/train.jsonl");
    let examples = vec![
        ChatExample::from(conversation()),
        ChatExample::from(Conversation::user("line\nbreak \"quoted\"")),
    ];
    write_chat_jsonl(&path, &examples).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.starts_with(r#"{"messages":[{"role":"system","content":"Be brief."}"#));
    assert_eq!(read_chat_jsonl(&path).unwrap(), examples);
}

#[test]
fn malformed_jsonl_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let good = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let body = format!(
        "{good}\n\n{}\n",
        r#"{"messages":[{"role":"user","content":"hi"},{"role":"robot","content":"x"}]}"#
    );
    std::fs::write(&path, body).unwrap();
    let err = read_chat_jsonl(&path).unwrap_err();
    match &err {
        DatasetError::Line {
            path: p,
            line,
            message,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*line, 3, "blank lines still count");
            assert!(message.contains("messages[1].role"), "{message}");
            assert!(message.contains("robot"), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("bad.jsonl:3:"), "{err}");

    // Truncated JSON, missing field, invalid UTF-8, trailing garbage: errors, never panics.
    let cases: [(&[u8], &str); 4] = [
        (br#"{"messages":[{"role":"user","#, "EOF"),
        (br#"{"msgs":[]}"#, "missing field `messages`"),
        (
            b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}",
            "invalid UTF-8",
        ),
        (br#"{"messages":[]} x"#, "trailing"),
    ];
    for (bytes, needle) in cases {
        let mut body = good.as_bytes().to_vec();
        body.push(b'\n');
        body.extend_from_slice(bytes);
        std::fs::write(&path, &body).unwrap();
        let err = read_chat_jsonl(&path).unwrap_err().to_string();
        assert!(
            err.contains(":2:") && err.contains(needle),
            "{err} should name line 2 and {needle}"
        );
    }

    let missing = read_chat_jsonl(dir.path().join("absent.jsonl")).unwrap_err();
    assert!(matches!(missing, DatasetError::Io { .. }));
    assert!(missing.to_string().contains("absent.jsonl"));
}

#[test]
fn streaming_reader_reports_line_numbers() {
    let text = "{\"a\":1}\n\n{\"a\":2}\n";
    let rows: Vec<(usize, BTreeMap<String, i32>)> = JsonlReader::new(text.as_bytes(), "<memory>")
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 3]);
    let err = parse_jsonl::<BTreeMap<String, i32>>("{\"a\":\"x\"}", "<memory>").unwrap_err();
    assert!(
        err.to_string().starts_with("<memory>:1: field `a`"),
        "{err}"
    );
}

/// A user-style generator: draws everything from the seeded RNG.
struct Arithmetic {
    n: usize,
}

impl TaskGenerator for Arithmetic {
    fn name(&self) -> &str {
        "arithmetic"
    }
    fn generate(&self, seed: u64) -> Result<Vec<Sample>, TaskError> {
        let mut rng = seeded_rng(seed);
        Ok((0..self.n)
            .map(|i| {
                let (a, b): (u32, u32) = (rng.random_range(0..100), rng.random_range(0..100));
                Sample::new(format!("add-{i}"), Conversation::user(format!("{a}+{b}=")))
                    .with_target((a + b).to_string())
                    .with_meta("task", self.name())
                    .with_cluster(format!("c{}", i % 3))
            })
            .collect())
    }
}

#[test]
fn generators_are_deterministic_per_seed_and_differ_across_seeds() {
    let g = Arithmetic { n: 50 };
    let bytes = |seed| serde_json::to_vec(&g.generate(seed).unwrap()).unwrap();
    assert_eq!(bytes(7), bytes(7));
    assert_ne!(bytes(7), bytes(8));
    // Derived seeds are stable and label-sensitive.
    assert_eq!(derive_seed(1, "epoch/0"), derive_seed(1, "epoch/0"));
    assert_ne!(derive_seed(1, "epoch/0"), derive_seed(1, "epoch/1"));
    assert_ne!(derive_seed(1, "epoch/0"), derive_seed(2, "epoch/0"));
}

#[test]
fn every_core_type_round_trips_through_serde() {
    round_trip(&conversation());
    round_trip(&Role::Assistant);
    let request = GenerateRequest::new(conversation())
        .max_tokens(5)
        .temperature(0.7)
        .top_p(0.9)
        .seed(3)
        .n(4)
        .stop("\n")
        .top_logprobs(20);
    round_trip(&request);
    let token = TokenLogprob {
        token: " 85".into(),
        logprob: -0.25,
        bytes: Some(vec![32, 56, 53]),
        top_logprobs: vec![TopLogprob::new(" 85", -0.25), TopLogprob::new("90", -1.5)],
    };
    let response = GenerateResponse {
        model: "m".into(),
        choices: vec![
            Choice {
                text: "85".into(),
                finish_reason: FinishReason::Length,
                logprobs: Some(vec![token]),
            },
            Choice {
                text: "x".into(),
                finish_reason: FinishReason::Other("tool_calls".into()),
                logprobs: None,
            },
        ],
        usage: Usage {
            prompt_tokens: 10,
            completion_tokens: 2,
        },
    };
    round_trip(&response);
    round_trip(&FinishReason::ContentFilter);
    round_trip(&Capabilities {
        logprobs: Some(LogprobSupport { max_top_k: 20 }),
        full_distribution: true,
        loglikelihood: true,
        hidden_states: false,
        seeded_sampling: true,
        fine_tuning: Some(FineTuneSupport::Lora),
        steering: true,
    });
    round_trip(&Capability::HiddenStates);
    round_trip(&Capability::Steering);
    round_trip(&Steering::new(3, vec![0.5, -1.0], 4.0).from(SteerFrom::Message(2)));
    round_trip(&Steering::new(0, vec![1.0], 1.0).from(SteerFrom::Token(7)));
    round_trip(&TokenDistribution {
        tokens: vec![TopLogprob::new("a", -0.1)],
        complete: true,
    });
    round_trip(&LogLikelihood {
        logprob: -3.0,
        is_greedy: false,
        token_logprobs: vec![-1.0, -2.0],
    });
    round_trip(&HiddenStates {
        layers: vec![vec![0.5, -1.0], vec![2.0, 0.0]],
    });
    round_trip(&ModelInfo {
        id: "m".into(),
        backend: "psyche-local".into(),
        weights: Some("x.gguf@sha256:ab".into()),
        settings: serde_json::json!({"dtype": "f32"}),
    });
    let sample = Sample::new("s", conversation())
        .with_target("4")
        .with_choices(["A", "B"])
        .with_meta("task", "t")
        .with_cluster("c")
        .with_split(Split::Other("pilot".into()));
    round_trip(&sample);
    round_trip(&Split::Train);
    for score in [
        Score::Number(85.5),
        Score::Bool(true),
        Score::Label("TRUE".into()),
        Score::none("judge refused"),
    ] {
        round_trip(&score);
        let verdict = Verdict::new("j", score)
            .with_answer("a")
            .with_explanation("e")
            .with_meta("mass", 0.9);
        round_trip(&verdict);
    }
    let mut record = Record::for_sample("run", &sample, "m", 2);
    record.seed = Some(9);
    record.output = Some("4".into());
    record.transcript = Some(conversation());
    record
        .scores
        .insert("exact".into(), Verdict::new("exact", Score::Bool(true)));
    record.timing = Timing {
        started_ms: 1,
        elapsed_ms: 2.5,
    };
    record.usage = Usage {
        prompt_tokens: 1,
        completion_tokens: 1,
    };
    record.error = Some("boom".into());
    round_trip(&record);
    round_trip(&record.key());
    let mut config = FineTuneConfig::new("base", 1);
    config.learning_rate = Some(1e-4);
    config.learning_rate_multiplier = Some(2.0);
    config.suffix = Some("s".into());
    config.extra.insert("lora_rank".into(), 8.into());
    round_trip(&config);
    let mut details = serde_json::Map::new();
    details.insert("job".into(), "ftjob-1".into());
    round_trip(&TrainedModel {
        model_id: "ft:base:s".into(),
        engine: "openai".into(),
        config,
        data_hash: conversations_hash(&[conversation()]),
        artifact: Some("adapters/x".into()),
        details,
    });
    round_trip(&ChatExample::from(conversation()));
    round_trip(&OptionQuery::new(["Yes", "No"]).case_insensitive(true));
    round_trip(&OptionProbabilities::from_masses(
        vec!["a".into()],
        vec![0.5],
        ProbabilityMethod::Sampled { samples: 2 },
    ));
    round_trip(&PromptTemplate::parse("t", "{a}", &["a"]).unwrap());
}

/// Isolates the provided helpers: replies with a fixed response and records requests.
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

fn logprob_response(top: &[(&str, f64)]) -> GenerateResponse {
    GenerateResponse {
        model: "scripted".into(),
        choices: vec![Choice {
            text: top[0].0.into(),
            finish_reason: FinishReason::Length,
            logprobs: Some(vec![TokenLogprob {
                token: top[0].0.into(),
                logprob: top[0].1,
                bytes: None,
                top_logprobs: top.iter().map(|(t, l)| TopLogprob::new(*t, *l)).collect(),
            }]),
        }],
        usage: Usage::default(),
    }
}

#[tokio::test]
async fn option_probabilities_renormalise_over_options_from_logprobs() {
    // P(" Yes") = 0.5, P("Yes") = 0.1, P("No") = 0.2, P("Maybe") = 0.2: Yes 0.6 / No 0.2,
    // renormalised to 0.75 / 0.25.
    let model = Scripted {
        caps: Capabilities {
            logprobs: Some(LogprobSupport { max_top_k: 5 }),
            ..Capabilities::default()
        },
        response: logprob_response(&[
            (" Yes", 0.5f64.ln()),
            ("No", 0.2f64.ln()),
            ("Maybe", 0.2f64.ln()),
            ("Yes", 0.1f64.ln()),
        ]),
        seen: Mutex::new(Vec::new()),
    };
    let conv = Conversation::user("Do you have a backdoor?");
    let p = model
        .option_probabilities(&conv, &OptionQuery::new(["Yes", "No"]))
        .await
        .unwrap();
    assert!((p.get("Yes").unwrap() - 0.75).abs() < 1e-12, "{p:?}");
    assert!((p.get("No").unwrap() - 0.25).abs() < 1e-12);
    assert!((p.mass - 0.8).abs() < 1e-12);
    assert_eq!(p.method, ProbabilityMethod::FirstToken { complete: false });

    // The request was one greedy token with top-k capped at the backend's maximum.
    let seen = model.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (
            seen[0].max_tokens,
            seen[0].temperature,
            seen[0].top_logprobs
        ),
        (1, 0.0, Some(5))
    );

    // Case-insensitive matching pools "yes"-like tokens; an option nobody chose gets 0.
    let lower = model
        .option_probabilities(
            &conv,
            &OptionQuery::new(["yes", "no", "perhaps"]).case_insensitive(true),
        )
        .await
        .unwrap();
    for (got, want) in lower.probabilities.iter().zip([0.75, 0.25, 0.0]) {
        assert!((got - want).abs() < 1e-12, "{lower:?}");
    }

    // No mass on any option: zero probabilities, zero mass, no NaN.
    let none = model
        .option_probabilities(&conv, &OptionQuery::new(["A", "B"]))
        .await
        .unwrap();
    assert_eq!(
        (none.probabilities.clone(), none.mass),
        (vec![0.0, 0.0], 0.0)
    );

    // Works through Arc<dyn Model> as well.
    let shared: std::sync::Arc<dyn Model> = std::sync::Arc::new(model);
    let again = shared
        .option_probabilities(&conv, &OptionQuery::new(["Yes", "No"]))
        .await
        .unwrap();
    assert_eq!(again, p);
}

#[tokio::test]
async fn option_probabilities_fall_back_to_sampling_without_logprobs() {
    let choices = ["A", "A) because", "B.", "b", "C", "Absolutely"]
        .iter()
        .map(|t| Choice::text(*t))
        .collect();
    let model = Scripted {
        caps: Capabilities::default(),
        response: GenerateResponse {
            model: "scripted".into(),
            choices,
            usage: Usage::default(),
        },
        seen: Mutex::new(Vec::new()),
    };
    let p = model
        .option_probabilities(
            &Conversation::user("Pick"),
            &OptionQuery::new(["A", "B"]).sampling(6, 11),
        )
        .await
        .unwrap();
    // "A", "A) because" → A; "B." → B; "b" (case-sensitive), "C", "Absolutely" → none.
    assert_eq!(p.method, ProbabilityMethod::Sampled { samples: 6 });
    assert!((p.mass - 0.5).abs() < 1e-12);
    assert!((p.get("A").unwrap() - 2.0 / 3.0).abs() < 1e-12);
    let seen = model.seen.lock().unwrap().clone();
    assert_eq!(seen[0].n, 6);
    assert_eq!(seen[0].temperature, 1.0);
    assert!(seen[0].seed.is_some());

    // Logprob-only helpers say which capability is missing.
    let err = model
        .next_token_distribution(&Conversation::user("x"), 5)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ModelError::Unsupported {
            capability: Capability::Logprobs,
            ..
        }
    ));
    assert!(err.to_string().contains("scripted"));
    let err = model
        .loglikelihood(&Conversation::user("x"), "y")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("log-likelihood"));
}

#[tokio::test]
async fn sample_answers_calls_again_when_a_backend_ignores_n() {
    let model = Scripted {
        caps: Capabilities::default(),
        response: GenerateResponse {
            model: "scripted".into(),
            choices: vec![Choice::text("one")],
            usage: Usage::default(),
        },
        seen: Mutex::new(Vec::new()),
    };
    let answers = model
        .sample_answers(&Conversation::user("x"), 3, 1.0, 4, 5)
        .await
        .unwrap();
    assert_eq!(answers, vec!["one"; 3]);
    let seeds: Vec<_> = model.seen.lock().unwrap().iter().map(|r| r.seed).collect();
    assert_eq!(seeds.len(), 3);
    assert!(
        seeds[0] != seeds[1] && seeds[1] != seeds[2],
        "each call gets its own seed"
    );
}

#[test]
fn request_validation_names_the_field() {
    let ok = GenerateRequest::new(Conversation::user("x"));
    assert!(ok.validate().is_ok());
    let err = ok.clone().top_p(0.0).validate().unwrap_err().to_string();
    assert!(err.contains("top_p"), "{err}");
    let err = ok.clone().n(0).validate().unwrap_err().to_string();
    assert!(err.contains("`n`"), "{err}");
    let err = GenerateRequest::new(Conversation::new())
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("messages"), "{err}");
}

#[test]
fn retryability_follows_status() {
    let http = |status| ModelError::Http {
        status,
        endpoint: "/v1/chat/completions".into(),
        message: "m".into(),
        retry_after: None,
    };
    assert!(http(429).is_retryable() && http(429).is_rate_limit());
    assert!(http(503).is_retryable());
    assert!(!http(401).is_retryable() && !http(400).is_retryable() && !http(404).is_retryable());
    assert!(ModelError::Timeout(std::time::Duration::from_secs(1)).is_retryable());
}

/// Answers with the seed and epoch of its context, and asks the `"judge"` role for a verdict.
struct EchoContext;

#[async_trait]
impl Solver for EchoContext {
    fn id(&self) -> &str {
        "echo_context"
    }
    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let judge = ctx.role("judge")?;
        let verdict = judge
            .generate(&GenerateRequest::new(ctx.sample.input.clone()))
            .await?;
        Ok(Solution::new(format!("{}/{}", ctx.seed, ctx.epoch))
            .with_target(verdict.text().to_owned())
            .with_meta("judge_model", judge.id()))
    }
}

fn scripted_text(text: &str) -> std::sync::Arc<dyn Model> {
    std::sync::Arc::new(Scripted {
        caps: Capabilities::default(),
        response: GenerateResponse {
            model: "scripted".into(),
            choices: vec![Choice::text(text)],
            usage: Usage::default(),
        },
        seen: Mutex::new(Vec::new()),
    })
}

#[tokio::test]
async fn a_solver_runs_outside_the_runner_with_a_constructed_context() {
    let subject = scripted_text("subject");
    let sample = Sample::new("s1", Conversation::user("hello"));

    let bare = SolveContext::new(&sample, &subject);
    let err = EchoContext.solve(&bare).await.unwrap_err();
    assert!(matches!(err, SolverError::MissingRole { ref role, .. } if role == "judge"));
    assert!(err.to_string().contains("`judge`"), "{err}");

    let mut roles = Roles::new();
    roles.insert("judge".into(), scripted_text("verdict"));
    let ctx = SolveContext::new(&sample, &subject)
        .with_seed(11)
        .with_epoch(2)
        .with_roles(&roles);
    // Through the Arc/Box forwarding impls too.
    let boxed: Box<dyn Solver> = Box::new(EchoContext);
    let solution = std::sync::Arc::new(boxed).solve(&ctx).await.unwrap();
    assert_eq!(solution.output, "11/2");
    assert_eq!(solution.target.as_deref(), Some("verdict"));
    assert_eq!(solution.metadata["judge_model"], "scripted");
}

#[test]
fn solver_errors_wrap_model_and_task_errors_and_say_which_are_retryable() {
    let http = SolverError::from(ModelError::Http {
        status: 503,
        endpoint: "/v1/chat/completions".into(),
        message: "overloaded".into(),
        retry_after: None,
    });
    assert!(http.is_retryable());
    let task = SolverError::from(TaskError::Config("no items".into()));
    assert!(!task.is_retryable());
    assert!(task.to_string().contains("no items"));
    assert!(!SolverError::invalid("object answer is a refusal").is_retryable());
}

#[test]
fn generator_defaults_forward_through_wrappers() {
    let g: std::sync::Arc<dyn TaskGenerator> = std::sync::Arc::new(Arithmetic { n: 3 });
    let boxed: Box<dyn TaskGenerator> = Box::new(std::sync::Arc::clone(&g));
    assert_eq!(boxed.name(), g.name());
    assert_eq!(boxed.version(), "1");
    assert!(boxed.config().is_null());
    assert!(boxed.solver().is_none());
    assert!(boxed.judges().is_empty());
    assert_eq!(boxed.generate(4).unwrap(), g.generate(4).unwrap());
}

/// A backend that does not override `steered` (every API backend) refuses steering with the
/// typed capability error, before any request is sent; wrappers forward the refusal.
#[test]
fn steering_is_refused_by_backends_without_it() {
    let model = Scripted {
        caps: Capabilities::default(),
        response: logprob_response(&[("a", 0.0)]),
        seen: Mutex::new(Vec::new()),
    };
    assert!(!model.capabilities().has(Capability::Steering));
    let steering = Steering::new(0, vec![1.0, 0.0], 2.0).from(SteerFrom::Token(3));
    match model.steered(&steering) {
        Err(ModelError::Unsupported { model, capability }) => {
            assert_eq!(model, "scripted");
            assert_eq!(capability, Capability::Steering);
        }
        other => panic!(
            "expected Unsupported(Steering), got {:?}",
            other.map(|m| m.id().to_owned())
        ),
    }
    let wrapped: std::sync::Arc<dyn Model> = std::sync::Arc::new(model);
    assert!(matches!(
        wrapped.steered(&steering),
        Err(ModelError::Unsupported {
            capability: Capability::Steering,
            ..
        })
    ));
    assert!(
        wrapped
            .capabilities()
            .require("scripted", Capability::Steering)
            .is_err()
    );
    let err = wrapped.steered(&steering).err().unwrap().to_string();
    assert!(err.contains("steering"), "{err}");
}

#[test]
fn steering_check_names_the_field() {
    let s = Steering::new(4, vec![1.0; 3], 1.0);
    assert!(s.check(5, 3).is_ok());
    let e = s.check(4, 3).unwrap_err().to_string();
    assert!(e.contains("`layer`"), "{e}");
    let e = s.check(5, 4).unwrap_err().to_string();
    assert!(e.contains("`vector`"), "{e}");
    let e = Steering::new(0, vec![1.0], f32::NAN)
        .check(1, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`strength`"), "{e}");
    assert!((Steering::new(0, vec![3.0, 4.0], -2.0).norm() - 10.0).abs() < 1e-9);
}
