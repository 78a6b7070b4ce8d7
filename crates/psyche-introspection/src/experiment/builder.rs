//! [`LookingInwardBuilder`]: binds the settings to the models, the fine-tuner and the output
//! directory, and checks them.

use std::path::PathBuf;
use std::sync::Arc;

use psyche_core::{FineTuner, Model, Split};
use psyche_judges::Property;
use psyche_runner::ProgressMode;

use super::{CrossModel, DEFAULT_PERSONA, LookingInward, LookingInwardConfig};
use crate::calibration::CalibrationOptions;
use crate::collect::RunOptions;
use crate::error::{IntrospectionError, Result};
use crate::family::{Family, split_overlap};
use crate::hypothetical::HypotheticalTemplate;

/// Builder of a [`LookingInward`] experiment ([`LookingInward::builder`]).
pub struct LookingInwardBuilder {
    config: LookingInwardConfig,
    subject: Option<Arc<dyn Model>>,
    tuner: Option<Arc<dyn FineTuner>>,
    cross: CrossModel,
    families: Option<(Vec<Family>, Vec<Family>)>,
    template: HypotheticalTemplate,
    calibration: CalibrationOptions,
    run: RunOptions,
    allow_split_overlap: bool,
    fine_tune_concurrency: usize,
}

impl std::fmt::Debug for LookingInwardBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookingInwardBuilder")
            .field("subject", &self.subject.as_ref().map(|m| m.id().to_owned()))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LookingInwardBuilder {
    pub(super) fn new(config: LookingInwardConfig) -> Self {
        Self {
            config,
            subject: None,
            tuner: None,
            cross: CrossModel::persona(DEFAULT_PERSONA),
            families: None,
            template: HypotheticalTemplate::default(),
            calibration: CalibrationOptions::default(),
            run: RunOptions::default(),
            allow_split_overlap: false,
            fine_tune_concurrency: 1,
        }
    }

    /// The model the experiment evaluates and fine-tunes (required).
    #[must_use]
    pub fn subject(mut self, model: Arc<dyn Model>) -> Self {
        self.subject = Some(model);
        self
    }

    /// The fine-tuner (required); wrap it in
    /// [`Resumable`](psyche_runner::training::Resumable) so that a rerun reuses finished
    /// fine-tunes.
    #[must_use]
    pub fn tuner(mut self, tuner: Arc<dyn FineTuner>) -> Self {
        self.tuner = Some(tuner);
        self
    }

    /// The second model (default: the persona setup with [`DEFAULT_PERSONA`]).
    #[must_use]
    pub fn cross(mut self, cross: CrossModel) -> Self {
        self.cross = cross;
        self
    }

    /// Uses these training and held-out families instead of the configured built-in names.
    /// [`build`](Self::build) refuses held-out families that share items with the training
    /// families (see [`split_overlap`]) unless
    /// [`allow_split_overlap`](Self::allow_split_overlap) is set.
    #[must_use]
    pub fn families(mut self, train: Vec<Family>, held_out: Vec<Family>) -> Self {
        self.families = Some((train, held_out));
        self
    }

    /// Runs even when held-out families share items with the training families, with a
    /// warning that gives the counts (default: refuse, since a held-out score on items the
    /// model was trained on measures memory, not generalisation).
    #[must_use]
    pub fn allow_split_overlap(mut self, allow: bool) -> Self {
        self.allow_split_overlap = allow;
        self
    }

    /// Sets the hypothetical wording.
    #[must_use]
    pub fn template(mut self, template: HypotheticalTemplate) -> Self {
        self.template = template;
        self
    }

    /// Calibration options (the family and property are the config's).
    #[must_use]
    pub fn calibration_options(mut self, options: CalibrationOptions) -> Self {
        self.calibration = options;
        self
    }

    /// Writes run logs and fine-tuning sets under `dir`, so that a rerun resumes every
    /// collection pass.
    #[must_use]
    pub fn out(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run.dir = Some(dir.into());
        self
    }

    /// Units of work in flight per collection pass.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.run.concurrency = n;
        self
    }

    /// Fine-tunes in flight in each training stage (default 1; raise it for remote engines).
    #[must_use]
    pub fn fine_tune_concurrency(mut self, n: usize) -> Self {
        self.fine_tune_concurrency = n.max(1);
        self
    }

    /// Progress display of each pass.
    #[must_use]
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.run.progress = mode;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`IntrospectionError::Config`] naming the field: no subject or fine-tuner, an unknown
    /// family or property name, no training or held-out family, a family in the wrong split,
    /// no property left for a family, overlapping splits, no seed, zero sizes, a calibration
    /// family that is not held out, or a threshold outside its range.
    pub fn build(self) -> Result<LookingInward> {
        let subject = self.subject.ok_or_else(|| {
            IntrospectionError::config("subject", "no subject model (builder.subject(model))")
        })?;
        let tuner = self.tuner.ok_or_else(|| {
            IntrospectionError::config("tuner", "no fine-tuner (builder.tuner(tuner))")
        })?;
        let mut config = self.config;
        let keep: Option<Vec<Property>> = if config.properties.is_empty() {
            None
        } else {
            Some(
                config
                    .properties
                    .iter()
                    .map(|name| {
                        Property::from_name(name)
                            .map_err(|e| IntrospectionError::config("properties", e.to_string()))
                    })
                    .collect::<Result<_>>()?,
            )
        };
        let (train, held_out) = match self.families {
            Some(families) => families,
            None => (
                builtins(&config.train_families, "train_families")?,
                builtins(&config.held_out_families, "held_out_families")?,
            ),
        };
        let train = fix(train, Split::Train, "train_families", keep.as_deref())?;
        let held_out = fix(
            held_out,
            Split::HeldOut,
            "held_out_families",
            keep.as_deref(),
        )?;
        check_overlap(&train, &held_out, self.allow_split_overlap)?;
        check(&config)?;
        let calibration_property = Property::from_name(&config.calibration_property)
            .map_err(|e| IntrospectionError::config("calibration_property", e.to_string()))?;
        if config.sizes.calibration_items > 0
            && !held_out.iter().any(|f| {
                f.name == config.calibration_family && f.properties.contains(&calibration_property)
            })
        {
            return Err(IntrospectionError::config(
                "calibration",
                format!(
                    "held-out family `{}` with property `{}` is not part of the experiment",
                    config.calibration_family, config.calibration_property
                ),
            ));
        }
        let mut names: Vec<String> = train
            .iter()
            .chain(&held_out)
            .flat_map(|f| f.properties.iter().map(Property::name))
            .collect();
        names.sort();
        names.dedup();
        config.train_families = train.iter().map(|f| f.name.clone()).collect();
        config.held_out_families = held_out.iter().map(|f| f.name.clone()).collect();
        config.properties = names;
        config.template = self.template.config();
        config.cross = self.cross.describe();
        if config.fine_tune.base_model.is_empty() {
            config.fine_tune.base_model = subject.id().to_owned();
        }
        Ok(LookingInward {
            subject,
            tuner,
            cross: self.cross,
            train,
            held_out,
            template: self.template,
            calibration: self.calibration,
            run: self.run,
            fine_tune_concurrency: self.fine_tune_concurrency,
            config,
        })
    }
}

fn builtins(names: &[String], field: &str) -> Result<Vec<Family>> {
    names
        .iter()
        .map(|name| {
            Family::builtin(name).map_err(|e| IntrospectionError::config(field, e.to_string()))
        })
        .collect()
}

/// Checks each family's split and keeps the asked-for properties.
fn fix(
    families: Vec<Family>,
    split: Split,
    field: &str,
    keep: Option<&[Property]>,
) -> Result<Vec<Family>> {
    if families.is_empty() {
        return Err(IntrospectionError::config(
            field,
            "at least one family is needed",
        ));
    }
    families
        .into_iter()
        .map(|f| {
            if f.split != split {
                return Err(IntrospectionError::config(
                    field,
                    format!(
                        "family `{}` has split `{}`, expected `{split}`",
                        f.name, f.split
                    ),
                ));
            }
            match keep {
                Some(keep) => f.with_properties_in(keep),
                None => Ok(f),
            }
        })
        .collect()
}

fn check_overlap(train: &[Family], held_out: &[Family], allow: bool) -> Result<()> {
    let overlaps: Vec<String> = split_overlap(train, held_out)
        .into_iter()
        .filter(|o| o.overlapping > 0)
        .map(|o| {
            format!(
                "`{}`: {} of {} entries (e.g. {})",
                o.family,
                o.overlapping,
                o.entries,
                o.examples.join(", ")
            )
        })
        .collect();
    if overlaps.is_empty() {
        return Ok(());
    }
    let message = format!(
        "held-out families share items with the training families: {}",
        overlaps.join("; ")
    );
    if !allow {
        return Err(IntrospectionError::config(
            "held_out_families",
            format!("{message} (remove them, or allow_split_overlap(true) to run anyway)"),
        ));
    }
    tracing::warn!("{message}");
    Ok(())
}

fn check(config: &LookingInwardConfig) -> Result<()> {
    if config.seeds.is_empty() {
        return Err(IntrospectionError::config(
            "seeds",
            "at least one seed is needed",
        ));
    }
    if let Some((i, seed)) = config
        .seeds
        .iter()
        .enumerate()
        .find(|(i, s)| config.seeds[..*i].contains(s))
    {
        return Err(IntrospectionError::config(
            "seeds",
            format!(
                "seed {seed} is given twice (at positions {} and {})",
                config.seeds.iter().position(|s| s == seed).unwrap_or(0) + 1,
                i + 1
            ),
        ));
    }
    let sizes = &config.sizes;
    if sizes.train_items == 0 || sizes.held_out_items == 0 || sizes.per_group_cap == 0 {
        return Err(IntrospectionError::config(
            "sizes",
            "item counts must be at least 1",
        ));
    }
    if !(config.alike_threshold > 0.0 && config.alike_threshold <= 1.0) {
        return Err(IntrospectionError::config(
            "alike_threshold",
            "must be in (0, 1]",
        ));
    }
    if !(config.entropy_threshold > 0.0 && config.entropy_threshold < 1.0) {
        return Err(IntrospectionError::config(
            "entropy_threshold",
            "must be in (0, 1)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::{held_out_families, train_families};
    use async_trait::async_trait;
    use psyche_core::{Capabilities, FineTuneError, GenerateRequest, GenerateResponse, ModelError};
    use psyche_core::{Conversation, FineTuneConfig, TrainedModel};

    /// Never asked anything: these tests only build experiments.
    struct Unused;

    #[async_trait]
    impl Model for Unused {
        fn id(&self) -> &str {
            "unused"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::default()
        }
        async fn generate(
            &self,
            _: &GenerateRequest,
        ) -> std::result::Result<GenerateResponse, ModelError> {
            unreachable!("building an experiment calls no model")
        }
    }

    #[async_trait]
    impl FineTuner for Unused {
        fn engine(&self) -> &str {
            "unused"
        }
        async fn fine_tune(
            &self,
            _: &[Conversation],
            _: &FineTuneConfig,
        ) -> std::result::Result<TrainedModel, FineTuneError> {
            unreachable!("building an experiment trains nothing")
        }
        async fn load(
            &self,
            _: &TrainedModel,
        ) -> std::result::Result<Arc<dyn Model>, FineTuneError> {
            unreachable!("building an experiment loads nothing")
        }
    }

    /// Defect (issue 25.7): user families were never checked against the training families.
    /// A held-out family whose words occur in training items is refused, with counts, unless
    /// the overlap is allowed explicitly.
    #[test]
    fn held_out_families_overlapping_training_items_are_refused() {
        let leaky = |words: Vec<String>| {
            let mut f = Family::builtin("english_words").unwrap();
            f.source = crate::family::ItemSource::WordSequence {
                words: Arc::new(words),
                min_len: 1,
                max_len: 2,
            };
            f
        };
        let colour = Family::builtin("colours")
            .unwrap()
            .source
            .vocabulary()
            .into_iter()
            .next()
            .unwrap();
        let builder = |allow: bool, words: Vec<String>| {
            LookingInward::builder(LookingInwardConfig::small())
                .subject(Arc::new(Unused))
                .tuner(Arc::new(Unused))
                .families(train_families(false), {
                    // english_words replaced: calibration still finds `animals` held out.
                    let mut held = held_out_families();
                    held[1] = leaky(words);
                    held
                })
                .allow_split_overlap(allow)
                .build()
        };
        let Err(err) = builder(false, vec![colour.clone(), "zebrafinch".into()]) else {
            panic!("an overlapping held-out family is refused");
        };
        let msg = err.to_string();
        assert!(
            msg.contains("held_out_families")
                && msg.contains("1 of 2 entries")
                && msg.contains(&colour),
            "{msg}"
        );
        assert!(builder(true, vec![colour, "zebrafinch".into()]).is_ok());
        assert!(builder(false, vec!["zebrafinch".into(), "quokkaish".into()]).is_ok());
        // The built-in splits pass as they are.
        assert!(
            LookingInward::builder(LookingInwardConfig::small())
                .subject(Arc::new(Unused))
                .tuner(Arc::new(Unused))
                .build()
                .is_ok()
        );
    }
}
