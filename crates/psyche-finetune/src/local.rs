//! Local LoRA on the embedded model, behind the same [`FineTuner`](psyche_core::FineTuner)
//! trait: [`LoraTrainer`] (from `psyche-local`, engine `"psyche-local-lora"`) plugs straight
//! into `psyche_runner::training::train_runs`. This module maps the papers' LoRA recipes
//! ([`LoraSpec`]) onto the local trainer's [`LoraConfig`].
//!
//! Rank-stabilised LoRA scales updates by `alpha / sqrt(r)` where the local trainer scales by
//! `alpha / r`; [`lora_config`] converts (`alpha_local = alpha × sqrt(r)`) so the update scale
//! matches the recipe.

use psyche_core::FineTuneConfig;

pub use psyche_local::{ENGINE, LoraConfig, LoraTarget, LoraTrainer};

use crate::error::{Result, TrainingError};
use crate::presets::{LoraSpec, Preset};

/// The local trainer's config for a recipe.
///
/// # Errors
///
/// [`TrainingError::Config`] naming `target_modules` when a module has no local equivalent.
pub fn lora_config(spec: &LoraSpec) -> Result<LoraConfig> {
    let targets = spec
        .target_modules
        .iter()
        .map(|m| {
            serde_json::from_value::<LoraTarget>(serde_json::Value::String(m.clone())).map_err(
                |_| {
                    TrainingError::config(
                        "target_modules",
                        format!("`{m}` has no local equivalent (q/k/v/o/gate/up/down_proj)"),
                    )
                },
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let alpha = if spec.use_rslora {
        spec.alpha * f64::from(spec.r).sqrt()
    } else {
        spec.alpha
    };
    Ok(LoraConfig {
        rank: spec.r as usize,
        alpha,
        dropout: spec.dropout as f32,
        targets,
        layers: spec
            .layers_to_transform
            .as_ref()
            .map(|l| l.iter().map(|&x| x as usize).collect()),
        weight_decay: spec.weight_decay,
        warmup_steps: spec.warmup_steps as usize,
        gradient_accumulation: spec.gradient_accumulation_steps as usize,
        max_seq_len: spec.max_seq_length as usize,
        progress: false,
        ..LoraConfig::default()
    })
}

/// A preset's recipe for one seed, retargeted at a local `base_model`.
///
/// # Errors
///
/// [`TrainingError::Config`] when the preset has no LoRA recipe or a module has no local equivalent.
pub fn local_config(preset: &Preset, base_model: &str, seed: u64) -> Result<FineTuneConfig> {
    let spec = preset.lora.as_ref().ok_or_else(|| {
        TrainingError::config("preset", format!("`{}` has no LoRA recipe", preset.id))
    })?;
    let lora = lora_config(spec)?;
    let mut cfg = FineTuneConfig::new(base_model, seed);
    cfg.epochs = Some(preset.epochs);
    cfg.batch_size = Some(spec.per_device_batch_size);
    cfg.learning_rate = preset.learning_rate.or(Some(lora.learning_rate));
    cfg.extra = lora.to_extra();
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_map_onto_the_local_trainer() {
        let em = Preset::get("em-open-qwen-coder").unwrap();
        let cfg = local_config(&em, "smollm2-135m", 3).unwrap();
        let lora = LoraConfig::from_extra(&cfg.extra).unwrap();
        assert_eq!(lora.rank, 32);
        // rs-LoRA: alpha/sqrt(r) = 64/sqrt(32) must equal alpha_local/r.
        assert!((lora.alpha / 32.0 - 64.0 / 32f64.sqrt()).abs() < 1e-12);
        assert_eq!(lora.targets, LoraTarget::ALL.to_vec());
        assert_eq!((cfg.batch_size, lora.gradient_accumulation), (Some(2), 8));
        assert_eq!(cfg.learning_rate, Some(1e-5));
        let r1 = local_config(&Preset::get("mo-rank1-llama1b").unwrap(), "m", 0).unwrap();
        let lora = LoraConfig::from_extra(&r1.extra).unwrap();
        assert_eq!(
            (lora.rank, lora.targets.clone(), lora.layers.clone()),
            (1, vec![LoraTarget::Down], Some(vec![3]))
        );
        assert!(local_config(&Preset::get("tmay-risk-openai").unwrap(), "m", 0).is_err());
        let mut bad = LoraSpec::emergent_misalignment();
        bad.target_modules = vec!["lm_head".into()];
        assert!(
            lora_config(&bad)
                .unwrap_err()
                .to_string()
                .contains("lm_head")
        );
    }
}
