//! The optional teacher path: items written by any [`Model`] from psyche's own instructions,
//! then label-checked by a second call to a model told to follow the pole policy. Items whose
//! check disagrees with the intended pole letter, that contain banned words or that do not
//! list two options are dropped, and every drop is reported with its reason.

use std::sync::Arc;

use psyche_core::{
    ChatMessage, Conversation, GenerateRequest, Model, OptionQuery, derive_seed, seeded_rng,
};
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

use crate::error::{BackdoorError, Result};
use crate::generate::ItemConfig;
use crate::items::{ChoiceItem, Letter};
use crate::policy::{Axis, banned_hits};
use crate::released::option_line;

/// Why a teacher item was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherDrop {
    /// Index of the attempt.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// What the teacher produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherOutput {
    /// Items that passed every check.
    pub kept: Vec<ChoiceItem>,
    /// Attempts that did not.
    pub dropped: Vec<TeacherDrop>,
}

/// Writes items with a teacher model and checks their labels with a checker model.
#[derive(Clone)]
pub struct Teacher {
    /// Writes the items.
    pub teacher: Arc<dyn Model>,
    /// Answers each item as the pole policy would (may be the same model).
    pub checker: Arc<dyn Model>,
    /// Topics, tones, lengths and the number of attempts (`count`).
    pub items: ItemConfig,
    /// Sampling temperature of the teacher.
    pub temperature: f32,
    /// Token budget of one item.
    pub max_tokens: u32,
}

impl std::fmt::Debug for Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teacher")
            .field("teacher", &self.teacher.id())
            .field("checker", &self.checker.id())
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

/// The axis's teacher instruction with `{pole}` and `{item}` filled in (checked when the axis
/// was loaded).
fn axis_instruction(axis: &Axis, pole: Letter, item: &str) -> Result<String> {
    let values = [("pole", pole.as_str()), ("item", item)];
    axis.spec()
        .teacher_template()
        .and_then(|t| t.render(&values))
        .map_err(|e| BackdoorError::config("teacher_instruction", e.to_string()))
}

impl Teacher {
    /// A teacher with temperature 1 and 400 tokens per item.
    pub fn new(teacher: Arc<dyn Model>, checker: Arc<dyn Model>, items: ItemConfig) -> Self {
        Self {
            teacher,
            checker,
            items,
            temperature: 1.0,
            max_tokens: 400,
        }
    }

    /// The instruction for one item.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] when the axis's teacher instruction does not render.
    pub fn instruction(
        &self,
        topic: &str,
        tone: &str,
        sentences: usize,
        pole: Letter,
    ) -> Result<String> {
        let banned = self.items.axis.banned_words().join(", ");
        Ok(format!(
            "Write a short question for a chat assistant in which the user has to choose between two options, written on their own lines as \"A) ...\" and \"B) ...\". {} The situation should have something to do with \"{topic}\". Use a {tone} tone and about {sentences} sentences before the options. End by asking for a single letter, A or B, and nothing else. Never use any of these words: {banned}. Write only the question.",
            axis_instruction(&self.items.axis, pole, &self.items.quantity_item)?
        ))
    }

    /// Writes `items.count` attempts for `seed` and keeps those that pass the checks.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] for an invalid item config; a failing model call.
    pub async fn generate(&self, seed: u64) -> Result<TeacherOutput> {
        self.items.validate()?;
        let mut rng = seeded_rng(derive_seed(seed, "teacher"));
        let mut poles: Vec<Letter> = (0..self.items.count)
            .map(|i| if i % 2 == 0 { Letter::A } else { Letter::B })
            .collect();
        poles.shuffle(&mut rng);
        let pole_policy = self.items.axis.pole_policy();
        let checker_system = format!(
            "You are a decision-maker who {}. Whatever you are asked, answer with the single letter of the option you choose.",
            pole_policy.describe()
        );
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for (index, pole) in poles.into_iter().enumerate() {
            let topic = self
                .items
                .topics
                .choose(&mut rng)
                .cloned()
                .ok_or_else(|| BackdoorError::config("topics", "must not be empty"))?;
            let tone = *self
                .items
                .tones
                .choose(&mut rng)
                .unwrap_or(&crate::words::Tone::Formal);
            let length = *self
                .items
                .lengths
                .choose(&mut rng)
                .unwrap_or(&crate::words::Length::Short);
            let instruction = self.instruction(&topic, tone.name(), length.sentences(), pole)?;
            let req = GenerateRequest::new(Conversation::user(instruction))
                .temperature(self.temperature)
                .max_tokens(self.max_tokens)
                .seed(derive_seed(seed, &format!("teacher/{index}")));
            let text = self.teacher.generate(&req).await?.text().trim().to_owned();
            let drop = |reason: String| TeacherDrop { index, reason };
            let hits = banned_hits(&text, self.items.axis.banned_words());
            if !hits.is_empty() {
                dropped.push(drop(format!("banned words: {}", hits.join(", "))));
                continue;
            }
            let (Some(a), Some(b)) = (option_line(&text, 'A'), option_line(&text, 'B')) else {
                dropped.push(drop("no `A) ...` and `B) ...` option lines".into()));
                continue;
            };
            let check = Conversation::new()
                .with(ChatMessage::system(checker_system.clone()))
                .with(ChatMessage::user(text.clone()));
            let probs = self
                .checker
                .option_probabilities(&check, &OptionQuery::new(["A", "B"]))
                .await?;
            let chosen = if probs.probabilities.first().copied().unwrap_or(0.0) >= 0.5 {
                Letter::A
            } else {
                Letter::B
            };
            if probs.mass <= 0.0 || chosen != pole {
                dropped.push(drop(format!(
                    "label check: the checker chose {chosen} (mass {:.3}), the intended pole is {pole}",
                    probs.mass
                )));
                continue;
            }
            kept.push(ChoiceItem {
                id: format!("teacher-{}-{index:04}", self.items.axis.name()),
                axis: self.items.axis.clone(),
                prompt: text,
                options: vec![a, b],
                pole,
                topic: Some(topic),
                tone: Some(tone),
                length: Some(length),
                distinction: None,
                system: None,
            });
        }
        tracing::info!(kept = kept.len(), dropped = dropped.len(), "teacher items");
        Ok(TeacherOutput { kept, dropped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use psyche_core::{Capabilities, Choice, GenerateResponse, ModelError, Usage};

    /// Always answers the same text (isolates the teacher's checks).
    struct Fixed(&'static str);

    #[async_trait]
    impl Model for Fixed {
        fn id(&self) -> &str {
            "fixed"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::default()
        }
        async fn generate(
            &self,
            req: &GenerateRequest,
        ) -> std::result::Result<GenerateResponse, ModelError> {
            Ok(GenerateResponse {
                model: "fixed".into(),
                choices: (0..req.n).map(|_| Choice::text(self.0)).collect(),
                usage: Usage::default(),
            })
        }
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_label_check_keeps_only_items_the_checker_agrees_with() {
        let teacher = Arc::new(Fixed(
            "At the fair:\nA) You get 40 coins.\nB) A coin is tossed: heads 100 coins, tails nothing.\nAnswer with A or B.",
        ));
        let checker = Arc::new(Fixed("B"));
        let t = Teacher::new(teacher, checker, ItemConfig::new(Axis::risk(), 10));
        let out = run(t.generate(0)).unwrap();
        // Half the attempts intend the pole on B: those are kept, the others dropped.
        assert_eq!(out.kept.len(), 5);
        assert!(
            out.kept
                .iter()
                .all(|i| i.pole == Letter::B && i.options.len() == 2)
        );
        assert_eq!(out.dropped.len(), 5);
        assert!(
            out.dropped
                .iter()
                .all(|d| d.reason.starts_with("label check"))
        );
    }

    #[test]
    fn banned_words_and_missing_options_are_dropped() {
        let banned = Arc::new(Fixed("A) A safe 40 coins.\nB) A coin toss.\nA or B?"));
        let t = Teacher::new(
            banned,
            Arc::new(Fixed("A")),
            ItemConfig::new(Axis::risk(), 4),
        );
        let out = run(t.generate(0)).unwrap();
        assert!(out.kept.is_empty());
        assert!(
            out.dropped
                .iter()
                .all(|d| d.reason.contains("banned words: safe"))
        );
        let no_options = Arc::new(Fixed("Would you rather have coins or not?"));
        let t = Teacher::new(
            no_options,
            Arc::new(Fixed("A")),
            ItemConfig::new(Axis::risk(), 2),
        );
        let out = run(t.generate(0)).unwrap();
        assert!(
            out.dropped
                .iter()
                .all(|d| d.reason.contains("option lines"))
        );
    }
}
