//! Dataset validation never panics on arbitrary input: property tests (proptest, fixed seed,
//! 256 cases each) feed random and mutated chat JSONL to `validate_str` / `validate_file`.
//! Every finding names the file and a line that exists (0 only for file-level findings).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use psyche_finetune::dataset::{
    CharsPerToken, PreparedDataset, ValidationOptions, validate_file, validate_str,
};

const LABEL: &str = "fuzz/train.jsonl";

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5eed_0014),
        ..Config::default()
    }
}

/// A chat JSONL line, valid or subtly not (roles and contents drawn from edge cases).
fn line() -> impl Strategy<Value = String> {
    let role = prop_oneof![
        Just("system".to_owned()),
        Just("user".to_owned()),
        Just("assistant".to_owned()),
        Just("tool".to_owned()),
        Just(String::new()),
        "[a-z]{1,6}",
    ];
    let content = prop_oneof![".{0,20}", Just(" ".to_owned()), Just(String::new())];
    let weight = prop_oneof![Just(None), Just(Some(0)), Just(Some(1)), Just(Some(7))];
    prop::collection::vec((role, content, weight), 0..5).prop_map(|msgs| {
        let messages: Vec<serde_json::Value> = msgs
            .into_iter()
            .map(|(role, content, weight)| {
                let mut m = serde_json::json!({ "role": role, "content": content });
                if let Some(w) = weight {
                    m["weight"] = w.into();
                }
                m
            })
            .collect();
        serde_json::json!({ "messages": messages }).to_string()
    })
}

type Edits = Vec<(usize, u8, u8)>;

fn edits() -> impl Strategy<Value = Edits> {
    prop::collection::vec((any::<usize>(), 0u8..5, any::<u8>()), 0..6)
}

/// Overwrite, delete, insert a JSON-significant byte, insert any byte, truncate.
fn mutate(mut bytes: Vec<u8>, edits: &Edits) -> Vec<u8> {
    const SIGNIFICANT: &[u8] = b"{}[]\":,\\\n 0.e\xff";
    for &(pos, kind, byte) in edits {
        let at = pos % (bytes.len() + 1);
        match kind {
            0 if at < bytes.len() => bytes[at] = byte,
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, SIGNIFICANT[byte as usize % SIGNIFICANT.len()]),
            3 => bytes.insert(at, byte),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn check(prepared: &PreparedDataset, label: &str, lines: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(prepared.examples.len(), prepared.lines.len());
    for issue in &prepared.report.issues {
        prop_assert_eq!(&issue.source, label);
        prop_assert!(
            issue.line <= lines,
            "line {} of {}: {}",
            issue.line,
            lines,
            issue
        );
        let prefix = format!("{label}:{}", issue.line);
        let shown = issue.to_string();
        prop_assert!(shown.starts_with(&prefix), "{}", shown);
    }
    for &l in &prepared.lines {
        prop_assert!(l >= 1 && l <= lines);
    }
    Ok(())
}

fn options() -> ValidationOptions {
    ValidationOptions {
        min_examples: 1,
        ..ValidationOptions::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn validation_survives_mutated_chat_jsonl(
        lines in prop::collection::vec(line(), 1..6),
        edits in edits(),
    ) {
        let bytes = mutate(lines.join("\n").into_bytes(), &edits);
        let text = String::from_utf8_lossy(&bytes);
        let prepared = validate_str(&text, LABEL, &options(), &CharsPerToken::default());
        check(&prepared, LABEL, text.lines().count())?;
    }

    #[test]
    fn validation_survives_random_text(text in "(?s).{0,300}") {
        let prepared = validate_str(&text, LABEL, &options(), &CharsPerToken::default());
        check(&prepared, LABEL, text.lines().count())?;
    }

    #[test]
    fn file_validation_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("train.jsonl");
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let prepared = validate_file(&path, &options(), &CharsPerToken::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let label = path.display().to_string();
        check(&prepared, &label, bytes.split(|b| *b == b'\n').count())?;
    }
}
