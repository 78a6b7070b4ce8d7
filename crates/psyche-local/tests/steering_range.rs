//! Steering over a token range on the real SmolLM2-135M-Instruct, through the core seam
//! (`Model::steered`): positions before the range start are untouched, later ones move, on the
//! scoring, distribution, hidden-state and generation paths.

use std::sync::OnceLock;

use psyche_core::{
    Capability, ChatMessage, Conversation, GenerateRequest, Model, ModelError, SteerFrom, Steering,
};
use psyche_local::{LocalConfig, LocalModel};

fn model() -> LocalModel {
    static M: OnceLock<LocalModel> = OnceLock::new();
    M.get_or_init(|| LocalModel::load(&LocalConfig::default()).unwrap())
        .clone()
}

fn vector(d: usize) -> Vec<f32> {
    (0..d)
        .map(|i| if i % 7 == 0 { 1.0 } else { -0.25 })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[tokio::test]
async fn steering_from_a_token_changes_only_later_positions() {
    let m = model();
    assert!(m.capabilities().has(Capability::Steering));
    let d = m.hparams().d_model;
    let conv = Conversation::user("Name a colour.");
    let cont = "Blue is the colour of a clear sky at noon.";
    let prompt_len = m.prompt_ids(&conv).unwrap().len();
    let base = m.loglikelihood(&conv, cont).await.unwrap();
    assert!(base.token_logprobs.len() > 5);

    // From the third continuation token: continuation token k is predicted at position
    // prompt_len + k − 1, so tokens 0..=2 keep their logprobs and token 3 onward move.
    let from = prompt_len + 2;
    let steering = Steering::new(10, vector(d), 6.0).from(SteerFrom::Token(from));
    let steered = m.steered(&steering).unwrap();
    assert!(
        steered.id().ends_with(&format!("@token{from}")),
        "{}",
        steered.id()
    );
    let s = steered.loglikelihood(&conv, cont).await.unwrap();
    for k in 0..3 {
        assert!(
            (s.token_logprobs[k] - base.token_logprobs[k]).abs() < 1e-4,
            "token {k} moved: {} vs {}",
            s.token_logprobs[k],
            base.token_logprobs[k]
        );
    }
    let moved = (3..base.token_logprobs.len())
        .map(|k| (s.token_logprobs[k] - base.token_logprobs[k]).abs())
        .fold(0.0, f64::max);
    assert!(moved > 0.05, "later tokens did not move: {moved}");
    // The same vector at every position moves the first token too.
    let everywhere = m
        .steered(&Steering::new(10, vector(d), 6.0))
        .unwrap()
        .loglikelihood(&conv, cont)
        .await
        .unwrap();
    assert!((everywhere.token_logprobs[0] - base.token_logprobs[0]).abs() > 0.05);

    // Next-token distribution (read at position prompt_len − 1) and hidden states (last
    // prompt position): untouched when steering starts at prompt_len, moved when it starts at
    // prompt_len − 1.
    let a = m.next_token_logprobs(&conv).await.unwrap();
    let after = m
        .steered(&Steering::new(10, vector(d), 6.0).from(SteerFrom::Token(prompt_len)))
        .unwrap();
    let at_last = m
        .steered(&Steering::new(10, vector(d), 6.0).from(SteerFrom::Token(prompt_len - 1)))
        .unwrap();
    let da = after.next_token_distribution(&conv, 0).await.unwrap();
    let db = at_last.next_token_distribution(&conv, 0).await.unwrap();
    let base_d = m.next_token_distribution(&conv, 0).await.unwrap();
    assert_eq!(da.tokens[0].token, base_d.tokens[0].token);
    assert!((da.tokens[0].logprob - base_d.tokens[0].logprob).abs() < 1e-4);
    assert!((db.tokens[0].logprob - base_d.tokens[0].logprob).abs() > 1e-3);
    let h0 = m.hidden_states(&conv).await.unwrap();
    let h1 = after.hidden_states(&conv).await.unwrap();
    let h2 = at_last.hidden_states(&conv).await.unwrap();
    assert!(max_diff(&h0.layers[11], &h1.layers[11]) < 1e-4);
    assert!(max_diff(&h0.layers[11], &h2.layers[11]) > 1.0);
    let _ = a;

    // Generation: steering from the first generated token's position leaves the first token's
    // distribution alone and moves the second's.
    let req = GenerateRequest::new(conv.clone())
        .temperature(0.0)
        .max_tokens(6)
        .top_logprobs(1);
    let g0 = m.generate(&req).await.unwrap();
    let g1 = after.generate(&req).await.unwrap();
    let (l0, l1) = (
        g0.choices[0].logprobs.as_ref().unwrap(),
        g1.choices[0].logprobs.as_ref().unwrap(),
    );
    assert_eq!(l0[0].token, l1[0].token);
    assert!((l0[0].logprob - l1[0].logprob).abs() < 1e-4);
    assert!(
        l0[1].token != l1[1].token || (l0[1].logprob - l1[1].logprob).abs() > 1e-3,
        "second token unchanged: {:?} {:?}",
        l0[1],
        l1[1]
    );
}

#[tokio::test]
async fn steering_from_a_message_starts_at_its_first_token() {
    let m = model();
    let d = m.hparams().d_model;
    let conv = Conversation::from(vec![
        ChatMessage::user("Remember the word lantern."),
        ChatMessage::assistant("I will remember it."),
        ChatMessage::user("Which word did I ask you to remember?"),
    ]);
    let head = Conversation::from(conv.messages()[..2].to_vec());
    let start = m
        .tokenize(&m.render_chat(&head, false).unwrap())
        .unwrap()
        .len();
    let by_message = m
        .steered(&Steering::new(12, vector(d), 5.0).from(SteerFrom::Message(2)))
        .unwrap();
    let by_token = m
        .steered(&Steering::new(12, vector(d), 5.0).from(SteerFrom::Token(start)))
        .unwrap();
    let a = by_message.next_token_distribution(&conv, 0).await.unwrap();
    let b = by_token.next_token_distribution(&conv, 0).await.unwrap();
    for (x, y) in a.tokens.iter().zip(&b.tokens).take(50) {
        assert_eq!(x.token, y.token);
        assert!((x.logprob - y.logprob).abs() < 1e-5);
    }
    // A message past the conversation is an error naming the field, not a panic.
    let bad = m
        .steered(&Steering::new(12, vector(d), 5.0).from(SteerFrom::Message(9)))
        .unwrap();
    let e = bad.next_token_distribution(&conv, 0).await.unwrap_err();
    assert!(e.to_string().contains("steering.from"), "{e}");
    // A vector of the wrong width is refused by the seam with the field named.
    match m.steered(&Steering::new(12, vec![1.0; d + 1], 1.0)) {
        Err(ModelError::InvalidRequest(msg)) => assert!(msg.contains("`vector`"), "{msg}"),
        other => panic!(
            "expected InvalidRequest, got {:?}",
            other.map(|m| m.id().to_owned())
        ),
    }
}
