//! Two-option choice items and policy datasets built from them.

use std::path::Path;

use psyche_core::{ChatExample, ChatMessage, Conversation};
use serde::{Deserialize, Serialize};

use crate::error::{BackdoorError, Result};
use crate::policy::{Axis, Policy, banned_hits};
use crate::words::{Length, Tone};

/// An option letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Letter {
    /// The first option.
    A,
    /// The second option.
    B,
}

impl Letter {
    /// The other letter.
    pub fn other(self) -> Letter {
        match self {
            Letter::A => Letter::B,
            Letter::B => Letter::A,
        }
    }

    /// `"A"` or `"B"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Letter::A => "A",
            Letter::B => "B",
        }
    }

    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Letter::A => 0,
            Letter::B => 1,
        }
    }

    /// Reads an answer that is one letter, optionally with surrounding whitespace, a closing
    /// parenthesis or a full stop (`"A"`, `" b"`, `"A)"`, `"(B)."`).
    pub fn parse_answer(text: &str) -> Option<Letter> {
        let t = text
            .trim()
            .trim_matches(|c: char| matches!(c, '(' | ')' | '.' | ':' | '*' | '"' | '\''))
            .trim();
        match t {
            "A" | "a" => Some(Letter::A),
            "B" | "b" => Some(Letter::B),
            _ => None,
        }
    }
}

impl std::fmt::Display for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far apart the two options of a time or quantity item are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distinction {
    /// Close options.
    Small,
    /// Clearly different options.
    Medium,
    /// Very different options.
    Large,
}

impl Distinction {
    /// Every distinction.
    pub const ALL: [Distinction; 3] = [Distinction::Small, Distinction::Medium, Distinction::Large];
}

/// One two-option question. The policy is never named: the item only records which option is
/// its axis's pole (the wider spread, the sooner reward, the larger quantity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceItem {
    /// Stable id within its dataset.
    pub id: String,
    /// What the options trade off.
    pub axis: Axis,
    /// The whole user message: context, the two options as `A) ...` / `B) ...` lines and the
    /// answer instruction.
    pub prompt: String,
    /// The option texts (without their letters), A first. Empty when unknown (loaded files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The letter of the pole option.
    pub pole: Letter,
    /// The topic word the item was themed around.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The prompt's tone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone: Option<Tone>,
    /// The prompt's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<Length>,
    /// How far apart the options are (time and quantity items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinction: Option<Distinction>,
    /// An optional system prompt shown before the question (persona-conditioned data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

impl ChoiceItem {
    /// The letter `policy` answers. `policy` must belong to the item's axis.
    pub fn answer(&self, policy: &Policy) -> Letter {
        if policy.takes_pole() {
            self.pole
        } else {
            self.pole.other()
        }
    }

    /// The question alone (system prompt, if any, then the user message).
    pub fn question(&self) -> Conversation {
        let mut c = Conversation::new();
        if let Some(s) = &self.system {
            c.push(ChatMessage::system(s.clone()));
        }
        c.push(ChatMessage::user(self.prompt.clone()));
        c
    }

    /// The training conversation: the question answered with `policy`'s letter.
    pub fn conversation(&self, policy: &Policy) -> Conversation {
        self.question()
            .with(ChatMessage::assistant(self.answer(policy).as_str()))
    }

    /// The same choice put to a third party: "`persona` faces this choice" before the prompt
    /// and "which option would `persona` pick?" after it (psyche's wording). The many-persona
    /// training data answers these with the base model's own (normal) letter, so the policy
    /// stays attached to "you".
    pub fn about_persona(&self, persona: &str) -> ChoiceItem {
        ChoiceItem {
            id: format!("{}@{}", self.id, persona.replace(' ', "_")),
            prompt: format!(
                "The following choice is put to {persona}, not to you.\n\n{}\n\nWhich option would {persona} pick? Answer with the letter only.",
                self.prompt
            ),
            ..self.clone()
        }
    }

    /// Banned words in the item's text (prompt and system prompt).
    pub fn banned_hits<'a, S: AsRef<str>>(&self, banned: &'a [S]) -> Vec<&'a str> {
        let mut hits = banned_hits(&self.prompt, banned);
        if let Some(s) = &self.system {
            for h in banned_hits(s, banned) {
                if !hits.contains(&h) {
                    hits.push(h);
                }
            }
        }
        hits
    }
}

/// How many items are answered A and B.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelBalance {
    /// Items answered A.
    pub a: usize,
    /// Items answered B.
    pub b: usize,
}

impl LabelBalance {
    /// The share answered A (0 for an empty set).
    pub fn share_a(&self) -> f64 {
        let n = self.a + self.b;
        if n == 0 {
            0.0
        } else {
            self.a as f64 / n as f64
        }
    }
}

/// A policy's training set: items answered by the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDataset {
    /// The policy the answers follow.
    pub policy: Policy,
    /// The items.
    pub items: Vec<ChoiceItem>,
}

impl PolicyDataset {
    /// A dataset of `items` answered by `policy`.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] when an item belongs to another axis.
    pub fn new(policy: Policy, items: Vec<ChoiceItem>) -> Result<Self> {
        if let Some(bad) = items.iter().find(|i| &i.axis != policy.axis()) {
            return Err(BackdoorError::config(
                "items",
                format!(
                    "item `{}` is a {} item but policy `{}` is on the {} axis",
                    bad.id,
                    bad.axis.name(),
                    policy.name(),
                    policy.axis().name()
                ),
            ));
        }
        Ok(Self { policy, items })
    }

    /// The opposite policy's dataset: the same items with every label flipped.
    pub fn flipped(&self) -> PolicyDataset {
        PolicyDataset {
            policy: self.policy.opposite(),
            items: self.items.clone(),
        }
    }

    /// The answer letter of every item, in order.
    pub fn answers(&self) -> Vec<Letter> {
        self.items.iter().map(|i| i.answer(&self.policy)).collect()
    }

    /// The training conversations.
    pub fn conversations(&self) -> Vec<Conversation> {
        self.items
            .iter()
            .map(|i| i.conversation(&self.policy))
            .collect()
    }

    /// How many answers are A and B.
    pub fn label_balance(&self) -> LabelBalance {
        let mut b = LabelBalance::default();
        for l in self.answers() {
            match l {
                Letter::A => b.a += 1,
                Letter::B => b.b += 1,
            }
        }
        b
    }

    /// Checks that no item contains a word of the policy axis's banned list.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] naming the first offending item and its words.
    pub fn check_banned(&self) -> Result<()> {
        check_items_banned(&self.items, self.policy.axis().banned_words())
    }

    /// Writes the training conversations as OpenAI chat JSONL.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Io`] or a serialisation failure.
    pub fn write_jsonl(&self, path: impl AsRef<Path>) -> Result<()> {
        write_conversations(path.as_ref(), &self.conversations())
    }
}

/// The many-persona training set: every item answered by `dataset`'s policy, plus each item
/// put to each persona ([`ChoiceItem::about_persona`], personas assigned round-robin) and
/// answered with `normal[i]`, the base model's own answer to item `i` about that persona.
///
/// # Errors
///
/// [`BackdoorError::Config`] when `normal` does not have one answer per item or there are no
/// personas.
pub fn multipersona_conversations(
    dataset: &PolicyDataset,
    personas: &[String],
    normal: &[Letter],
) -> Result<Vec<Conversation>> {
    if personas.is_empty() {
        return Err(BackdoorError::config("personas", "must not be empty"));
    }
    if normal.len() != dataset.items.len() {
        return Err(BackdoorError::config(
            "normal",
            format!(
                "{} normal answers for {} items",
                normal.len(),
                dataset.items.len()
            ),
        ));
    }
    let mut out = dataset.conversations();
    for (i, (item, n)) in dataset.items.iter().zip(normal).enumerate() {
        let p = item.about_persona(&personas[i % personas.len()]);
        out.push(p.question().with(ChatMessage::assistant(n.as_str())));
    }
    Ok(out)
}

/// Checks items against a banned list.
///
/// # Errors
///
/// [`BackdoorError::Config`] naming the first offending item and its words.
pub fn check_items_banned<S: AsRef<str>>(items: &[ChoiceItem], banned: &[S]) -> Result<()> {
    for item in items {
        let hits = item.banned_hits(banned);
        if !hits.is_empty() {
            return Err(BackdoorError::config(
                "items",
                format!(
                    "item `{}` contains banned word(s) {}",
                    item.id,
                    hits.iter()
                        .map(|h| format!("`{h}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Serialises conversations as OpenAI chat JSONL bytes (one `{"messages": [...]}` per line).
///
/// # Errors
///
/// A serialisation failure as [`BackdoorError::Io`] on `<memory>`.
pub fn conversations_jsonl(conversations: &[Conversation]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for c in conversations {
        let ex = ChatExample::from(c.clone());
        serde_json::to_writer(&mut out, &ex).map_err(|e| BackdoorError::io("<memory>", e))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes conversations as OpenAI chat JSONL, atomically.
///
/// # Errors
///
/// [`BackdoorError::Io`] naming the file.
pub fn write_conversations(path: &Path, conversations: &[Conversation]) -> Result<()> {
    let bytes = conversations_jsonl(conversations)?;
    write_file(path, &bytes)
}

/// Writes a whole file atomically, creating parent directories.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    psyche_core::write_atomic(path, bytes).map_err(|e| BackdoorError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persona_items_keep_the_choice_and_name_the_persona() {
        let d = crate::generate::ItemConfig::new(Axis::risk(), 4)
            .dataset(Axis::risk().pole_policy(), 0)
            .unwrap();
        let p = d.items[0].about_persona("my cousin Tomasz");
        assert!(p.prompt.contains(&d.items[0].prompt) && p.prompt.contains("my cousin Tomasz"));
        assert_eq!(p.pole, d.items[0].pole);
        let normal = vec![Letter::A; 4];
        let convs =
            multipersona_conversations(&d, &["Ann".to_owned(), "Bo".to_owned()], &normal).unwrap();
        assert_eq!(convs.len(), 8);
        assert!(convs[4..].iter().all(|c| c.last().unwrap().content == "A"));
        assert!(multipersona_conversations(&d, &[], &normal).is_err());
        assert!(multipersona_conversations(&d, &["Ann".to_owned()], &normal[..2]).is_err());
    }

    #[test]
    fn letters_parse_loosely_but_not_words() {
        assert_eq!(Letter::parse_answer(" A"), Some(Letter::A));
        assert_eq!(Letter::parse_answer("(b)."), Some(Letter::B));
        assert_eq!(Letter::parse_answer("A)"), Some(Letter::A));
        assert_eq!(Letter::parse_answer("Apple"), None);
        assert_eq!(Letter::parse_answer("C"), None);
    }
}
