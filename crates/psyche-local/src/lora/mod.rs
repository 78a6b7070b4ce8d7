//! LoRA fine-tuning: [`LoraConfig`], [`LoraTrainer`] (a [`FineTuner`](psyche_core::FineTuner)) and adapter files.
//!
//! Training runs our differentiable forward over the f32 base weights, with `A: [r, in]`,
//! `B: [out, r]` pairs on the chosen projections of the chosen layers (`Δy = α/r · x·Aᵀ·Bᵀ`,
//! `A ~ U(±1/√in)` from the seed, `B = 0`). The loss is the mean cross-entropy over the final
//! assistant turn's tokens (through its end-of-turn token) only. AdamW with linear warmup and
//! linear decay; `batch_size` examples per micro-batch and `gradient_accumulation` micro-batches
//! per optimiser step; data order, initialisation and dropout all derive from the seed.
//!
//! An adapter directory holds `adapter.safetensors` (tensors `blk.{layer}.{target}.lora_a` /
//! `.lora_b`) and `manifest.json` ([`AdapterManifest`]: base model hash, config, data hash,
//! seed, losses). Loading checks the base model's hash.

mod adapter;
mod config;
mod gradcheck;
mod optim;
mod step;
mod trainer;

pub use adapter::{AdapterManifest, read_manifest};
pub use config::{AUTO_BATCH_SIZE, AUTO_EPOCHS, ENGINE, LoraConfig};
pub use gradcheck::{GradientCheck, lora_gradient_check, lora_gradient_norms};
pub use trainer::LoraTrainer;

#[cfg(test)]
use adapter::AdapterVars;
#[cfg(test)]
use optim::lr_at;
#[cfg(test)]
use step::{Example, StepPath, micro_step};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SyntheticModel;
    use crate::config::LocalConfig;
    use crate::llama::LoraTarget;
    use crate::model::LocalModel;
    use candle_core::{Tensor, Var};
    use psyche_core::seeded_rng;
    use rand::Rng;

    /// A synthetic model written to a temporary file (kept alive by the returned guard).
    fn synthetic(spec: SyntheticModel) -> (tempfile::TempDir, LocalModel) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        spec.write(&path).unwrap();
        let model = LocalModel::load(&LocalConfig::new(path.to_string_lossy())).unwrap();
        (dir, model)
    }

    /// A Llama-architecture model with f32 weights, tied embeddings and grouped-query attention.
    fn llama_f32() -> SyntheticModel {
        SyntheticModel {
            architecture: "llama".into(),
            tied_embeddings: true,
            projection_types: std::array::from_fn(|_| "F32".to_owned()),
            mixed_down_type: None,
            embedding_type: "F32".into(),
            output_type: "F32".into(),
            rope_base: 10_000.0,
            rms_eps: 1e-5,
            ..SyntheticModel::qwen2_tiny()
        }
    }

    fn examples(vocab: usize, lens: &[(usize, usize)], seed: u64) -> Vec<Example> {
        let mut rng = seeded_rng(seed);
        lens.iter()
            .map(|&(len, prompt_len)| Example {
                ids: (0..len)
                    .map(|_| rng.random_range(0..vocab as u32))
                    .collect(),
                prompt_len,
            })
            .collect()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Loss and gradients of the CPU step and of candle's autograd agree.
    fn compare_paths(model: &LocalModel, cfg: &LoraConfig, data: &[Example], scale: f64) {
        let vars = AdapterVars::init(model, cfg, 3, 0.05).unwrap();
        let batch: Vec<&Example> = data.iter().collect();
        let weights = model.weights().clone();
        let mut cpu = StepPath::new(&weights);
        assert!(matches!(cpu, StepPath::Cpu(..)));
        let mut out = Vec::new();
        for path in [&mut cpu, &mut StepPath::Autograd] {
            let mut rng = seeded_rng(11);
            out.push(micro_step(model, &vars, &batch, &mut rng, scale, path).unwrap());
        }
        let ((l_cpu, g_cpu), (l_ref, g_ref)) = (&out[0], &out[1]);
        assert!(
            (l_cpu - l_ref).abs() < 1e-4 * l_ref.abs().max(1.0),
            "{l_cpu} vs {l_ref}"
        );
        assert_eq!(g_cpu.len(), 2 * vars.vars.len());
        for (i, (a, b)) in g_cpu.iter().zip(g_ref).enumerate() {
            let (a, b) = (values(a.as_ref().unwrap()), values(b.as_ref().unwrap()));
            let peak = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(peak > 0.0, "variable {i} has a zero reference gradient");
            let diff = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                diff <= 2e-3 * peak,
                "variable {i}: max |Δ| {diff} vs peak {peak}"
            );
        }
    }

    #[test]
    fn cpu_step_matches_autograd_on_llama() {
        let (_dir, model) = synthetic(llama_f32());
        let cfg = LoraConfig {
            rank: 2,
            alpha: 4.0,
            targets: LoraTarget::ALL.to_vec(),
            ..LoraConfig::default()
        };
        // Different lengths: the reference pads, the CPU step packs.
        let data = examples(model.hparams().vocab_size, &[(9, 6), (17, 12), (4, 2)], 1);
        compare_paths(&model, &cfg, &data, 0.5);
    }

    #[test]
    fn cpu_step_matches_autograd_on_qwen2_with_some_layers() {
        // Biases, half-split rotary embeddings, an untied head; no adapter on block 0, so the
        // backward pass stops at block 1.
        let (_dir, model) = synthetic(SyntheticModel::qwen2_tiny());
        let cfg = LoraConfig {
            rank: 3,
            targets: vec![LoraTarget::Q, LoraTarget::V, LoraTarget::Down],
            layers: Some(vec![1, 2]),
            ..LoraConfig::default()
        };
        let data = examples(model.hparams().vocab_size, &[(12, 7), (6, 5)], 2);
        compare_paths(&model, &cfg, &data, 1.0);
    }

    #[test]
    fn cpu_step_matches_autograd_with_dropout() {
        // Equal lengths: no padding, so both paths draw the same dropout masks.
        let (_dir, model) = synthetic(llama_f32());
        let cfg = LoraConfig {
            rank: 2,
            dropout: 0.3,
            targets: vec![LoraTarget::K, LoraTarget::O, LoraTarget::Up],
            ..LoraConfig::default()
        };
        let data = examples(model.hparams().vocab_size, &[(10, 6), (10, 3)], 3);
        compare_paths(&model, &cfg, &data, 1.0);
    }

    #[test]
    fn cpu_step_gradient_matches_finite_differences() {
        let (_dir, model) = synthetic(llama_f32());
        let cfg = LoraConfig {
            rank: 2,
            targets: vec![LoraTarget::Q, LoraTarget::Gate],
            ..LoraConfig::default()
        };
        let data = examples(model.hparams().vocab_size, &[(11, 5), (7, 4)], 4);
        let batch: Vec<&Example> = data.iter().collect();
        let vars = AdapterVars::init(&model, &cfg, 5, 0.05).unwrap();
        let weights = model.weights().clone();
        let mut path = StepPath::new(&weights);
        let mut rng = seeded_rng(0);
        let (_, grads) = micro_step(&model, &vars, &batch, &mut rng, 1.0, &mut path).unwrap();
        let mut loss_at = |var: &Var, at: usize, value: f32| {
            let mut v = values(var.as_tensor());
            v[at] = value;
            var.set(&Tensor::from_vec(v, var.shape(), &weights.device).unwrap())
                .unwrap();
            micro_step(&model, &vars, &batch, &mut rng, 1.0, &mut path)
                .unwrap()
                .0
        };
        // The largest gradient entry of a few A and B matrices, by central differences.
        let list: Vec<&Var> = vars.vars.iter().flat_map(|(_, _, a, b)| [a, b]).collect();
        for i in [0, 1, list.len() - 2, list.len() - 1] {
            let g = values(grads[i].as_ref().unwrap());
            let (at, &want) = g
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()))
                .unwrap();
            let orig = values(list[i].as_tensor())[at];
            let eps = 1e-2;
            let up = loss_at(list[i], at, orig + eps);
            let down = loss_at(list[i], at, orig - eps);
            loss_at(list[i], at, orig);
            let fd = (up - down) / (2.0 * eps as f64);
            assert!(
                (fd - want as f64).abs() < 0.03 * (want.abs() as f64) + 1e-4,
                "variable {i}[{at}]: finite difference {fd} vs analytic {want}"
            );
        }
    }

    #[test]
    fn schedule_warms_up_then_decays_linearly() {
        let lrs: Vec<f64> = (0..6).map(|s| lr_at(s, 6, 2, 1.0)).collect();
        assert!((lrs[0] - 1.0 / 3.0).abs() < 1e-12);
        assert!((lrs[1] - 2.0 / 3.0).abs() < 1e-12);
        assert!((lrs[2] - 1.0).abs() < 1e-12);
        assert!(lrs[3] < lrs[2] && lrs[5] > 0.0 && lrs[5] < lrs[4]);
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut extra = serde_json::Map::new();
        extra.insert("rank".into(), serde_json::json!("eight"));
        let err = LoraConfig::from_extra(&extra).unwrap_err().to_string();
        assert!(err.contains("rank"), "{err}");
        let mut extra = serde_json::Map::new();
        extra.insert("targets".into(), serde_json::json!(["q_proj", "down"]));
        let cfg = LoraConfig::from_extra(&extra).unwrap();
        assert_eq!(cfg.targets, vec![LoraTarget::Q, LoraTarget::Down]);
        let bad = LoraConfig {
            layers: Some(vec![40]),
            ..LoraConfig::default()
        };
        assert!(
            bad.validate(30)
                .unwrap_err()
                .to_string()
                .contains("layer 40")
        );
        let mut extra = serde_json::Map::new();
        extra.insert("rnak".into(), serde_json::json!(4));
        assert!(LoraConfig::from_extra(&extra).is_err());
    }
}
