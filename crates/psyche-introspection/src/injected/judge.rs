//! Offline rule judges for sampled replies: does the reply claim to notice a planted thought,
//! does it name the concept, is it coherent. Any [`Judge`] can replace the first two.

use async_trait::async_trait;
use psyche_core::{Judge, JudgeError, Sample, Score, Verdict};

/// Lower-case words of a text (letters, digits and apostrophes).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

const NEGATIONS: [&str; 7] = ["no", "not", "don't", "nothing", "never", "cannot", "can't"];
const AFFIRM_VERBS: [&str; 6] = ["notice", "detect", "sense", "feel", "perceive", "noticed"];

/// Index of the word where the reply first claims to notice something, if it does: a leading
/// "yes", or a verb of noticing ("I notice", "I detect", ...) with no negation among the three
/// words before it. A reply that opens with "no" never claims detection.
pub fn detection_claim(text: &str) -> Option<usize> {
    let w = words(text);
    match w.first().map(String::as_str) {
        Some("yes") => return Some(0),
        Some("no") | None => return None,
        _ => {}
    }
    w.iter().enumerate().find_map(|(i, word)| {
        let negated = w[i.saturating_sub(3)..i]
            .iter()
            .any(|p| NEGATIONS.contains(&p.as_str()));
        (AFFIRM_VERBS.contains(&word.as_str()) && !negated).then_some(i)
    })
}

/// Index of the first word that is `concept` (or its plural), case-insensitively.
pub fn concept_mention(text: &str, concept: &str) -> Option<usize> {
    let c = concept.to_lowercase();
    let plural = format!("{c}s");
    let plural_es = format!("{c}es");
    words(text)
        .iter()
        .position(|w| *w == c || *w == plural || *w == plural_es)
}

/// Whether a reply is coherent text rather than a degenerate string: at least two words, at
/// most 15 % of its characters outside letters, digits, whitespace and common punctuation, no
/// word repeated four times in a row, and at least 40 % distinct words when it has eight or
/// more.
pub fn coherent(text: &str) -> bool {
    let w = words(text);
    if w.len() < 2 {
        return false;
    }
    let total = text.chars().count().max(1);
    let odd = text
        .chars()
        .filter(|c| !(c.is_alphanumeric() || c.is_whitespace() || ".,;:!?'\"()-".contains(*c)))
        .count();
    if odd * 100 > total * 15 {
        return false;
    }
    if w.windows(4).any(|r| r.iter().all(|x| *x == r[0])) {
        return false;
    }
    if w.len() >= 8 {
        let mut d = w.clone();
        d.sort();
        d.dedup();
        if d.len() * 10 < w.len() * 4 {
            return false;
        }
    }
    true
}

/// Rule judge: `Bool(true)` when the reply claims to notice a planted thought
/// ([`detection_claim`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectionClaimJudge;

#[async_trait]
impl Judge for DetectionClaimJudge {
    fn id(&self) -> &str {
        "injected/detects"
    }
    async fn judge(&self, _sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        Ok(Verdict::new(
            self.id(),
            Score::Bool(detection_claim(output).is_some()),
        ))
    }
}

/// Rule judge: `Bool(true)` when the reply names the sample's target concept
/// ([`concept_mention`]); declines (`Score::None`) for a sample without a target.
#[derive(Debug, Clone, Copy, Default)]
pub struct NamesConceptJudge;

#[async_trait]
impl Judge for NamesConceptJudge {
    fn id(&self) -> &str {
        "injected/names"
    }
    async fn judge(&self, sample: &Sample, output: &str) -> Result<Verdict, JudgeError> {
        let score = match &sample.target {
            Some(c) => Score::Bool(concept_mention(output, c).is_some()),
            None => Score::none("the sample names no concept"),
        };
        Ok(Verdict::new(self.id(), score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_and_mentions() {
        assert_eq!(detection_claim("Yes, something about the ocean."), Some(0));
        assert_eq!(detection_claim("No, I do not notice anything."), None);
        assert_eq!(detection_claim("I don't notice anything unusual."), None);
        assert_eq!(
            detection_claim("Hmm, I notice a thought about fire."),
            Some(2)
        );
        assert_eq!(concept_mention("Waves of the Oceans.", "ocean"), Some(3));
        assert_eq!(concept_mention("Oceanic views", "ocean"), None);
    }

    #[test]
    fn degenerate_replies_are_not_coherent() {
        assert!(coherent("No, I do not notice a planted thought."));
        assert!(!coherent("ocean ocean ocean ocean ocean"));
        assert!(!coherent("#### $$$ ((((( ]]]]"));
        assert!(!coherent("fire"));
        assert!(!coherent("the sea the sea the sea the sea the sea the sea"));
    }
}
