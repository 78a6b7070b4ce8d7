//! API backends cannot steer a model's residual stream: they say so in their capabilities and
//! refuse `Model::steered` with the typed capability error, before any request is sent.

mod common;

use psyche_core::{Capability, Model, ModelError, SteerFrom, Steering};
use psyche_models::{Anthropic, AnthropicConfig, ApiKey};
use psyche_test_server::{ServerConfig, TestServer};

fn refuses(model: &dyn Model) {
    assert!(!model.capabilities().has(Capability::Steering));
    let steering = Steering::new(3, vec![0.5; 8], 4.0).from(SteerFrom::Message(2));
    match model.steered(&steering) {
        Err(e @ ModelError::Unsupported { .. }) => {
            assert!(matches!(
                e,
                ModelError::Unsupported {
                    capability: Capability::Steering,
                    ..
                }
            ));
            assert!(e.to_string().contains("steering"), "{e}");
        }
        other => panic!(
            "expected Unsupported, got {:?}",
            other.map(|m| m.id().to_owned())
        ),
    }
}

#[tokio::test]
async fn api_backends_refuse_steering_without_a_request() {
    let server = TestServer::start(ServerConfig::default().api_key("ak-right-0000000000")).await;
    refuses(&common::backend(&server));
    let anthropic = Anthropic::new(
        AnthropicConfig::new(server.base_url(), "claude-test")
            .api_key(ApiKey::new("ak-right-0000000000")),
    )
    .unwrap();
    refuses(&anthropic);
    assert_eq!(server.request_count(), 0);
}
