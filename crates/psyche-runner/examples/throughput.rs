//! Throughput of the runner against the zero-latency local test server, and a server for
//! `benches/inspect_compare.py` to run inspect_ai against.
//!
//! ```text
//! cargo run --release -p psyche-runner --example throughput -- [samples] [concurrency] [--serve]
//! ```
//!
//! Prints `psyche samples/s: <rate>`; with `--serve` it then prints `url: <base url>` and keeps
//! the same server running until stdin closes.

use std::io::{BufRead, Write};
use std::sync::Arc;

use psyche_core::{Conversation, Sample};
use psyche_models::{OpenAiCompatible, OpenAiConfig};
use psyche_runner::{Eval, Generate, ProgressMode};
use psyche_test_server::{ServerConfig, TestServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = args.iter().any(|a| a == "--serve");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let samples = nums.first().copied().unwrap_or(20_000);
    let concurrency = nums.get(1).copied().unwrap_or(1_000);

    let server = TestServer::start(ServerConfig::default()).await;
    let model = OpenAiCompatible::new(OpenAiConfig::new(server.base_url(), "bench-model"))?;
    let items: Vec<Sample> = (0..samples)
        .map(|i| {
            Sample::new(
                format!("s{i}"),
                Conversation::user(format!("What is {} + {}?", i % 1000, i % 997)),
            )
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("psyche-throughput-{}", std::process::id()));
    let log = dir.join("run.jsonl");
    let summary = Eval::builder("throughput")
        .samples(items)
        .model(Arc::new(model))
        .solver(Generate::new(16))
        .concurrency(concurrency)
        .progress(ProgressMode::Quiet)
        .log_path(&log)
        .build()?
        .run()
        .await?;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "psyche samples/s: {:.1} ({} samples, concurrency {}, {:.2?}, {} errors)",
        summary.rate(),
        summary.completed,
        concurrency,
        summary.elapsed,
        summary.errors
    );
    if serve {
        println!("url: {}", server.base_url());
        std::io::stdout().flush()?;
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let stdin = std::io::stdin();
            for _ in stdin.lock().lines() {}
        })
        .await?;
    }
    Ok(())
}
