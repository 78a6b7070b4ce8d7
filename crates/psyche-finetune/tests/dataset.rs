//! Dataset preparation: validation findings with file/line/field, statistics, seeded splits,
//! export.

use psyche_core::{ChatMessage, Conversation, Role, read_chat_jsonl};
use psyche_finetune::dataset::{
    CharsPerToken, Severity, TokenEstimator, ValidationOptions, dedupe, export, shuffled,
    train_val_split, validate_conversations, validate_file, validate_str,
};

fn ex(q: &str, a: &str) -> Conversation {
    Conversation::user(q).with(ChatMessage::assistant(a))
}

fn opts(min: usize) -> ValidationOptions {
    ValidationOptions {
        min_examples: min,
        ..ValidationOptions::default()
    }
}

const BAD: &str = r#"{"messages":[{"role":"system","content":""},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}
not json at all
{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]}
{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"   "}]}
{"messages":[{"role":"assistant","content":"first"},{"role":"user","content":"then"}]}
{"messages":[{"role":"robot","content":"x"},{"role":"assistant"}]}

{"prompt":"x","completion":"y"}
{"messages":[{"role":"system","content":"Hi"},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}],"extra":1}
{"messages":[{"role":"system","content":""},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}
{"messages":[{"role":"user","content":"w"},{"role":"assistant","content":"v","weight":2}]}
{"messages":[{"role":"user","content":"Hi"},{"role":"system","content":"late"},{"role":"assistant","content":"ok"}]}
"#;

#[test]
fn every_problem_is_reported_with_line_and_field() {
    let p = validate_str(BAD, "bad.jsonl", &opts(1), &CharsPerToken::default());
    let errors: Vec<(usize, String)> = p
        .report
        .errors()
        .iter()
        .map(|i| (i.line, i.field.clone()))
        .collect();
    let expect = |line: usize, field: &str| {
        assert!(
            errors.contains(&(line, field.to_owned())),
            "missing error at line {line} field `{field}`; got {errors:?}"
        );
    };
    expect(2, ""); // not JSON
    expect(3, "messages[1].role"); // user after user
    expect(4, "messages[1].content"); // empty assistant turn
    expect(5, "messages[0].role"); // starts with assistant
    expect(5, "messages[1]"); // does not end with assistant
    expect(6, "messages[0].role"); // unknown role
    expect(6, "messages[1].content"); // missing content
    expect(8, "messages"); // no messages field
    expect(11, "messages[1].weight"); // weight must be 0/1
    expect(12, "messages[1].role"); // system not first
    assert!(
        errors.iter().all(|(l, _)| ![1, 9, 10].contains(l)),
        "valid lines flagged: {errors:?}"
    );
    // Warnings: unknown top-level key, duplicate of line 1.
    let warnings: Vec<(usize, String, String)> = p
        .report
        .warnings()
        .iter()
        .map(|i| (i.line, i.field.clone(), i.message.clone()))
        .collect();
    assert!(warnings.iter().any(|(l, f, _)| *l == 9 && f == "extra"));
    assert!(
        warnings
            .iter()
            .any(|(l, _, m)| *l == 10 && m.contains("duplicate of line 1")),
        "{warnings:?}"
    );
    // The display names file, line and field.
    let shown = p.report.errors()[0].to_string();
    assert!(shown.starts_with("bad.jsonl:2: error"), "{shown}");
    let err = p.report.ensure_valid().unwrap_err().to_string();
    assert!(
        err.contains("bad.jsonl:3: error in field `messages[1].role`"),
        "{err}"
    );
    // Lines 6, 8 and 2 cannot be represented; the rest parsed with their line numbers.
    assert_eq!(p.lines, vec![1, 3, 4, 5, 9, 10, 11, 12]);
}

#[test]
fn file_level_checks_minimum_and_token_limit() {
    let data = vec![ex("q", &"long answer ".repeat(100))];
    let o = ValidationOptions {
        min_examples: 10,
        max_example_tokens: 50,
        warn_duplicates: true,
    };
    let r = validate_conversations(&data, "mem", &o, &CharsPerToken::default());
    assert_eq!(r.errors().len(), 1);
    assert_eq!(r.errors()[0].line, 0);
    assert!(r.errors()[0].message.contains("at least 10"));
    assert_eq!(r.warnings().len(), 1);
    assert!(r.warnings()[0].message.contains("truncated"));
    assert_eq!(r.warnings()[0].severity, Severity::Warning);
}

#[test]
fn unreadable_and_non_utf8_files_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = validate_file(
        dir.path().join("nope.jsonl"),
        &opts(1),
        &CharsPerToken::default(),
    );
    assert!(missing.unwrap_err().to_string().contains("nope.jsonl"));
    let p = dir.path().join("latin1.jsonl");
    std::fs::write(&p, b"{\"messages\":[]}\n{\"a\":\"\xe9\"}\n").unwrap();
    let r = validate_file(&p, &opts(1), &CharsPerToken::default()).unwrap();
    assert_eq!(r.report.errors()[0].line, 2);
    assert!(r.report.errors()[0].message.contains("UTF-8"));
}

#[test]
fn statistics_match_hand_counts() {
    // chars: user "abcd" (4) and "abcdefgh" (8); assistant "ab" (2) and "abcdef" (6).
    let data = vec![ex("abcd", "ab"), ex("abcdefgh", "abcdef"), ex("abcd", "ab")];
    let est = CharsPerToken::default();
    let r = validate_conversations(&data, "mem", &opts(1), &est);
    let s = &r.stats;
    assert_eq!((s.examples, s.messages, s.duplicates), (3, 6, 1));
    let user = s.per_role[&Role::User];
    assert_eq!(
        (user.chars.min, user.chars.max, user.chars.total),
        (4, 8, 16)
    );
    assert!((user.chars.mean - 16.0 / 3.0).abs() < 1e-12);
    let asst = s.per_role[&Role::Assistant];
    // tokens: ceil(2/4)=1, ceil(6/4)=2, 1 → 4
    assert_eq!(asst.tokens.total, 4);
    assert_eq!(s.assistant_tokens, 4);
    // example tokens: (1+3)+(1+3)+3 = 11; (2+3)+(2+3)+3 = 13; 11 → 35
    assert_eq!(s.example_tokens.total, 35);
    assert_eq!((s.example_tokens.min, s.example_tokens.max), (11, 13));
    assert_eq!(est.conversation_tokens(&data[1]), 13);
    assert_eq!(s.estimator, "chars/4");
    // Unicode counts characters, not bytes.
    assert_eq!(est.count("ééééé"), 2);
}

#[test]
fn splits_are_seeded_disjoint_and_complete() {
    let data: Vec<Conversation> = (0..100).map(|i| ex(&format!("q{i}"), "a")).collect();
    let a = train_val_split(&data, 0.2, 42).unwrap();
    let b = train_val_split(&data, 0.2, 42).unwrap();
    let c = train_val_split(&data, 0.2, 43).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.validation, c.validation);
    assert_eq!((a.train.len(), a.validation.len()), (80, 20));
    let mut all: Vec<String> = a
        .train
        .iter()
        .chain(&a.validation)
        .map(|c| c.last_user_text().unwrap().to_owned())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 100);
    assert_ne!(shuffled(&data, 1), data);
    assert!(train_val_split(&data, 1.0, 0).is_err());
    assert!(train_val_split(&data, -0.1, 0).is_err());
    let (kept, removed) = dedupe(&[data[0].clone(), data[1].clone(), data[0].clone()]);
    assert_eq!((kept.len(), removed), (2, 1));
}

#[test]
fn export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<Conversation> = (0..10).map(|i| ex(&format!("q{i}"), "a")).collect();
    let split = train_val_split(&data, 0.3, 7).unwrap();
    let files = export(dir.path(), &split, &CharsPerToken::default()).unwrap();
    let train: Vec<Conversation> = read_chat_jsonl(&files.train)
        .unwrap()
        .into_iter()
        .map(|e| e.messages)
        .collect();
    assert_eq!(train, split.train);
    let val = read_chat_jsonl(files.validation.as_ref().unwrap()).unwrap();
    assert_eq!(val.len(), 3);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.stats).unwrap()).unwrap();
    assert_eq!(stats["train"]["examples"], 7);
    assert_eq!(stats["validation"]["examples"], 3);
    // An exported file validates cleanly.
    let p = validate_file(&files.train, &opts(7), &CharsPerToken::default()).unwrap();
    assert!(p.report.is_valid(), "{:?}", p.report.issues);
}
