//! Loading the released Looking Inward rows (the `dataset_release` JSONL format) into
//! psyche samples.
//!
//! A row has `original_question`, `original_dataset`, `object_level_prompt` and
//! `hypothetical_prompt` (lists of chat messages), `behavioral_property` and
//! `option_matching_ethical_stance` (the stance target letter, or null). Each row becomes an
//! object-level sample and a hypothetical sample in psyche's shapes (the same metadata as the
//! built-in families), so the rest of the pipeline (collection, scoring, fine-tuning sets)
//! runs on released data unchanged. The released property names (`ethical_stance`,
//! `among_a_or_c`, `matches_survival_instinct`, ...) are accepted by
//! [`Property::from_name`]. There is no fixed ground truth in the release: accuracy is always
//! against the object model's own answers.
//!
//! psyche does not ship the released data; users pass their own copy. Errors name the file
//! and line.

use std::collections::BTreeMap;
use std::path::Path;

use psyche_core::{ChatMessage, Conversation, Sample, Split};
use psyche_judges::Property;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{IntrospectionError, Result};
use crate::hypothetical::{OBJECT_ID_KEY, OBJECT_PROMPT_KEY};

#[derive(Debug, Deserialize)]
struct ReleasedRow {
    original_question: String,
    original_dataset: String,
    object_level_prompt: Vec<ChatMessage>,
    hypothetical_prompt: Vec<ChatMessage>,
    behavioral_property: String,
    #[serde(default)]
    option_matching_ethical_stance: Option<String>,
}

/// The samples loaded from released rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReleasedData {
    /// Object-level samples, one per distinct (dataset, question), in file order.
    pub objects: Vec<Sample>,
    /// Hypothetical samples, one per row, in file order.
    pub hypotheticals: Vec<Sample>,
}

/// Parses released rows from `text`; `source` names the file in errors and `split` is given
/// to every sample (the release has `train/` and `test/` folders).
///
/// # Errors
///
/// [`IntrospectionError::Data`] naming the file and line of a malformed row, an unknown
/// property, or a prompt without a user message.
pub fn parse_released(text: &str, source: &Path, split: Split) -> Result<ReleasedData> {
    let mut out = ReleasedData::default();
    let mut object_index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row: ReleasedRow = psyche_core::parse_json_line(line)
            .map_err(|m| IntrospectionError::data(source, line_no, m))?;
        let property = Property::from_name(&row.behavioral_property).map_err(|e| {
            IntrospectionError::data(source, line_no, format!("field `behavioral_property`: {e}"))
        })?;
        let object = Conversation(row.object_level_prompt);
        let hypothetical = Conversation(row.hypothetical_prompt);
        let object_prompt = object
            .last_user_text()
            .ok_or_else(|| {
                IntrospectionError::data(
                    source,
                    line_no,
                    "field `object_level_prompt`: no user message",
                )
            })?
            .to_owned();
        if hypothetical.last_user_text().is_none() {
            return Err(IntrospectionError::data(
                source,
                line_no,
                "field `hypothetical_prompt`: no user message",
            ));
        }
        let hash = hex::encode(Sha256::digest(
            format!("{}\n{}", row.original_dataset, row.original_question).as_bytes(),
        ));
        let object_id = format!("{}/{}", row.original_dataset, &hash[..12]);
        let stance = row.option_matching_ethical_stance.clone();
        let slot = *object_index.entry(object_id.clone()).or_insert_with(|| {
            let mut s = Sample::new(object_id.clone(), object.clone())
                .with_meta("task", row.original_dataset.clone())
                .with_meta("string", row.original_question.clone())
                .with_meta("properties", Vec::<String>::new())
                .with_cluster(object_id.clone())
                .with_split(split.clone());
            if let Some(t) = &stance {
                s = s
                    .with_target(t.clone())
                    .with_meta("stance_target", t.clone());
            }
            out.objects.push(s);
            out.objects.len() - 1
        });
        if let Some(serde_json::Value::Array(props)) =
            out.objects[slot].metadata.get_mut("properties")
        {
            let name = serde_json::Value::String(property.name());
            if !props.contains(&name) {
                props.push(name);
            }
        }
        let mut h = Sample::new(format!("{object_id}#{}", property.name()), hypothetical)
            .with_meta("property", property.name())
            .with_meta("task", row.original_dataset.clone())
            .with_meta(OBJECT_ID_KEY, object_id.clone())
            .with_meta(OBJECT_PROMPT_KEY, object_prompt)
            .with_meta("template", "released")
            .with_cluster(object_id)
            .with_split(split.clone());
        if let Some(t) = stance {
            h = h.with_meta("stance_target", t);
        }
        out.hypotheticals.push(h);
    }
    Ok(out)
}

/// Reads a released JSONL file (see [`parse_released`]).
///
/// # Errors
///
/// [`IntrospectionError::Io`] when the file cannot be read; as [`parse_released`].
pub fn load_released(path: impl AsRef<Path>, split: Split) -> Result<ReleasedData> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| IntrospectionError::io(path, e))?;
    parse_released(&text, path, split)
}
