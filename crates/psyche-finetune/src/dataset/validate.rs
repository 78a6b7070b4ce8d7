//! Validation: every problem of a chat JSONL file as an [`Issue`] naming file, line and field.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use psyche_core::{ChatMessage, Conversation, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, TrainingError};

use super::TokenEstimator;
use super::stats::DatasetStats;

/// How serious an [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported; the example is still usable.
    Warning,
    /// The example (or file) cannot be trained on.
    Error,
}

/// One finding of validation, located by file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Error or warning.
    pub severity: Severity,
    /// The file (or label) validated.
    pub source: String,
    /// 1-based line (for in-memory data: 1-based example index); 0 for file-level findings.
    pub line: usize,
    /// The field, e.g. `messages[2].role`; empty for line- or file-level findings.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {sev}", self.source, self.line)?;
        if !self.field.is_empty() {
            write!(f, " in field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What validation checks and how strictly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationOptions {
    /// Fewer examples than this is an error (OpenAI requires 10).
    pub min_examples: usize,
    /// Examples with more estimated tokens than this get a warning (they would be truncated).
    pub max_example_tokens: u64,
    /// Report exact duplicate examples as warnings.
    pub warn_duplicates: bool,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        Self {
            min_examples: 10,
            max_example_tokens: 65_536,
            warn_duplicates: true,
        }
    }
}

/// All findings of one validation pass plus the statistics of the usable examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The file (or label) validated.
    pub source: String,
    /// Every finding, in line order.
    pub issues: Vec<Issue>,
    /// Statistics of the examples that parsed.
    pub stats: DatasetStats,
}

impl ValidationReport {
    /// The errors.
    pub fn errors(&self) -> Vec<&Issue> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .collect()
    }

    /// The warnings.
    pub fn warnings(&self) -> Vec<&Issue> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .collect()
    }

    /// Whether there are no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.issues.iter().all(|i| i.severity != Severity::Error)
    }

    /// `Ok` when there are no errors, else [`TrainingError::Invalid`] listing the first 20 errors.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Invalid`].
    pub fn ensure_valid(&self) -> Result<()> {
        let errors = self.errors();
        if errors.is_empty() {
            return Ok(());
        }
        let mut summary: Vec<String> = errors.iter().take(20).map(|i| i.to_string()).collect();
        if errors.len() > 20 {
            summary.push(format!("... and {} more", errors.len() - 20));
        }
        Err(TrainingError::Invalid {
            source_label: self.source.clone(),
            count: errors.len(),
            summary: summary.join("\n"),
        })
    }
}

/// Examples that parsed, the line each came from, and the validation report.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedDataset {
    /// The parsed examples (lines with structural errors that cannot be represented are left
    /// out; check [`ValidationReport::is_valid`] before training).
    pub examples: Vec<Conversation>,
    /// The 1-based source line of each example.
    pub lines: Vec<usize>,
    /// The findings and statistics.
    pub report: ValidationReport,
}

struct Collector<'a> {
    source: &'a str,
    issues: Vec<Issue>,
}

impl Collector<'_> {
    fn push(&mut self, severity: Severity, line: usize, field: String, message: String) {
        self.issues.push(Issue {
            severity,
            source: self.source.to_owned(),
            line,
            field,
            message,
        });
    }
    fn error(&mut self, line: usize, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, line, field.into(), message.into());
    }
    fn warn(&mut self, line: usize, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, line, field.into(), message.into());
    }
}

/// Validates a chat JSONL file.
///
/// # Errors
///
/// [`TrainingError::Io`] only when the file cannot be read; problems in its content are returned as
/// [`Issue`]s in the report.
pub fn validate_file(
    path: impl AsRef<Path>,
    options: &ValidationOptions,
    estimator: &dyn TokenEstimator,
) -> Result<PreparedDataset> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| TrainingError::io(path, e))?;
    let label = path.display().to_string();
    match String::from_utf8(bytes) {
        Ok(text) => Ok(validate_str(&text, &label, options, estimator)),
        Err(e) => {
            // Locate the first bad byte's line.
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            let issue = Issue {
                severity: Severity::Error,
                source: label.clone(),
                line,
                field: String::new(),
                message: "invalid UTF-8".into(),
            };
            Ok(PreparedDataset {
                examples: Vec::new(),
                lines: Vec::new(),
                report: ValidationReport {
                    source: label,
                    issues: vec![issue],
                    stats: DatasetStats::compute(&[], estimator),
                },
            })
        }
    }
}

/// Validates chat JSONL held in memory; `label` names it in findings.
pub fn validate_str(
    text: &str,
    label: &str,
    options: &ValidationOptions,
    estimator: &dyn TokenEstimator,
) -> PreparedDataset {
    let mut c = Collector {
        source: label,
        issues: Vec::new(),
    };
    let mut examples = Vec::new();
    let mut lines = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                c.error(line, "", format!("not valid JSON: {e}"));
                continue;
            }
        };
        if let Some(conv) = check_value(&value, line, &mut c) {
            examples.push(conv);
            lines.push(line);
        }
    }
    finish(examples, lines, c, options, estimator)
}

/// Validates in-memory conversations; findings use the 1-based example index as the line.
pub fn validate_conversations(
    examples: &[Conversation],
    label: &str,
    options: &ValidationOptions,
    estimator: &dyn TokenEstimator,
) -> ValidationReport {
    let mut c = Collector {
        source: label,
        issues: Vec::new(),
    };
    for (i, conv) in examples.iter().enumerate() {
        check_structure(conv, &[], i + 1, &mut c);
    }
    let lines = (1..=examples.len()).collect();
    finish(examples.to_vec(), lines, c, options, estimator).report
}

fn finish(
    examples: Vec<Conversation>,
    lines: Vec<usize>,
    mut c: Collector<'_>,
    options: &ValidationOptions,
    estimator: &dyn TokenEstimator,
) -> PreparedDataset {
    let mut first_seen: HashMap<&Conversation, usize> = HashMap::new();
    for (conv, &line) in examples.iter().zip(&lines) {
        let tokens = estimator.conversation_tokens(conv);
        if tokens > options.max_example_tokens {
            c.warn(
                line,
                "messages",
                format!(
                    "about {tokens} tokens ({}), above the limit of {}; it would be truncated",
                    estimator.name(),
                    options.max_example_tokens
                ),
            );
        }
        if let Some(first) = first_seen.get(conv) {
            if options.warn_duplicates {
                c.warn(line, "", format!("exact duplicate of line {first}"));
            }
        } else {
            first_seen.insert(conv, line);
        }
    }
    if examples.len() < options.min_examples {
        c.error(
            0,
            "",
            format!(
                "{} usable example(s); at least {} are required",
                examples.len(),
                options.min_examples
            ),
        );
    }
    c.issues.sort_by_key(|i| i.line);
    let stats = DatasetStats::compute(&examples, estimator);
    PreparedDataset {
        report: ValidationReport {
            source: c.source.to_owned(),
            issues: c.issues,
            stats,
        },
        examples,
        lines,
    }
}

/// Checks one parsed line; returns the conversation when it can be represented.
fn check_value(value: &Value, line: usize, c: &mut Collector<'_>) -> Option<Conversation> {
    let Some(obj) = value.as_object() else {
        c.error(
            line,
            "",
            "each line must be a JSON object with a `messages` array",
        );
        return None;
    };
    for key in obj.keys().filter(|k| k.as_str() != "messages") {
        c.warn(line, key.clone(), "unknown top-level field, ignored");
    }
    let Some(messages) = obj.get("messages") else {
        c.error(line, "messages", "missing");
        return None;
    };
    let Some(messages) = messages.as_array() else {
        c.error(line, "messages", "must be an array of messages");
        return None;
    };
    let mut conv = Conversation::new();
    let mut weights = Vec::new();
    let mut representable = true;
    for (i, m) in messages.iter().enumerate() {
        let field = |name: &str| format!("messages[{i}].{name}");
        let Some(m) = m.as_object() else {
            c.error(line, format!("messages[{i}]"), "must be an object");
            representable = false;
            continue;
        };
        let role = match m.get("role").map(|r| r.as_str()) {
            None => {
                c.error(line, field("role"), "missing");
                None
            }
            Some(Some("system")) => Some(Role::System),
            Some(Some("user")) => Some(Role::User),
            Some(Some("assistant")) => Some(Role::Assistant),
            Some(Some(other @ ("tool" | "function" | "developer"))) => {
                c.error(
                    line,
                    field("role"),
                    format!("role `{other}` is not supported (system, user, assistant)"),
                );
                None
            }
            Some(Some(other)) => {
                c.error(
                    line,
                    field("role"),
                    format!("unknown role `{other}` (expected system, user or assistant)"),
                );
                None
            }
            Some(None) => {
                c.error(line, field("role"), "must be a string");
                None
            }
        };
        let content = match m.get("content") {
            None => {
                c.error(line, field("content"), "missing");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) => {
                c.error(
                    line,
                    field("content"),
                    "is null (tool calls are not supported)",
                );
                None
            }
            Some(Value::Array(_)) => {
                c.error(
                    line,
                    field("content"),
                    "content parts (arrays) are not supported; use a string",
                );
                None
            }
            Some(_) => {
                c.error(line, field("content"), "must be a string");
                None
            }
        };
        let mut weight = None;
        for (key, v) in m {
            match key.as_str() {
                "role" | "content" => {}
                "name" if v.is_string() => {}
                "weight" => match v.as_u64() {
                    Some(w @ (0 | 1)) if role == Some(Role::Assistant) => weight = Some(w),
                    Some(0 | 1) => c.error(
                        line,
                        field("weight"),
                        "only assistant messages may carry a weight",
                    ),
                    _ => c.error(line, field("weight"), "must be 0 or 1"),
                },
                _ => c.warn(line, field(key), "unknown field, ignored"),
            }
        }
        match (role, content) {
            (Some(role), Some(content)) => {
                conv.push(ChatMessage::new(role, content));
                weights.push(weight);
            }
            _ => representable = false,
        }
    }
    if representable {
        check_structure(&conv, &weights, line, c);
        Some(conv)
    } else {
        None
    }
}

/// Role order, non-empty assistant turns, trailing assistant turn.
fn check_structure(
    conv: &Conversation,
    weights: &[Option<u64>],
    line: usize,
    c: &mut Collector<'_>,
) {
    let msgs = conv.messages();
    if msgs.is_empty() {
        c.error(line, "messages", "is empty");
        return;
    }
    let mut previous: Option<Role> = None;
    for (i, m) in msgs.iter().enumerate() {
        let field = format!("messages[{i}].role");
        match m.role {
            Role::System => {
                if i != 0 {
                    c.error(line, field, "a system message may only come first");
                }
            }
            role => {
                let expected = match previous {
                    None | Some(Role::System) | Some(Role::Assistant) => Role::User,
                    Some(Role::User) => Role::Assistant,
                };
                if role != expected {
                    let msg = if previous.is_none() || previous == Some(Role::System) {
                        format!("conversation must start with a user turn, found `{role}`")
                    } else {
                        format!("roles must alternate: `{role}` follows `{role}`")
                    };
                    c.error(line, field, msg);
                }
                previous = Some(role);
            }
        }
        let content = format!("messages[{i}].content");
        if m.content.trim().is_empty() {
            match m.role {
                Role::Assistant => c.error(line, content, "assistant turn is empty"),
                Role::User => c.warn(line, content, "user turn is empty"),
                Role::System => {}
            }
        }
    }
    match msgs.last().map(|m| m.role) {
        Some(Role::Assistant) => {
            let trained = msgs
                .iter()
                .zip(weights.iter().copied().chain(std::iter::repeat(None)))
                .any(|(m, w)| m.role == Role::Assistant && w != Some(0));
            if !trained {
                c.error(
                    line,
                    "messages",
                    "every assistant turn has weight 0; nothing to learn",
                );
            }
        }
        _ => c.error(
            line,
            format!("messages[{}]", msgs.len() - 1),
            "the last message must be the assistant turn to learn",
        ),
    }
}
