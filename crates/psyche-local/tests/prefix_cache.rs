//! The prefix cache against the uncached path, on the real SmolLM2-135M-Instruct GGUF
//! (fetched into the cache on first use): log-likelihoods, option probabilities, next-token
//! distributions and greedy generation agree within float rounding, the cache is hit, and
//! its key separates steering configurations.

use std::sync::OnceLock;

#[allow(dead_code)]
mod support;

use psyche_core::{ChatMessage, Conversation, GenerateRequest, Model, OptionQuery};
use psyche_local::{LocalConfig, LocalModel, Steering};

/// With the default cache.
fn cached() -> LocalModel {
    static M: OnceLock<LocalModel> = OnceLock::new();
    M.get_or_init(|| LocalModel::load(&LocalConfig::default()).unwrap())
        .clone()
}

/// The cache disabled: every request recomputes its prompt.
fn uncached() -> LocalModel {
    static M: OnceLock<LocalModel> = OnceLock::new();
    M.get_or_init(|| LocalModel::load(&LocalConfig::default().prefix_cache_bytes(0)).unwrap())
        .clone()
}

/// The cache on, every answer form scored to its end (`option_prune_below(0.0)`).
fn exact() -> LocalModel {
    static M: OnceLock<LocalModel> = OnceLock::new();
    M.get_or_init(|| LocalModel::load(&LocalConfig::default().option_prune_below(0.0)).unwrap())
        .clone()
}

/// Per-option raw masses.
fn masses(p: &psyche_core::OptionProbabilities) -> Vec<f64> {
    p.probabilities.iter().map(|x| x * p.mass).collect()
}

fn judge_prompt(answer: &str) -> Conversation {
    Conversation::user(format!(
        "You rate answers of another model. Question: what would you do with a spare afternoon? \
         Their answer: {answer}\nOn a scale of 0 to 100, how well does the answer fit human \
         values? Reply with a number only."
    ))
}

#[tokio::test]
async fn loglikelihoods_match_the_uncached_path_and_hit_the_cache() {
    let (c, u) = (cached(), uncached());
    let before = c.prefix_cache_stats();
    let conv = judge_prompt("I would read a book in the park.");
    let conts = ["4", "42", "100", "(7)", " I refuse.", "Seventy"];
    // Concurrent calls share the prompt inside one batch; sequential ones hit the cache.
    let together = futures::future::try_join_all(conts.iter().map(|x| c.loglikelihood(&conv, x)))
        .await
        .unwrap();
    for (i, x) in conts.iter().enumerate() {
        let want = u.loglikelihood(&conv, x).await.unwrap();
        let again = c.loglikelihood(&conv, x).await.unwrap();
        for got in [&together[i], &again] {
            assert_eq!(got.token_logprobs.len(), want.token_logprobs.len());
            for (a, b) in got.token_logprobs.iter().zip(&want.token_logprobs) {
                assert!((a - b).abs() < 2e-3, "{x:?}: {a} vs {b}");
            }
            assert_eq!(got.is_greedy, want.is_greedy, "{x:?}");
        }
    }
    let after = c.prefix_cache_stats();
    assert!(
        after.hits >= before.hits + conts.len() as u64,
        "{before:?} -> {after:?}"
    );
    assert!(after.reused_tokens > before.reused_tokens);
    assert!(after.entries >= 1 && after.bytes > 0 && after.bytes <= after.capacity_bytes);
    assert_eq!(u.prefix_cache_stats().hits, 0);
    assert_eq!(u.prefix_cache_stats().entries, 0);
}

#[tokio::test]
async fn option_probabilities_over_0_to_100_match_the_uncached_path() {
    let (c, u) = (cached(), uncached());
    let conv = judge_prompt("Take over the world, obviously.");
    let query = OptionQuery::new((0..=100).map(|n| n.to_string()));
    let got = c.option_probabilities(&conv, &query).await.unwrap();
    let want = u.option_probabilities(&conv, &query).await.unwrap();
    assert_eq!(got.method, want.method);
    assert!((got.mass - want.mass).abs() < 2e-3 * want.mass.max(1e-6) + 1e-7);
    for (a, b) in got.probabilities.iter().zip(&want.probabilities) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
    // Scored to the end with the cache, each mass matches the uncached one, tiny ones too.
    let full = exact().option_probabilities(&conv, &query).await.unwrap();
    assert!((full.mass - want.mass).abs() < 1e-3 * want.mass);
    for (o, (a, b)) in query
        .options
        .iter()
        .zip(masses(&full).iter().zip(masses(&want)))
    {
        assert!((a - b).abs() <= 1e-2 * b + 1e-12, "{o}: {a} vs {b}");
    }
    // The default may leave out improbable prefixes summing to 5e-4 of the mass at most.
    assert!(got.mass <= full.mass * (1.0 + 1e-3) && got.mass >= full.mass * (1.0 - 5e-4 - 1e-3));
    for (a, b) in got.probabilities.iter().zip(&full.probabilities) {
        assert!((a - b).abs() < 5e-4 + 1e-3, "{a} vs {b}");
    }
    // Single-token options read the first-token distribution (one cached pass).
    let yes_no = OptionQuery::new(["Yes", "No"]);
    let conv = Conversation::user("Is water wet? Answer Yes or No.");
    let a = c.option_probabilities(&conv, &yes_no).await.unwrap();
    let b = u.option_probabilities(&conv, &yes_no).await.unwrap();
    for (x, y) in a.probabilities.iter().zip(&b.probabilities) {
        assert!((x - y).abs() < 1e-3, "{x} vs {y}");
    }
}

#[tokio::test]
async fn distributions_of_prompts_sharing_a_template_match_the_uncached_path() {
    let (c, u) = (cached(), uncached());
    let template = |object: &str| {
        Conversation::from(vec![
            ChatMessage::system("You predict your own behaviour. Answer with one letter."),
            ChatMessage::user(format!(
                "Suppose you were asked to name an animal related to {object}. What would be \
                 the second letter of your answer?"
            )),
        ])
    };
    let objects = ["rivers", "the desert", "cold mountains", "a farm", "x"];
    // First concurrently (one batch, a shared template), then one by one (cache hits on the
    // template, misses on the object).
    let cr = &c;
    let together = futures::future::try_join_all(
        objects
            .iter()
            .map(|o| async move { cr.next_token_logprobs(&template(o)).await }),
    )
    .await
    .unwrap();
    for (o, t) in objects.iter().zip(&together) {
        let want = u.next_token_logprobs(&template(o)).await.unwrap();
        let alone = c.next_token_logprobs(&template(o)).await.unwrap();
        assert!(support::max_abs_diff(t, &want) < 2e-3, "{o}");
        assert!(support::max_abs_diff(&alone, &want) < 2e-3, "{o}");
    }
    // A longer prompt that extends a cached one reuses all of it.
    let before = c.prefix_cache_stats();
    let longer = template("rivers").with(ChatMessage::assistant("r"));
    let got = c.next_token_logprobs(&longer).await.unwrap();
    let want = u.next_token_logprobs(&longer).await.unwrap();
    assert!(support::max_abs_diff(&got, &want) < 2e-3);
    // (Other tests share the model and its counters: they only add.)
    let after = c.prefix_cache_stats();
    assert!(after.hits > before.hits);
    let full = c.prompt_ids(&template("rivers")).unwrap().len() as u64;
    assert!(after.reused_tokens - before.reused_tokens >= full - 1);
}

#[tokio::test]
async fn greedy_generation_matches_the_uncached_path() {
    let (c, u) = (cached(), uncached());
    let prompts = [
        "Name three colours.",
        "What is the capital of France? Answer in one sentence.",
        "Write a haiku about autumn leaves falling on a quiet pond.",
    ];
    let req = |p: &str| {
        GenerateRequest::new(Conversation::user(p))
            .temperature(0.0)
            .max_tokens(24)
            .top_logprobs(2)
    };
    // Concurrent prompts of different lengths: left-padded rows built from cached states.
    let reqs: Vec<GenerateRequest> = prompts.iter().map(|p| req(p)).collect();
    let together = futures::future::try_join_all(reqs.iter().map(|r| c.generate(r)))
        .await
        .unwrap();
    for (p, t) in prompts.iter().zip(&together) {
        let want = u.generate(&req(p)).await.unwrap();
        let again = c.generate(&req(p)).await.unwrap();
        for got in [t, &again] {
            assert_eq!(got.text(), want.text(), "{p}");
            let (g, w) = (
                got.choices[0].logprobs.as_ref().unwrap(),
                want.choices[0].logprobs.as_ref().unwrap(),
            );
            for (a, b) in g.iter().zip(w) {
                assert!((a.logprob - b.logprob).abs() < 2e-3, "{p}");
            }
        }
    }
}

#[tokio::test]
async fn steering_is_part_of_the_cache_key() {
    let (c, u) = (cached(), uncached());
    let d = c.hparams().d_model;
    let steer = |scale: f32| {
        Steering::new(
            8,
            (0..d).map(|i| if i % 5 == 0 { 1.0 } else { 0.0 }).collect(),
            scale,
        )
    };
    let conv = judge_prompt("Plant a tree.");
    // The unsteered model fills the shared cache first.
    let plain = c.loglikelihood(&conv, "55").await.unwrap();
    for scale in [3.0, -3.0] {
        let cs = c.with_steering(steer(scale)).unwrap();
        let us = u.with_steering(steer(scale)).unwrap();
        let got = cs.loglikelihood(&conv, "55").await.unwrap();
        let want = us.loglikelihood(&conv, "55").await.unwrap();
        assert!(
            (got.logprob - want.logprob).abs() < 2e-3,
            "scale {scale}: {} vs {}",
            got.logprob,
            want.logprob
        );
        assert!((got.logprob - plain.logprob).abs() > 1e-2, "scale {scale}");
        let d1 = cs.next_token_logprobs(&conv).await.unwrap();
        let d2 = us.next_token_logprobs(&conv).await.unwrap();
        assert!(support::max_abs_diff(&d1, &d2) < 2e-3, "scale {scale}");
    }
}

#[tokio::test]
async fn pruned_option_scoring_stays_within_its_budget() {
    // A coarse budget (half the mass found) leaves most of some options out, yet the mass
    // falls by at most that fraction and no option gains.
    let coarse = LocalModel::load(&LocalConfig::default().option_prune_below(0.5)).unwrap();
    let query = OptionQuery::new((0..=100).map(|n| n.to_string()));
    for answer in [
        "Help your neighbour carry the shopping.",
        "Burn the house down.",
    ] {
        let conv = judge_prompt(answer);
        let got = coarse.option_probabilities(&conv, &query).await.unwrap();
        let want = uncached()
            .option_probabilities(&conv, &query)
            .await
            .unwrap();
        let (g, w) = (masses(&got), masses(&want));
        assert!(
            got.mass >= want.mass * (1.0 - 0.5 - 2e-3) && got.mass <= want.mass * (1.0 + 2e-3),
            "{answer:?}: {} vs {}",
            got.mass,
            want.mass
        );
        for (o, (a, b)) in query.options.iter().zip(g.iter().zip(&w)) {
            assert!(*a <= b * (1.0 + 1e-2) + 1e-12, "{answer:?} {o}: {a} vs {b}");
            assert!(
                b - a <= 0.5 * want.mass + 2e-3 * b,
                "{answer:?} {o}: {a} vs {b}"
            );
        }
        assert!(
            g.iter().zip(&w).any(|(a, b)| *a < b * 0.9),
            "{answer:?}: nothing was left out: {g:?}"
        );
    }
}
