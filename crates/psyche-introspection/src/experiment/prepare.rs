//! What every stage shares: the prepared samples, the run's ledger of timings, warnings and
//! fine-tunes, training through [`train_runs`], calibration and entropy self-prediction.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use psyche_core::{Conversation, FineTuneConfig, Model, Sample, TrainedModel, derive_seed};
use psyche_judges::Property;
use psyche_runner::training::{TrainingJob, train_runs};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{FineTuneRecord, LookingInward};
use crate::calibration::{CalibrationResult, calibrate};
use crate::collect::{HypotheticalAnswers, ObjectCounts};
use crate::entropy::{EntropySelfPrediction, EntropySelfPredictionResult};
use crate::error::{IntrospectionError, Result};
use crate::family::Family;
use crate::hypothetical::hypothetical_samples;
use crate::solve::ObjectSolver;

pub(super) struct Prepared {
    pub(super) train_objects: Vec<Sample>,
    pub(super) held_objects: Vec<Sample>,
    pub(super) train_hyps: Vec<Sample>,
    pub(super) held_hyps: Vec<Sample>,
}

/// What a run accumulates besides the per-seed results.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Seconds per step.
    pub(super) timings: BTreeMap<String, f64>,
    /// Warnings for the result.
    pub(super) warnings: Vec<String>,
    /// Object-level counts per pass.
    pub(super) object_counts: BTreeMap<String, ObjectCounts>,
    /// The fine-tunes, in training order.
    pub(super) fine_tunes: Vec<FineTuneRecord>,
}

impl Ledger {
    /// Adds the time since `started` to step `name`.
    pub(super) fn step(&mut self, name: &str, started: Instant) {
        *self.timings.entry(name.to_owned()).or_default() += started.elapsed().as_secs_f64();
    }
}

impl LookingInward {
    pub(super) fn prepare(&self) -> Result<Prepared> {
        let seed = self.config.data_seed;
        let objects = |families: &[Family], n: usize| -> Result<Vec<Sample>> {
            let mut out = Vec::new();
            for f in families {
                out.extend(self.config.shift.apply(&f.samples(n, seed)?, seed));
            }
            Ok(out)
        };
        let train_objects = objects(&self.train, self.config.sizes.train_items)?;
        let held_objects = objects(&self.held_out, self.config.sizes.held_out_items)?;
        let props = |families: &[Family]| -> Vec<Property> {
            let mut v: Vec<Property> = Vec::new();
            for p in families.iter().flat_map(|f| f.properties.iter()) {
                if !v.contains(p) {
                    v.push(p.clone());
                }
            }
            v
        };
        let train_hyps = hypothetical_samples(&train_objects, &props(&self.train), &self.template)?;
        let held_hyps =
            hypothetical_samples(&held_objects, &props(&self.held_out), &self.template)?;
        Ok(Prepared {
            train_objects,
            held_objects,
            train_hyps,
            held_hyps,
        })
    }

    pub(super) fn object_solver(&self) -> ObjectSolver {
        ObjectSolver::default().samples(self.config.object_samples)
    }

    pub(super) fn seed_config(&self, base_model: &str, seed: u64) -> FineTuneConfig {
        let mut c = self.config.fine_tune.clone();
        c.base_model = base_model.to_owned();
        c.seed = seed;
        c
    }

    pub(super) fn write_set(&self, name: &str, data: &[Conversation]) -> Result<()> {
        if let Some(dir) = &self.run.dir {
            std::fs::create_dir_all(dir).map_err(|e| IntrospectionError::io(dir, e))?;
            let rows: Vec<psyche_core::ChatExample> = data
                .iter()
                .cloned()
                .map(psyche_core::ChatExample::from)
                .collect();
            psyche_core::write_chat_jsonl(dir.join(format!("{name}.jsonl")), &rows)?;
        }
        Ok(())
    }

    /// Fine-tunes `jobs` through [`train_runs`] (the one loop over arms and seeds), records
    /// each in `ledger` under `role`, and loads the trained models, in the jobs' order.
    pub(super) async fn train(
        &self,
        role: &str,
        jobs: &[TrainingJob],
        ledger: &mut Ledger,
    ) -> Result<Vec<(TrainedModel, Arc<dyn Model>)>> {
        let runs = train_runs(self.tuner.as_ref(), jobs, self.fine_tune_concurrency).await?;
        let mut out = Vec::with_capacity(runs.len());
        for (run, job) in runs.into_iter().zip(jobs) {
            ledger
                .fine_tunes
                .push(FineTuneRecord::new(role, &run.trained, job.data.len()));
            let model = self.tuner.load(&run.trained).await?;
            out.push((run.trained, model));
        }
        Ok(out)
    }

    /// Calibration of `predictor` against `target`'s behaviour, recorded under the output
    /// directory as `calibration-<label>.json` (keyed by the models, items and options), so a
    /// rerun reads a finished calibration back instead of asking the models again.
    pub(super) async fn calibrate_for(
        &self,
        label: &str,
        predictor: &dyn Model,
        target: &dyn Model,
        p: &Prepared,
        answers: &HypotheticalAnswers,
    ) -> Option<CalibrationResult> {
        let n = self.config.sizes.calibration_items;
        if n == 0 {
            return None;
        }
        let property = Property::from_name(&self.config.calibration_property).ok()?;
        let objects: Vec<Sample> = p
            .held_objects
            .iter()
            .filter(|o| o.meta_str("task") == Some(self.config.calibration_family.as_str()))
            .take(n)
            .cloned()
            .collect();
        let ids: std::collections::HashSet<&str> = objects.iter().map(|o| o.id.as_str()).collect();
        let hyps: Vec<Sample> = p
            .held_hyps
            .iter()
            .filter(|h| {
                h.meta_str(crate::hypothetical::OBJECT_ID_KEY)
                    .is_some_and(|o| ids.contains(o))
            })
            .cloned()
            .collect();
        let mut opts = self.calibration.clone();
        opts.seed = derive_seed(self.config.data_seed, "calibration");
        let key = serde_json::json!({
            "predictor": predictor.id(),
            "target": target.id(),
            "property": property.name(),
            "hypotheticals": hyps.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            "options": opts,
        });
        let cache = self
            .run
            .dir
            .as_ref()
            .map(|d| CalibrationCache::new(d.join(format!("calibration-{label}.json")), &key));
        if let Some(found) = cache.as_ref().and_then(CalibrationCache::read) {
            return Some(found);
        }
        let result = match calibrate(
            predictor,
            target,
            &objects,
            &hyps,
            Some(answers),
            &property,
            &opts,
        )
        .await
        {
            Ok(c) => Some(c),
            Err(e) => Some(CalibrationResult {
                property: property.name(),
                items: 0,
                object_method: None,
                hypothetical_method: String::new(),
                valid_mass: None,
                pairs: Vec::new(),
                curve: None,
                error: Some(e.to_string()),
            }),
        };
        if let (Some(cache), Some(c)) = (&cache, &result)
            && c.error.is_none()
        {
            cache.write(c);
        }
        result
    }

    pub(super) async fn entropy_sp(
        &self,
        label: &str,
        model: Arc<dyn Model>,
        p: &Prepared,
    ) -> Option<EntropySelfPredictionResult> {
        if !self.config.entropy_self_prediction {
            return None;
        }
        let step = EntropySelfPrediction {
            method: self.config.answer_method.clone(),
            template: Some(self.template.clone()),
            ..EntropySelfPrediction::default()
        };
        match step
            .run(label, model, &p.held_objects, &self.run, &self.config.stats)
            .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "entropy self-prediction failed");
                None
            }
        }
    }
}

/// A finished calibration on disk, valid for one key (models, items, options).
struct CalibrationCache {
    path: PathBuf,
    key: String,
}

#[derive(Serialize, Deserialize)]
struct CachedCalibration {
    key: String,
    result: CalibrationResult,
}

impl CalibrationCache {
    fn new(path: PathBuf, key: &serde_json::Value) -> Self {
        let key = hex::encode(Sha256::digest(key.to_string().as_bytes()));
        Self { path, key }
    }

    /// The recorded result when the file exists and holds this key.
    fn read(&self) -> Option<CalibrationResult> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        match serde_json::from_str::<CachedCalibration>(&text) {
            Ok(c) if c.key == self.key => {
                tracing::info!(file = %self.path.display(), "calibration finished before; read back");
                Some(c.result)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "unreadable calibration record; calibrating again");
                None
            }
        }
    }

    fn write(&self, result: &CalibrationResult) {
        let record = CachedCalibration {
            key: self.key.clone(),
            result: result.clone(),
        };
        let written = serde_json::to_vec_pretty(&record)
            .map_err(std::io::Error::other)
            .and_then(|body| psyche_core::write_atomic(&self.path, &body));
        if let Err(e) = written {
            tracing::warn!(file = %self.path.display(), error = %e, "could not record the calibration");
        }
    }
}
