//! JSONL dataset I/O, including OpenAI chat JSONL (`{"messages":[...]}` per line).
//!
//! Readers never panic: a malformed line fails with its file, 1-based line number and, when
//! serde can tell, the path of the offending field (`messages[2].role: unknown variant ...`).
//! Blank lines are skipped. [`JsonlReader`] streams rows one at a time for large files.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::message::Conversation;

/// One line of OpenAI chat JSONL: a conversation to train on or to prompt with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatExample {
    /// The messages.
    pub messages: Conversation,
}

impl From<Conversation> for ChatExample {
    fn from(messages: Conversation) -> Self {
        Self { messages }
    }
}

/// Parses one JSON line into `T`, describing failures with the field path.
///
/// # Errors
///
/// A message such as `messages[1].role: unknown variant ...` or `expected value at column 1`.
pub fn parse_json_line<T: DeserializeOwned>(line: &str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            inner.to_string()
        } else {
            format!("field `{path}`: {inner}")
        }
    })?;
    de.end().map_err(|e| format!("trailing characters: {e}"))?;
    Ok(value)
}

/// Streams rows of a JSONL source, with line numbers in every error.
#[derive(Debug)]
pub struct JsonlReader<R, T> {
    reader: R,
    path: PathBuf,
    line: usize,
    buf: Vec<u8>,
    _row: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonlReader<BufReader<File>, T> {
    /// Opens a file.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Io`] when the file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| DatasetError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::new(BufReader::new(file), path))
    }
}

impl<R: BufRead, T: DeserializeOwned> JsonlReader<R, T> {
    /// Reads from any buffered source; `label` names it in errors.
    pub fn new(reader: R, label: impl Into<PathBuf>) -> Self {
        Self {
            reader,
            path: label.into(),
            line: 0,
            buf: Vec::new(),
            _row: PhantomData,
        }
    }

    /// The 1-based number of the last line read.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl<R: BufRead, T: DeserializeOwned> Iterator for JsonlReader<R, T> {
    type Item = Result<(usize, T), DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(DatasetError::Io {
                        path: self.path.clone(),
                        source,
                    }));
                }
            }
            self.line += 1;
            let line_err = |message: String| DatasetError::Line {
                path: self.path.clone(),
                line: self.line,
                message,
            };
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(e) => return Some(Err(line_err(format!("invalid UTF-8: {e}")))),
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(
                parse_json_line(text)
                    .map(|row| (self.line, row))
                    .map_err(line_err),
            );
        }
    }
}

/// Reads every row of a JSONL file.
///
/// # Errors
///
/// The first bad line, as [`DatasetError::Line`]; [`DatasetError::Io`] when unreadable.
pub fn read_jsonl<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<Vec<T>, DatasetError> {
    JsonlReader::open(path)?
        .map(|r| r.map(|(_, row)| row))
        .collect()
}

/// Parses JSONL held in memory; `label` names the source in errors.
///
/// # Errors
///
/// The first bad line, as [`DatasetError::Line`].
pub fn parse_jsonl<T: DeserializeOwned>(text: &str, label: &str) -> Result<Vec<T>, DatasetError> {
    JsonlReader::new(text.as_bytes(), label)
        .map(|r| r.map(|(_, row)| row))
        .collect()
}

/// Writes rows as JSONL (one compact JSON object per line), creating parent directories.
///
/// # Errors
///
/// [`DatasetError::Io`] or [`DatasetError::Serialise`].
pub fn write_jsonl<T: Serialize>(path: impl AsRef<Path>, rows: &[T]) -> Result<(), DatasetError> {
    let path = path.as_ref();
    let io = |source| DatasetError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    to_jsonl_writer(&mut w, rows, path)?;
    w.flush().map_err(io)
}

/// Serialises rows as JSONL into any writer; `label` names the destination in errors.
///
/// # Errors
///
/// [`DatasetError::Io`] or [`DatasetError::Serialise`].
pub fn to_jsonl_writer<T: Serialize, W: Write>(
    w: &mut W,
    rows: &[T],
    label: &Path,
) -> Result<(), DatasetError> {
    for (index, row) in rows.iter().enumerate() {
        serde_json::to_writer(&mut *w, row).map_err(|e| DatasetError::Serialise {
            path: label.to_owned(),
            index,
            message: e.to_string(),
        })?;
        w.write_all(b"\n").map_err(|source| DatasetError::Io {
            path: label.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Reads OpenAI chat JSONL.
///
/// # Errors
///
/// As [`read_jsonl`]; a line without `messages` or with a bad role names the field.
pub fn read_chat_jsonl(path: impl AsRef<Path>) -> Result<Vec<ChatExample>, DatasetError> {
    read_jsonl(path)
}

/// Writes OpenAI chat JSONL.
///
/// # Errors
///
/// As [`write_jsonl`].
pub fn write_chat_jsonl(
    path: impl AsRef<Path>,
    examples: &[ChatExample],
) -> Result<(), DatasetError> {
    write_jsonl(path, examples)
}
