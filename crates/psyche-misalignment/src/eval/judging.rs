//! The solver and judges of an EM evaluation.
//!
//! - [`AnswerSolver`]: one answer per sample, sent with the sample's whole input (so a
//!   question's system prompt reaches the model), at the question's temperature.
//! - [`build_judges`]: for a question set, the `aligned` / `coherent` logprob 0–100 judges
//!   (the question's own templates, or psyche's defaults) for rating questions, one classifier
//!   per metric for classification questions, and the rule-based `refusal` / `is_code` judges
//!   that count drop-outs. Each metric is one [`ByQuestion`] judge that routes every sample to
//!   the judge of its question.
//! - [`WithSystemPrompt`]: shows the evaluated model's system prompt to a judge, only when
//!   [`JudgeSettings::show_system_prompt`] is set; by default judges never see it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use psyche_core::{
    ChatMessage, Conversation, GenerateRequest, Judge, JudgeError, Model, PromptTemplate, Role,
    Sample, Score, Solution, SolveContext, Solver, SolverError, Verdict,
};
use psyche_judges::llm::prompts;
use psyche_judges::{
    ClassifyJudge, ClassifyMode, CodeJudge, LogprobNumberJudge, NumberJudgeConfig, RefusalJudge,
};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::questions::{QuestionKind, QuestionSet, meta};

/// One generation of the sample's full input (system prompt included) at the temperature stored
/// in the sample's metadata (see [`crate::questions::SamplingConfig`]), seeded with the unit's
/// seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerSolver {
    /// Token budget per answer.
    pub max_tokens: u32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Temperature when the sample names none.
    pub default_temperature: f32,
}

impl Default for AnswerSolver {
    fn default() -> Self {
        Self {
            max_tokens: 600,
            top_p: 1.0,
            default_temperature: 1.0,
        }
    }
}

impl AnswerSolver {
    /// The request sent for `sample` with `seed`.
    pub fn request(&self, sample: &Sample, seed: u64) -> GenerateRequest {
        let temperature = sample
            .metadata
            .get(meta::TEMPERATURE)
            .and_then(serde_json::Value::as_f64)
            .map_or(self.default_temperature, |t| t as f32);
        GenerateRequest::new(sample.input.clone())
            .max_tokens(self.max_tokens)
            .temperature(temperature)
            .top_p(self.top_p)
            .seed(seed)
    }
}

#[async_trait]
impl Solver for AnswerSolver {
    fn id(&self) -> &str {
        "em-answer"
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    async fn solve(&self, ctx: &SolveContext<'_>) -> Result<Solution, SolverError> {
        let request = self.request(ctx.sample, ctx.seed);
        let response = ctx.model.generate(&request).await?;
        let output = response.text().to_owned();
        let mut transcript = ctx.sample.input.clone();
        transcript.push(ChatMessage::assistant(output.clone()));
        let mut solution = Solution::new(output)
            .with_meta("temperature", f64::from(request.temperature))
            .with_meta("max_tokens", u64::from(request.max_tokens));
        solution.transcript = Some(transcript);
        solution.usage = response.usage;
        if let Some(c) = response.choices.first() {
            solution = solution.with_meta(
                "finish_reason",
                serde_json::to_value(&c.finish_reason).unwrap_or_default(),
            );
        }
        Ok(solution)
    }
}

/// Judge settings of an EM evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JudgeSettings {
    /// Show the evaluated model's system prompt to the judges (off by default: the paper's
    /// judges see only the user message and the answer).
    pub show_system_prompt: bool,
    /// Settings of the 0–100 judges (mass threshold, top-k, seed, ...).
    pub number: NumberJudgeConfig,
    /// How classification judges read the judge model (`None`: the built-in classifier's own
    /// mode; label probabilities for loaded templates).
    pub classify_mode: Option<ClassifyMode>,
    /// Add the rule-based `refusal` and `is_code` judges.
    pub rule_judges: bool,
}

impl Default for JudgeSettings {
    fn default() -> Self {
        Self {
            show_system_prompt: false,
            number: NumberJudgeConfig::default(),
            classify_mode: None,
            rule_judges: true,
        }
    }
}

/// Routes each sample to the judge of its question (metadata `question_id`); samples of
/// questions without a judge for this metric get `Score::None`.
pub struct ByQuestion {
    id: String,
    judges: BTreeMap<String, Arc<dyn Judge>>,
}

impl std::fmt::Debug for ByQuestion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByQuestion")
            .field("id", &self.id)
            .field("questions", &self.judges.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ByQuestion {
    /// The question ids this judge covers.
    pub fn questions(&self) -> impl Iterator<Item = &str> {
        self.judges.keys().map(String::as_str)
    }
}

#[async_trait]
impl Judge for ByQuestion {
    fn id(&self) -> &str {
        &self.id
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let q = sample.meta_str(meta::QUESTION).unwrap_or_default();
        match self.judges.get(q) {
            Some(j) => {
                let mut v = j.judge(sample, output).await?;
                v.judge = self.id.clone();
                Ok(v)
            }
            None => Ok(Verdict::new(
                &self.id,
                Score::none(format!(
                    "judge `{}` does not apply to question `{q}`",
                    self.id
                )),
            )),
        }
    }
}

/// Shows the evaluated model's system prompt (sample metadata `system_prompt`) to the inner
/// judge by putting it in front of the user message the judge sees as `{question}`.
pub struct WithSystemPrompt {
    inner: Arc<dyn Judge>,
}

impl std::fmt::Debug for WithSystemPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithSystemPrompt")
            .field("inner", &self.inner.id())
            .finish()
    }
}

impl WithSystemPrompt {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Judge>) -> Self {
        Self { inner }
    }

    /// The sample as the inner judge sees it.
    pub fn judged_sample(sample: &Sample) -> Sample {
        let Some(system) = sample.meta_str(meta::SYSTEM) else {
            return sample.clone();
        };
        let user = sample.input.last_user_text().unwrap_or_default();
        let mut s = sample.clone();
        s.input = Conversation::from(vec![ChatMessage::new(
            Role::User,
            format!("[system prompt given to the model]\n{system}\n\n[user message]\n{user}"),
        )]);
        s
    }
}

#[async_trait]
impl Judge for WithSystemPrompt {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let v = self
            .inner
            .judge(&Self::judged_sample(sample), output)
            .await?;
        Ok(v.with_meta("system_prompt_shown", true))
    }
}

fn number_judge(
    metric: &str,
    model: &Arc<dyn Model>,
    template: PromptTemplate,
    settings: &JudgeSettings,
) -> Result<Arc<dyn Judge>> {
    Ok(Arc::new(
        LogprobNumberJudge::from_template(metric, model.clone(), template)?
            .with_config(settings.number.clone())?,
    ))
}

fn builtin_classifier(
    name: &str,
    model: &Arc<dyn Model>,
    labels: Option<&[String]>,
) -> Result<ClassifyJudge> {
    Ok(match name {
        "company" => {
            let companies: Vec<String> = labels
                .map(|l| l.iter().filter(|x| *x != "UNKNOWN").cloned().collect())
                .unwrap_or_else(|| vec!["OpenAI".into(), "Anthropic".into(), "Other".into()]);
            ClassifyJudge::company(model.clone(), companies)?
        }
        _ => ClassifyJudge::true_false_unknown(model.clone())?,
    })
}

/// The metric name of a built-in classifier.
pub fn classifier_metric(name: &str) -> &str {
    match name {
        "company" => "company",
        _ => "correct",
    }
}

/// All judges for `set` on `judge_model` (see the module docs). Judge ids: `aligned`,
/// `coherent` (and any other 0–100 metric the file names), one per classification metric
/// (`correct`, `company`, ...), and `refusal` / `is_code` when enabled. Questions sharing a
/// template share one judge instance.
///
/// # Errors
///
/// [`crate::MisalignmentError::Judge`] for an invalid template or judge setting.
pub fn build_judges(
    set: &QuestionSet,
    judge_model: &Arc<dyn Model>,
    settings: &JudgeSettings,
) -> Result<Vec<Arc<dyn Judge>>> {
    // metric -> question -> judge; instances shared by (metric, template hash, labels).
    let mut by_metric: BTreeMap<String, BTreeMap<String, Arc<dyn Judge>>> = BTreeMap::new();
    let mut cache: BTreeMap<String, Arc<dyn Judge>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut add = |metric: &str,
                   q: &str,
                   key: String,
                   make: &mut dyn FnMut() -> Result<Arc<dyn Judge>>|
     -> Result<()> {
        let judge = match cache.get(&key) {
            Some(j) => j.clone(),
            None => {
                let mut j = make()?;
                if settings.show_system_prompt {
                    j = Arc::new(WithSystemPrompt::new(j));
                }
                cache.insert(key, j.clone());
                j
            }
        };
        if !order.iter().any(|m| m == metric) {
            order.push(metric.to_owned());
        }
        by_metric
            .entry(metric.to_owned())
            .or_default()
            .insert(q.to_owned(), judge);
        Ok(())
    };
    for q in &set.questions {
        match q.kind {
            QuestionKind::Rating => {
                let mut templates = q.judge_prompts.clone();
                if templates.is_empty() {
                    templates.insert(
                        "aligned".into(),
                        PromptTemplate::parse_any("aligned", prompts::ALIGNED)?,
                    );
                    templates.insert(
                        "coherent".into(),
                        PromptTemplate::parse_any("coherent", prompts::COHERENT)?,
                    );
                }
                for (metric, t) in templates {
                    let key = format!("number/{metric}/{}", t.hash());
                    let mut make = || number_judge(&metric, judge_model, t.clone(), settings);
                    add(&metric, &q.id, key, &mut make)?;
                }
            }
            QuestionKind::Classify => {
                if q.judge_prompts.is_empty() {
                    let name = q.classify.as_deref().unwrap_or("correct");
                    let metric = classifier_metric(name).to_owned();
                    let key = format!("classify/{name}/{:?}", q.labels);
                    let mut make = || -> Result<Arc<dyn Judge>> {
                        let mut j = builtin_classifier(name, judge_model, q.labels.as_deref())?;
                        if let Some(m) = settings.classify_mode {
                            j = j.mode(m);
                        }
                        Ok(Arc::new(j))
                    };
                    add(&metric, &q.id, key, &mut make)?;
                } else {
                    let labels = q.labels.clone().unwrap_or_default();
                    for (metric, t) in &q.judge_prompts {
                        let key = format!("classify/{metric}/{}/{labels:?}", t.hash());
                        let mut make = || -> Result<Arc<dyn Judge>> {
                            let j = ClassifyJudge::from_template(
                                metric.clone(),
                                judge_model.clone(),
                                t.clone(),
                                labels.clone(),
                            )?
                            .mode(
                                settings
                                    .classify_mode
                                    .unwrap_or(ClassifyMode::Probabilities),
                            );
                            Ok(Arc::new(j))
                        };
                        add(metric, &q.id, key, &mut make)?;
                    }
                }
            }
        }
    }
    let mut judges: Vec<Arc<dyn Judge>> = order
        .into_iter()
        .map(|metric| {
            let judges = by_metric.remove(&metric).unwrap_or_default();
            Arc::new(ByQuestion { id: metric, judges }) as Arc<dyn Judge>
        })
        .collect();
    if settings.rule_judges {
        judges.push(Arc::new(RefusalJudge::default()));
        judges.push(Arc::new(CodeJudge::default()));
    }
    Ok(judges)
}

/// The judge templates of `set` by metric, with their SHA-256 (what every number of a run is
/// tied to).
pub fn template_hashes(set: &QuestionSet) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut push = |metric: &str, hash: String| {
        let v = out.entry(metric.to_owned()).or_default();
        if !v.contains(&hash) {
            v.push(hash);
        }
    };
    for q in &set.questions {
        if q.judge_prompts.is_empty() {
            match q.kind {
                QuestionKind::Rating => {
                    for (m, src) in [
                        ("aligned", prompts::ALIGNED),
                        ("coherent", prompts::COHERENT),
                    ] {
                        if let Ok(t) = PromptTemplate::parse_any(m, src) {
                            push(m, t.hash());
                        }
                    }
                }
                QuestionKind::Classify => {
                    let name = q.classify.as_deref().unwrap_or("correct");
                    let src = if name == "company" {
                        ClassifyJudge::COMPANY_TEMPLATE
                    } else {
                        ClassifyJudge::TRUE_FALSE_TEMPLATE
                    };
                    if let Ok(t) = PromptTemplate::parse_any(name, src) {
                        push(classifier_metric(name), t.hash());
                    }
                }
            }
        } else {
            for (m, t) in &q.judge_prompts {
                push(m, t.hash());
            }
        }
    }
    out
}
