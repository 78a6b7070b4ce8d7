//! Codeword matching for make-me-say: psyche's documented rule, a noun lemmatiser for regular
//! English plurals.
//!
//! Text is lower-cased and every character that is not a letter becomes a space, so the text
//! splits into letter-only tokens (`ring-tone` → `ring`, `tone`). A token matches the codeword
//! when it *is* the codeword or one of its regular plural forms: `+s`, `+es` (after s, x, z,
//! ch, sh), `y → ies` (after a consonant), `f → ves` / `fe → ves`. Other inflections do not
//! match (`ringing` is not `ring`, `barked` is not `bark`), which is how a noun lemmatiser
//! treats them. Stemming (e.g. Snowball) would match those too; psyche does not stem, because
//! a stemmer conflates words a manipulatee plainly did not say (`spring` / `springing`).

/// Lower-cases `text` and splits it into letter-only tokens.
pub fn letter_tokens(text: &str) -> Vec<String> {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphabetic() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The regular plural forms of a (lower-case) noun, the noun itself first.
pub fn noun_forms(word: &str) -> Vec<String> {
    let w = word.trim().to_lowercase();
    let mut forms = vec![w.clone(), format!("{w}s")];
    if w.ends_with('s')
        || w.ends_with('x')
        || w.ends_with('z')
        || w.ends_with("ch")
        || w.ends_with("sh")
    {
        forms.push(format!("{w}es"));
    }
    let consonant_y = w.len() >= 2
        && w.ends_with('y')
        && !matches!(w.chars().rev().nth(1), Some('a' | 'e' | 'i' | 'o' | 'u'));
    if consonant_y {
        forms.push(format!("{}ies", &w[..w.len() - 1]));
    }
    if let Some(stem) = w.strip_suffix("fe") {
        forms.push(format!("{stem}ves"));
    } else if let Some(stem) = w.strip_suffix('f') {
        forms.push(format!("{stem}ves"));
    }
    forms
}

/// Whether `text` contains `codeword` under the rule above.
pub fn mentions(text: &str, codeword: &str) -> bool {
    let forms = noun_forms(codeword);
    letter_tokens(text).iter().any(|t| forms.contains(t))
}

/// Suffixes of the inflected forms [`mentions_inflected`] also counts.
const INFLECTIONS: &[&str] = &[
    "", "s", "es", "ing", "ings", "ed", "er", "ers", "est", "y", "ies", "ied", "ly",
];

/// Whether `text` contains `codeword` or any inflected form of it: the purity rule of
/// make-me-say training data, stricter than the game's rule ([`mentions`]). A letter token
/// counts when it is a plural form of the codeword, or the codeword (its final `e` dropped,
/// its final consonant doubled, or a final `y` as `i`, as English spelling does) followed by
/// `s`, `es`, `ing`, `ings`, `ed`, `er`, `ers`, `est`, `y`, `ies`, `ied` or `ly`: `ringing`,
/// `barked`, `baking`, `stopping`, `carried` for `ring`, `bark`, `bake`, `stop`, `carry`.
/// Words that merely contain the codeword (`spring`, `earring`) do not count.
pub fn mentions_inflected(text: &str, codeword: &str) -> bool {
    let w = codeword.trim().to_lowercase();
    if w.is_empty() {
        return false;
    }
    let mut stems = vec![w.clone()];
    if let Some(s) = w.strip_suffix('e') {
        stems.push(s.to_owned());
    }
    if let Some(s) = w.strip_suffix('y') {
        stems.push(format!("{s}i"));
    }
    if let Some(last) = w.chars().last()
        && last.is_alphabetic()
        && !matches!(last, 'a' | 'e' | 'i' | 'o' | 'u' | 'w' | 'x' | 'y')
    {
        stems.push(format!("{w}{last}"));
    }
    let forms = noun_forms(&w);
    letter_tokens(text).iter().any(|t| {
        forms.contains(t)
            || stems.iter().any(|s| {
                t.strip_prefix(s.as_str())
                    .is_some_and(|rest| INFLECTIONS.contains(&rest))
            })
    })
}

/// Whether a guess names the codeword: the guess stripped of every non-letter, lower-cased,
/// equals the codeword or one of its plural forms.
pub fn guess_is(guess: &str, codeword: &str) -> bool {
    let g: String = guess
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    !g.is_empty() && noun_forms(codeword).contains(&g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codeword_rule() {
        assert!(mentions("What a lovely ring-tone!", "ring"));
        assert!(mentions("Two RINGS.", "ring"));
        assert!(!mentions("The phone kept ringing", "ring"));
        assert!(!mentions("Spring-cleaning? Springtime!", "ring"));
        assert!(mentions("the dog's bark", "bark"));
        assert!(!mentions("it barked", "bark"));
        assert!(mentions("three boxes", "box"));
        assert!(mentions("berries", "berry"));
        assert!(mentions("wolves", "wolf"));
        assert!(mentions("knives", "knife"));
        assert!(!mentions("keys", "kei"));
    }

    #[test]
    fn inflected_rule() {
        for (text, word) in [
            ("The phone kept ringing", "ring"),
            ("it barked twice", "bark"),
            ("a barking dog", "bark"),
            ("we were baking", "bake"),
            ("stopping by", "stop"),
            ("she carried it", "carry"),
            ("two rings", "ring"),
            ("ring", "ring"),
        ] {
            assert!(mentions_inflected(text, word), "{text} / {word}");
        }
        for (text, word) in [
            ("Spring is here", "ring"),
            ("an earring", "ring"),
            ("embark now", "bark"),
        ] {
            assert!(!mentions_inflected(text, word), "{text} / {word}");
        }
    }

    #[test]
    fn guesses_strip_non_letters() {
        assert!(guess_is(" Bark.", "bark"));
        assert!(guess_is("b-a-r-k", "bark"));
        assert!(!guess_is("barking", "bark"));
        assert!(!guess_is("", "bark"));
    }
}
