//! API keys that never print.

use std::fmt;

/// An API key. `Debug` and `Display` print `<redacted>`; the only way to read it is
/// [`ApiKey::expose`], used when building the auth header (which is marked sensitive).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// Reads the key from the environment variable `name`; `None` when unset or empty.
    pub fn from_env(name: &str) -> Option<Self> {
        std::env::var(name)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| Self(k.trim().to_owned()))
    }

    /// The key itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces the key, and any word sharing its first 8 characters (providers sometimes
    /// quote a masked key such as `sk-abc12***wxyz`), with `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_owned();
        }
        let text = text.replace(&self.0, "[redacted]");
        let prefix: String = self.0.chars().take(8).collect();
        if prefix.chars().count() < 8 {
            return text;
        }
        text.split_inclusive(char::is_whitespace)
            .map(|w| {
                if w.contains(&prefix) {
                    let trail: String = w.chars().filter(|c| c.is_whitespace()).collect();
                    format!("[redacted]{trail}")
                } else {
                    w.to_owned()
                }
            })
            .collect()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_and_redacts() {
        let k = ApiKey::new("sk-secret-1234567890");
        assert_eq!(format!("{k:?} {k}"), "ApiKey(<redacted>) <redacted>");
        let msg =
            k.redact("Incorrect API key provided: sk-secret-1234567890. Or sk-secre***890 here");
        assert!(!msg.contains("sk-secret"), "{msg}");
        assert!(!msg.contains("sk-secre"), "{msg}");
        assert!(msg.starts_with("Incorrect API key provided: [redacted]"));
    }
}
