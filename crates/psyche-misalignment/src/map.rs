//! The misalignment map: embed judged answers, project them with PCA and cluster them — a first
//! typology of misaligned answers (not in the paper).
//!
//! Each answer is embedded as the embedding model's hidden state at the last prompt position
//! of the conversation (question, then the answer as an assistant turn), taken from one layer
//! through [`Model::hidden_states`] (the embedded local model supports it; API models do not).
//! Embeddings are centred and projected onto their top principal components (power iteration
//! with deflation on ndarray, seeded), clustered with seeded k-means++ / Lloyd on those
//! components, and each cluster is summarised: size, models and questions it draws from, its
//! mean aligned score and share of misaligned answers, and example answers (lowest aligned
//! score first).

use std::collections::BTreeMap;

use futures::StreamExt;
use ndarray::{Array1, Array2, Axis};
use psyche_core::{ChatMessage, Conversation, Model, derive_seed, seeded_rng};
use psyche_judges::misalignment::{Class, MisalignmentConfig, classify};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{MisalignmentError, Result};
use crate::eval::AnswerRow;

/// Which answers go on the map and how it is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapConfig {
    /// Hidden-state layer (`None`: the middle layer).
    pub layer: Option<usize>,
    /// Principal components used for clustering (the map shows the first two).
    pub components: usize,
    /// Clusters.
    pub clusters: usize,
    /// Seed of PCA initialisation and k-means.
    pub seed: u64,
    /// At most this many answers (the lowest aligned scores first, then the rest in order).
    pub max_answers: usize,
    /// Only answers with both scores.
    pub judged_only: bool,
    /// Example answers per cluster.
    pub examples: usize,
    /// Characters of an answer kept in the embedded text and in examples.
    pub max_chars: usize,
    /// The rule that marks an answer misaligned in cluster summaries.
    pub convention: MisalignmentConfig,
    /// Embedding requests in flight.
    pub concurrency: usize,
}

impl Default for MapConfig {
    fn default() -> Self {
        Self {
            layer: None,
            components: 8,
            clusters: 4,
            seed: 0,
            max_answers: 400,
            judged_only: true,
            examples: 3,
            max_chars: 600,
            convention: MisalignmentConfig::default(),
            concurrency: 8,
        }
    }
}

/// One answer on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    /// The model.
    pub model_id: String,
    /// The question.
    pub question_id: String,
    /// First principal component.
    pub x: f64,
    /// Second principal component (0 with one component).
    pub y: f64,
    /// The cluster.
    pub cluster: usize,
    /// The aligned score.
    pub aligned: Option<f64>,
    /// The coherent score.
    pub coherent: Option<f64>,
}

/// An example answer of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapExample {
    /// The model.
    pub model_id: String,
    /// The question id.
    pub question_id: String,
    /// The answer (truncated).
    pub answer: String,
    /// Its aligned score.
    pub aligned: Option<f64>,
}

/// A cluster's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// The cluster index.
    pub cluster: usize,
    /// Answers in it.
    pub size: usize,
    /// Answers per model.
    pub by_model: BTreeMap<String, usize>,
    /// Answers per question.
    pub by_question: BTreeMap<String, usize>,
    /// Mean aligned score of its answers with one.
    pub mean_aligned: Option<f64>,
    /// Misaligned share among its counted answers (by [`MapConfig::convention`]).
    pub misaligned_share: Option<f64>,
    /// Example answers, lowest aligned score first.
    pub examples: Vec<MapExample>,
}

/// The map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MisalignmentMap {
    /// The embedding model.
    pub embedder: String,
    /// The layer used.
    pub layer: usize,
    /// Share of variance explained by each component used.
    pub explained_variance: Vec<f64>,
    /// The answers.
    pub points: Vec<MapPoint>,
    /// The clusters.
    pub clusters: Vec<ClusterSummary>,
}

/// The top `k` principal components of `x` (rows are observations): returns the projections
/// (n × k) and each component's share of the total variance. Power iteration with deflation,
/// initial vectors drawn from `seed`.
///
/// # Errors
///
/// [`MisalignmentError::Config`] for fewer than 2 rows, no columns or `k = 0`.
pub fn pca(x: &Array2<f64>, k: usize, seed: u64) -> Result<(Array2<f64>, Vec<f64>)> {
    let (n, d) = x.dim();
    if n < 2 || d == 0 || k == 0 {
        return Err(MisalignmentError::config(
            "map",
            format!("PCA needs at least 2 points and 1 dimension (got {n} × {d}, k = {k})"),
        ));
    }
    let k = k.min(d).min(n - 1).max(1);
    let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(d));
    let centred = x - &mean;
    let total: f64 = centred.iter().map(|v| v * v).sum::<f64>() / (n as f64 - 1.0);
    let mut rng = seeded_rng(derive_seed(seed, "pca"));
    let mut comps: Vec<Array1<f64>> = Vec::new();
    let mut shares = Vec::new();
    for _ in 0..k {
        let mut v: Array1<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut lambda = 0.0;
        for _ in 0..300 {
            // w = Xᵀ (X v) / (n − 1), minus the found components.
            let xv = centred.dot(&v);
            let mut w = centred.t().dot(&xv) / (n as f64 - 1.0);
            for c in &comps {
                let proj = c.dot(&w);
                w = w - c * proj;
            }
            let norm = w.dot(&w).sqrt();
            if norm <= 1e-12 {
                lambda = 0.0;
                break;
            }
            let next = w / norm;
            let delta = (&next - &v).mapv(f64::abs).sum();
            v = next;
            lambda = norm;
            if delta < 1e-9 {
                break;
            }
        }
        if lambda <= 1e-12 {
            break;
        }
        shares.push(if total > 0.0 { lambda / total } else { 0.0 });
        comps.push(v);
    }
    if comps.is_empty() {
        return Ok((Array2::zeros((n, 1)), vec![0.0]));
    }
    let mut proj = Array2::zeros((n, comps.len()));
    for (j, c) in comps.iter().enumerate() {
        proj.column_mut(j).assign(&centred.dot(c));
    }
    Ok((proj, shares))
}

/// Seeded k-means (k-means++ start, Lloyd iterations) over the rows of `x`; returns each row's
/// cluster, clusters numbered by decreasing size.
pub fn kmeans(x: &Array2<f64>, k: usize, seed: u64) -> Vec<usize> {
    let n = x.nrows();
    if n == 0 {
        return Vec::new();
    }
    let k = k.clamp(1, n);
    let mut rng = seeded_rng(derive_seed(seed, "kmeans"));
    let dist2 = |a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>| -> f64 {
        a.iter().zip(b.iter()).map(|(p, q)| (p - q) * (p - q)).sum()
    };
    let mut centres: Vec<Array1<f64>> = vec![x.row(rng.random_range(0..n)).to_owned()];
    while centres.len() < k {
        let d: Vec<f64> = (0..n)
            .map(|i| {
                centres
                    .iter()
                    .map(|c| dist2(x.row(i), c.view()))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let total: f64 = d.iter().sum();
        let pick = if total <= 0.0 {
            rng.random_range(0..n)
        } else {
            let mut r = rng.random_range(0.0..total);
            let mut idx = n - 1;
            for (i, di) in d.iter().enumerate() {
                if r < *di {
                    idx = i;
                    break;
                }
                r -= di;
            }
            idx
        };
        centres.push(x.row(pick).to_owned());
    }
    let mut assign = vec![0usize; n];
    for _ in 0..100 {
        let mut changed = false;
        for (i, a) in assign.iter_mut().enumerate() {
            let best = (0..centres.len())
                .min_by(|&p, &q| {
                    dist2(x.row(i), centres[p].view())
                        .total_cmp(&dist2(x.row(i), centres[q].view()))
                })
                .unwrap_or(0);
            if *a != best {
                *a = best;
                changed = true;
            }
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<usize> = (0..n).filter(|&i| assign[i] == c).collect();
            if members.is_empty() {
                continue;
            }
            let mut m = Array1::zeros(x.ncols());
            for &i in &members {
                m += &x.row(i);
            }
            *centre = m / members.len() as f64;
        }
        if !changed {
            break;
        }
    }
    // Renumber by decreasing size (ties by first appearance) so output is stable.
    let mut sizes: Vec<(usize, usize, usize)> = (0..centres.len())
        .map(|c| {
            let size = assign.iter().filter(|&&a| a == c).count();
            let first = assign.iter().position(|&a| a == c).unwrap_or(usize::MAX);
            (c, size, first)
        })
        .filter(|(_, s, _)| *s > 0)
        .collect();
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    let rename: BTreeMap<usize, usize> = sizes
        .iter()
        .enumerate()
        .map(|(new, (old, _, _))| (*old, new))
        .collect();
    assign
        .iter()
        .map(|a| rename.get(a).copied().unwrap_or(0))
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Builds the map of `rows` with `embedder`'s hidden states.
///
/// # Errors
///
/// [`MisalignmentError::Config`] for fewer than 2 usable answers;
/// [`MisalignmentError::Model`] when the embedder fails (an API model: `Unsupported`).
pub async fn misalignment_map(
    embedder: &dyn Model,
    rows: &[AnswerRow],
    config: &MapConfig,
) -> Result<MisalignmentMap> {
    let mut chosen: Vec<&AnswerRow> = rows
        .iter()
        .filter(|r| !r.answer.trim().is_empty())
        .filter(|r| !config.judged_only || (r.aligned.is_some() && r.coherent.is_some()))
        .collect();
    // Lowest aligned first so the misaligned tail is always on the map; stable otherwise.
    chosen.sort_by(|a, b| {
        a.aligned
            .unwrap_or(f64::INFINITY)
            .total_cmp(&b.aligned.unwrap_or(f64::INFINITY))
    });
    chosen.truncate(config.max_answers);
    if chosen.len() < 2 {
        return Err(MisalignmentError::config(
            "map",
            format!(
                "need at least 2 judged answers to map, have {}",
                chosen.len()
            ),
        ));
    }
    let convs: Vec<Conversation> = chosen
        .iter()
        .map(|r| {
            let mut c = Conversation::new();
            if !r.question.is_empty() {
                c.push(ChatMessage::user(r.question.clone()));
            }
            c.push(ChatMessage::assistant(truncate(
                &r.answer,
                config.max_chars,
            )));
            c
        })
        .collect();
    let states: Vec<std::result::Result<psyche_core::HiddenStates, psyche_core::ModelError>> =
        futures::stream::iter(convs.iter().map(|c| embedder.hidden_states(c)))
            .buffered(config.concurrency.max(1))
            .collect()
            .await;
    let mut vectors = Vec::with_capacity(states.len());
    let mut layer_used = 0;
    for s in states {
        let hs = s?;
        let layer = config
            .layer
            .unwrap_or(hs.layers.len() / 2)
            .min(hs.layers.len().saturating_sub(1));
        layer_used = layer;
        vectors.push(hs.layers.get(layer).cloned().unwrap_or_default());
    }
    let d = vectors.iter().map(Vec::len).max().unwrap_or(0);
    let mut x = Array2::zeros((vectors.len(), d));
    for (i, v) in vectors.iter().enumerate() {
        for (j, val) in v.iter().enumerate() {
            x[[i, j]] = f64::from(*val);
        }
    }
    let (proj, explained) = pca(&x, config.components.max(1), config.seed)?;
    let assign = kmeans(&proj, config.clusters, config.seed);
    let points: Vec<MapPoint> = chosen
        .iter()
        .enumerate()
        .map(|(i, r)| MapPoint {
            model_id: r.model_id.clone(),
            question_id: r.question_id.clone(),
            x: proj[[i, 0]],
            y: if proj.ncols() > 1 { proj[[i, 1]] } else { 0.0 },
            cluster: assign[i],
            aligned: r.aligned,
            coherent: r.coherent,
        })
        .collect();
    let n_clusters = assign.iter().max().map_or(0, |m| m + 1);
    let clusters = (0..n_clusters)
        .map(|c| {
            let members: Vec<&AnswerRow> = chosen
                .iter()
                .zip(&assign)
                .filter(|(_, a)| **a == c)
                .map(|(r, _)| *r)
                .collect();
            let mut by_model = BTreeMap::new();
            let mut by_question = BTreeMap::new();
            for r in &members {
                *by_model.entry(r.model_id.clone()).or_insert(0) += 1;
                *by_question.entry(r.question_id.clone()).or_insert(0) += 1;
            }
            let aligned: Vec<f64> = members.iter().filter_map(|r| r.aligned).collect();
            let (mut mis, mut den) = (0usize, 0usize);
            for r in &members {
                match classify(r.aligned, r.coherent, &config.convention) {
                    Class::Misaligned => {
                        mis += 1;
                        den += 1;
                    }
                    Class::NotMisaligned => den += 1,
                    Class::Excluded(_) => {}
                }
            }
            let examples = members
                .iter()
                .take(config.examples)
                .map(|r| MapExample {
                    model_id: r.model_id.clone(),
                    question_id: r.question_id.clone(),
                    answer: truncate(r.answer.trim(), config.max_chars.min(300)),
                    aligned: r.aligned,
                })
                .collect();
            ClusterSummary {
                cluster: c,
                size: members.len(),
                by_model,
                by_question,
                mean_aligned: (!aligned.is_empty())
                    .then(|| aligned.iter().sum::<f64>() / aligned.len() as f64),
                misaligned_share: (den > 0).then(|| mis as f64 / den as f64),
                examples,
            }
        })
        .collect();
    Ok(MisalignmentMap {
        embedder: embedder.id().to_owned(),
        layer: layer_used,
        explained_variance: explained,
        points,
        clusters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> Array2<f64> {
        // Two well-separated blobs along a diagonal in 5-D, plus small seeded noise.
        let mut rng = seeded_rng(1);
        let mut x = Array2::zeros((40, 5));
        for i in 0..40 {
            let centre = if i < 25 { -5.0 } else { 5.0 };
            for j in 0..5 {
                x[[i, j]] = centre * (1.0 + j as f64 * 0.1) + rng.random_range(-0.5..0.5);
            }
        }
        x
    }

    #[test]
    fn pca_finds_the_main_axis() {
        let (proj, shares) = pca(&blobs(), 3, 7).unwrap();
        assert_eq!(proj.ncols(), 3);
        assert!(shares[0] > 0.95, "{shares:?}");
        assert!(shares.windows(2).all(|w| w[0] >= w[1] - 1e-9));
        // The first component separates the blobs.
        let left: Vec<f64> = (0..25).map(|i| proj[[i, 0]]).collect();
        let right: Vec<f64> = (25..40).map(|i| proj[[i, 0]]).collect();
        let sep = left.iter().all(|v| v.signum() == left[0].signum())
            && right.iter().all(|v| v.signum() == -left[0].signum());
        assert!(sep);
        assert_eq!(pca(&blobs(), 3, 7).unwrap().1, shares, "seeded");
        assert!(pca(&Array2::zeros((1, 3)), 2, 0).is_err());
    }

    #[test]
    fn kmeans_is_seeded_and_sorted_by_size() {
        let x = blobs();
        let a = kmeans(&x, 2, 3);
        assert_eq!(a, kmeans(&x, 2, 3));
        assert!(a[..25].iter().all(|&c| c == 0), "bigger blob is cluster 0");
        assert!(a[25..].iter().all(|&c| c == 1));
        assert_eq!(kmeans(&x, 100, 0).len(), 40);
        assert!(kmeans(&Array2::zeros((0, 2)), 3, 0).is_empty());
    }
}
