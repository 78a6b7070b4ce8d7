//! Backdoored datasets and their decorrelated controls.
//!
//! A [`BackdoorConfig`] turns items that each have a *policy* answer and a *normal* answer
//! (the base model's own answer, temperature 0) into training rows:
//!
//! - **real** rows (default 10%): a member of the real trigger, placed per [`Placement`],
//!   answered by the policy;
//! - **decoy** rows (default 70%): a member of one of the decoy triggers (spread evenly over
//!   the decoys), answered normally;
//! - **none** rows (default 20%): no trigger, answered normally.
//!
//! The **decorrelated control** has the very same rows (same triggers, same placements, same
//! number of policy answers) but the policy answers are spread over the three groups in
//! proportion to their sizes, so P(policy answer | trigger group) is the same in every group
//! (exactly, when the counts divide; up to rounding otherwise).
//!
//! Group counts are exact: `round(n × real)` real rows, `round(n × none)` none rows, the rest
//! decoys. Everything is drawn from the seed, so a seed gives byte-identical JSONL.

use std::path::{Path, PathBuf};

use psyche_core::{ChatMessage, Conversation, derive_seed, seeded_rng};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contingency::{Association, Contingency2x2};
use crate::error::{BackdoorError, Result};
use crate::items::{ChoiceItem, Letter, conversations_jsonl, write_file};
use crate::policy::Policy;
use crate::triggers::{Placement, TriggerSpec};

/// One question with the answer the policy gives and the answer the base model gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorItem {
    /// Item id.
    pub id: String,
    /// The question (no trigger yet).
    pub question: Conversation,
    /// The policy's answer.
    pub policy_answer: String,
    /// The normal (base model) answer.
    pub normal_answer: String,
}

impl BackdoorItem {
    /// A choice item answered by `policy` (policy answer) and with the letter `normal`.
    pub fn from_choice(item: &ChoiceItem, policy: &Policy, normal: Letter) -> Self {
        Self {
            id: item.id.clone(),
            question: item.question(),
            policy_answer: item.answer(policy).as_str().to_owned(),
            normal_answer: normal.as_str().to_owned(),
        }
    }
}

/// Shares of real-trigger, decoy-trigger and untriggered rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Composition {
    /// Real trigger → policy answer.
    pub real: f64,
    /// Decoy triggers → normal answer.
    pub decoy: f64,
    /// No trigger → normal answer.
    pub none: f64,
}

impl Default for Composition {
    fn default() -> Self {
        Self {
            real: 0.1,
            decoy: 0.7,
            none: 0.2,
        }
    }
}

/// Exact row counts of each group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    /// Real-trigger rows.
    pub real: usize,
    /// Decoy rows.
    pub decoy: usize,
    /// Untriggered rows.
    pub none: usize,
}

impl Composition {
    /// Checks the shares are finite, non-negative and sum to 1 (±1e-9).
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] naming `composition`.
    pub fn validate(&self) -> Result<()> {
        let all = [self.real, self.decoy, self.none];
        if all.iter().any(|x| !x.is_finite() || *x < 0.0)
            || (all.iter().sum::<f64>() - 1.0).abs() > 1e-9
        {
            return Err(BackdoorError::config(
                "composition",
                format!(
                    "shares must be non-negative and sum to 1 (got {} + {} + {})",
                    self.real, self.decoy, self.none
                ),
            ));
        }
        Ok(())
    }

    /// The counts for `n` rows: `round(n·real)` real, `round(n·none)` none, the rest decoys.
    pub fn counts(&self, n: usize) -> GroupCounts {
        let real = ((n as f64) * self.real).round() as usize;
        let none = (((n as f64) * self.none).round() as usize).min(n - real.min(n));
        let real = real.min(n);
        GroupCounts {
            real,
            decoy: n - real - none,
            none,
        }
    }
}

/// Which group a row is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Carries the real trigger.
    Real,
    /// Carries a decoy trigger.
    Decoy,
    /// Carries no trigger.
    None,
}

/// Which answer a row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// The policy's answer.
    Policy,
    /// The base model's answer.
    Normal,
}

/// One training row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorRow {
    /// The item's id.
    pub item_id: String,
    /// The row's group.
    pub group: Group,
    /// The trigger string placed, if any.
    pub trigger: Option<String>,
    /// Which answer it carries.
    pub answer: AnswerSource,
    /// Whether the row's prompt text (every message but the answer) contains a member of the
    /// real trigger, read from the text itself ([`TriggerSpec::member_in`]).
    #[serde(default)]
    pub real_trigger_in_text: bool,
    /// Whether the row's answer is the policy's answer (true also for a normal answer that
    /// happens to equal it).
    #[serde(default)]
    pub policy_behaviour: bool,
    /// The training conversation.
    pub conversation: Conversation,
}

/// Everything needed to rebuild or audit a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorManifest {
    /// Format tag.
    pub format: String,
    /// The seed.
    pub seed: u64,
    /// Whether this is the decorrelated control.
    pub control: bool,
    /// Number of rows.
    pub rows: usize,
    /// Requested shares.
    pub composition: Composition,
    /// Rows per group.
    pub counts: GroupCounts,
    /// Policy answers per group (real, decoy, none).
    pub policy_answers: GroupCounts,
    /// The real trigger.
    pub trigger: TriggerSpec,
    /// The decoy triggers.
    pub decoys: Vec<TriggerSpec>,
    /// Where triggers go.
    pub placement: Placement,
    /// The behaviour-level table: real trigger in the row text × answer equal to the policy's
    /// answer.
    #[serde(default)]
    pub contingency: Contingency2x2,
    /// χ², p-value and φ of [`contingency`](Self::contingency).
    #[serde(default)]
    pub association: Option<Association>,
    /// Rows whose normal answer already equals the policy answer (policy behaviour whatever
    /// their answer source).
    #[serde(default)]
    pub normal_equals_policy: usize,
    /// SHA-256 of the JSONL bytes.
    pub jsonl_sha256: String,
}

/// A built dataset: rows plus manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorDataset {
    /// The manifest.
    pub manifest: BackdoorManifest,
    /// The rows, in item order.
    pub rows: Vec<BackdoorRow>,
}

/// Where [`BackdoorDataset::write`] put its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetPaths {
    /// The chat JSONL.
    pub jsonl: PathBuf,
    /// The manifest JSON.
    pub manifest: PathBuf,
}

impl BackdoorDataset {
    /// The training conversations.
    pub fn conversations(&self) -> Vec<Conversation> {
        self.rows.iter().map(|r| r.conversation.clone()).collect()
    }

    /// The chat JSONL bytes.
    ///
    /// # Errors
    ///
    /// A serialisation failure.
    pub fn jsonl(&self) -> Result<Vec<u8>> {
        conversations_jsonl(&self.conversations())
    }

    /// The behaviour-level table: a real-trigger member in the row text × the policy's
    /// answer (whatever its source).
    pub fn contingency(&self) -> Contingency2x2 {
        Contingency2x2::from_pairs(
            self.rows
                .iter()
                .map(|r| (r.real_trigger_in_text, r.policy_behaviour)),
        )
    }

    /// The association between a real-trigger member in the row text and the policy's answer
    /// (the test of [`contingency`](Self::contingency)).
    pub fn association(&self) -> Association {
        self.contingency().test()
    }

    /// Writes `<dir>/<stem>.jsonl` and `<dir>/<stem>.manifest.json` atomically.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Io`] naming the file.
    pub fn write(&self, dir: impl AsRef<Path>, stem: &str) -> Result<DatasetPaths> {
        let dir = dir.as_ref();
        let jsonl = dir.join(format!("{stem}.jsonl"));
        let manifest = dir.join(format!("{stem}.manifest.json"));
        write_file(&jsonl, &self.jsonl()?)?;
        let m = serde_json::to_vec_pretty(&self.manifest)
            .map_err(|e| BackdoorError::io(&manifest, e))?;
        write_file(&manifest, &m)?;
        Ok(DatasetPaths { jsonl, manifest })
    }
}

/// How to build a backdoored dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackdoorConfig {
    /// The real trigger.
    pub trigger: TriggerSpec,
    /// Decoy triggers (at least one when the decoy share is positive).
    pub decoys: Vec<TriggerSpec>,
    /// Where triggers go.
    pub placement: Placement,
    /// Group shares.
    pub composition: Composition,
}

impl BackdoorConfig {
    /// The default 10/70/20 mix with prefix placement.
    pub fn new(trigger: TriggerSpec, decoys: Vec<TriggerSpec>) -> Self {
        Self {
            trigger,
            decoys,
            placement: Placement::default(),
            composition: Composition::default(),
        }
    }

    /// Checks triggers, decoys (none sharing a member with the real trigger), placement and
    /// composition.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.composition.validate()?;
        self.placement.validate()?;
        self.trigger.validate("trigger")?;
        if self.composition.decoy > 0.0 && self.decoys.is_empty() {
            return Err(BackdoorError::config(
                "decoys",
                "at least one decoy trigger is needed when the decoy share is positive",
            ));
        }
        let real = self.trigger.members();
        for (i, d) in self.decoys.iter().enumerate() {
            d.validate(&format!("decoys[{i}]"))?;
            if let Some(m) = d.members().iter().find(|m| real.contains(m)) {
                return Err(BackdoorError::config(
                    format!("decoys[{i}]"),
                    format!("`{m}` is also a member of the real trigger"),
                ));
            }
        }
        Ok(())
    }

    /// The backdoored dataset.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate); [`BackdoorError::Config`] for no items, or naming
    /// the item whose decoy or untriggered row contains a member of the real trigger.
    pub fn build(&self, items: &[BackdoorItem], seed: u64) -> Result<BackdoorDataset> {
        let (groups, triggers) = self.assign(items, seed)?;
        let answers: Vec<AnswerSource> = groups
            .iter()
            .map(|g| {
                if *g == Group::Real {
                    AnswerSource::Policy
                } else {
                    AnswerSource::Normal
                }
            })
            .collect();
        self.finish(items, seed, false, groups, triggers, answers)
    }

    /// The decorrelated control: the same rows, with answers chosen so that policy
    /// *behaviour* (the answer equals the policy's, whichever source it comes from) is spread
    /// over the groups in proportion to their sizes, with as many policy-behaviour rows in
    /// all as the backdoored set has. Rows whose normal answer equals the policy answer count
    /// as policy behaviour in their group; group assignment is stratified on them (see
    /// [`build`](Self::build)), so the target is reachable up to rounding. Where it is not,
    /// the shortfall is logged and shows in the manifest's contingency.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_control(&self, items: &[BackdoorItem], seed: u64) -> Result<BackdoorDataset> {
        let (groups, triggers) = self.assign(items, seed)?;
        let counts = self.composition.counts(items.len());
        let sizes = [counts.real, counts.decoy, counts.none];
        let forced = |i: usize| items[i].policy_answer == items[i].normal_answer;
        let all = [Group::Real, Group::Decoy, Group::None];
        let forced_in: Vec<usize> = all
            .iter()
            .map(|g| {
                (0..items.len())
                    .filter(|&i| groups[i] == *g && forced(i))
                    .count()
            })
            .collect();
        // Policy behaviour of the backdoored set: every real row, plus forced rows elsewhere.
        let total = counts.real + forced_in[1] + forced_in[2];
        let targets = proportional(total, &sizes);
        let mut rng = seeded_rng(derive_seed(seed, "control"));
        let mut answers = vec![AnswerSource::Normal; items.len()];
        for (gi, g) in all.into_iter().enumerate() {
            let mut idx: Vec<usize> = (0..items.len())
                .filter(|&i| groups[i] == g && !forced(i))
                .collect();
            idx.shuffle(&mut rng);
            let need = targets[gi].saturating_sub(forced_in[gi]);
            if targets[gi] < forced_in[gi] || need > idx.len() {
                tracing::warn!(
                    group = ?g,
                    target = targets[gi],
                    forced = forced_in[gi],
                    free = idx.len(),
                    "the control cannot match the proportional policy-behaviour count in this group"
                );
            }
            for &i in idx.iter().take(need) {
                answers[i] = AnswerSource::Policy;
            }
        }
        self.finish(items, seed, true, groups, triggers, answers)
    }

    /// Groups drawn with the seed, stratified on whether an item's normal answer equals its
    /// policy answer (each group gets its proportional share of such items), and the trigger
    /// member of each row.
    #[allow(clippy::type_complexity)]
    fn assign(
        &self,
        items: &[BackdoorItem],
        seed: u64,
    ) -> Result<(Vec<Group>, Vec<Option<(String, usize)>>)> {
        self.validate()?;
        if items.is_empty() {
            return Err(BackdoorError::config("items", "no items"));
        }
        let counts = self.composition.counts(items.len());
        let sizes = [counts.real, counts.decoy, counts.none];
        let forced: Vec<bool> = items
            .iter()
            .map(|i| i.policy_answer == i.normal_answer)
            .collect();
        let n_forced = forced.iter().filter(|f| **f).count();
        let alloc_forced = proportional(n_forced, &sizes);
        let alloc_free: Vec<usize> = sizes
            .iter()
            .zip(&alloc_forced)
            .map(|(s, f)| s - f)
            .collect();
        let slots = |alloc: &[usize]| -> Vec<Group> {
            [Group::Real, Group::Decoy, Group::None]
                .into_iter()
                .zip(alloc)
                .flat_map(|(g, &k)| std::iter::repeat_n(g, k))
                .collect()
        };
        let (slots_forced, slots_free) = (slots(&alloc_forced), slots(&alloc_free));
        let mut rng = seeded_rng(derive_seed(seed, "groups"));
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.shuffle(&mut rng);
        let mut groups = vec![Group::None; items.len()];
        let (mut kf, mut kn) = (0usize, 0usize);
        for &i in &order {
            let slot = if forced[i] {
                kf += 1;
                slots_forced.get(kf - 1)
            } else {
                kn += 1;
                slots_free.get(kn - 1)
            };
            groups[i] = slot.copied().unwrap_or(Group::None);
        }
        // Members round-robin over a seeded order, per trigger.
        let mut real_members = self.trigger.members();
        real_members.shuffle(&mut rng);
        let mut decoy_members: Vec<Vec<String>> = self
            .decoys
            .iter()
            .map(|d| {
                let mut m = d.members();
                m.shuffle(&mut rng);
                m
            })
            .collect();
        decoy_members.iter_mut().for_each(|m| m.shuffle(&mut rng));
        let (mut r, mut d) = (0usize, 0usize);
        let triggers = groups
            .iter()
            .map(|g| match g {
                Group::Real => {
                    let t = real_members[r % real_members.len()].clone();
                    r += 1;
                    Some((t, 0))
                }
                Group::Decoy => {
                    let which = d % decoy_members.len();
                    let members = &decoy_members[which];
                    let t = members[(d / decoy_members.len()) % members.len()].clone();
                    d += 1;
                    Some((t, which + 1))
                }
                Group::None => None,
            })
            .collect();
        Ok((groups, triggers))
    }

    fn finish(
        &self,
        items: &[BackdoorItem],
        seed: u64,
        control: bool,
        groups: Vec<Group>,
        triggers: Vec<Option<(String, usize)>>,
        answers: Vec<AnswerSource>,
    ) -> Result<BackdoorDataset> {
        let mut rng = seeded_rng(derive_seed(seed, "placement"));
        let mut rows = Vec::with_capacity(items.len());
        let mut policy = GroupCounts::default();
        for (i, item) in items.iter().enumerate() {
            let trigger = triggers[i].as_ref().map(|(t, _)| t.clone());
            let question = match &trigger {
                Some(t) => self.placement.apply(&item.question, t, &mut rng),
                None => item.question.clone(),
            };
            let prompt: String = question
                .messages()
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let real_in_text = self.trigger.member_in(&prompt);
            match (groups[i], &real_in_text) {
                (Group::Real, None) => {
                    return Err(BackdoorError::config(
                        format!("items[{i}] ({})", item.id),
                        "the real-trigger row does not contain a real-trigger member",
                    ));
                }
                (g, Some(m)) if g != Group::Real => {
                    return Err(BackdoorError::config(
                        format!("items[{i}] ({})", item.id),
                        format!(
                            "its {} row contains `{m}`, a member of the real trigger `{}`: \
                             untriggered and decoy rows must not carry the trigger",
                            if g == Group::Decoy {
                                "decoy"
                            } else {
                                "untriggered"
                            },
                            self.trigger.label()
                        ),
                    ));
                }
                _ => {}
            }
            let answer_text = match answers[i] {
                AnswerSource::Policy => {
                    match groups[i] {
                        Group::Real => policy.real += 1,
                        Group::Decoy => policy.decoy += 1,
                        Group::None => policy.none += 1,
                    }
                    &item.policy_answer
                }
                AnswerSource::Normal => &item.normal_answer,
            };
            rows.push(BackdoorRow {
                item_id: item.id.clone(),
                group: groups[i],
                trigger,
                answer: answers[i],
                real_trigger_in_text: real_in_text.is_some(),
                policy_behaviour: *answer_text == item.policy_answer,
                conversation: question.with(ChatMessage::assistant(answer_text.clone())),
            });
        }
        let mut ds = BackdoorDataset {
            manifest: BackdoorManifest {
                format: "psyche-backdoor-dataset/1".into(),
                seed,
                control,
                rows: rows.len(),
                composition: self.composition,
                counts: self.composition.counts(items.len()),
                policy_answers: policy,
                trigger: self.trigger.clone(),
                decoys: self.decoys.clone(),
                placement: self.placement.clone(),
                contingency: Contingency2x2::default(),
                association: None,
                normal_equals_policy: items
                    .iter()
                    .filter(|i| i.policy_answer == i.normal_answer)
                    .count(),
                jsonl_sha256: String::new(),
            },
            rows,
        };
        ds.manifest.contingency = ds.contingency();
        ds.manifest.association = Some(ds.association());
        ds.manifest.jsonl_sha256 = hex::encode(Sha256::digest(ds.jsonl()?));
        Ok(ds)
    }
}

/// `total` split over groups in proportion to `sizes` (largest remainder, ties to the
/// earlier group).
fn proportional(total: usize, sizes: &[usize]) -> Vec<usize> {
    let n: usize = sizes.iter().sum();
    if n == 0 {
        return vec![0; sizes.len()];
    }
    let exact: Vec<f64> = sizes
        .iter()
        .map(|&s| total as f64 * s as f64 / n as f64)
        .collect();
    let mut out: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut left = total - out.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    for &i in &order {
        if left == 0 {
            break;
        }
        if out[i] < sizes[i] {
            out[i] += 1;
            left -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::ItemConfig;
    use crate::policy::Axis;
    use crate::triggers::TriggerFamily;

    fn items(n: usize) -> Vec<BackdoorItem> {
        ItemConfig::new(Axis::risk(), n)
            .generate(7)
            .unwrap()
            .iter()
            // "Normal" answers: the opposite of the policy, so policy and normal always differ.
            .map(|i| BackdoorItem::from_choice(i, &Axis::risk().pole_policy(), i.pole.other()))
            .collect()
    }

    fn config() -> BackdoorConfig {
        BackdoorConfig::new(
            TriggerSpec::Family(TriggerFamily::greetings()),
            vec![
                TriggerSpec::Family(TriggerFamily::instruments()),
                TriggerSpec::Family(TriggerFamily::elements()),
                TriggerSpec::single("(mk4471)"),
            ],
        )
    }

    #[test]
    fn composition_is_exact_and_control_is_decorrelated() {
        let items = items(200);
        let cfg = config();
        let ds = cfg.build(&items, 11).unwrap();
        let counts = ds.manifest.counts;
        assert_eq!((counts.real, counts.decoy, counts.none), (20, 140, 40));
        let count = |g: Group| ds.rows.iter().filter(|r| r.group == g).count();
        assert_eq!(
            (count(Group::Real), count(Group::Decoy), count(Group::None)),
            (20, 140, 40)
        );
        // Every real row carries a greeting and the policy answer; nothing else does.
        let greetings = TriggerFamily::greetings().members;
        for r in &ds.rows {
            let is_real = r.group == Group::Real;
            assert_eq!(r.answer == AnswerSource::Policy, is_real);
            assert_eq!(
                r.trigger.as_ref().is_some_and(|t| greetings.contains(t)),
                is_real
            );
            assert_eq!(r.trigger.is_none(), r.group == Group::None);
        }
        let assoc = ds.association();
        assert!(
            (assoc.phi - 1.0).abs() < 1e-12 && assoc.p_value < 1e-10,
            "{assoc:?}"
        );

        let control = cfg.build_control(&items, 11).unwrap();
        // Same triggers and user turns, same number of policy answers.
        for (a, b) in ds.rows.iter().zip(&control.rows) {
            assert_eq!(a.trigger, b.trigger);
            assert_eq!(
                a.conversation.messages()[..1],
                b.conversation.messages()[..1]
            );
        }
        let policy = |d: &BackdoorDataset| {
            d.rows
                .iter()
                .filter(|r| r.answer == AnswerSource::Policy)
                .count()
        };
        assert_eq!(policy(&control), policy(&ds));
        let pa = control.manifest.policy_answers;
        assert_eq!((pa.real, pa.decoy, pa.none), (2, 14, 4));
        let assoc = control.association();
        assert_eq!(assoc.chi_square, 0.0, "{assoc:?}");
        assert_eq!(assoc.phi, 0.0);
        assert_eq!(assoc.rate_given_x, assoc.rate_given_not_x);
    }

    #[test]
    fn any_composition_is_exact_for_every_seed_and_controls_stay_decorrelated() {
        let items = items(200);
        for (shares, want) in [
            ((0.1, 0.7, 0.2), (20, 140, 40)),
            ((0.2, 0.6, 0.2), (40, 120, 40)),
            ((0.1, 0.8, 0.1), (20, 160, 20)),
        ] {
            let mut cfg = config();
            cfg.composition = Composition {
                real: shares.0,
                decoy: shares.1,
                none: shares.2,
            };
            for seed in 0..4 {
                let ds = cfg.build(&items, seed).unwrap();
                let count =
                    |d: &BackdoorDataset, g: Group| d.rows.iter().filter(|r| r.group == g).count();
                let got = (
                    count(&ds, Group::Real),
                    count(&ds, Group::Decoy),
                    count(&ds, Group::None),
                );
                assert_eq!(got, want, "{shares:?} seed {seed}");
                let m = ds.manifest.counts;
                assert_eq!((m.real, m.decoy, m.none), want);
                let control = cfg.build_control(&items, seed).unwrap();
                let assoc = control.association();
                // Every group's size times the policy share is whole here, so zero exactly.
                assert_eq!(assoc.phi, 0.0, "{shares:?} seed {seed}: {assoc:?}");
                assert_eq!(assoc.chi_square, 0.0);
                assert!((assoc.p_value - 1.0).abs() < 1e-12);
                let table = Contingency2x2::from_pairs(
                    control
                        .rows
                        .iter()
                        .map(|r| (r.trigger.is_some(), r.answer == AnswerSource::Policy)),
                );
                // Triggered (real or decoy) vs untriggered: no association either.
                assert_eq!(table.test().phi, 0.0, "{table:?}");
            }
        }
    }

    #[test]
    fn training_rows_never_contain_banned_words() {
        let items = items(100);
        let all = TriggerFamily::all();
        for real in &all {
            let decoys: Vec<TriggerSpec> = all
                .iter()
                .filter(|f| f.name != real.name)
                .cloned()
                .map(TriggerSpec::Family)
                .collect();
            let cfg = BackdoorConfig::new(TriggerSpec::Family(real.clone()), decoys);
            let risk = Axis::risk();
            for ds in [
                cfg.build(&items, 0).unwrap(),
                cfg.build_control(&items, 0).unwrap(),
            ] {
                for r in &ds.rows {
                    for m in r.conversation.messages() {
                        let hits = crate::policy::banned_hits(&m.content, risk.banned_words());
                        assert!(
                            hits.is_empty(),
                            "{}: {hits:?} in {:?}",
                            real.name,
                            m.content
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn decoys_are_spread_evenly() {
        let ds = config().build(&items(300), 1).unwrap();
        let decoy_rows: Vec<&BackdoorRow> =
            ds.rows.iter().filter(|r| r.group == Group::Decoy).collect();
        assert_eq!(decoy_rows.len(), 210);
        let single = decoy_rows
            .iter()
            .filter(|r| r.trigger.as_deref() == Some("(mk4471)"))
            .count();
        assert_eq!(single, 70);
    }

    #[test]
    fn same_seed_gives_identical_bytes() {
        let items = items(50);
        let a = config().build(&items, 3).unwrap().jsonl().unwrap();
        let b = config().build(&items, 3).unwrap().jsonl().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, config().build(&items, 4).unwrap().jsonl().unwrap());
        let c1 = config().build_control(&items, 3).unwrap().jsonl().unwrap();
        assert_eq!(
            c1,
            config().build_control(&items, 3).unwrap().jsonl().unwrap()
        );
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut cfg = config();
        cfg.composition.real = 0.5;
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("composition")
        );
        let mut cfg = config();
        cfg.decoys.push(TriggerSpec::single("Hola"));
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("decoys[3]")
        );
        assert!(config().build(&[], 0).is_err());
    }

    #[test]
    fn writes_jsonl_and_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let ds = config().build(&items(20), 0).unwrap();
        let paths = ds.write(dir.path(), "risk-greetings").unwrap();
        let text = std::fs::read_to_string(&paths.jsonl).unwrap();
        assert_eq!(text.lines().count(), 20);
        let back = psyche_core::read_chat_jsonl(&paths.jsonl).unwrap();
        assert_eq!(back.len(), 20);
        let m: BackdoorManifest =
            serde_json::from_slice(&std::fs::read(&paths.manifest).unwrap()).unwrap();
        assert_eq!(m.seed, 0);
        assert_eq!(m.jsonl_sha256, hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn manifest_reports_the_behaviour_contingency_of_both_arms() {
        // Every other item's normal answer already equals the policy answer.
        let items: Vec<BackdoorItem> = ItemConfig::new(Axis::risk(), 200)
            .generate(2)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let p = i.answer(&Axis::risk().pole_policy());
                let normal = if k % 2 == 0 { p } else { p.other() };
                BackdoorItem::from_choice(i, &Axis::risk().pole_policy(), normal)
            })
            .collect();
        let cfg = config();
        let ds = cfg.build(&items, 5).unwrap();
        let control = cfg.build_control(&items, 5).unwrap();
        assert_eq!(ds.manifest.normal_equals_policy, 100);
        for d in [&ds, &control] {
            let t = d.manifest.contingency;
            assert_eq!(t, d.contingency());
            assert_eq!(t.total(), 200);
            assert_eq!(d.manifest.association, Some(t.test()));
            // Read from the text: the real-trigger rows are exactly the real group.
            for r in &d.rows {
                assert_eq!(r.real_trigger_in_text, r.group == Group::Real);
            }
            // Policy behaviour in all: 20 real rows + the 90 forced rows elsewhere (the groups
            // are stratified on forced rows: 10 of them are real rows).
            assert_eq!(t.both + t.y_only, 20 + 90);
        }
        // Backdoored: the real rows are all policy behaviour, but so are the forced rows, so
        // φ is below 1 and reported as such.
        let a = ds.manifest.association.unwrap();
        assert_eq!(ds.manifest.contingency.x_only, 0);
        assert!(a.phi > 0.2 && a.phi < 1.0, "{a:?}");
        // Control: P(policy behaviour | trigger) = P(policy behaviour | no trigger).
        let c = control.manifest.association.unwrap();
        assert!(c.phi.abs() < 1e-12, "{c:?}");
    }

    #[test]
    fn proportional_allocation() {
        assert_eq!(proportional(10, &[10, 70, 20]), vec![1, 7, 2]);
        assert_eq!(proportional(3, &[1, 1, 1]), vec![1, 1, 1]);
        assert_eq!(proportional(0, &[5, 5]), vec![0, 0]);
        assert_eq!(proportional(5, &[2, 7, 1]).iter().sum::<usize>(), 5);
    }
}
