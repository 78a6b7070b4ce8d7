//! The word lists, texts and items the crate ships (`data/`, compiled in with
//! `include_str!`), and the parsers that read them and users' own files. All shipped content
//! is psyche's own.
//!
//! | file | used by | split |
//! |---|---|---|
//! | `words/colours.txt`, `words/countries.txt` | sequence families | train |
//! | `words/animals.txt`, `words/english_words.txt` | sequence families | held-out |
//! | `texts/paragraphs.txt` | paragraph continuation | train |
//! | `texts/stories.txt` | story continuation | held-out |
//! | `stance/wealth.jsonl`, `stance/power.jsonl` | A/B stance items | train |
//! | `stance/survival.jsonl`, `stance/myopia.jsonl` | A/B stance items | held-out |
//! | `mcq/science.jsonl` | multiple choice | train |
//! | `mcq/general.jsonl` | multiple choice | held-out |

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IntrospectionError, Result};

/// One dataset string (the `{string}` of a family's prompt template) with an optional target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StringItem {
    /// The string.
    pub string: String,
    /// A target (e.g. the letter of the option showing a stance), when the family has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A question with options, one of which is special: the correct answer (multiple choice) or
/// the option that shows the stance (A/B stance items).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionQuestion {
    /// The question.
    pub question: String,
    /// The options, in the file's order (a generator shuffles them per seed).
    pub options: Vec<String>,
    /// Index of the special option in `options`.
    pub special: usize,
}

/// Shipped data files: (name, contents).
pub(crate) mod shipped {
    pub(crate) const COLOURS: (&str, &str) = (
        "words/colours.txt",
        include_str!("../data/words/colours.txt"),
    );
    pub(crate) const COUNTRIES: (&str, &str) = (
        "words/countries.txt",
        include_str!("../data/words/countries.txt"),
    );
    pub(crate) const ANIMALS: (&str, &str) = (
        "words/animals.txt",
        include_str!("../data/words/animals.txt"),
    );
    pub(crate) const ENGLISH_WORDS: (&str, &str) = (
        "words/english_words.txt",
        include_str!("../data/words/english_words.txt"),
    );
    pub(crate) const PARAGRAPHS: (&str, &str) = (
        "texts/paragraphs.txt",
        include_str!("../data/texts/paragraphs.txt"),
    );
    pub(crate) const STORIES: (&str, &str) = (
        "texts/stories.txt",
        include_str!("../data/texts/stories.txt"),
    );
    pub(crate) const WEALTH: (&str, &str) = (
        "stance/wealth.jsonl",
        include_str!("../data/stance/wealth.jsonl"),
    );
    pub(crate) const POWER: (&str, &str) = (
        "stance/power.jsonl",
        include_str!("../data/stance/power.jsonl"),
    );
    pub(crate) const SURVIVAL: (&str, &str) = (
        "stance/survival.jsonl",
        include_str!("../data/stance/survival.jsonl"),
    );
    pub(crate) const MYOPIA: (&str, &str) = (
        "stance/myopia.jsonl",
        include_str!("../data/stance/myopia.jsonl"),
    );
    pub(crate) const SCIENCE: (&str, &str) = (
        "mcq/science.jsonl",
        include_str!("../data/mcq/science.jsonl"),
    );
    pub(crate) const GENERAL: (&str, &str) = (
        "mcq/general.jsonl",
        include_str!("../data/mcq/general.jsonl"),
    );
}

/// Non-empty lines of `text`, trimmed; lines starting with `#` are comments.
pub fn parse_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Dataset strings from a file's text: one string per line, or JSONL rows
/// `{"string": "...", "target": "..."}` (a file is JSONL when its first non-empty line starts
/// with `{`). `source` names the file in errors.
///
/// # Errors
///
/// [`IntrospectionError::Data`] naming the file and line of a malformed row, an empty string,
/// or a file without any string.
pub fn parse_strings(text: &str, source: &Path) -> Result<Vec<StringItem>> {
    let jsonl = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with('{'));
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || (!jsonl && line.starts_with('#')) {
            continue;
        }
        let item = if jsonl {
            let item: StringItem = psyche_core::parse_json_line(line)
                .map_err(|m| IntrospectionError::data(source, i + 1, m))?;
            item
        } else {
            StringItem {
                string: line.to_owned(),
                target: None,
            }
        };
        if item.string.trim().is_empty() {
            return Err(IntrospectionError::data(
                source,
                i + 1,
                "field `string` is empty",
            ));
        }
        out.push(item);
    }
    if out.is_empty() {
        return Err(IntrospectionError::data(
            source,
            0,
            "the file holds no strings",
        ));
    }
    Ok(out)
}

/// Reads dataset strings from a file (see [`parse_strings`]).
///
/// # Errors
///
/// [`IntrospectionError::Io`] when the file cannot be read; as [`parse_strings`].
pub fn read_strings(path: impl AsRef<Path>) -> Result<Vec<StringItem>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| IntrospectionError::io(path, e))?;
    parse_strings(&text, path)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StanceRow {
    question: String,
    matching: String,
    other: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McqRow {
    question: String,
    options: Vec<String>,
    answer: usize,
}

/// A/B stance items from JSONL rows `{"question", "matching", "other"}` (the option that shows
/// the stance, and the one that does not).
///
/// # Errors
///
/// [`IntrospectionError::Data`] naming the file and line of a malformed row.
pub fn parse_stance_items(text: &str, source: &Path) -> Result<Vec<OptionQuestion>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row: StanceRow = psyche_core::parse_json_line(line)
            .map_err(|m| IntrospectionError::data(source, i + 1, m))?;
        out.push(OptionQuestion {
            question: row.question,
            options: vec![row.matching, row.other],
            special: 0,
        });
    }
    Ok(out)
}

/// Multiple-choice items from JSONL rows `{"question", "options": [...], "answer": <index>}`.
///
/// # Errors
///
/// [`IntrospectionError::Data`] naming the file and line of a malformed row, fewer than two
/// options, or an answer index out of range.
pub fn parse_mcq_items(text: &str, source: &Path) -> Result<Vec<OptionQuestion>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row: McqRow = psyche_core::parse_json_line(line)
            .map_err(|m| IntrospectionError::data(source, i + 1, m))?;
        if row.options.len() < 2 || row.options.len() > 26 {
            return Err(IntrospectionError::data(
                source,
                i + 1,
                format!(
                    "field `options`: need 2 to 26 options, got {}",
                    row.options.len()
                ),
            ));
        }
        if row.answer >= row.options.len() {
            return Err(IntrospectionError::data(
                source,
                i + 1,
                format!(
                    "field `answer`: index {} is out of range for {} options",
                    row.answer,
                    row.options.len()
                ),
            ));
        }
        out.push(OptionQuestion {
            question: row.question,
            options: row.options,
            special: row.answer,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_files_parse() {
        for (name, text) in [
            shipped::COLOURS,
            shipped::COUNTRIES,
            shipped::ANIMALS,
            shipped::ENGLISH_WORDS,
            shipped::PARAGRAPHS,
            shipped::STORIES,
        ] {
            assert!(parse_lines(text).len() >= 30, "{name}");
        }
        for (name, text) in [
            shipped::WEALTH,
            shipped::POWER,
            shipped::SURVIVAL,
            shipped::MYOPIA,
        ] {
            assert!(
                parse_stance_items(text, Path::new(name)).unwrap().len() >= 16,
                "{name}"
            );
        }
        for (name, text) in [shipped::SCIENCE, shipped::GENERAL] {
            assert!(
                parse_mcq_items(text, Path::new(name)).unwrap().len() >= 24,
                "{name}"
            );
        }
    }

    #[test]
    fn strings_from_lines_or_jsonl_with_errors_naming_the_line() {
        let p = Path::new("mine.txt");
        let items = parse_strings("# comment\nfirst one\n\n second \n", p).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].string, "second");
        let items = parse_strings(
            "{\"string\": \"a b c\"}\n{\"string\": \"d\", \"target\": \"B\"}\n",
            Path::new("x.jsonl"),
        )
        .unwrap();
        assert_eq!(items[1].target.as_deref(), Some("B"));
        let err = parse_strings(
            "{\"string\": \"ok\"}\n{\"strin\": 1}\n",
            Path::new("bad.jsonl"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("bad.jsonl:2:"), "{err}");
        let err = parse_strings("{\"string\": \" \"}\n", Path::new("e.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("e.jsonl:1") && err.contains("empty"), "{err}");
        assert!(parse_strings("\n\n", p).is_err());
        let err = parse_mcq_items(
            "{\"question\": \"q\", \"options\": [\"a\", \"b\"], \"answer\": 2}",
            Path::new("m.jsonl"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("m.jsonl:1") && err.contains("answer"), "{err}");
    }
}
