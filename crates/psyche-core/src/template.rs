//! Prompt templates with `{name}` placeholders, filled by plain substitution.
//!
//! The syntax is the subset of Python's `str.format` that prompt files use, so templates written
//! for the original papers' YAML files load unchanged:
//!
//! - `{name}` is a placeholder (`name` = ASCII letters, digits and `_`, not starting with a digit);
//! - `{{` and `}}` are literal braces;
//! - any other brace is an error, reported with its byte offset when the template is parsed.
//!
//! Substituted values are inserted verbatim and never re-scanned, so braces inside an answer
//! being judged are safe.
//!
//! ```
//! use psyche_core::PromptTemplate;
//! let t = PromptTemplate::parse("judge", "Q: {question}\nA: {answer}", &["question", "answer"])?;
//! assert_eq!(t.render(&[("question", "2+2?"), ("answer", "{4}")])?, "Q: 2+2?\nA: {4}");
//! # Ok::<(), psyche_core::TemplateError>(())
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::TemplateError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Placeholder(String),
}

/// A parsed template. Construct with [`PromptTemplate::parse`]; serialises as its source text
/// and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TemplateSource", into = "TemplateSource")]
pub struct PromptTemplate {
    name: String,
    source: String,
    segments: Vec<Segment>,
}

#[derive(Serialize, Deserialize)]
struct TemplateSource {
    name: String,
    template: String,
}

impl TryFrom<TemplateSource> for PromptTemplate {
    type Error = TemplateError;
    fn try_from(s: TemplateSource) -> Result<Self, Self::Error> {
        Self::parse_any(s.name, &s.template)
    }
}

impl From<PromptTemplate> for TemplateSource {
    fn from(t: PromptTemplate) -> Self {
        TemplateSource {
            name: t.name,
            template: t.source,
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PromptTemplate {
    /// Parses `source` and checks that its placeholders are exactly `required` (each must
    /// appear at least once, and no other may appear).
    ///
    /// # Errors
    ///
    /// [`TemplateError::Unbalanced`] for a stray brace, [`TemplateError::MissingPlaceholder`]
    /// when a required placeholder is absent, [`TemplateError::UnknownPlaceholder`] for a
    /// placeholder not in `required`.
    pub fn parse(
        name: impl Into<String>,
        source: &str,
        required: &[&str],
    ) -> Result<Self, TemplateError> {
        let template = Self::parse_any(name, source)?;
        template.check(required, required)?;
        Ok(template)
    }

    /// Parses `source` without constraining its placeholders.
    ///
    /// # Errors
    ///
    /// [`TemplateError::Unbalanced`] for a stray brace.
    pub fn parse_any(name: impl Into<String>, source: &str) -> Result<Self, TemplateError> {
        let name = name.into();
        let mut segments = Vec::new();
        let mut text = String::new();
        let bytes = source.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    text.push('{');
                    i += 2;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    text.push('}');
                    i += 2;
                }
                b'{' => {
                    let close = source[i + 1..].find('}').map(|j| i + 1 + j);
                    let ident = close.map(|c| &source[i + 1..c]);
                    match (close, ident) {
                        (Some(c), Some(id)) if is_ident(id) => {
                            if !text.is_empty() {
                                segments.push(Segment::Text(std::mem::take(&mut text)));
                            }
                            segments.push(Segment::Placeholder(id.to_owned()));
                            i = c + 1;
                        }
                        _ => {
                            return Err(TemplateError::Unbalanced {
                                template: name,
                                offset: i,
                            });
                        }
                    }
                }
                b'}' => {
                    return Err(TemplateError::Unbalanced {
                        template: name,
                        offset: i,
                    });
                }
                _ => {
                    // Copy one whole UTF-8 character.
                    let ch_len = source[i..].chars().next().map_or(1, char::len_utf8);
                    text.push_str(&source[i..i + ch_len]);
                    i += ch_len;
                }
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Self {
            name,
            source: source.to_owned(),
            segments,
        })
    }

    /// Checks that every `required` placeholder appears and that every placeholder is `known`.
    ///
    /// # Errors
    ///
    /// As for [`PromptTemplate::parse`].
    pub fn check(&self, required: &[&str], known: &[&str]) -> Result<(), TemplateError> {
        for p in self.placeholders() {
            if !known.contains(&p) {
                return Err(TemplateError::UnknownPlaceholder {
                    template: self.name.clone(),
                    placeholder: p.to_owned(),
                    known: known.join(", "),
                });
            }
        }
        for r in required {
            if !self.placeholders().any(|p| p == *r) {
                return Err(TemplateError::MissingPlaceholder {
                    template: self.name.clone(),
                    placeholder: (*r).to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The placeholders in order of appearance (repeats included).
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Placeholder(p) => Some(p.as_str()),
            Segment::Text(_) => None,
        })
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Hex SHA-256 of the source text: recorded with every verdict so results name the exact
    /// prompt that produced them.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.source.as_bytes()))
    }

    /// Fills every placeholder with its value.
    ///
    /// # Errors
    ///
    /// [`TemplateError::MissingPlaceholder`] naming a placeholder without a value.
    pub fn render(&self, values: &[(&str, &str)]) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len());
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Placeholder(p) => {
                    let v = values
                        .iter()
                        .find(|(k, _)| k == p)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| TemplateError::MissingPlaceholder {
                            template: self.name.clone(),
                            placeholder: p.clone(),
                        })?;
                    out.push_str(v);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_values_with_braces() {
        let t = PromptTemplate::parse("t", "{{x}} {a} {a}", &["a"]).unwrap();
        assert_eq!(t.render(&[("a", "{b}")]).unwrap(), "{x} {b} {b}");
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            PromptTemplate::parse("t", "no placeholders", &["answer"]).unwrap_err(),
            TemplateError::MissingPlaceholder {
                template: "t".into(),
                placeholder: "answer".into()
            }
        );
        let err = PromptTemplate::parse("t", "{answer} {qestion}", &["answer"]).unwrap_err();
        assert!(
            matches!(err, TemplateError::UnknownPlaceholder { ref placeholder, .. } if placeholder == "qestion")
        );
        let err = PromptTemplate::parse("t", "é {answer", &["answer"]).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Unbalanced {
                template: "t".into(),
                offset: 3
            }
        );
        assert!(PromptTemplate::parse_any("t", "a } b").is_err());
    }

    #[test]
    fn serde_round_trip_reparses() {
        let t = PromptTemplate::parse("t", "Q {q}", &["q"]).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        let back: PromptTemplate = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<PromptTemplate>(r#"{"name":"x","template":"{"}"#).is_err());
    }
}
