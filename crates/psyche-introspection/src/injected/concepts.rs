//! The concept set (templates, baseline words, concepts) and concept vectors from contrastive
//! prompt pairs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use psyche_core::{Conversation, Model};
use serde::{Deserialize, Serialize};

use crate::{IntrospectionError, Result};

const BUILTIN: &str = include_str!("../../data/injected/concepts.txt");
const BUILTIN_NAME: &str = "<builtin>/injected/concepts.txt";

/// The recipe and the concepts of an injection experiment, as data a user can replace.
///
/// File format (see the shipped `data/injected/concepts.txt`): one `key: value` entry per line,
/// `#` comments and blank lines ignored; keys `template` (a prompt with `{word}`), `baseline`
/// (a contrast word) and `concept` (a one-word concept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptSet {
    /// Prompt templates with a `{word}` placeholder.
    pub templates: Vec<String>,
    /// Contrast words.
    pub baselines: Vec<String>,
    /// The concepts, in file order.
    pub concepts: Vec<String>,
    /// Where the set came from (a path or the builtin's name).
    pub source: String,
}

impl ConceptSet {
    /// The shipped set: 3 templates, 10 baseline words, 16 concepts (concrete and abstract).
    ///
    /// # Errors
    ///
    /// Never in practice (the shipped file is checked by the tests).
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN, Path::new(BUILTIN_NAME))
    }

    /// Reads a set from a file.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Io`] when the file cannot be read; [`IntrospectionError::Data`]
    /// naming the file and line of a malformed entry.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| IntrospectionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the file format; `path` names the source in errors.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Data`] with the 1-based line: an unknown key, a line without
    /// `key:`, a template without `{word}`, a concept that is not one word or is repeated (also
    /// as a baseline word); line 0 when a kind of entry is missing (at least one template, one
    /// baseline word and four concepts, so that both halves of the held-out split hold two).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let err = |line: usize, message: String| IntrospectionError::Data {
            path: PathBuf::from(path),
            line,
            message,
        };
        let mut set = ConceptSet {
            templates: Vec::new(),
            baselines: Vec::new(),
            concepts: Vec::new(),
            source: path.display().to_string(),
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once(':') else {
                return Err(err(line, format!("expected `key: value`, got `{trimmed}`")));
            };
            let value = value.trim().to_owned();
            if value.is_empty() {
                return Err(err(line, format!("`{}` has an empty value", key.trim())));
            }
            match key.trim() {
                "template" => {
                    if !value.contains("{word}") {
                        return Err(err(
                            line,
                            "a template needs the `{word}` placeholder".into(),
                        ));
                    }
                    set.templates.push(value);
                }
                "baseline" | "concept" => {
                    if value.split_whitespace().count() != 1
                        || !value.chars().all(|c| c.is_alphabetic() || c == '-')
                    {
                        return Err(err(
                            line,
                            format!("`{value}` must be a single word of letters"),
                        ));
                    }
                    let lower = value.to_lowercase();
                    if set.concepts.contains(&lower) || set.baselines.contains(&lower) {
                        return Err(err(line, format!("`{value}` appears twice")));
                    }
                    if key.trim() == "concept" {
                        set.concepts.push(lower);
                    } else {
                        set.baselines.push(lower);
                    }
                }
                other => {
                    return Err(err(
                        line,
                        format!(
                            "unknown key `{other}` (expected `template`, `baseline` or `concept`)"
                        ),
                    ));
                }
            }
        }
        if set.templates.is_empty() {
            return Err(err(0, "no `template` line".into()));
        }
        if set.baselines.is_empty() {
            return Err(err(0, "no `baseline` line".into()));
        }
        if set.concepts.len() < 4 {
            return Err(err(
                0,
                format!(
                    "{} concepts; at least 4 are needed (two per half of the held-out split)",
                    set.concepts.len()
                ),
            ));
        }
        Ok(set)
    }

    /// Keeps the first `n` concepts (all when `n` is larger).
    #[must_use]
    pub fn take(mut self, n: usize) -> Self {
        self.concepts.truncate(n);
        self
    }
}

/// Concept vectors per steering layer: `vectors[concept][layer]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptVectors {
    /// Steering layers (a vector for layer `l` is read from hidden state `l + 1`, the output of
    /// block `l`, where the steering adds it).
    pub layers: Vec<usize>,
    /// Per concept, one vector per entry of `layers`.
    pub vectors: BTreeMap<String, Vec<Vec<f32>>>,
}

impl ConceptVectors {
    /// The vector of `concept` at steering layer `layer`.
    pub fn get(&self, concept: &str, layer: usize) -> Option<&[f32]> {
        let i = self.layers.iter().position(|&l| l == layer)?;
        self.vectors.get(concept).map(|v| v[i].as_slice())
    }
}

/// Euclidean norm.
pub(crate) fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt()
}

/// Concept vectors from contrastive prompt pairs: for every concept and steering layer `l`,
/// the mean over templates `t` and baseline words `b` of `h_{l+1}(t(concept)) −
/// h_{l+1}(t(b))`, the residual stream at the last prompt position
/// ([`Model::hidden_states`]).
///
/// # Errors
///
/// [`IntrospectionError::Model`] when the model has no hidden states or a call fails;
/// [`IntrospectionError::Config`] for a layer the hidden states do not reach.
pub async fn concept_vectors(
    model: &dyn Model,
    set: &ConceptSet,
    layers: &[usize],
) -> Result<ConceptVectors> {
    let words: Vec<&String> = set.concepts.iter().chain(&set.baselines).collect();
    let calls = words.iter().flat_map(|w| {
        set.templates.iter().map(move |t| async move {
            let conv = Conversation::user(t.replace("{word}", w));
            model.hidden_states(&conv).await
        })
    });
    let states = futures::future::try_join_all(calls).await?;
    let n_t = set.templates.len();
    let depth = states.first().map_or(0, |s| s.layers.len());
    if let Some(&bad) = layers.iter().find(|&&l| l + 1 >= depth) {
        return Err(IntrospectionError::config(
            "layers",
            format!(
                "layer {bad} is past the model's last block ({} hidden states)",
                depth
            ),
        ));
    }
    // Mean hidden state over templates of each word, per layer.
    let mean_of = |w: usize, l: usize| -> Vec<f64> {
        let mut acc = vec![0.0f64; states[w * n_t].layers[l + 1].len()];
        for s in &states[w * n_t..(w + 1) * n_t] {
            for (a, &x) in acc.iter_mut().zip(&s.layers[l + 1]) {
                *a += x as f64 / n_t as f64;
            }
        }
        acc
    };
    let n_c = set.concepts.len();
    let mut vectors = BTreeMap::new();
    for (ci, concept) in set.concepts.iter().enumerate() {
        let mut per_layer = Vec::with_capacity(layers.len());
        for &l in layers {
            let c = mean_of(ci, l);
            let mut base = vec![0.0f64; c.len()];
            for b in 0..set.baselines.len() {
                for (a, x) in base.iter_mut().zip(mean_of(n_c + b, l)) {
                    *a += x / set.baselines.len() as f64;
                }
            }
            per_layer.push(c.iter().zip(&base).map(|(x, b)| (x - b) as f32).collect());
        }
        vectors.insert(concept.clone(), per_layer);
    }
    Ok(ConceptVectors {
        layers: layers.to_vec(),
        vectors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_set_parses() {
        let s = ConceptSet::builtin().unwrap();
        assert_eq!(s.templates.len(), 3);
        assert_eq!(s.baselines.len(), 10);
        assert_eq!(s.concepts.len(), 16);
    }

    #[test]
    fn errors_name_file_and_line() {
        let p = Path::new("mine.txt");
        let e = ConceptSet::parse("# c\ntemplate: no placeholder\n", p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mine.txt:2: a template needs the `{word}` placeholder"
        );
        let e = ConceptSet::parse("template: {word}\nconcept: two words\n", p).unwrap_err();
        assert!(e.to_string().starts_with("mine.txt:2:"), "{e}");
        let e = ConceptSet::parse("template: {word}\nconcpt: fire\n", p).unwrap_err();
        assert!(e.to_string().contains("unknown key `concpt`"), "{e}");
        let e =
            ConceptSet::parse("template: {word}\nconcept: fire\nbaseline: Fire\n", p).unwrap_err();
        assert!(e.to_string().starts_with("mine.txt:3:"), "{e}");
        let e =
            ConceptSet::parse("template: {word}\nbaseline: cup\nconcept: fire\n", p).unwrap_err();
        assert!(e.to_string().starts_with("mine.txt:0: 1 concepts"), "{e}");
        let e = ConceptSet::parse("just text\n", p).unwrap_err();
        assert!(e.to_string().starts_with("mine.txt:1: expected"), "{e}");
    }
}
