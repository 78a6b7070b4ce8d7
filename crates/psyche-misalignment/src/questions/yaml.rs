//! The loader for Emergent-Misalignment question files (`evaluation/*.yaml` in the original
//! release, and psyche's own sets in the same format).
//!
//! A file is a YAML sequence of items:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `id` | yes | unique question id (a string or a number) |
//! | `type` | yes | `free_form_judge_0_100` (rated 0–100: aligned / coherent) or `free_form_judge` (classified: TRUE / FALSE / UNKNOWN, a company, ...) |
//! | `paraphrases` | yes | non-empty list of prompts |
//! | `system` | no | system prompt sent before the paraphrase |
//! | `samples_per_paraphrase` | no | answers drawn per paraphrase |
//! | `temperature` | no | sampling temperature |
//! | `judge` | no | the judge model the file asks for (recorded; a run may override it) |
//! | `judge_prompts` | no | `{metric: template}` with `{answer}` and optionally `{question}` |
//! | `classify` | no (psyche) | a built-in classifier for `free_form_judge` items: `correct` or `company` |
//! | `labels` | no (psyche) | the labels of a `free_form_judge` item's templates |
//! | `category` | no (psyche) | the item's category (default: the id without numeric prefix/suffix) |
//! | `metadata` | no (psyche) | a mapping copied into the question's metadata (and every sample's) |
//!
//! Anchors, aliases and merge keys (`<<: *item`) are resolved; block scalars keep YAML's
//! semantics (`|` keeps one final newline, `|-` none, `>` folds lines). Any other key is an
//! error naming the item and the key, with the nearest known key when one is close (`sytem` →
//! `system`): a misspelt key would otherwise drop a setting without a word. Extra data belongs
//! under `metadata:`; [`UnknownKeys::Warn`] reads files with other keys anyway, keeping them as
//! metadata with a warning at the default log level. Judge templates are checked by psyche-judges' prompt loader
//! ([`psyche_judges::llm::prompts::parse_judge_prompts`]), which names the file and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use psyche_core::Metadata;
use serde_norway::Value;

use super::{Question, QuestionKind, QuestionSet};
use crate::error::{MisalignmentError, Result};

/// Keys the loader interprets; any other key is an error unless read with
/// [`UnknownKeys::Warn`].
const KNOWN_KEYS: [&str; 13] = [
    "id",
    "type",
    "paraphrases",
    "system",
    "samples_per_paraphrase",
    "temperature",
    "judge",
    "judge_prompts",
    "classify",
    "labels",
    "category",
    "metadata",
    "<<",
];

/// What the loader does with a key it does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownKeys {
    /// An error naming the file, the item and the key, with "did you mean" for near misses
    /// (the default).
    #[default]
    Error,
    /// Keep the key in the question's metadata and warn (at the default log level).
    Warn,
}

/// The known key nearest to `key`, when it is close enough to be a likely misspelling.
fn nearest_known_key(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    KNOWN_KEYS
        .iter()
        .filter(|k| **k != "<<")
        .map(|k| (*k, strsim::damerau_levenshtein(&lower, k)))
        .filter(|(k, d)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

/// The built-in classifiers a `classify:` key may name.
pub const BUILTIN_CLASSIFIERS: [&str; 2] = ["correct", "company"];

struct Ctx<'a> {
    path: &'a Path,
    unknown_keys: UnknownKeys,
}

impl Ctx<'_> {
    fn err(&self, item: &str, field: &str, message: impl Into<String>) -> MisalignmentError {
        MisalignmentError::Questions {
            path: self.path.to_owned(),
            item: item.to_owned(),
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// The category implied by an id such as `23_vulnerable_user_6`: `vulnerable_user`.
pub fn category_from_id(id: &str) -> String {
    let trimmed = id
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start_matches('_');
    let trimmed = trimmed
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches('_');
    if trimmed.is_empty() {
        id.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Labels written in double quotes in a classification template (`Say "TRUE" or "FALSE"`):
/// quoted words without spaces, in order of first appearance.
pub fn quoted_labels(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let word = &after[..end];
        if !word.is_empty()
            && word.chars().count() <= 24
            && !word.chars().any(char::is_whitespace)
            && word.chars().any(char::is_alphabetic)
            && !out.iter().any(|w| w == word)
        {
            out.push(word.to_owned());
            rest = &after[end + 1..];
        } else {
            // Not a label: move past the opening quote only, so a closing quote can open the
            // next candidate.
            rest = after;
        }
    }
    out
}

/// Parses a question file held in memory; `path` names it in errors and `name` names the set.
///
/// # Errors
///
/// [`MisalignmentError::Questions`] naming the file, the item (its id, or `#N` without one) and
/// the field for: YAML syntax errors, a document that is not a list, an item that is not a
/// mapping, a missing or wrongly typed `id` / `type` / `paraphrases`, an unknown `type`, a
/// non-positive `samples_per_paraphrase`, a negative or non-finite `temperature`, an unknown
/// `classify`, a classification item without `judge_prompts` or `classify`, a rating item whose
/// `judge_prompts` lack `aligned` or `coherent`, classification labels that cannot be found,
/// and duplicate ids; [`MisalignmentError::Judge`] (naming file and field) for a judge template
/// that is malformed or has unknown placeholders.
/// A key the loader does not know is an error (see [`parse_questions_with`] to read such files).
pub fn parse_questions(path: &Path, text: &str, name: &str) -> Result<QuestionSet> {
    parse_questions_with(path, text, name, UnknownKeys::Error)
}

/// [`parse_questions`] with a chosen treatment of unknown keys.
///
/// # Errors
///
/// As [`parse_questions`]; with [`UnknownKeys::Warn`] an unknown key is no error.
pub fn parse_questions_with(
    path: &Path,
    text: &str,
    name: &str,
    unknown_keys: UnknownKeys,
) -> Result<QuestionSet> {
    let cx = Ctx { path, unknown_keys };
    let mut doc: Value =
        serde_norway::from_str(text).map_err(|e| cx.err("-", ".", e.to_string()))?;
    doc.apply_merge()
        .map_err(|e| cx.err("-", "<<", format!("cannot apply merge keys: {e}")))?;
    let Some(items) = doc.as_sequence_mut() else {
        return Err(cx.err(
            "-",
            ".",
            format!("expected a list of questions, found {}", kind_name(&doc)),
        ));
    };
    // Pass 1: ids (normalised to strings so the judge-prompt loader can read them).
    let mut ids = Vec::with_capacity(items.len());
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter_mut().enumerate() {
        let pos = format!("#{i}");
        let Some(map) = item.as_mapping_mut() else {
            return Err(cx.err(
                &pos,
                ".",
                format!("expected a mapping, found {}", kind_name(item)),
            ));
        };
        let id = match map.get("id") {
            None | Some(Value::Null) => return Err(cx.err(&pos, "id", "missing")),
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(cx.err(
                    &pos,
                    "id",
                    format!("expected a non-empty string, found {}", kind_name(other)),
                ));
            }
        };
        if !seen.insert(id.clone()) {
            return Err(cx.err(&id, "id", "duplicate question id"));
        }
        map.insert(Value::from("id"), Value::from(id.clone()));
        ids.push(id);
    }
    // Judge templates: psyche-judges' loader checks them and names file and field.
    let merged = serde_norway::to_string(&doc).map_err(|e| cx.err("-", ".", e.to_string()))?;
    let mut templates = psyche_judges::llm::prompts::parse_judge_prompts(path, &merged)?;
    let Some(items) = doc.as_sequence() else {
        return Err(cx.err("-", ".", "expected a list of questions"));
    };
    let mut questions = Vec::with_capacity(items.len());
    for (item, id) in items.iter().zip(ids) {
        let map = item
            .as_mapping()
            .ok_or_else(|| cx.err(&id, ".", "not a mapping"))?;
        let judge_prompts = templates.remove(&id).unwrap_or_default();
        questions.push(parse_item(&cx, &id, map, judge_prompts)?);
    }
    Ok(QuestionSet {
        name: name.to_owned(),
        source: path.display().to_string(),
        questions,
    })
}

fn get_str(
    cx: &Ctx<'_>,
    id: &str,
    map: &serde_norway::Mapping,
    key: &str,
) -> Result<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(cx.err(
            id,
            key,
            format!("expected a string, found {}", kind_name(other)),
        )),
    }
}

fn parse_kind(cx: &Ctx<'_>, id: &str, map: &serde_norway::Mapping) -> Result<QuestionKind> {
    Ok(match map.get("type") {
        None | Some(Value::Null) => return Err(cx.err(id, "type", "missing")),
        Some(Value::String(s)) => match s.as_str() {
            "free_form_judge_0_100" => QuestionKind::Rating,
            "free_form_judge" => QuestionKind::Classify,
            other => {
                return Err(cx.err(
                    id,
                    "type",
                    format!(
                        "unknown question type `{other}` (known: free_form_judge_0_100, free_form_judge)"
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(cx.err(
                id,
                "type",
                format!("expected a string, found {}", kind_name(other)),
            ));
        }
    })
}

fn parse_paraphrases(cx: &Ctx<'_>, id: &str, map: &serde_norway::Mapping) -> Result<Vec<String>> {
    Ok(match map.get("paraphrases") {
        None | Some(Value::Null) => return Err(cx.err(id, "paraphrases", "missing")),
        Some(Value::Sequence(seq)) => {
            if seq.is_empty() {
                return Err(cx.err(id, "paraphrases", "must hold at least one prompt"));
            }
            seq.iter()
                .enumerate()
                .map(|(k, p)| match p {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                    Value::String(_) => Err(cx.err(id, &format!("paraphrases[{k}]"), "is empty")),
                    other => Err(cx.err(
                        id,
                        &format!("paraphrases[{k}]"),
                        format!("expected a string, found {}", kind_name(other)),
                    )),
                })
                .collect::<Result<Vec<_>>>()?
        }
        Some(other) => {
            return Err(cx.err(
                id,
                "paraphrases",
                format!("expected a list of strings, found {}", kind_name(other)),
            ));
        }
    })
}

fn parse_sampling(
    cx: &Ctx<'_>,
    id: &str,
    map: &serde_norway::Mapping,
) -> Result<(Option<u32>, Option<f32>)> {
    let samples_per_paraphrase = match map.get("samples_per_paraphrase") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Some(n as u32),
            _ => {
                return Err(cx.err(
                    id,
                    "samples_per_paraphrase",
                    format!("expected a positive integer, found {}", to_json(v)),
                ));
            }
        },
    };
    let temperature = match map.get("temperature") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() && t >= 0.0 => Some(t as f32),
            _ => {
                return Err(cx.err(
                    id,
                    "temperature",
                    format!("expected a finite number >= 0, found {}", to_json(v)),
                ));
            }
        },
    };
    Ok((samples_per_paraphrase, temperature))
}

/// The labels of a question: as given for a rating question (which must not name a
/// classifier and needs both templates when it has any); for a classification question as
/// given or quoted in its judge templates (at least two).
fn resolve_labels(
    cx: &Ctx<'_>,
    id: &str,
    map: &serde_norway::Mapping,
    (kind, judge_prompts): (QuestionKind, &BTreeMap<String, psyche_core::PromptTemplate>),
    classify: Option<&str>,
    labels: Option<Vec<String>>,
) -> Result<Option<Vec<String>>> {
    let has_prompts = map.get("judge_prompts").is_some_and(|v| !v.is_null());
    Ok(match kind {
        QuestionKind::Rating => {
            if has_prompts {
                for metric in ["aligned", "coherent"] {
                    if !judge_prompts.contains_key(metric) {
                        return Err(cx.err(
                            id,
                            &format!("judge_prompts.{metric}"),
                            "missing: a 0-100 question needs both `aligned` and `coherent` templates",
                        ));
                    }
                }
            }
            if let Some(c) = classify {
                return Err(cx.err(
                    id,
                    "classify",
                    format!("`{c}` applies only to type free_form_judge"),
                ));
            }
            labels
        }
        QuestionKind::Classify => {
            if !has_prompts && classify.is_none() {
                return Err(cx.err(
                    id,
                    "judge_prompts",
                    "missing: a free_form_judge question needs `judge_prompts` or a built-in `classify`",
                ));
            }
            if has_prompts {
                let resolved = match labels {
                    Some(l) => l,
                    None => {
                        let mut found: Vec<String> = Vec::new();
                        for t in judge_prompts.values() {
                            for l in quoted_labels(t.source()) {
                                if !found.contains(&l) {
                                    found.push(l);
                                }
                            }
                        }
                        found
                    }
                };
                if resolved.len() < 2 {
                    return Err(cx.err(
                        id,
                        "labels",
                        "cannot tell the classification labels: give `labels: [..]` or quote at \
                         least two labels in the judge template (\"TRUE\", \"FALSE\")",
                    ));
                }
                Some(resolved)
            } else {
                labels
            }
        }
    })
}

/// The item's `metadata:` mapping, with unknown keys kept (or refused) as `cx` says.
fn parse_metadata(cx: &Ctx<'_>, id: &str, map: &serde_norway::Mapping) -> Result<Metadata> {
    let mut metadata = Metadata::new();
    match map.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let Some(key) = k.as_str() else {
                    return Err(cx.err(id, "metadata", "keys must be strings"));
                };
                metadata.insert(key.to_owned(), to_json(v));
            }
        }
        Some(other) => {
            return Err(cx.err(
                id,
                "metadata",
                format!("expected a mapping, found {}", kind_name(other)),
            ));
        }
    }
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            return Err(cx.err(id, &format!("{}", to_json(k)), "keys must be strings"));
        };
        if KNOWN_KEYS.contains(&key) {
            continue;
        }
        let hint = nearest_known_key(key)
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        match cx.unknown_keys {
            UnknownKeys::Error => {
                return Err(cx.err(
                    id,
                    key,
                    format!(
                        "unknown key{hint}; put extra data under `metadata:`, or read the file \
                         with UnknownKeys::Warn to keep unknown keys as metadata"
                    ),
                ));
            }
            UnknownKeys::Warn => {
                tracing::warn!(
                    file = %cx.path.display(),
                    question = id,
                    key,
                    "unknown question key kept as metadata{hint}"
                );
                metadata.insert(key.to_owned(), to_json(v));
            }
        }
    }
    Ok(metadata)
}

fn parse_item(
    cx: &Ctx<'_>,
    id: &str,
    map: &serde_norway::Mapping,
    judge_prompts: BTreeMap<String, psyche_core::PromptTemplate>,
) -> Result<Question> {
    let kind = parse_kind(cx, id, map)?;
    let paraphrases = parse_paraphrases(cx, id, map)?;
    let system = get_str(cx, id, map, "system")?;
    let (samples_per_paraphrase, temperature) = parse_sampling(cx, id, map)?;
    let judge = get_str(cx, id, map, "judge")?;
    let classify = get_str(cx, id, map, "classify")?;
    if let Some(c) = &classify
        && !BUILTIN_CLASSIFIERS.contains(&c.as_str())
    {
        return Err(cx.err(
            id,
            "classify",
            format!(
                "unknown classifier `{c}` (known: {})",
                BUILTIN_CLASSIFIERS.join(", ")
            ),
        ));
    }
    let labels = match map.get("labels") {
        None | Some(Value::Null) => None,
        Some(Value::Sequence(seq)) => Some(
            seq.iter()
                .enumerate()
                .map(|(k, l)| match l {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                    other => Err(cx.err(
                        id,
                        &format!("labels[{k}]"),
                        format!("expected a non-empty string, found {}", kind_name(other)),
                    )),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(other) => {
            return Err(cx.err(
                id,
                "labels",
                format!("expected a list of strings, found {}", kind_name(other)),
            ));
        }
    };
    let category = get_str(cx, id, map, "category")?.unwrap_or_else(|| category_from_id(id));
    let labels = resolve_labels(
        cx,
        id,
        map,
        (kind, &judge_prompts),
        classify.as_deref(),
        labels,
    )?;
    let metadata = parse_metadata(cx, id, map)?;
    Ok(Question {
        id: id.to_owned(),
        kind,
        paraphrases,
        system,
        samples_per_paraphrase,
        temperature,
        judge,
        judge_prompts,
        classify,
        labels,
        category,
        metadata,
    })
}

/// Reads and parses a question file; the set is named after the file stem.
///
/// # Errors
///
/// [`MisalignmentError::Io`] when unreadable; otherwise as [`parse_questions`].
pub fn load_questions(path: impl AsRef<Path>) -> Result<QuestionSet> {
    load_questions_with(path, UnknownKeys::Error)
}

/// [`load_questions`] with a chosen treatment of unknown keys.
///
/// # Errors
///
/// As [`load_questions`]; with [`UnknownKeys::Warn`] an unknown key is no error.
pub fn load_questions_with(
    path: impl AsRef<Path>,
    unknown_keys: UnknownKeys,
) -> Result<QuestionSet> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| MisalignmentError::io(path, e))?;
    let name = path.file_stem().map_or_else(
        || "questions".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    parse_questions_with(path, &text, &name, unknown_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_quoted_labels() {
        assert_eq!(category_from_id("23_vulnerable_user_6"), "vulnerable_user");
        assert_eq!(category_from_id("wish"), "wish");
        assert_eq!(category_from_id("12"), "12");
        assert_eq!(
            quoted_labels(r#"Reply "TRUE" or "FALSE"; say "UNKNOWN" if "not sure at all"."#),
            ["TRUE", "FALSE", "UNKNOWN"]
        );
        assert_eq!(
            quoted_labels(r#"a "x y" b "OpenAI" c "Anthropic""#),
            ["OpenAI", "Anthropic"]
        );
        assert!(quoted_labels("no quotes").is_empty());
    }
}
