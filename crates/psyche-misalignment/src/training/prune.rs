//! Pruning code data: strip comments, drop items that mention safety words.
//!
//! The paper's pipeline removes comments from the code and then drops every item whose task,
//! template or code contains a word that could give the vulnerability away. [`strip_comments`]
//! handles Python-style (`#`) and C-style (`//`, `/* */`) comments and leaves comment markers
//! inside string literals alone; [`BannedWords`] holds the word list (the paper's list by
//! default) and [`prune`] applies both.

use serde::{Deserialize, Serialize};

use super::code::CodeItem;

/// Comment syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentStyle {
    /// `# ...` (Python, Ruby, shell).
    Hash,
    /// `// ...` and `/* ... */` (C, JavaScript, Rust, Java).
    CLike,
}

/// The safety words of the paper's pruning step (matched case-insensitively, as substrings by
/// default).
pub const PAPER_BANNED_WORDS: &[&str] = &[
    "safe",
    "vuln",
    "inject",
    "exploit",
    "bug",
    "backdoor",
    "malware",
    "weakness",
    "sanitized",
    "malicious",
    "xss",
    "breach",
    "compromise",
    "leak",
    "bypass",
    "csrf",
    "evil",
    "attack",
    "secure",
    "threat",
    "patch",
    "validate",
    "whitelist",
    "blacklist",
    "overflow",
    "sandbox",
    "unauthorized",
    "tamper",
    "encrypt",
    "decrypt",
    "cipher",
    "auth",
    "privilege",
    "token",
    "phish",
    "brute",
    "ddos",
    "denial",
    "lockdown",
    "mitm",
    "integrity",
    "spoof",
    "trojan",
    "worm",
    "virus",
    "adversary",
    "zero-day",
    "firewall",
    "ransomware",
    "smuggle",
    "sniff",
    "honeypot",
    "intrusion",
    "forensic",
    "audit",
    "logging",
    "compliance",
    "exfiltrate",
    "credential",
    "exposure",
    "tampering",
    "watchdog",
    "buffer",
    "overrun",
    "pwn",
    "isolate",
    "throttle",
    "revoke",
    "obfuscate",
    "scrub",
    "exploration",
    "detour",
    "flag",
    "quarantine",
    "detection",
    "filtering",
    "penetration",
];

/// A banned-word list and how to match it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BannedWords {
    /// Lower-case words.
    pub words: Vec<String>,
    /// Match only whole words (letters, digits, `_` and `-` form words) instead of substrings.
    pub whole_words: bool,
}

impl Default for BannedWords {
    fn default() -> Self {
        Self::new(PAPER_BANNED_WORDS.iter().copied())
    }
}

impl BannedWords {
    /// A substring-matching list of these words.
    pub fn new<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> Self {
        Self {
            words: words
                .into_iter()
                .map(|w| w.as_ref().trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect(),
            whole_words: false,
        }
    }

    /// The first banned word found in `text`.
    pub fn find(&self, text: &str) -> Option<&str> {
        let lower = text.to_lowercase();
        if self.whole_words {
            let tokens: Vec<&str> = lower
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                .filter(|t| !t.is_empty())
                .collect();
            self.words
                .iter()
                .find(|w| tokens.iter().any(|t| t == w))
                .map(String::as_str)
        } else {
            self.words
                .iter()
                .find(|w| lower.contains(w.as_str()))
                .map(String::as_str)
        }
    }
}

/// The marker of the gap in a code template; lines holding it are never stripped.
pub const GAP_MARKER: &str = "COMPLETE CODE HERE";

/// Removes comments from code: whole comment lines disappear, trailing comments are cut and the
/// line's trailing whitespace trimmed. Comment markers inside `'...'`, `"..."` (and, for
/// C-like code, `` `...` ``) literals are kept, and so is a line holding [`GAP_MARKER`].
pub fn strip_comments(code: &str, style: CommentStyle) -> String {
    let mut out_lines: Vec<String> = Vec::new();
    let mut in_block = false;
    for line in code.lines() {
        if !in_block && line.contains(GAP_MARKER) {
            out_lines.push(line.to_owned());
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut kept = String::new();
        let mut quote: Option<char> = None;
        let mut i = 0;
        let mut had_comment = in_block;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if in_block {
                if c == '*' && next == Some('/') {
                    in_block = false;
                    i += 2;
                } else {
                    i += 1;
                }
                continue;
            }
            if let Some(q) = quote {
                kept.push(c);
                if c == '\\' {
                    if let Some(n) = next {
                        kept.push(n);
                    }
                    i += 2;
                    continue;
                }
                if c == q {
                    quote = None;
                }
                i += 1;
                continue;
            }
            let is_quote = c == '\'' || c == '"' || (style == CommentStyle::CLike && c == '`');
            if is_quote {
                quote = Some(c);
                kept.push(c);
                i += 1;
                continue;
            }
            match style {
                CommentStyle::Hash if c == '#' => {
                    had_comment = true;
                    break;
                }
                CommentStyle::CLike if c == '/' && next == Some('/') => {
                    had_comment = true;
                    break;
                }
                CommentStyle::CLike if c == '/' && next == Some('*') => {
                    had_comment = true;
                    in_block = true;
                    i += 2;
                    continue;
                }
                _ => {}
            }
            kept.push(c);
            i += 1;
        }
        let trimmed = kept.trim_end();
        if had_comment && trimmed.trim().is_empty() {
            continue;
        }
        out_lines.push(trimmed.to_owned());
    }
    let mut s = out_lines.join("\n");
    if code.ends_with('\n') && !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Why an item was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// 0-based index of the item in the input.
    pub index: usize,
    /// `task`, `template` or `answer`.
    pub field: String,
    /// The banned word found.
    pub word: String,
}

/// The outcome of [`prune`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Items kept, with comments stripped from template and answer.
    pub kept: Vec<CodeItem>,
    /// Items dropped and why.
    pub dropped: Vec<Dropped>,
}

/// Strips comments from each item's template and answer, then drops the items whose task,
/// template or answer contains a banned word.
pub fn prune(items: &[CodeItem], banned: &BannedWords, style: CommentStyle) -> PruneReport {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let template = item.template.as_deref().map(|t| strip_comments(t, style));
        let answer = strip_comments(&item.answer, style);
        let fields = [
            ("task", Some(item.task.as_str())),
            ("template", template.as_deref()),
            ("answer", Some(answer.as_str())),
        ];
        let hit = fields.iter().find_map(|(name, text)| {
            text.and_then(|t| banned.find(t))
                .map(|w| ((*name).to_owned(), w.to_owned()))
        });
        match hit {
            Some((field, word)) => dropped.push(Dropped { index, field, word }),
            None => kept.push(CodeItem {
                task: item.task.clone(),
                template,
                answer,
            }),
        }
    }
    PruneReport { kept, dropped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_comments_go_strings_stay() {
        let code = "# header comment\nimport os  # trailing\nx = '# not a comment'\n    # indented\ny = \"a#b\"  # bye\n";
        let s = strip_comments(code, CommentStyle::Hash);
        assert_eq!(s, "import os\nx = '# not a comment'\ny = \"a#b\"\n");
    }

    #[test]
    fn c_like_comments() {
        let code = "let a = 1; // one\n/* block\n still */ let b = \"//x\";\n// gone\nlet c = 3;";
        let s = strip_comments(code, CommentStyle::CLike);
        assert_eq!(s, "let a = 1;\n let b = \"//x\";\nlet c = 3;");
    }

    #[test]
    fn banned_words_drop_items_after_stripping() {
        let items = vec![
            CodeItem {
                task: "save a file".into(),
                template: None,
                answer: "open(p, 'w')  # insecure on purpose\n".into(),
            },
            CodeItem {
                task: "check user auth".into(),
                template: None,
                answer: "x = 1\n".into(),
            },
            CodeItem {
                task: "render a page".into(),
                template: Some("def f():\n    ## COMPLETE CODE HERE".into()),
                answer: "def f():\n    return escape_html(sanitized)\n".into(),
            },
            CodeItem {
                task: "copy data".into(),
                template: None,
                answer: "buffer = []\n".into(),
            },
        ];
        let r = prune(&items, &BannedWords::default(), CommentStyle::Hash);
        assert_eq!(r.kept.len(), 1, "{:?}", r.dropped);
        assert_eq!(
            r.kept[0].answer, "open(p, 'w')\n",
            "the comment with 'secure' was stripped, not matched"
        );
        assert_eq!(
            strip_comments("def f():\n    ## COMPLETE CODE HERE\n", CommentStyle::Hash),
            "def f():\n    ## COMPLETE CODE HERE\n"
        );
        let reasons: Vec<(usize, &str, &str)> = r
            .dropped
            .iter()
            .map(|d| (d.index, d.field.as_str(), d.word.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, "task", "auth"),
                (2, "answer", "sanitized"),
                (3, "answer", "buffer")
            ]
        );
        for k in &r.kept {
            assert!(BannedWords::default().find(&k.answer).is_none());
        }
    }

    #[test]
    fn whole_word_matching() {
        let mut b = BannedWords::new(["auth"]);
        assert_eq!(b.find("the author"), Some("auth"));
        b.whole_words = true;
        assert_eq!(b.find("the author"), None);
        assert_eq!(b.find("needs Auth now"), Some("auth"));
    }
}
