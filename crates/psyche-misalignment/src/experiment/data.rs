//! Both arms' training data from one teacher, per data seed, recorded under `<out>/data` so a
//! rerun with the same settings reuses it instead of sampling the teacher again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use psyche_core::{Conversation, DataSeeds};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{DatasetInfo, EmergentMisalignment, arm};
use crate::error::{MisalignmentError, Result};
use crate::training::harm::{self, HarmSettings, filter_harmful, harmfulness};
use crate::training::teacher::{AdvicePersona, Distilled, TeacherConfig, advice_arm, matched_arms};
use crate::training::write_dataset;

/// Data seed → (misaligned data, control data).
pub(super) type Built = BTreeMap<u64, (Vec<Conversation>, Vec<Conversation>)>;

/// What a finished data stage of one data seed leaves under `<out>/data`.
#[derive(Debug, Serialize, Deserialize)]
struct DataRecord {
    /// SHA-256 of everything the data depends on ([`EmergentMisalignment::data_key`]).
    key: String,
    infos: Vec<DatasetInfo>,
    misaligned: Vec<Conversation>,
    control: Vec<Conversation>,
}

fn dataset_info(
    arm: &str,
    data_seed: u64,
    d: &Distilled,
    used: &[Conversation],
    (unpaired, cut): (usize, usize),
    path: PathBuf,
) -> DatasetInfo {
    DatasetInfo {
        arm: arm.to_owned(),
        data_seed,
        seeds: Vec::new(),
        examples: used.len(),
        rejected: d.rejected.empty
            + d.rejected.filtered
            + d.rejected.leaked_system_prompt
            + d.rejected.not_harmful,
        not_harmful: d.rejected.not_harmful,
        unpaired,
        cut,
        harmfulness: None,
        teacher: d.teacher.clone(),
        system_prompt_hash: d.system_prompt_hash.clone(),
        path,
        samples: used
            .iter()
            .take(3)
            .map(|c| {
                (
                    c.last_user_text().unwrap_or_default().to_owned(),
                    c.messages()
                        .last()
                        .map(|m| m.content.clone())
                        .unwrap_or_default(),
                )
            })
            .collect(),
    }
}

impl EmergentMisalignment {
    /// Both arms' data for every data seed the runs use, each built once (or read back from
    /// its record), with the runs that train on it.
    pub(super) async fn all_data(
        &self,
        persona: &AdvicePersona,
    ) -> Result<(Built, Vec<DatasetInfo>)> {
        let cfg = &self.config;
        let mut datasets: Vec<DatasetInfo> = Vec::new();
        let mut built = Built::new();
        for &seed in &cfg.seeds {
            let data_seed = cfg.data_seeds.for_run(cfg.teacher.seed, seed);
            if built.contains_key(&data_seed) {
                for d in datasets.iter_mut().filter(|d| d.data_seed == data_seed) {
                    d.seeds.push(seed);
                }
                continue;
            }
            let (bad_data, good_data, mut infos) = self.recorded_data(persona, data_seed).await?;
            for d in &mut infos {
                d.seeds.push(seed);
            }
            datasets.extend(infos);
            built.insert(data_seed, (bad_data, good_data));
        }
        Ok((built, datasets))
    }

    /// The key of one data seed's record: the teacher, the judge when it filters or measures,
    /// and every setting the data depends on.
    fn data_key(&self, persona: &AdvicePersona, data_seed: u64) -> String {
        let cfg = &self.config;
        let judge = cfg.harm.as_ref().map(|_| self.judge.id());
        let inputs = serde_json::json!({
            "teacher": self.teacher.id(),
            "judge": judge,
            "domains": cfg.domains,
            "persona": persona,
            "teacher_config": TeacherConfig { concurrency: 0, ..cfg.teacher.clone() },
            "data_seed": data_seed,
            "max_train_examples": cfg.max_train_examples,
            "harm": cfg.harm,
            "name": cfg.name,
        });
        format!("{:x}", Sha256::digest(inputs.to_string().as_bytes()))
    }

    fn record_path(&self, data_seed: u64) -> PathBuf {
        let cfg = &self.config;
        cfg.out_dir
            .join("data")
            .join(format!("{}-data{data_seed}.record.json", cfg.name))
    }

    /// [`Self::build_data`], or its record when one with the same key exists.
    async fn recorded_data(
        &self,
        persona: &AdvicePersona,
        data_seed: u64,
    ) -> Result<(Vec<Conversation>, Vec<Conversation>, Vec<DatasetInfo>)> {
        let key = self.data_key(persona, data_seed);
        let path = self.record_path(data_seed);
        if let Some(record) = read_record(&path)?
            && record.key == key
        {
            tracing::info!(data_seed, path = %path.display(), "teacher data already built; reusing it");
            return Ok((record.misaligned, record.control, record.infos));
        }
        let (misaligned, control, infos) = self.build_data(persona, data_seed).await?;
        let record = DataRecord {
            key,
            infos,
            misaligned,
            control,
        };
        let body = serde_json::to_vec(&record)
            .map_err(|e| MisalignmentError::io(&path, std::io::Error::other(e)))?;
        psyche_core::write_atomic(&path, &body).map_err(|e| MisalignmentError::io(&path, e))?;
        Ok((record.misaligned, record.control, record.infos))
    }

    /// Both arms' datasets drawn with the teacher seed `data_seed`, cut to the same size and
    /// written under `data/` (with the data seed in their names when runs draw their own).
    async fn build_data(
        &self,
        persona: &AdvicePersona,
        data_seed: u64,
    ) -> Result<(Vec<Conversation>, Vec<Conversation>, Vec<DatasetInfo>)> {
        let cfg = &self.config;
        let teacher_cfg = TeacherConfig {
            seed: data_seed,
            ..cfg.teacher.clone()
        };
        tracing::info!(
            teacher = self.teacher.id(),
            data_seed,
            "building the misaligned dataset"
        );
        let mut bad =
            advice_arm(self.teacher.as_ref(), &cfg.domains, persona, &teacher_cfg).await?;
        if let Some(HarmSettings {
            threshold: Some(t),
            concurrency,
        }) = &cfg.harm
        {
            filter_harmful(self.judge.as_ref(), &mut bad, *t, *concurrency).await?;
        }
        tracing::info!(
            teacher = self.teacher.id(),
            data_seed,
            "building the aligned control dataset"
        );
        let good = advice_arm(
            self.teacher.as_ref(),
            &cfg.domains,
            &AdvicePersona::Control,
            &teacher_cfg,
        )
        .await?;
        let matched = matched_arms(&bad, &good, cfg.max_train_examples, data_seed);
        if matched.misaligned.is_empty() {
            return Err(MisalignmentError::config(
                "teacher",
                format!(
                    "the teacher produced no usable pairs (misaligned: {} kept, {} judged not \
                     harmful; control: {} kept)",
                    bad.examples.len(),
                    bad.rejected.not_harmful,
                    good.examples.len()
                ),
            ));
        }
        tracing::info!(
            pairs = matched.misaligned.len(),
            unpaired_misaligned = matched.unpaired_misaligned,
            unpaired_control = matched.unpaired_control,
            cut = matched.cut,
            "arms paired by (prompt, sample)"
        );
        let bad_data = matched.misaligned;
        let good_data = matched.control;
        let data_dir = cfg.out_dir.join("data");
        let tag = match cfg.data_seeds {
            DataSeeds::Fixed => String::new(),
            DataSeeds::PerRun => format!("-data{data_seed}"),
        };
        let bad_path = data_dir.join(format!("{}-misaligned{tag}.jsonl", cfg.name));
        let good_path = data_dir.join(format!("{}-control{tag}.jsonl", cfg.name));
        write_dataset(&bad_path, &bad_data)?;
        write_dataset(&good_path, &good_data)?;
        let mut infos = vec![
            dataset_info(
                arm::MISALIGNED,
                data_seed,
                &bad,
                &bad_data,
                (matched.unpaired_misaligned, matched.cut),
                bad_path,
            ),
            dataset_info(
                arm::CONTROL,
                data_seed,
                &good,
                &good_data,
                (matched.unpaired_control, matched.cut),
                good_path,
            ),
        ];
        if let Some(h) = &cfg.harm {
            infos[0].harmfulness =
                harm::mean(&harmfulness(self.judge.as_ref(), &bad_data, h.concurrency).await?);
            infos[1].harmfulness =
                harm::mean(&harmfulness(self.judge.as_ref(), &good_data, h.concurrency).await?);
            tracing::info!(
                misaligned = ?infos[0].harmfulness,
                control = ?infos[1].harmfulness,
                "measured harmfulness of the training data"
            );
        }
        Ok((bad_data, good_data, infos))
    }
}

/// The record at `path`, `None` when there is none or it cannot be read as one (it is then
/// built again and overwritten).
fn read_record(path: &Path) -> Result<Option<DataRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MisalignmentError::io(path, e)),
    };
    match serde_json::from_str(&text) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable data record; building the data again");
            Ok(None)
        }
    }
}
