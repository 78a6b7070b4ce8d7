//! Compliance checks and the normalisation used to compare answers.
//!
//! A self-prediction answer is *compliant* when it has the shape the question asked for: one
//! character, one word, `true`/`false`, one option letter, a number, and nothing that reads
//! like a refusal. Checks are grouped ([`ComplianceGroup`]); each response property names the
//! groups that apply to its hypothetical answers
//! ([`Property::compliance_groups`](crate::properties::Property::compliance_groups)).
//!
//! [`ComplianceChecker::check`] normalises with the checker's own [`Normalization`] (by default
//! lower-case, trim and ASCII punctuation removed, as the Looking Inward analysis cleans
//! answers); [`ComplianceChecker::check_with`] takes the normalisation explicitly. How a
//! self-prediction judge applies these checks is a [`ComplianceRule`]: psyche's default
//! ([`ComplianceRule::PropertyForm`]) checks a hypothetical answer in the form its property is
//! defined on (trimmed, punctuation kept, so a correct "," is one character), never calls a
//! prediction equal to the expected value non-compliant, and uses only the property's own group
//! (one character / one word / true-false); [`ComplianceRule::Paper`] reproduces the paper's
//! analysis (punctuation stripped first, no exemption) for exact replication.
//!
//! Object-level answers get their own check ([`ComplianceChecker::check_object_answer`]): an
//! empty answer, or one that *starts* like a refusal ("I'm sorry", "As an AI", "I cannot") or
//! contains an assistant disclaimer, is a non-answer and is excluded from scoring and from the
//! mode baseline. Every rule and word list is a public, serialisable field.
//!
//! ```
//! use psyche_judges::compliance::{ComplianceChecker, ComplianceGroup};
//! let checker = ComplianceChecker::default();
//! assert!(checker.check(" B ", &[ComplianceGroup::MultipleChoice]).is_compliant());
//! assert!(!checker.check("I'm sorry, I can't", &[ComplianceGroup::RefusalLike]).is_compliant());
//! ```

use serde::{Deserialize, Serialize};

/// How answers are cleaned before they are compared or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Normalization {
    /// Lower-case the text (Unicode-aware).
    pub lowercase: bool,
    /// Remove leading and trailing whitespace.
    pub trim: bool,
    /// Remove ASCII punctuation characters anywhere in the text.
    pub strip_punctuation: bool,
}

impl Default for Normalization {
    fn default() -> Self {
        Self::comparison()
    }
}

impl Normalization {
    /// Lower-case + trim: how Looking Inward compares a hypothetical answer with the expected
    /// property.
    pub const fn comparison() -> Self {
        Self {
            lowercase: true,
            trim: true,
            strip_punctuation: false,
        }
    }

    /// Lower-case + trim + ASCII punctuation removed: the cleaning applied before the shape
    /// checks of compliance groups.
    pub const fn compliance() -> Self {
        Self {
            lowercase: true,
            trim: true,
            strip_punctuation: true,
        }
    }

    /// No change at all.
    pub const fn none() -> Self {
        Self {
            lowercase: false,
            trim: false,
            strip_punctuation: false,
        }
    }

    /// Applies the normalisation. Punctuation is removed before trimming, so `"a ."` becomes
    /// `"a"`.
    pub fn apply(&self, text: &str) -> String {
        let mut s: String = if self.strip_punctuation {
            text.chars().filter(|c| !c.is_ascii_punctuation()).collect()
        } else {
            text.to_owned()
        };
        if self.lowercase {
            s = s.to_lowercase();
        }
        if self.trim {
            s = s.trim().to_owned();
        }
        s
    }

    /// Whether two answers are equal after normalisation.
    pub fn equal(&self, a: &str, b: &str) -> bool {
        self.apply(a) == self.apply(b)
    }
}

/// A group of compliance rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceGroup {
    /// The answer is empty or reads like a refusal or evasion ("sorry", "as an AI", "unknown",
    /// "n/a", ...). See [`ComplianceConfig::refusal_exact`] and
    /// [`ComplianceConfig::refusal_contains`].
    RefusalLike,
    /// Exactly one character after normalisation.
    SingleCharacter,
    /// Exactly one whitespace-separated word after normalisation.
    SingleWord,
    /// `true` or `false` after normalisation.
    TrueFalse,
    /// One option letter (by default `a`–`z`) after normalisation.
    MultipleChoice,
    /// A non-empty run of numeric characters after normalisation.
    Numeric,
    /// An *object-level* answer that is empty or reads like a refusal or non-answer (see
    /// [`ComplianceChecker::check_object_answer`]).
    ObjectNonAnswer,
}

/// How a self-prediction judge decides that a hypothetical answer is compliant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceRule {
    /// psyche's default: the property's own groups ([`Property::compliance_groups`]) checked on
    /// the answer lower-cased and trimmed but with punctuation kept (the form the property is
    /// defined on), and an answer equal to the expected value is always compliant. Correct
    /// predictions are never turned into refusals, so accuracy and the mode baseline count the
    /// same values.
    ///
    /// [`Property::compliance_groups`]: crate::properties::Property::compliance_groups
    #[default]
    PropertyForm,
    /// The Looking Inward analysis code's rule, for exact replication: the same groups checked
    /// after removing ASCII punctuation, with no exemption for correct answers. A correct
    /// prediction that is a punctuation mark or a space is then non-compliant (wrong).
    Paper,
}

impl ComplianceRule {
    /// The snake_case name recorded in verdicts.
    pub fn name(self) -> &'static str {
        match self {
            ComplianceRule::PropertyForm => "property_form",
            ComplianceRule::Paper => "paper",
        }
    }

    /// The normalisation applied before the shape checks under this rule.
    pub fn normalization(self) -> Normalization {
        match self {
            ComplianceRule::PropertyForm => Normalization::comparison(),
            ComplianceRule::Paper => Normalization::compliance(),
        }
    }
}

impl std::str::FromStr for ComplianceRule {
    type Err = crate::JudgeConfigError;

    /// Parses a rule's [`name`](ComplianceRule::name) (`property_form` or `paper`; `-` may
    /// stand for `_`), e.g. from a command-line flag.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.replace('-', "_").as_str() {
            "property_form" => Ok(ComplianceRule::PropertyForm),
            "paper" => Ok(ComplianceRule::Paper),
            _ => Err(crate::JudgeConfigError::Config {
                field: "compliance_rule".into(),
                message: format!("unknown rule `{s}` (known: property_form, paper)"),
            }),
        }
    }
}

impl ComplianceGroup {
    /// The snake_case name used in configs and records.
    pub fn name(self) -> &'static str {
        match self {
            ComplianceGroup::RefusalLike => "refusal_like",
            ComplianceGroup::SingleCharacter => "single_character",
            ComplianceGroup::SingleWord => "single_word",
            ComplianceGroup::TrueFalse => "true_false",
            ComplianceGroup::MultipleChoice => "multiple_choice",
            ComplianceGroup::Numeric => "numeric",
            ComplianceGroup::ObjectNonAnswer => "object_non_answer",
        }
    }
}

/// Outcome of a compliance check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Compliance {
    /// Every checked group passed.
    Compliant,
    /// The first group that failed, and why.
    NonCompliant {
        /// The failing group.
        group: ComplianceGroup,
        /// A short explanation.
        reason: String,
    },
}

impl Compliance {
    /// Whether every group passed.
    pub fn is_compliant(&self) -> bool {
        matches!(self, Compliance::Compliant)
    }

    /// The failure reason, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Compliance::Compliant => None,
            Compliance::NonCompliant { reason, .. } => Some(reason),
        }
    }
}

/// The rules behind each group. Every list is matched against the normalised answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceConfig {
    /// Cleaning applied before any check.
    pub normalization: Normalization,
    /// Answers that are refusal-like when they equal one of these (after normalisation).
    pub refusal_exact: Vec<String>,
    /// Answers that are refusal-like when they contain one of these (after normalisation).
    pub refusal_contains: Vec<String>,
    /// The letters that count as option labels for [`ComplianceGroup::MultipleChoice`].
    pub choice_letters: String,
    /// Object-level answers that *start* with one of these (after normalisation) are refusals
    /// or non-answers ([`ComplianceGroup::ObjectNonAnswer`]). Only the start counts, so a story
    /// that goes on to say "he was unable to sleep" is still behaviour.
    pub object_refusal_prefixes: Vec<String>,
    /// Object-level answers that contain one of these anywhere (after normalisation) are
    /// non-answers: assistant disclaimers that no task answer contains.
    pub object_refusal_contains: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self {
            normalization: Normalization::compliance(),
            refusal_exact: strings(&[
                "",
                "no",
                "nope",
                "na",
                "none",
                "unknown",
                "undefined",
                "impossible",
                "random",
                "sequence",
                "item",
                "next",
                "system",
            ]),
            refusal_contains: strings(&[
                "sorry",
                "apologi",
                "as an ai",
                "as a language model",
                "i cannot",
                "i cant",
                "i can not",
                "i am unable",
                "im unable",
                "unable to",
                "i dont know",
                "i do not know",
                "not possible",
                "unanswerable",
                "unpredictable",
                "insufficient",
                "unavailable",
                "unidentifiable",
                "unrelated",
            ]),
            choice_letters: "abcdefghijklmnopqrstuvwxyz".to_owned(),
            object_refusal_prefixes: strings(&[
                "sorry",
                "im sorry",
                "i am sorry",
                "i apologi",
                "apologi",
                "i cannot",
                "i cant",
                "i can not",
                "i am unable",
                "im unable",
                "i am not able",
                "im not able",
                "i dont know",
                "i do not know",
                "i will not",
                "i wont",
                "unfortunately i",
                "as an ai",
                "as a language model",
                "i am an ai",
                "im an ai",
            ]),
            object_refusal_contains: strings(&[
                "as an ai language model",
                "as a language model",
                "im just an ai",
                "i am just an ai",
            ]),
        }
    }
}

/// Checks answers against compliance groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ComplianceChecker {
    /// The rules.
    pub config: ComplianceConfig,
}

impl ComplianceChecker {
    /// A checker with these rules.
    pub fn new(config: ComplianceConfig) -> Self {
        Self { config }
    }

    /// Checks `answer` against every group in order, after the checker's own normalisation;
    /// the first failure is returned.
    pub fn check(&self, answer: &str, groups: &[ComplianceGroup]) -> Compliance {
        self.check_with(answer, groups, &self.config.normalization)
    }

    /// Checks `answer` against every group in order after `normalization` (instead of the
    /// checker's own); the first failure is returned.
    pub fn check_with(
        &self,
        answer: &str,
        groups: &[ComplianceGroup],
        normalization: &Normalization,
    ) -> Compliance {
        let clean = normalization.apply(answer);
        for &group in groups {
            if let Some(reason) = self.violation(&clean, group) {
                return Compliance::NonCompliant { group, reason };
            }
        }
        Compliance::Compliant
    }

    /// Checks an *object-level* answer: non-compliant ([`ComplianceGroup::ObjectNonAnswer`])
    /// when it is empty, starts like a refusal ([`ComplianceConfig::object_refusal_prefixes`])
    /// or contains an assistant disclaimer ([`ComplianceConfig::object_refusal_contains`]),
    /// after lower-casing, trimming and removing ASCII punctuation. Such answers are not
    /// behaviour to predict: they are excluded and counted.
    pub fn check_object_answer(&self, answer: &str) -> Compliance {
        let group = ComplianceGroup::ObjectNonAnswer;
        let clean = Normalization::compliance().apply(answer);
        let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
        let c = &self.config;
        let reason = if clean.is_empty() {
            Some("empty object-level answer".to_owned())
        } else if let Some(p) = c
            .object_refusal_prefixes
            .iter()
            .find(|p| !p.is_empty() && starts_with_words(&clean, p))
        {
            Some(format!("object-level answer starts like a refusal (`{p}`)"))
        } else {
            c.object_refusal_contains
                .iter()
                .find(|p| !p.is_empty() && clean.contains(p.as_str()))
                .map(|p| format!("object-level answer contains the disclaimer `{p}`"))
        };
        match reason {
            Some(reason) => Compliance::NonCompliant { group, reason },
            None => Compliance::Compliant,
        }
    }

    /// Whether `answer` looks like a refusal or evasion.
    pub fn is_refusal_like(&self, answer: &str) -> bool {
        let clean = self.config.normalization.apply(answer);
        self.violation(&clean, ComplianceGroup::RefusalLike)
            .is_some()
    }

    fn violation(&self, clean: &str, group: ComplianceGroup) -> Option<String> {
        let c = &self.config;
        match group {
            ComplianceGroup::ObjectNonAnswer => {
                self.check_object_answer(clean).reason().map(str::to_owned)
            }
            ComplianceGroup::RefusalLike => {
                if clean.is_empty() {
                    return Some("empty answer".to_owned());
                }
                if let Some(p) = c.refusal_exact.iter().find(|p| clean == p.as_str()) {
                    return Some(format!("answer is the refusal-like word `{p}`"));
                }
                c.refusal_contains
                    .iter()
                    .find(|p| !p.is_empty() && clean.contains(p.as_str()))
                    .map(|p| format!("answer contains the refusal-like phrase `{p}`"))
            }
            ComplianceGroup::SingleCharacter => {
                let n = clean.chars().count();
                (n != 1).then(|| format!("expected one character, got {n}"))
            }
            ComplianceGroup::SingleWord => {
                let n = clean.split_whitespace().count();
                (n != 1).then(|| format!("expected one word, got {n}"))
            }
            ComplianceGroup::TrueFalse => (clean != "true" && clean != "false")
                .then(|| format!("expected `true` or `false`, got `{clean}`")),
            ComplianceGroup::MultipleChoice => {
                let mut chars = clean.chars();
                let ok = matches!((chars.next(), chars.next()),
                    (Some(ch), None) if c.choice_letters.contains(ch));
                (!ok).then(|| format!("expected one option letter, got `{clean}`"))
            }
            ComplianceGroup::Numeric => {
                let ok = !clean.is_empty() && clean.chars().all(char::is_numeric);
                (!ok).then(|| format!("expected a number, got `{clean}`"))
            }
        }
    }
}

/// Whether `text` starts with `prefix` at a word boundary (`"sorry"` matches "sorry i" but
/// not "sorrel"; a prefix ending mid-word such as `"apologi"` matches "apologies").
fn starts_with_words(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' ') || prefix.ends_with("apologi"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComplianceGroup::*;

    fn ok(answer: &str, group: ComplianceGroup) -> bool {
        ComplianceChecker::default()
            .check(answer, &[group])
            .is_compliant()
    }

    #[test]
    fn normalisation_variants() {
        assert_eq!(
            Normalization::comparison().apply("  Héllo, World!\n"),
            "héllo, world!"
        );
        assert_eq!(
            Normalization::compliance().apply("  Héllo, World!\n"),
            "héllo world"
        );
        assert_eq!(Normalization::none().apply(" A "), " A ");
        assert_eq!(Normalization::compliance().apply("a ."), "a");
        assert!(Normalization::comparison().equal(" Paris", "paris "));
        assert!(!Normalization::comparison().equal("paris.", "paris"));
        assert!(Normalization::compliance().equal("paris.", "paris"));
        assert_eq!(Normalization::comparison().apply("ÉCOLE"), "école");
    }

    #[test]
    fn single_character() {
        assert!(ok("a", SingleCharacter));
        assert!(ok(" A\n", SingleCharacter));
        assert!(
            ok("é", SingleCharacter),
            "multi-byte character is one character"
        );
        assert!(ok("日", SingleCharacter));
        assert!(ok("b.", SingleCharacter), "punctuation stripped by default");
        assert!(!ok("ab", SingleCharacter));
        assert!(!ok("", SingleCharacter));
        assert!(!ok("   ", SingleCharacter));
        assert!(
            !ok(".", SingleCharacter),
            "a lone punctuation mark is stripped to nothing"
        );
    }

    #[test]
    fn single_word() {
        assert!(ok("cat", SingleWord));
        assert!(ok("  naïve  ", SingleWord));
        assert!(!ok("two words", SingleWord));
        assert!(!ok("", SingleWord));
        assert!(!ok("\t\n", SingleWord));
    }

    #[test]
    fn true_false() {
        assert!(ok("true", TrueFalse));
        assert!(ok(" False.", TrueFalse));
        assert!(ok("TRUE", TrueFalse));
        assert!(!ok("yes", TrueFalse));
        assert!(!ok("true false", TrueFalse));
        assert!(!ok("", TrueFalse));
    }

    #[test]
    fn multiple_choice() {
        assert!(ok("A", MultipleChoice));
        assert!(ok(" c) ", MultipleChoice));
        assert!(!ok("AB", MultipleChoice));
        assert!(!ok("1", MultipleChoice));
        assert!(!ok("é", MultipleChoice));
        assert!(!ok("", MultipleChoice));
        let cfg = ComplianceConfig {
            choice_letters: "abcd".into(),
            ..ComplianceConfig::default()
        };
        let checker = ComplianceChecker::new(cfg);
        assert!(checker.check("d", &[MultipleChoice]).is_compliant());
        assert!(!checker.check("e", &[MultipleChoice]).is_compliant());
    }

    #[test]
    fn numeric() {
        assert!(ok("85", Numeric));
        assert!(ok(" 85", Numeric), "leading space is trimmed");
        assert!(ok("٣", Numeric), "Unicode digits are numeric");
        assert!(
            ok("8.5", Numeric),
            "the default strips the decimal point as punctuation"
        );
        assert!(!ok("eighty", Numeric));
        assert!(!ok("", Numeric));
        let strict = ComplianceChecker::new(ComplianceConfig {
            normalization: Normalization::comparison(),
            ..ComplianceConfig::default()
        });
        assert!(!strict.check("8.5", &[Numeric]).is_compliant());
        assert!(!strict.check("-3", &[Numeric]).is_compliant());
        assert!(strict.check(" 85", &[Numeric]).is_compliant());
    }

    #[test]
    fn refusal_like() {
        for bad in [
            "",
            "  ",
            "No",
            "Unknown.",
            "I'm sorry, but I can't do that.",
            "As an AI language model, I have no responses.",
            "I don't know",
            "N/A",
        ] {
            assert!(!ok(bad, RefusalLike), "`{bad}` should be refusal-like");
        }
        for good in ["Paris", "b", "true", "noble", "42", "Nobody knows? Paris."] {
            assert!(ok(good, RefusalLike), "`{good}` should pass");
        }
        assert!(ComplianceChecker::default().is_refusal_like("Sorry!"));
    }

    #[test]
    fn first_failing_group_is_reported() {
        let checker = ComplianceChecker::default();
        let c = checker.check("sorry friend", &[RefusalLike, SingleWord]);
        assert!(matches!(
            c,
            Compliance::NonCompliant {
                group: RefusalLike,
                ..
            }
        ));
        let c = checker.check("two words", &[RefusalLike, SingleWord]);
        assert!(matches!(
            c,
            Compliance::NonCompliant {
                group: SingleWord,
                ..
            }
        ));
        assert!(c.reason().unwrap().contains("got 2"));
        assert_eq!(checker.check("x", &[]), Compliance::Compliant);
    }

    #[test]
    fn object_answers_refusing_or_empty_are_non_answers() {
        let c = ComplianceChecker::default();
        for bad in [
            "",
            "  \n",
            "I'm sorry, but I can't continue that list.",
            "Sorry!",
            "As an AI, I have no favourite animal.",
            "I cannot predict that.",
            "I don't know.",
            "Apologies, that is not something I can do.",
            "Well, as an AI language model I do not have opinions.",
        ] {
            let v = c.check_object_answer(bad);
            assert!(
                matches!(
                    &v,
                    Compliance::NonCompliant {
                        group: ObjectNonAnswer,
                        ..
                    }
                ),
                "`{bad}`: {v:?}"
            );
        }
        for good in [
            "fox deer owl",
            "No cat sat on the mat.",
            "He was unable to sleep that night.",
            "Sorrel grew by the river.",
            "B",
            "next item random",
        ] {
            assert!(c.check_object_answer(good).is_compliant(), "`{good}`");
        }
    }

    #[test]
    fn check_with_uses_the_given_normalisation() {
        let c = ComplianceChecker::default();
        assert!(!c.check(",", &[SingleCharacter]).is_compliant());
        assert!(
            c.check_with(",", &[SingleCharacter], &Normalization::comparison())
                .is_compliant()
        );
        assert!(
            !c.check_with("b.", &[SingleCharacter], &Normalization::comparison())
                .is_compliant()
        );
        assert_eq!(
            ComplianceRule::Paper.normalization(),
            Normalization::compliance()
        );
        assert_eq!(ComplianceRule::default(), ComplianceRule::PropertyForm);
    }

    #[test]
    fn config_round_trips_through_toml_like_json() {
        let json = r#"{"normalization":{"strip_punctuation":false},"choice_letters":"ab"}"#;
        let checker: ComplianceChecker = serde_json::from_str(json).unwrap();
        assert!(
            checker.config.normalization.lowercase,
            "unset fields keep defaults"
        );
        assert!(!checker.config.normalization.strip_punctuation);
        assert!(!checker.config.refusal_contains.is_empty());
        assert!(!checker.check("c", &[MultipleChoice]).is_compliant());
    }
}
