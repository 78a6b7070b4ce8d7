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
    fn guesses_strip_non_letters() {
        assert!(guess_is(" Bark.", "bark"));
        assert!(guess_is("b-a-r-k", "bark"));
        assert!(!guess_is("barking", "bark"));
        assert!(!guess_is("", "bark"));
    }
}
