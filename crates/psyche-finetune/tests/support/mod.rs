//! The fine-tuning endpoints of psyche-test-server, behind the small API the tests use.

#![allow(dead_code)]

use std::time::Duration;

use psyche_test_server::{FineTuningConfig, ServerConfig, TestServer};
use serde_json::Value;

/// Server behaviour: job progress, failing suffix, minimum examples, required key, leading
/// rate-limited requests and their `retry-after-ms`.
#[derive(Debug, Clone)]
pub struct FtConfig {
    pub validating_polls: u32,
    pub queued_polls: u32,
    pub running_polls: u32,
    pub failing_suffix: Option<String>,
    pub min_examples: usize,
    pub api_key: Option<String>,
    pub rate_limited_requests: u32,
    pub retry_after: Duration,
}

impl Default for FtConfig {
    fn default() -> Self {
        let d = FineTuningConfig::default();
        Self {
            validating_polls: d.validating_polls,
            queued_polls: d.queued_polls,
            running_polls: d.running_polls,
            failing_suffix: d.failing_suffix,
            min_examples: d.min_examples,
            api_key: None,
            rate_limited_requests: d.rate_limited_requests,
            retry_after: ServerConfig::default().retry_after,
        }
    }
}

pub struct FtServer {
    pub base_url: String,
    pub server: TestServer,
}

impl FtServer {
    pub async fn start(c: FtConfig) -> Self {
        let mut config = ServerConfig::default()
            .fine_tuning(FineTuningConfig {
                validating_polls: c.validating_polls,
                queued_polls: c.queued_polls,
                running_polls: c.running_polls,
                failing_suffix: c.failing_suffix,
                min_examples: c.min_examples,
                rate_limited_requests: c.rate_limited_requests,
            })
            .retry_after(c.retry_after);
        if let Some(k) = c.api_key {
            config = config.api_key(k);
        }
        let server = TestServer::start(config).await;
        Self {
            base_url: server.base_url(),
            server,
        }
    }

    /// Requests on one route: "POST /v1/files", "POST /v1/fine_tuning/jobs" (job creations),
    /// "GET /v1/fine_tuning/jobs" (list), "GET /v1/fine_tuning/jobs/{id}" (status polls and
    /// event reads).
    pub async fn count(&self, key: &str) -> u64 {
        let s = &self.server;
        match key {
            "POST /v1/files" => s.count_for("POST", "/v1/files"),
            "POST /v1/fine_tuning/jobs" => s.request_bodies("/v1/fine_tuning/jobs").len() as u64,
            "GET /v1/fine_tuning/jobs" => {
                s.count_for("GET", "/v1/fine_tuning/jobs")
                    - s.count_for("GET", "/v1/fine_tuning/jobs/")
            }
            "GET /v1/fine_tuning/jobs/{id}" => s.count_for("GET", "/v1/fine_tuning/jobs/"),
            other => panic!("unknown route key {other}"),
        }
    }

    async fn list(&self) -> Vec<Value> {
        let v: Value = reqwest::get(format!("{}/fine_tuning/jobs?limit=100", self.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut data = v["data"].as_array().cloned().unwrap_or_default();
        data.reverse(); // oldest first
        data
    }

    pub async fn job_statuses(&self) -> Vec<String> {
        self.list()
            .await
            .iter()
            .map(|j| j["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The jobs as listed (newest first).
    pub async fn list_raw(&self) -> Vec<Value> {
        let mut l = self.list().await;
        l.reverse();
        l
    }

    /// Every event id of a job, oldest first (read page by page without the driver).
    pub async fn all_event_ids(&self, job: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut after = String::new();
        loop {
            let url = format!(
                "{}/fine_tuning/jobs/{job}/events?limit=100{after}",
                self.base_url
            );
            let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            let data = v["data"].as_array().cloned().unwrap_or_default();
            ids.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
            match data.last() {
                Some(last) if v["has_more"] == true => {
                    after = format!("&after={}", last["id"].as_str().unwrap());
                }
                _ => break,
            }
        }
        ids.reverse();
        ids
    }

    pub async fn job_bodies(&self) -> Vec<Value> {
        self.server.request_bodies("/v1/fine_tuning/jobs")
    }
}
