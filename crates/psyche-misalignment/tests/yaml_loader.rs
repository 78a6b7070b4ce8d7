//! The EM question-file loader on fixtures written for these tests: anchors and aliases, merge
//! keys, block scalars, a system prompt, per-question settings and overrides, and broken files
//! whose errors must name the file, the item and the field.

use std::path::{Path, PathBuf};

use psyche_misalignment::MisalignmentError;
use psyche_misalignment::questions::{
    ParaphraseChoice, QuestionKind, QuestionTask, SamplingConfig, UnknownKeys, load_questions,
    meta, parse_questions, parse_questions_with,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/em_style.yaml")
}

#[test]
fn anchors_aliases_merge_keys_and_block_scalars() {
    let set = load_questions(fixture()).unwrap();
    assert_eq!(set.name, "em_style");
    let ids: Vec<&str> = set.questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "plain_question",
            "with_system",
            "3_offend_the_user_0",
            "4_offend_the_user_1",
            "42"
        ]
    );
    let plain = &set.questions[0];
    assert_eq!(plain.kind, QuestionKind::Rating);
    assert_eq!(
        plain.paraphrases,
        [
            "First line of a literal block.\nSecond line, no trailing newline.",
            "A literal block that keeps one trailing newline.\n",
            "A folded block becomes one line.",
        ]
    );
    assert_eq!(plain.samples_per_paraphrase, Some(7));
    assert_eq!(plain.temperature, Some(0.7));
    assert_eq!(plain.judge.as_deref(), Some("test-judge-2024-01-01"));
    assert_eq!(plain.system, None);
    assert!(
        plain.judge_prompts["aligned"]
            .source()
            .ends_with("A: {answer}")
    );

    let sys = &set.questions[1];
    assert_eq!(
        sys.system.as_deref(),
        Some("Answer only in JSON.\nChoose your own keys.")
    );
    assert_eq!(
        sys.paraphrases, plain.paraphrases,
        "alias to the paraphrase list"
    );
    assert_eq!(
        sys.judge_prompts["aligned"].hash(),
        plain.judge_prompts["aligned"].hash(),
        "alias to the judge prompts"
    );
    assert_eq!(sys.metadata["difficulty"], serde_json::json!("hard"));

    let merged = &set.questions[3];
    assert_eq!(merged.paraphrases, ["Say something nice."]);
    assert_eq!(merged.temperature, Some(0.0));
    assert_eq!(merged.category, "offend_the_user", "category from the id");
    assert!(
        merged.judge_prompts.contains_key("coherent"),
        "merged from the anchor"
    );

    let classify = &set.questions[4];
    assert_eq!(classify.id, "42", "numeric ids become strings");
    assert_eq!(classify.kind, QuestionKind::Classify);
    assert_eq!(
        classify.labels.as_deref().unwrap(),
        ["TRUE", "FALSE", "UNKNOWN"],
        "labels read from the quoted words of the template"
    );
}

#[test]
fn per_question_settings_are_honoured_and_overrides_win() {
    let set = load_questions(fixture()).unwrap();
    let own = QuestionTask::new(set.clone(), SamplingConfig::default())
        .samples(0)
        .unwrap();
    // 7 per paraphrase × 3 paraphrases for the first two; default 100 for the next two; 2 for 42.
    let count = |id: &str| {
        own.iter()
            .filter(|s| s.meta_str(meta::QUESTION) == Some(id))
            .count()
    };
    assert_eq!(count("plain_question"), 21);
    assert_eq!(count("with_system"), 21);
    assert_eq!(count("3_offend_the_user_0"), 100);
    assert_eq!(count("42"), 2);
    let t = |id: &str| {
        own.iter()
            .find(|s| s.meta_str(meta::QUESTION) == Some(id))
            .unwrap()
            .metadata[meta::TEMPERATURE]
            .as_f64()
            .unwrap()
    };
    assert!((t("plain_question") - 0.7).abs() < 1e-6);
    assert_eq!(t("4_offend_the_user_1"), 0.0);
    assert_eq!(
        t("3_offend_the_user_0"),
        1.0,
        "the default when the question has none"
    );
    let sys_sample = own
        .iter()
        .find(|s| s.meta_str(meta::QUESTION) == Some("with_system"))
        .unwrap();
    assert_eq!(
        sys_sample.input.messages()[0].role,
        psyche_core::Role::System
    );

    let over = QuestionTask::new(
        set,
        SamplingConfig {
            samples_per_paraphrase: Some(1),
            temperature: Some(1.0),
            paraphrases: ParaphraseChoice::EachParaphrase,
            ..SamplingConfig::default()
        },
    )
    .samples(0)
    .unwrap();
    assert_eq!(over.len(), 3 + 3 + 1 + 1 + 1);
    assert!(
        over.iter()
            .all(|s| s.metadata[meta::TEMPERATURE].as_f64() == Some(1.0))
    );
}

fn broken(text: &str) -> MisalignmentError {
    parse_questions(Path::new("broken.yaml"), text, "broken").unwrap_err()
}

fn assert_names(err: &MisalignmentError, parts: &[&str]) {
    let msg = err.to_string();
    for p in parts {
        assert!(msg.contains(p), "`{msg}` should mention `{p}`");
    }
}

#[test]
fn broken_files_name_file_item_and_field() {
    let e = broken("- id: a\n  type: free_form_judge_0_100\n");
    assert_names(
        &e,
        &["broken.yaml", "item `a`", "field `paraphrases`", "missing"],
    );

    let e = broken("- id: a\n  type: multiple_choice\n  paraphrases: [x]\n");
    assert_names(
        &e,
        &[
            "item `a`",
            "field `type`",
            "unknown question type `multiple_choice`",
        ],
    );

    let e = broken("- type: free_form_judge_0_100\n  paraphrases: [x]\n");
    assert_names(&e, &["item `#0`", "field `id`", "missing"]);

    let e = broken("- id: a\n  paraphrases: [x]\n");
    assert_names(&e, &["item `a`", "field `type`"]);

    let e = broken("- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x, [y]]\n");
    assert_names(&e, &["item `a`", "field `paraphrases[1]`"]);

    let e = broken(
        "- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  samples_per_paraphrase: 0\n",
    );
    assert_names(&e, &["item `a`", "field `samples_per_paraphrase`"]);

    let e =
        broken("- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  temperature: -1\n");
    assert_names(&e, &["item `a`", "field `temperature`"]);

    let e = broken(
        "- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  judge_prompts:\n    aligned: '{answer}'\n",
    );
    assert_names(&e, &["item `a`", "field `judge_prompts.coherent`"]);

    let e = broken("- id: a\n  type: free_form_judge\n  paraphrases: [x]\n");
    assert_names(&e, &["item `a`", "field `judge_prompts`"]);

    let e = broken(
        "- id: a\n  type: free_form_judge\n  paraphrases: [x]\n  judge_prompts:\n    correct: 'Judge {answer}'\n",
    );
    assert_names(&e, &["item `a`", "field `labels`"]);

    let e = broken("- id: a\n  type: free_form_judge\n  paraphrases: [x]\n  classify: astrology\n");
    assert_names(&e, &["item `a`", "field `classify`", "unknown classifier"]);

    // A template with an unknown placeholder: named by psyche-judges' prompt loader.
    let e = broken(
        "- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  judge_prompts:\n    aligned: '{answr}'\n    coherent: '{answer}'\n",
    );
    assert_names(
        &e,
        &[
            "broken.yaml",
            "questions[a].judge_prompts.aligned",
            "{answr}",
        ],
    );

    let e = broken(
        "- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n- id: a\n  type: free_form_judge_0_100\n  paraphrases: [y]\n",
    );
    assert_names(&e, &["item `a`", "duplicate"]);

    let e = broken("just: a mapping\n");
    assert_names(&e, &["broken.yaml", "expected a list of questions"]);

    let e = broken("- id: a\n  paraphrases: [unclosed\n");
    assert_names(&e, &["broken.yaml"]);

    let e = broken("- id: a\n  type: free_form_judge_0_100\n  paraphrases: *nowhere\n");
    assert_names(&e, &["broken.yaml"]);

    let e = load_questions("/definitely/not/here.yaml").unwrap_err();
    assert_names(&e, &["/definitely/not/here.yaml"]);
}

/// Issue 27, defect 4: a misspelt key used to become metadata with a debug log, so `sytem:`
/// silently dropped the system prompt and `samples_per_paraphrse:` fell back to the default.
#[test]
fn question_files_are_read_strictly() {
    let e =
        broken("- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  sytem: Be terse.\n");
    assert_names(
        &e,
        &[
            "broken.yaml",
            "item `a`",
            "field `sytem`",
            "did you mean `system`",
        ],
    );
    let e = broken(
        "- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  samples_per_paraphrse: 5\n",
    );
    assert_names(
        &e,
        &[
            "field `samples_per_paraphrse`",
            "did you mean `samples_per_paraphrase`",
        ],
    );
    // A key far from every known one gets no suggestion, but says where extra data belongs.
    let e = broken("- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  xyzzy: 1\n");
    assert_names(&e, &["field `xyzzy`", "unknown key", "metadata"]);
    assert!(!e.to_string().contains("did you mean"), "{e}");

    // Extra data has a place of its own.
    let set = parse_questions(
        Path::new("ok.yaml"),
        "- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  metadata: {difficulty: hard}\n",
        "ok",
    )
    .unwrap();
    assert_eq!(
        set.questions[0].metadata["difficulty"],
        serde_json::json!("hard")
    );
    let e = broken("- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  metadata: [1]\n");
    assert_names(&e, &["field `metadata`", "mapping"]);

    // The lenient mode keeps unknown keys as metadata (and warns).
    let set = parse_questions_with(
        Path::new("lenient.yaml"),
        "- id: a\n  type: free_form_judge_0_100\n  paraphrases: [x]\n  sytem: Be terse.\n",
        "lenient",
        UnknownKeys::Warn,
    )
    .unwrap();
    assert_eq!(set.questions[0].system, None);
    assert_eq!(
        set.questions[0].metadata["sytem"],
        serde_json::json!("Be terse.")
    );
}

/// Every shipped question set loads under the strict default.
#[test]
fn shipped_question_sets_load_strictly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            load_questions(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
