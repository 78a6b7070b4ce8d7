//! One training micro-step: encoding examples, and the loss and LoRA gradients of a
//! micro-batch, through the packed CPU step or candle's autograd.

use std::collections::HashMap;

use candle_core::Tensor;
use psyche_core::{Conversation, FineTuneError};

use super::adapter::AdapterVars;
use crate::LocalError;
use crate::llama::{Ctx, DenseParts, LoraSet, LoraTarget, build_mask};
use crate::model::LocalModel;
use crate::train_cpu::{self, Packed, Workspace};

/// One encoded training example: the prompt's tokens, then the supervised answer's.
pub(crate) struct Example {
    pub(crate) ids: Vec<u32>,
    pub(crate) prompt_len: usize,
}

pub(super) fn encode_examples(
    model: &LocalModel,
    data: &[Conversation],
    max_seq_len: usize,
) -> Result<Vec<Example>, FineTuneError> {
    if data.is_empty() {
        return Err(FineTuneError::Data("no training examples".into()));
    }
    data.iter()
        .enumerate()
        .map(|(i, conv)| {
            let (prompt, answer) = model
                .chat_tokenizer()
                .encode_example(conv)
                .map_err(|e| FineTuneError::Data(format!("example {i}: {e}")))?;
            if answer.is_empty() {
                return Err(FineTuneError::Data(format!(
                    "example {i}: empty assistant answer"
                )));
            }
            let len = prompt.len() + answer.len();
            if len > max_seq_len {
                return Err(FineTuneError::Data(format!(
                    "example {i}: {len} tokens exceed max_seq_len {max_seq_len}"
                )));
            }
            let prompt_len = prompt.len();
            let mut ids = prompt;
            ids.extend(answer);
            Ok(Example { ids, prompt_len })
        })
        .collect()
}

/// Mean cross-entropy over the supervised tokens of a right-padded micro-batch, through
/// candle's autograd (the path for devices other than the CPU, and the reference the CPU step
/// is tested against).
pub(crate) fn batch_loss(
    model: &LocalModel,
    set: &LoraSet,
    batch: &[&Example],
    dropout_rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<Tensor, LocalError> {
    let w = model.weights();
    let t = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let pad = model
        .chat_tokenizer()
        .stop_ids
        .first()
        .copied()
        .unwrap_or(0);
    let mut ids = Vec::with_capacity(batch.len() * t);
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (r, e) in batch.iter().enumerate() {
        ids.extend_from_slice(&e.ids);
        ids.extend(std::iter::repeat_n(pad, t - e.ids.len()));
        for p in e.prompt_len..e.ids.len() {
            rows.push((r * t + p - 1) as u32);
            targets.push(e.ids[p]);
        }
    }
    let ids = Tensor::from_vec(ids, (batch.len(), t), &w.device)?;
    // Right padding: a causal mask suffices, real tokens never see the padding after them.
    let valid = vec![vec![true; t]; batch.len()];
    let mask = build_mask(&valid, t, &w.device)?;
    let mut ctx = Ctx {
        train: true,
        lora: Some(set),
        steering: None,
        steer_from: None,
        dropout_rng: Some(dropout_rng),
        hidden_last: false,
        positions: None,
    };
    let (h, _) = w.forward(&ids, mask.as_ref(), None, &mut ctx)?;
    let logits = w.logits_at(&h, &rows, true)?;
    let n = targets.len();
    let targets = Tensor::from_vec(targets, n, &w.device)?;
    Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
}

/// How a micro-batch's gradients are computed: the packed CPU step ([`train_cpu`]) when the
/// weights are dense f32 on the CPU, else candle's autograd over a padded batch.
pub(super) enum StepPath<'a> {
    Cpu(DenseParts<'a>, Box<Workspace>),
    Autograd,
}

impl<'a> StepPath<'a> {
    pub(super) fn new(weights: &'a crate::llama::Weights) -> Self {
        match weights.dense_parts() {
            Some(parts) => StepPath::Cpu(parts, Box::default()),
            None => StepPath::Autograd,
        }
    }
}

/// The loss of one micro-batch and the gradients of `scale · loss` for every LoRA variable, in
/// the order of `vars.vars` (`A` then `B` of each pair); `None` for a variable that received
/// no gradient.
pub(super) fn micro_step(
    model: &LocalModel,
    vars: &AdapterVars,
    batch: &[&Example],
    rng: &mut rand_chacha::ChaCha8Rng,
    scale: f64,
    path: &mut StepPath<'_>,
) -> Result<(f64, Vec<Option<Tensor>>), LocalError> {
    match path {
        StepPath::Cpu(parts, ws) => {
            let packed = Packed::new(batch.iter().map(|e| (e.ids.as_slice(), e.prompt_len)));
            let (loss, grads) =
                train_cpu::loss_and_grads(parts, &vars.set, &packed, Some(rng), scale as f32, ws)?;
            let device = &model.weights().device;
            let mut by_pair: HashMap<(usize, LoraTarget), train_cpu::PairGrad> = grads
                .into_iter()
                .map(|g| ((g.layer, g.target), g))
                .collect();
            let mut out = Vec::with_capacity(2 * vars.vars.len());
            for (l, t, a, b) in &vars.vars {
                match by_pair.remove(&(*l, *t)) {
                    Some(g) => {
                        out.push(Some(Tensor::from_vec(g.a, a.shape(), device)?));
                        out.push(Some(Tensor::from_vec(g.b, b.shape(), device)?));
                    }
                    None => out.extend([None, None]),
                }
            }
            Ok((loss, out))
        }
        StepPath::Autograd => {
            let loss = batch_loss(model, &vars.set, batch, rng)?;
            let value = loss.to_scalar::<f32>()? as f64;
            let grads = (&loss * scale)?.backward()?;
            let out = vars
                .vars
                .iter()
                .flat_map(|(_, _, a, b)| [a, b])
                .map(|v| grads.get(v.as_tensor()).cloned())
                .collect();
            Ok((value, out))
        }
    }
}
