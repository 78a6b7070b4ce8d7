//! Checks of the training backward pass: gradient norms and finite differences.

use candle_core::Tensor;
use psyche_core::{Conversation, derive_seed, seeded_rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::adapter::AdapterVars;
use super::config::LoraConfig;
use super::step::{StepPath, encode_examples, micro_step};
use crate::LocalError;
use crate::model::LocalModel;

/// Gradient norms of every LoRA variable after one backward pass on `example`, with `B`
/// initialised to small random values so that both `A` and `B` receive signal. A variable
/// whose gradient is missing (`None`) means some op in the training forward does not
/// propagate gradients.
///
/// # Errors
///
/// [`LocalError`] for an invalid config or example.
pub fn lora_gradient_norms(
    model: &LocalModel,
    example: &Conversation,
    lora: &LoraConfig,
    seed: u64,
) -> Result<Vec<(String, Option<f64>)>, LocalError> {
    lora.validate(model.hparams().n_layer)?;
    let vars = AdapterVars::init(model, lora, seed, 0.01)?;
    let ex = encode_examples(model, std::slice::from_ref(example), lora.max_seq_len)
        .map_err(|e| LocalError::config("example", e.to_string()))?;
    let mut rng = seeded_rng(derive_seed(seed, "lora/dropout"));
    let weights = model.weights().clone();
    let mut path = StepPath::new(&weights);
    let (_, grads) = micro_step(model, &vars, &[&ex[0]], &mut rng, 1.0, &mut path)?;
    let mut out = Vec::new();
    let mut grads = grads.into_iter();
    for (l, t, _, _) in &vars.vars {
        for name in ["lora_a", "lora_b"] {
            let norm = match grads.next().flatten() {
                Some(g) => Some(g.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64),
                None => None,
            };
            out.push((format!("blk.{l}.{}.{name}", t.as_str()), norm));
        }
    }
    Ok(out)
}

/// One LoRA variable's analytic gradient checked against finite differences of the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientCheck {
    /// The variable (`blk.{layer}.{target}.lora_{a|b}`).
    pub name: String,
    /// The backward pass's directional derivative `∇L·u` along a unit direction `u` (half
    /// along the gradient, half random, from the seed).
    pub analytic: f64,
    /// `(L(θ + εu) − L(θ − εu)) / 2ε` from two training-mode forward passes.
    pub numeric: f64,
}

/// Checks the training backward pass by central finite differences: for every LoRA variable
/// (with `B` initialised to small random values so that both `A` and `B` receive signal, and
/// no dropout), the analytic directional derivative of the loss on `example` against
/// `(L(θ + εu) − L(θ − εu)) / 2ε`. The loss is computed in f32, so choose `eps` near `1e-2`.
///
/// # Errors
///
/// [`LocalError`] for an invalid config or example, or a variable that got no gradient.
pub fn lora_gradient_check(
    model: &LocalModel,
    example: &Conversation,
    lora: &LoraConfig,
    seed: u64,
    eps: f64,
) -> Result<Vec<GradientCheck>, LocalError> {
    lora.validate(model.hparams().n_layer)?;
    let lora = LoraConfig {
        dropout: 0.0,
        ..lora.clone()
    };
    let vars = AdapterVars::init(model, &lora, seed, 0.1)?;
    let ex = encode_examples(model, std::slice::from_ref(example), lora.max_seq_len)
        .map_err(|e| LocalError::config("example", e.to_string()))?;
    // The same gradient path as training (the packed CPU step on the CPU).
    let weights = model.weights().clone();
    let mut path = StepPath::new(&weights);
    let mut no_dropout = seeded_rng(derive_seed(seed, "lora/dropout"));
    let (_, grads) = micro_step(model, &vars, &[&ex[0]], &mut no_dropout, 1.0, &mut path)?;
    let mut loss = || -> Result<f64, LocalError> {
        Ok(micro_step(model, &vars, &[&ex[0]], &mut no_dropout, 1.0, &mut path)?.0)
    };
    let mut grads = grads.into_iter();
    let mut rng = seeded_rng(derive_seed(seed, "lora/gradient-check"));
    let mut out = Vec::new();
    for (l, t, a, b) in &vars.vars {
        for (part, v) in [("lora_a", a), ("lora_b", b)] {
            let name = format!("blk.{l}.{}.{part}", t.as_str());
            let g = grads
                .next()
                .flatten()
                .ok_or_else(|| LocalError::config("lora", format!("{name} got no gradient")))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let unit = |u: Vec<f64>| {
                let n = u.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
                u.into_iter().map(|x| x / n).collect::<Vec<f64>>()
            };
            let along = unit(g.iter().map(|&x| x as f64).collect());
            let random = unit((0..g.len()).map(|_| rng.random_range(-1.0..1.0)).collect());
            let u = unit(along.iter().zip(&random).map(|(x, y)| x + y).collect());
            let analytic = g.iter().zip(&u).map(|(&g, u)| g as f64 * u).sum();
            let theta = v.as_tensor().copy()?;
            let du = Tensor::from_vec(
                u.iter().map(|&x| (x * eps) as f32).collect::<Vec<f32>>(),
                theta.shape(),
                theta.device(),
            )?;
            v.set(&(&theta + &du)?)?;
            let plus = loss()?;
            v.set(&(&theta - &du)?)?;
            let minus = loss()?;
            v.set(&theta)?;
            out.push(GradientCheck {
                name,
                analytic,
                numeric: (plus - minus) / (2.0 * eps),
            });
        }
    }
    Ok(out)
}
