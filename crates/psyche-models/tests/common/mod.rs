#![allow(dead_code)]

use std::time::Duration;

use psyche_models::{OpenAiCompatible, OpenAiConfig, RetryConfig};
use psyche_test_server::TestServer;

/// A backend pointed at the test server.
pub fn backend(server: &TestServer) -> OpenAiCompatible {
    OpenAiCompatible::new(OpenAiConfig::new(server.base_url(), "test-model")).unwrap()
}

/// Small, fast retry settings for tests.
pub fn fast_retry(seed: u64) -> RetryConfig {
    RetryConfig {
        max_retries: 30,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        multiplier: 2.0,
        jitter: 0.5,
        attempt_timeout: Duration::from_millis(500),
        deadline: Duration::from_secs(60),
        seed,
    }
}
