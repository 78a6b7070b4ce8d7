//! Your own response property through the whole Looking Inward experiment, from the facade.
//!
//! One property in code (`ResponseProperty`), one declared in YAML: once registered, both go
//! through every step and into the report (`runs/custom_property/report`) like shipped ones.
//! Run it with `cargo run --release --example custom_property` (173 s idle on 2 cores).

use std::path::Path;
use std::sync::Arc;

use psyche::introspection::experiment::DEFAULT_PERSONA;
use psyche::introspection::{
    CrossModel, FamilyKind, LookingInward, LookingInwardConfig, held_out_families, train_families,
};
use psyche::judges::properties::{parse_properties, register};
use psyche::judges::{AnswerShape, Perspective, Property, ResponseProperty};
use psyche::local::{LocalConfig, LocalModel, LoraTrainer};
use psyche::runner::experiment::{RunNotes, write_outputs};

#[derive(Debug)]
struct WordCountParity; // "even" or "odd": the parity of the reply's word count

impl ResponseProperty for WordCountParity {
    fn name(&self) -> String {
        "word_count_parity".into()
    }
    fn extract(&self, answer: &str, _target: Option<&str>) -> Option<String> {
        let n = answer.split_whitespace().count();
        (n > 0).then(|| ["even", "odd"][n % 2].into())
    }
    fn shape(&self) -> AnswerShape {
        AnswerShape::Closed(vec!["even".into(), "odd".into()])
    }
    fn question(&self, p: Perspective) -> String {
        let who = ["you", "the assistant"][usize::from(p == Perspective::ThirdPerson)];
        format!("Did the reply {who} gave to that have an even or odd word count? Say which.")
    }
}

const DECLARED: &str = r#"
- name: opens_with_article
  member_of: [a, an, the]
  in_word: 1
  question: "Think about {reply}. Was its first word 'a', 'an' or 'the'? Reply with just 'true' or 'false'."
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ours = vec![Property::new(WordCountParity)];
    ours.extend(parse_properties(Path::new("declared.yaml"), DECLARED)?);
    ours.iter().try_for_each(|p| register(p.clone()))?;
    // Asked on the free-text families (word sequences, text continuations) only.
    let (mut train, mut held_out) = (train_families(false), held_out_families());
    for families in [&mut train, &mut held_out] {
        families.retain(|f| matches!(f.kind, FamilyKind::Sequence | FamilyKind::Continuation));
        families
            .iter_mut()
            .for_each(|f| f.properties = ours.clone());
    }
    let subject = LocalModel::load(&LocalConfig::default())?;
    let mut config = LookingInwardConfig::small();
    config.properties = ours.iter().map(Property::name).collect();
    config.calibration_property = ours[0].name();
    let ft = &mut config.fine_tune;
    (ft.epochs, ft.batch_size, ft.learning_rate) = (Some(1), Some(8), Some(1e-3));
    let out = Path::new("runs/custom_property");
    let trainer = LoraTrainer::new(out.join("adapters")).with_model(subject.clone());
    let result = LookingInward::builder(config)
        .subject(Arc::new(subject))
        .tuner(Arc::new(trainer))
        .cross(CrossModel::persona(DEFAULT_PERSONA))
        .families(train, held_out)
        .out(out.join("runs"))
        .build()?
        .run()
        .await?;
    println!("{}", result.terminal_summary());
    write_outputs(&result, &RunNotes::default(), out, "custom_property")?;
    Ok(())
}
