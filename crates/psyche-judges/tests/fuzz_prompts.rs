//! The judge-prompt YAML loader never panics on arbitrary input: property tests (proptest,
//! fixed seed, 256 cases each) feed random and mutated question files to
//! `parse_judge_prompts`. Every failure is an error naming the file, and the position (YAML line
//! and column, or the field) where there is one.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use psyche_judges::JudgeConfigError;
use psyche_judges::llm::prompts::{load_judge_prompts, parse_judge_prompts};

const FILE: &str = "fuzz/questions.yaml";

/// A question file in the shape the loader reads (our own wording), with an anchor and alias.
const QUESTIONS: &str = "\
- id: first
  paraphrases:
    - Tell me something.
  judge_prompts: &shared
    kind: |-
      Score {answer} as a reply to {question} from 0 to 100.
    clear: Rate the clarity of {answer}.
- id: second
  judge_prompts: *shared
- id: third
";

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5eed_0015),
        ..Config::default()
    }
}

type Edits = Vec<(usize, u8, u8)>;

fn edits() -> impl Strategy<Value = Edits> {
    prop::collection::vec((any::<usize>(), 0u8..5, any::<u8>()), 1..6)
}

/// Overwrite, delete, insert a YAML- or template-significant byte, insert any byte, truncate.
fn mutate(mut bytes: Vec<u8>, edits: &Edits) -> Vec<u8> {
    const SIGNIFICANT: &[u8] = b"{}[]:-&*|>'\"#\n \t!%@`,?";
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

/// Parses; on failure the error names the file (and, for syntax errors, a line).
fn check(text: &str) -> Result<(), TestCaseError> {
    match parse_judge_prompts(Path::new(FILE), text) {
        Ok(prompts) => {
            for metrics in prompts.values() {
                for t in metrics.values() {
                    prop_assert!(t.placeholders().any(|p| p == "answer"));
                }
            }
        }
        Err(e) => {
            let shown = e.to_string();
            prop_assert!(shown.contains(FILE), "{}", shown);
            if let JudgeConfigError::Parse { field, message, .. } = &e {
                // A field inside the document, a YAML position, or a finding about the whole
                // file (its end, several documents, alias expansion).
                let located = field != "."
                    || message.contains(" at line ")
                    || message.starts_with("EOF while parsing")
                    || message.contains("more than one document")
                    || message.starts_with("repetition limit exceeded")
                    || message.starts_with("expected a list of questions");
                prop_assert!(located, "{}", shown);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn loader_survives_mutated_question_files(edits in edits()) {
        let bytes = mutate(QUESTIONS.as_bytes().to_vec(), &edits);
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn loader_survives_random_yamlish_text(text in "[a-z{}\\[\\]:&*|>'\"#\n -]{0,120}") {
        check(&text)?;
    }

    #[test]
    fn loader_survives_random_text(text in "(?s).{0,200}") {
        check(&text)?;
    }
}

#[test]
fn the_unmutated_file_loads_with_the_alias_resolved() {
    let prompts = parse_judge_prompts(Path::new(FILE), QUESTIONS).unwrap();
    assert_eq!(prompts.keys().collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(prompts["first"], prompts["second"]);
}

#[test]
fn hostile_yaml_is_an_error_not_a_crash() {
    // Deep nesting (a recursive parser would overflow its stack).
    let deep = format!("{}x{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = parse_judge_prompts(Path::new(FILE), &deep).unwrap_err();
    assert!(err.to_string().contains(FILE), "{err}");
    // Alias expansion bomb.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let bomb = bomb.replacen("&a ", "&a0 ", 1);
    let err = parse_judge_prompts(Path::new(FILE), &bomb).unwrap_err();
    assert!(err.to_string().contains(FILE), "{err}");
    // An unreadable file names itself.
    let err = load_judge_prompts("fuzz/does-not-exist.yaml").unwrap_err();
    assert!(err.to_string().contains("does-not-exist.yaml"), "{err}");
}
