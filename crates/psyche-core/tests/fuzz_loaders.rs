//! Loaders never panic on arbitrary bytes: property tests (proptest, fixed seed, 256 cases each)
//! feed random and mutated inputs to the JSONL / chat-JSONL reader and to prompt templates.
//! Every failure must be an error naming the source and the position (line, byte offset).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use psyche_core::{
    ChatExample, ChatMessage, Conversation, DatasetError, JsonlReader, PromptTemplate,
    TemplateError, read_chat_jsonl,
};

const LABEL: &str = "fuzz/data.jsonl";

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5eed_0013),
        ..Config::default()
    }
}

/// A valid chat JSONL line.
fn chat_line() -> impl Strategy<Value = String> {
    let role = prop_oneof![Just("system"), Just("user"), Just("assistant")];
    prop::collection::vec((role, ".{0,24}"), 1..4).prop_map(|msgs| {
        let mut c = Conversation::default();
        for (role, text) in msgs {
            c.push(match role {
                "system" => ChatMessage::system(text),
                "user" => ChatMessage::user(text),
                _ => ChatMessage::assistant(text),
            });
        }
        serde_json::to_string(&ChatExample::from(c)).unwrap_or_default()
    })
}

/// Edits applied to a valid input: (position seed, kind, byte).
type Edits = Vec<(usize, u8, u8)>;

fn edits() -> impl Strategy<Value = Edits> {
    prop::collection::vec((any::<usize>(), 0u8..5, any::<u8>()), 1..6)
}

/// Applies byte edits: overwrite, delete, insert a JSON/template-significant byte, insert any
/// byte, truncate.
fn mutate(mut bytes: Vec<u8>, edits: &Edits) -> Vec<u8> {
    const SIGNIFICANT: &[u8] = b"{}[]\":,\\\n\r 0-e.\xff\xc3";
    for &(pos, kind, byte) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            pos % (bytes.len() + 1)
        };
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

/// Reads every row; checks each error names the label and a line that exists.
fn check_reader(bytes: &[u8]) -> Result<(), TestCaseError> {
    let lines = bytes.split(|b| *b == b'\n').count();
    for row in JsonlReader::<_, ChatExample>::new(bytes, LABEL) {
        match row {
            Ok((line, _)) => prop_assert!(line >= 1 && line <= lines),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains(LABEL), "{}", text);
                match e {
                    DatasetError::Line { line, .. } => {
                        prop_assert!(line >= 1 && line <= lines, "line {} of {}", line, lines);
                        prop_assert!(text.contains(&format!(":{line}")), "{}", text);
                    }
                    other => prop_assert!(false, "unexpected error kind: {:?}", other),
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn jsonl_reader_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_reader(&bytes)?;
    }

    #[test]
    fn jsonl_reader_survives_mutated_chat_files(
        lines in prop::collection::vec(chat_line(), 1..6),
        edits in edits(),
    ) {
        let valid = lines.join("\n").into_bytes();
        // The unmutated file parses completely.
        let parsed: Vec<_> = JsonlReader::<_, ChatExample>::new(valid.as_slice(), LABEL)
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.len(), lines.len());
        check_reader(&mutate(valid, &edits))?;
    }

    #[test]
    fn templates_parse_or_name_the_offending_offset(
        source in "[a-z{}_é 0-9\u{1F600}]{0,40}",
        edits in edits(),
    ) {
        let bytes = mutate(source.into_bytes(), &edits);
        let source = String::from_utf8_lossy(&bytes);
        match PromptTemplate::parse_any("fuzz.yaml#t", &source) {
            Ok(t) => {
                // Every placeholder found can be filled; braces in values stay verbatim.
                let names: Vec<String> = t.placeholders().map(str::to_owned).collect();
                let values: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "{v}")).collect();
                let out = t.render(&values).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(out.matches("{v}").count(), names.len());
                // With a required placeholder the check names it when absent.
                if let Err(e) = t.check(&["answer"], &["answer", "question"]) {
                    prop_assert!(e.to_string().contains("fuzz.yaml#t"), "{}", e);
                }
            }
            Err(TemplateError::Unbalanced { template, offset }) => {
                prop_assert_eq!(template, "fuzz.yaml#t");
                prop_assert!(source.is_char_boundary(offset));
                let at_brace = matches!(source.as_bytes().get(offset), Some(b'{' | b'}'));
                prop_assert!(at_brace, "offset {} of {:?}", offset, source);
            }
            Err(other) => prop_assert!(false, "parse_any only reports braces: {:?}", other),
        }
    }
}

#[test]
fn chat_jsonl_files_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.jsonl");
    let good = r#"{"messages":[{"role":"user","content":"Hi"}]}"#;
    std::fs::write(
        &path,
        format!("{good}\n\n{good}\n{{\"messages\": [{{\"role\": 7}}]}}\n"),
    )
    .unwrap();
    let err = read_chat_jsonl(&path).unwrap_err().to_string();
    assert!(err.contains("chat.jsonl:4"), "{err}");
    assert!(err.contains("messages[0].role"), "{err}");
    // Invalid UTF-8 is a line error too, not a panic.
    std::fs::write(&path, b"\xff\xfe\n").unwrap();
    let err = read_chat_jsonl(&path).unwrap_err().to_string();
    assert!(
        err.contains("chat.jsonl:1") && err.contains("UTF-8"),
        "{err}"
    );
    // A reader whose source fails mid-way reports an I/O error naming the label.
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk gone"))
        }
    }
    let mut rows = JsonlReader::<_, ChatExample>::new(std::io::BufReader::new(Failing), LABEL);
    let err = rows.next().unwrap().unwrap_err().to_string();
    assert!(err.contains(LABEL) && err.contains("disk gone"), "{err}");
}
