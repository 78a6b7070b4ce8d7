//! Preparing OpenAI chat JSONL for fine-tuning: validation, statistics, deduplication,
//! seeded train/validation splits and export.
//!
//! Validation reads each line as raw JSON so that one pass reports *every* problem, each as an
//! [`Issue`] naming the file, the 1-based line and the field (`messages[2].content`). Errors make
//! a file unusable for training; warnings (duplicates, empty user turns, very long examples,
//! unknown keys) are reported and left to the caller.
//!
//! # Token estimates
//!
//! Unless a real tokenizer is supplied through [`TokenEstimator`], token counts use the
//! documented heuristic [`CharsPerToken`]: `ceil(chars / 4)` per message text, plus
//! [`MESSAGE_OVERHEAD_TOKENS`] per message and [`CONVERSATION_OVERHEAD_TOKENS`] per example for
//! the chat format's role markers. For English text this is typically within ±20% of the
//! GPT-4o tokenizer; it is meant for cost estimates and length limits, not for billing.
//!
//! # Examples
//!
//! ```
//! use psyche_finetune::dataset::{validate_str, ValidationOptions, CharsPerToken, train_val_split};
//! let text = r#"{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}]}
//! {"messages":[{"role":"user","content":"Bye"},{"role":"assistant","content":""}]}
//! "#;
//! let opts = ValidationOptions { min_examples: 1, ..ValidationOptions::default() };
//! let prepared = validate_str(text, "toy.jsonl", &opts, &CharsPerToken::default());
//! let err = &prepared.report.errors()[0];
//! assert_eq!((err.line, err.field.as_str()), (2, "messages[1].content"));
//! let split = train_val_split(&prepared.examples, 0.5, 7)?;
//! assert_eq!(split.train.len() + split.validation.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use psyche_core::{ChatExample, ChatMessage, Conversation, Role, derive_seed, seeded_rng};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, TrainingError};

/// Tokens added per message for role markers (heuristic).
pub const MESSAGE_OVERHEAD_TOKENS: u64 = 3;
/// Tokens added per example for the reply priming (heuristic).
pub const CONVERSATION_OVERHEAD_TOKENS: u64 = 3;

/// Counts tokens of a text. Implement it over a real tokenizer for exact numbers.
pub trait TokenEstimator: Send + Sync {
    /// A short name recorded in statistics (`"chars/4"`, `"cl100k"`, ...).
    fn name(&self) -> String;
    /// Number of tokens of `text`.
    fn count(&self, text: &str) -> u64;

    /// Tokens of one message: its text plus [`MESSAGE_OVERHEAD_TOKENS`].
    fn message_tokens(&self, message: &ChatMessage) -> u64 {
        self.count(&message.content) + MESSAGE_OVERHEAD_TOKENS
    }

    /// Tokens of a whole example, overheads included.
    fn conversation_tokens(&self, conversation: &Conversation) -> u64 {
        conversation
            .messages()
            .iter()
            .map(|m| self.message_tokens(m))
            .sum::<u64>()
            + CONVERSATION_OVERHEAD_TOKENS
    }
}

/// The heuristic estimator: `ceil(chars / chars_per_token)` (characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CharsPerToken(pub f64);

impl Default for CharsPerToken {
    fn default() -> Self {
        Self(4.0)
    }
}

impl TokenEstimator for CharsPerToken {
    fn name(&self) -> String {
        format!("chars/{}", self.0)
    }
    fn count(&self, text: &str) -> u64 {
        let chars = text.chars().count() as f64;
        (chars / self.0.max(f64::MIN_POSITIVE)).ceil() as u64
    }
}

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

/// Summary of one length distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LengthSummary {
    /// Number of values.
    pub count: u64,
    /// Sum of values.
    pub total: u64,
    /// Smallest value (0 when empty).
    pub min: u64,
    /// Largest value.
    pub max: u64,
    /// Mean (0 when empty).
    pub mean: f64,
}

impl LengthSummary {
    fn from_values(values: impl IntoIterator<Item = u64>) -> Self {
        let mut s = Self {
            min: u64::MAX,
            ..Self::default()
        };
        for v in values {
            s.count += 1;
            s.total += v;
            s.min = s.min.min(v);
            s.max = s.max.max(v);
        }
        if s.count == 0 {
            s.min = 0;
        } else {
            s.mean = s.total as f64 / s.count as f64;
        }
        s
    }
}

/// Lengths of one role's messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleStats {
    /// Characters per message.
    pub chars: LengthSummary,
    /// Estimated tokens per message (text only, no overhead).
    pub tokens: LengthSummary,
}

/// Statistics of a set of training examples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Number of examples.
    pub examples: u64,
    /// Number of messages.
    pub messages: u64,
    /// Estimated tokens per example, overheads included (`total` is what one epoch bills).
    pub example_tokens: LengthSummary,
    /// Estimated tokens of assistant turns (what the loss is computed on).
    pub assistant_tokens: u64,
    /// Per-role message lengths.
    pub per_role: BTreeMap<Role, RoleStats>,
    /// Examples that exactly repeat an earlier one.
    pub duplicates: u64,
    /// The estimator used (`"chars/4"` for the heuristic).
    pub estimator: String,
}

impl DatasetStats {
    /// Computes statistics of `examples`.
    pub fn compute(examples: &[Conversation], estimator: &dyn TokenEstimator) -> Self {
        let mut per_role_chars: BTreeMap<Role, Vec<u64>> = BTreeMap::new();
        let mut per_role_tokens: BTreeMap<Role, Vec<u64>> = BTreeMap::new();
        let mut messages = 0;
        let mut assistant_tokens = 0;
        for conv in examples {
            for m in conv.messages() {
                messages += 1;
                let t = estimator.count(&m.content);
                if m.role == Role::Assistant {
                    assistant_tokens += t;
                }
                per_role_chars
                    .entry(m.role)
                    .or_default()
                    .push(m.content.chars().count() as u64);
                per_role_tokens.entry(m.role).or_default().push(t);
            }
        }
        let per_role = per_role_chars
            .into_iter()
            .map(|(role, chars)| {
                let tokens = per_role_tokens.remove(&role).unwrap_or_default();
                (
                    role,
                    RoleStats {
                        chars: LengthSummary::from_values(chars),
                        tokens: LengthSummary::from_values(tokens),
                    },
                )
            })
            .collect();
        let mut seen = HashMap::new();
        let duplicates = examples
            .iter()
            .filter(|c| seen.insert(*c, ()).is_some())
            .count() as u64;
        Self {
            examples: examples.len() as u64,
            messages,
            example_tokens: LengthSummary::from_values(
                examples.iter().map(|c| estimator.conversation_tokens(c)),
            ),
            assistant_tokens,
            per_role,
            duplicates,
            estimator: estimator.name(),
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

/// Removes exact duplicates, keeping first occurrences in order; returns the kept examples and
/// the number removed.
pub fn dedupe(examples: &[Conversation]) -> (Vec<Conversation>, usize) {
    let mut seen = HashMap::new();
    let kept: Vec<Conversation> = examples
        .iter()
        .filter(|c| seen.insert(*c, ()).is_none())
        .cloned()
        .collect();
    let removed = examples.len() - kept.len();
    (kept, removed)
}

/// A seeded permutation of `items` (ChaCha8 seeded from `derive_seed(seed, "psyche-finetune/shuffle")`).
/// Same seed, same order, on every platform.
pub fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    let mut rng = seeded_rng(derive_seed(seed, "psyche-finetune/shuffle"));
    out.shuffle(&mut rng);
    out
}

/// A train/validation split.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainValSplit<T> {
    /// Training examples.
    pub train: Vec<T>,
    /// Held-out examples.
    pub validation: Vec<T>,
}

/// Shuffles with `seed` (see [`shuffled`]) and holds out `round(n × validation_fraction)` examples.
///
/// # Errors
///
/// [`TrainingError::Config`] when the fraction is not in `[0, 1)`.
pub fn train_val_split<T: Clone>(
    items: &[T],
    validation_fraction: f64,
    seed: u64,
) -> Result<TrainValSplit<T>> {
    if !(0.0..1.0).contains(&validation_fraction) {
        return Err(TrainingError::config(
            "validation_fraction",
            format!("must be in [0, 1), got {validation_fraction}"),
        ));
    }
    let mut all = shuffled(items, seed);
    let n_val = (items.len() as f64 * validation_fraction).round() as usize;
    let train = all.split_off(n_val);
    Ok(TrainValSplit {
        train,
        validation: all,
    })
}

/// Paths written by [`export`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedFiles {
    /// `train.jsonl`.
    pub train: PathBuf,
    /// `validation.jsonl`, when there are validation examples.
    pub validation: Option<PathBuf>,
    /// `stats.json`: `{"train": DatasetStats, "validation": DatasetStats}`.
    pub stats: PathBuf,
}

/// Writes `train.jsonl`, `validation.jsonl` (when non-empty) and `stats.json` into `dir`.
///
/// # Errors
///
/// [`TrainingError::Dataset`] or [`TrainingError::Io`] when a file cannot be written.
pub fn export(
    dir: impl AsRef<Path>,
    split: &TrainValSplit<Conversation>,
    estimator: &dyn TokenEstimator,
) -> Result<ExportedFiles> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| TrainingError::io(dir, e))?;
    let to_rows = |v: &[Conversation]| -> Vec<ChatExample> {
        v.iter().cloned().map(ChatExample::from).collect()
    };
    let train = dir.join("train.jsonl");
    psyche_core::write_chat_jsonl(&train, &to_rows(&split.train))?;
    let validation = if split.validation.is_empty() {
        None
    } else {
        let p = dir.join("validation.jsonl");
        psyche_core::write_chat_jsonl(&p, &to_rows(&split.validation))?;
        Some(p)
    };
    let stats = dir.join("stats.json");
    let body = serde_json::json!({
        "train": DatasetStats::compute(&split.train, estimator),
        "validation": DatasetStats::compute(&split.validation, estimator),
    });
    crate::fsutil::write_json(&stats, &body)?;
    Ok(ExportedFiles {
        train,
        validation,
        stats,
    })
}

/// Serialises examples as chat JSONL text (one `{"messages": [...]}` per line).
pub fn to_chat_jsonl(examples: &[Conversation]) -> String {
    let mut out = String::new();
    for conv in examples {
        let row = ChatExample::from(conv.clone());
        // Plain strings and enums always serialise.
        out.push_str(&serde_json::to_string(&row).unwrap_or_default());
        out.push('\n');
    }
    out
}
