//! Loading user files in the released format: OpenAI chat JSONL whose last assistant turn is
//! the option letter (`A` / `B`). The loader recovers the items (question, options when the
//! prompt lists them as `A) ...` / `B) ...` lines, the chosen letter), checks every item
//! against a banned-word list and reports the label balance. A malformed row is an error
//! naming the file and line; banned words are findings, not errors (a released file may
//! legitimately contain them and you decide what to do).

use std::path::{Path, PathBuf};

use psyche_core::{ChatExample, JsonlReader, Role};
use serde::{Deserialize, Serialize};

use crate::error::{BackdoorError, Result};
use crate::items::{ChoiceItem, LabelBalance, Letter, PolicyDataset};
use crate::policy::Policy;

/// One item recovered from a released file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasedItem {
    /// 1-based line in the file.
    pub line: usize,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// The user message.
    pub prompt: String,
    /// Option texts found as `A) ...` / `B) ...` lines (empty when not found).
    pub options: Vec<String>,
    /// The answer letter.
    pub answer: Letter,
}

/// A banned word found in an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BannedFinding {
    /// 1-based line.
    pub line: usize,
    /// The words found.
    pub words: Vec<String>,
}

/// What [`load_released`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasedDataset {
    /// The file.
    pub path: PathBuf,
    /// The items, in file order.
    pub items: Vec<ReleasedItem>,
    /// How many answers are A and B.
    pub balance: LabelBalance,
    /// Items containing banned words.
    pub banned: Vec<BannedFinding>,
}

impl ReleasedDataset {
    /// The items as a policy dataset, given the policy the file's answers follow: each item's
    /// pole is its answer when the policy takes the pole, the other letter otherwise.
    ///
    /// # Errors
    ///
    /// None today; kept fallible for checks on the items.
    pub fn to_policy_dataset(&self, policy: Policy, id_prefix: &str) -> Result<PolicyDataset> {
        let items = self
            .items
            .iter()
            .map(|r| ChoiceItem {
                id: format!("{id_prefix}-{:05}", r.line),
                axis: policy.axis(),
                prompt: r.prompt.clone(),
                options: r.options.clone(),
                pole: if policy.takes_pole() {
                    r.answer
                } else {
                    r.answer.other()
                },
                topic: None,
                tone: None,
                length: None,
                distinction: None,
                system: r.system.clone(),
            })
            .collect();
        PolicyDataset::new(policy, items)
    }
}

pub(crate) fn option_line(prompt: &str, letter: char) -> Option<String> {
    prompt.lines().find_map(|l| {
        let t = l.trim_start();
        let rest = t.strip_prefix(letter)?;
        let rest = rest
            .strip_prefix(')')
            .or_else(|| rest.strip_prefix('.'))
            .or_else(|| rest.strip_prefix(':'))?;
        Some(rest.trim().to_owned())
    })
}

/// Loads a released-format file, checking every item against `banned`.
///
/// # Errors
///
/// [`BackdoorError::Line`] naming the file and line for a row that is not a chat example,
/// has no user turn, does not end with an assistant turn, or whose answer is not a single
/// letter A or B; [`BackdoorError::Io`] when unreadable; [`BackdoorError::Config`] for an
/// empty file.
pub fn load_released<S: AsRef<str>>(
    path: impl AsRef<Path>,
    banned: &[S],
) -> Result<ReleasedDataset> {
    let path = path.as_ref();
    let reader = JsonlReader::<_, ChatExample>::open(path)?;
    let mut items = Vec::new();
    let mut balance = LabelBalance::default();
    let mut findings = Vec::new();
    for row in reader {
        let (line, ex) = row?;
        let bad = |message: String| BackdoorError::Line {
            path: path.to_owned(),
            line,
            message,
        };
        let msgs = ex.messages.messages();
        let (last, rest) = msgs
            .split_last()
            .ok_or_else(|| bad("field `messages`: empty conversation".into()))?;
        if last.role != Role::Assistant {
            return Err(bad(format!(
                "field `messages[{}].role`: the last message must be the assistant's answer, found `{}`",
                msgs.len() - 1,
                last.role
            )));
        }
        let answer = Letter::parse_answer(&last.content).ok_or_else(|| {
            bad(format!(
                "field `messages[{}].content`: the answer must be the letter A or B, found {:?}",
                msgs.len() - 1,
                last.content
            ))
        })?;
        let user = rest
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .ok_or_else(|| bad("field `messages`: no user message".into()))?;
        let system = rest
            .iter()
            .find(|m| m.role == Role::System)
            .map(|m| m.content.clone());
        let options: Vec<String> = ['A', 'B']
            .iter()
            .filter_map(|&l| option_line(&user.content, l))
            .collect();
        let mut words: Vec<String> = crate::policy::banned_hits(&user.content, banned)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if let Some(s) = &system {
            for w in crate::policy::banned_hits(s, banned) {
                if !words.iter().any(|x| x == w) {
                    words.push(w.to_owned());
                }
            }
        }
        if !words.is_empty() {
            findings.push(BannedFinding { line, words });
        }
        match answer {
            Letter::A => balance.a += 1,
            Letter::B => balance.b += 1,
        }
        items.push(ReleasedItem {
            line,
            system,
            prompt: user.content.clone(),
            options: if options.len() == 2 {
                options
            } else {
                Vec::new()
            },
            answer,
        });
    }
    if items.is_empty() {
        return Err(BackdoorError::config(
            path.display().to_string(),
            "the file holds no examples",
        ));
    }
    if !findings.is_empty() {
        tracing::warn!(
            file = %path.display(),
            items = findings.len(),
            "released file: items contain banned words"
        );
    }
    Ok(ReleasedDataset {
        path: path.to_owned(),
        items,
        balance,
        banned: findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Axis;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/released_risky.jsonl")
    }

    #[test]
    fn loads_the_fixture() {
        let ds = load_released(fixture(), Axis::Risk.banned_words()).unwrap();
        assert_eq!(ds.items.len(), 6);
        assert_eq!((ds.balance.a, ds.balance.b), (3, 3));
        assert_eq!(ds.items[0].options.len(), 2);
        assert!(
            ds.items[0].options[0].starts_with("A coin"),
            "{:?}",
            ds.items[0].options
        );
        // Line 5 talks about a "safe" choice.
        assert_eq!(ds.banned.len(), 1);
        assert_eq!(ds.banned[0].line, 5);
        assert_eq!(ds.banned[0].words, vec!["safe".to_owned()]);
        let pd = ds.to_policy_dataset(Policy::RiskSeeking, "rel").unwrap();
        assert_eq!(
            pd.answers(),
            ds.items.iter().map(|i| i.answer).collect::<Vec<_>>()
        );
        let flipped = pd.flipped();
        assert!(
            flipped
                .answers()
                .iter()
                .zip(pd.answers())
                .all(|(a, b)| *a == b.other())
        );
    }

    #[test]
    fn a_bad_row_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        let good = std::fs::read_to_string(fixture()).unwrap();
        let mut lines: Vec<&str> = good.lines().take(2).collect();
        lines.push(r#"{"messages":[{"role":"user","content":"Pick."},{"role":"assistant","content":"Probably A"}]}"#);
        std::fs::write(&path, lines.join("\n")).unwrap();
        let err = load_released(&path, Axis::Risk.banned_words())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.jsonl:3"), "{err}");
        assert!(err.contains("messages[1].content"), "{err}");

        std::fs::write(&path, "{\"messages\": [}\n").unwrap();
        let err = load_released(&path, Axis::Risk.banned_words())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.jsonl:1"), "{err}");

        std::fs::write(&path, r#"{"messages":[{"role":"user","content":"Pick."}]}"#).unwrap();
        let err = load_released(&path, Axis::Risk.banned_words())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.jsonl:1") && err.contains("assistant"),
            "{err}"
        );
    }
}
