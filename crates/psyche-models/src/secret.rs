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

/// Whether a field or query-parameter name holds a credential.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    matches!(n.as_str(), "key" | "token" | "auth" | "sig" | "signature")
        || [
            "api_key",
            "apikey",
            "secret",
            "password",
            "passwd",
            "authorization",
            "access_token",
            "refresh_token",
            "bearer",
            "credential",
        ]
        .iter()
        .any(|s| n.contains(s))
}

/// A URL with its user-info and the values of credential-named query parameters replaced by
/// `[redacted]`; other text unchanged.
fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return text.to_owned();
    };
    if !url.has_host() {
        return text.to_owned();
    }
    let mut changed = false;
    if !url.username().is_empty() {
        changed |= url.set_username("redacted").is_ok();
    }
    if url.password().is_some() {
        changed |= url.set_password(Some("redacted")).is_ok();
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_name(&k) {
                    changed = true;
                    "[redacted]".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if changed {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    if changed {
        url.to_string()
    } else {
        text.to_owned()
    }
}

/// A copy of model settings (as recorded in [`ModelInfo`](psyche_core::ModelInfo) and cache
/// keys) fit to store: values of credential-named fields (`api_key`, `token`, `secret`,
/// `password`, `authorization`, ...) become `[redacted]`, URLs lose their user-info and
/// credential-named query parameters, and `key`'s text (with masked copies) is replaced
/// everywhere ([`ApiKey::redact`]). The one redaction behind backends' `info()` and the cache.
pub(crate) fn redact_settings(
    value: &serde_json::Value,
    key: Option<&ApiKey>,
) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let s = redact_url(s);
            Value::String(key.map_or(s.clone(), |k| k.redact(&s)))
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| redact_settings(v, key)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if secret_name(k) && !v.is_null() {
                        Value::String("[redacted]".into())
                    } else {
                        redact_settings(v, key)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
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

    #[test]
    fn settings_lose_credentials_but_keep_the_rest() {
        let k = ApiKey::new("sk-secret-1234567890");
        let v = serde_json::json!({
            "base_url": "https://user:pw@example.com/v1?api-key=abc&region=eu",
            "extra_body": {"api_key": "zzz", "max_tokens": 5, "note": "sk-secret-1234567890"},
        });
        let r = redact_settings(&v, Some(&k)).to_string();
        for s in ["pw@", "user:", "abc", "zzz", "sk-secret"] {
            assert!(!r.contains(s), "{s} in {r}");
        }
        assert!(
            r.contains("region=eu") && r.contains("\"max_tokens\":5"),
            "{r}"
        );
    }
}
