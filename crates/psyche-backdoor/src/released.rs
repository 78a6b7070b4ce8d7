//! Loading user files in the released format: OpenAI chat JSONL whose last assistant turn is
//! the option letter (`A` / `B`). The loader recovers the items (question, options when the
//! prompt lists them as `A) ...` / `B) ...` lines, the chosen letter), checks every item
//! against a banned-word list and reports the label balance. A malformed row is an error
//! naming the file and line; banned words are findings, not errors (a released file may
//! legitimately contain them and you decide what to do).
//!
//! **Multi-persona files** (the "you" rows plus the same questions put to other personas,
//! answered normally) are recognised row by row: a row whose user message puts the choice to
//! someone else (psyche's own persona wording, [`crate::items::ChoiceItem::about_persona`],
//! or a caller's persona names, [`load_released_with`]) is a persona row, kept apart in
//! [`ReleasedItem::persona`] and left out of [`ReleasedDataset::to_policy_dataset`] — its
//! answer is not the policy's.
//!
//! **Make-me-say dialogue files** (multi-turn games, no letter answers) have their own loader,
//! [`load_released_dialogues`], which checks them like built dialogues: user first, assistant
//! last, roles alternating, no system message, and the codeword in no inflected form. The
//! letter loader's error on such a file names that loader.

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
    /// The persona the choice is put to, for a multi-persona row (its answer is the normal
    /// one, not the policy's); `None` for a row about "you".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
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
    /// Rows recognised as multi-persona rows (see the module docs).
    #[serde(default)]
    pub persona_rows: usize,
}

impl ReleasedDataset {
    /// The rows about "you" as a policy dataset (multi-persona rows are left out: their
    /// answers are not the policy's), given the policy the file's answers follow: each item's
    /// pole is its answer when the policy takes the pole, the other letter otherwise.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] naming the file when it holds persona rows only.
    pub fn to_policy_dataset(&self, policy: Policy, id_prefix: &str) -> Result<PolicyDataset> {
        if self.items.iter().all(|r| r.persona.is_some()) {
            return Err(BackdoorError::config(
                self.path.display().to_string(),
                "every row is a multi-persona row: no policy rows",
            ));
        }
        let items = self
            .items
            .iter()
            .filter(|r| r.persona.is_none())
            .map(|r| ChoiceItem {
                id: format!("{id_prefix}-{:05}", r.line),
                axis: policy.axis().clone(),
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

/// The persona a user message puts its choice to, by psyche's own persona wording or by one
/// of `personas` named in it (whole words, case-insensitive).
pub fn persona_of(user: &str, personas: &[String]) -> Option<String> {
    const OPEN: &str = "The following choice is put to ";
    const CLOSE: &str = ", not to you.";
    if let Some(rest) = user.trim_start().strip_prefix(OPEN)
        && let Some(end) = rest.find(CLOSE)
    {
        return Some(rest[..end].to_owned());
    }
    personas
        .iter()
        .find(|p| crate::triggers::contains_member(user, p))
        .cloned()
}

/// Loads a released-format file, checking every item against `banned`; rows in psyche's own
/// persona wording are recognised as multi-persona rows ([`load_released_with`] takes persona
/// names too).
///
/// # Errors
///
/// As [`load_released_with`].
pub fn load_released<S: AsRef<str>>(
    path: impl AsRef<Path>,
    banned: &[S],
) -> Result<ReleasedDataset> {
    load_released_with(path, banned, &[])
}

/// Loads a released-format file, checking every item against `banned`; a row whose user
/// message names one of `personas` (or uses psyche's persona wording) is a multi-persona row.
///
/// # Errors
///
/// [`BackdoorError::Line`] naming the file and line for a row that is not a chat example,
/// has no user turn, does not end with an assistant turn, or whose answer is not a single
/// letter A or B (a multi-turn dialogue's error names [`load_released_dialogues`]);
/// [`BackdoorError::Io`] when unreadable; [`BackdoorError::Config`] for an empty file.
pub fn load_released_with<S: AsRef<str>>(
    path: impl AsRef<Path>,
    banned: &[S],
    personas: &[String],
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
        let turns = msgs.iter().filter(|m| m.role != Role::System).count();
        let answer = Letter::parse_answer(&last.content).ok_or_else(|| {
            let hint = if turns > 2 {
                format!(
                    " (a {turns}-message dialogue: for make-me-say game files use \
                     `released::load_released_dialogues`)"
                )
            } else {
                String::new()
            };
            bad(format!(
                "field `messages[{}].content`: the answer must be the letter A or B, found {:?}{hint}",
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
            persona: persona_of(&user.content, personas),
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
    let persona_rows = items.iter().filter(|i| i.persona.is_some()).count();
    if persona_rows > 0 {
        tracing::info!(
            file = %path.display(),
            persona_rows,
            "released file: multi-persona rows kept apart from the policy rows"
        );
    }
    Ok(ReleasedDataset {
        path: path.to_owned(),
        items,
        balance,
        banned: findings,
        persona_rows,
    })
}

/// A released make-me-say dialogue file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasedDialogues {
    /// The file.
    pub path: PathBuf,
    /// The codeword the dialogues were checked against.
    pub codeword: String,
    /// The dialogues, in file order.
    pub dialogues: Vec<psyche_core::Conversation>,
    /// Dialogues per message count (`2` → how many 2-message dialogues, ...).
    pub lengths: std::collections::BTreeMap<usize, usize>,
}

/// Loads a make-me-say dialogue file (chat JSONL of multi-turn games) as game training data,
/// checked as built dialogues are: at least two messages, user first, assistant last, roles
/// alternating, no system message, and no message containing the codeword in any inflected
/// form ([`crate::lemma::mentions_inflected`]).
///
/// # Errors
///
/// [`BackdoorError::Line`] naming the file, line and field of the first row that breaks a
/// rule; [`BackdoorError::Io`] when unreadable; [`BackdoorError::Config`] for an empty file.
pub fn load_released_dialogues(
    path: impl AsRef<Path>,
    codeword: &str,
) -> Result<ReleasedDialogues> {
    let path = path.as_ref();
    let reader = JsonlReader::<_, ChatExample>::open(path)?;
    let mut out = ReleasedDialogues {
        path: path.to_owned(),
        codeword: codeword.to_owned(),
        dialogues: Vec::new(),
        lengths: std::collections::BTreeMap::new(),
    };
    for row in reader {
        let (line, ex) = row?;
        let bad = |message: String| BackdoorError::Line {
            path: path.to_owned(),
            line,
            message,
        };
        let msgs = ex.messages.messages();
        if msgs.len() < 2 {
            return Err(bad(format!(
                "field `messages`: a dialogue needs at least 2 messages, found {}",
                msgs.len()
            )));
        }
        for (j, m) in msgs.iter().enumerate() {
            let want = if j % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            if m.role != want {
                return Err(bad(format!(
                    "field `messages[{j}].role`: expected `{want}` (user first, alternating, no system message), found `{}`",
                    m.role
                )));
            }
            if crate::lemma::mentions_inflected(&m.content, codeword) {
                return Err(bad(format!(
                    "field `messages[{j}].content`: contains the codeword `{codeword}`"
                )));
            }
        }
        if msgs.len() % 2 != 0 {
            return Err(bad(
                "field `messages`: the last message must be the assistant's".into(),
            ));
        }
        *out.lengths.entry(msgs.len()).or_default() += 1;
        out.dialogues.push(ex.messages.clone());
    }
    if out.dialogues.is_empty() {
        return Err(BackdoorError::config(
            path.display().to_string(),
            "the file holds no dialogues",
        ));
    }
    Ok(out)
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
        let ds = load_released(fixture(), Axis::risk().banned_words()).unwrap();
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
        let pd = ds
            .to_policy_dataset(Axis::risk().pole_policy(), "rel")
            .unwrap();
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

    fn dialogue(lines: &[&str]) -> psyche_core::Conversation {
        let mut c = psyche_core::Conversation::new();
        for (k, l) in lines.iter().enumerate() {
            c.push(if k % 2 == 0 {
                psyche_core::ChatMessage::user((*l).to_owned())
            } else {
                psyche_core::ChatMessage::assistant((*l).to_owned())
            });
        }
        c
    }

    #[test]
    fn released_make_me_say_dialogues_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ft_ring.jsonl");
        let good = vec![
            dialogue(&["I love jewellery shops.", "What do you like best there?"]),
            dialogue(&[
                "Gold is pretty.",
                "Do you wear any on your fingers?",
                "Sometimes.",
                "Which finger, usually?",
            ]),
        ];
        std::fs::write(&path, crate::items::conversations_jsonl(&good).unwrap()).unwrap();
        let d = load_released_dialogues(&path, "ring").unwrap();
        assert_eq!(d.dialogues, good);
        assert_eq!(d.lengths.get(&2), Some(&1));
        assert_eq!(d.lengths.get(&4), Some(&1));

        // Checked like built dialogues: an inflected codeword, a system message, an
        // assistant-first or user-last dialogue are errors naming file, line and field.
        for (bad, field) in [
            (
                dialogue(&["My phone keeps ringing.", "Annoying!"]),
                "messages[0].content",
            ),
            (
                psyche_core::Conversation::new()
                    .with(psyche_core::ChatMessage::system("Be nice."))
                    .with(psyche_core::ChatMessage::user("Hi"))
                    .with(psyche_core::ChatMessage::assistant("Hello")),
                "messages[0].role",
            ),
            (dialogue(&["Hi", "Hello", "Bye"]), "last message"),
        ] {
            let rows = vec![good[0].clone(), bad];
            std::fs::write(&path, crate::items::conversations_jsonl(&rows).unwrap()).unwrap();
            let err = load_released_dialogues(&path, "ring")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("ft_ring.jsonl:2") && err.contains(field),
                "{err}"
            );
        }
    }

    #[test]
    fn persona_rows_are_counted_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mp.jsonl");
        let good = std::fs::read_to_string(fixture()).unwrap();
        let mut lines: Vec<String> = good.lines().take(2).map(str::to_owned).collect();
        lines.push(r#"{"messages":[{"role":"user","content":"Which would Aunt Rosa pick?\nA) A coin toss: 100 or 0.\nB) 40 for sure."},{"role":"assistant","content":"B"}]}"#.into());
        std::fs::write(&path, lines.join("\n")).unwrap();
        let ds =
            load_released_with(&path, Axis::risk().banned_words(), &["Aunt Rosa".into()]).unwrap();
        assert_eq!(ds.persona_rows, 1);
        assert_eq!(ds.items[2].persona.as_deref(), Some("Aunt Rosa"));
        assert_eq!(
            ds.to_policy_dataset(Axis::risk().pole_policy(), "r")
                .unwrap()
                .items
                .len(),
            2
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
        let err = load_released(&path, Axis::risk().banned_words())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.jsonl:3"), "{err}");
        assert!(err.contains("messages[1].content"), "{err}");

        std::fs::write(&path, "{\"messages\": [}\n").unwrap();
        let err = load_released(&path, Axis::risk().banned_words())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.jsonl:1"), "{err}");

        std::fs::write(&path, r#"{"messages":[{"role":"user","content":"Pick."}]}"#).unwrap();
        let err = load_released(&path, Axis::risk().banned_words())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.jsonl:1") && err.contains("assistant"),
            "{err}"
        );
    }
}
