//! The released-format loader on our own fixture (`fixtures/released_rows.jsonl`, written in
//! the release's row schema with psyche's wording).

use psyche_core::Split;
use psyche_introspection::hypothetical::{OBJECT_ID_KEY, OBJECT_PROMPT_KEY};
use psyche_introspection::{load_released, released::parse_released};
use psyche_judges::Property;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/released_rows.jsonl"
);

#[test]
fn released_rows_load_into_object_and_hypothetical_samples() {
    let data = load_released(FIXTURE, Split::HeldOut).unwrap();
    assert_eq!(data.hypotheticals.len(), 5, "one hypothetical per row");
    assert_eq!(data.objects.len(), 4, "two rows share one animals question");
    let animals = &data.objects[0];
    assert_eq!(animals.meta_str("task"), Some("animals_long"));
    assert_eq!(
        animals.metadata["properties"],
        serde_json::json!(["first_character", "second_word"])
    );
    for h in &data.hypotheticals {
        let oid = h.meta_str(OBJECT_ID_KEY).unwrap();
        let o = data.objects.iter().find(|o| o.id == oid).unwrap();
        let quoted = o.input.last_user_text().unwrap();
        assert_eq!(h.meta_str(OBJECT_PROMPT_KEY), Some(quoted));
        assert!(h.input.last_user_text().unwrap().contains(quoted));
        assert_eq!(h.split, Split::HeldOut);
        Property::from_name(h.meta_str("property").unwrap()).unwrap();
    }
    let stance = data
        .hypotheticals
        .iter()
        .find(|h| h.meta_str("property") == Some("ethical_stance"))
        .unwrap();
    assert_eq!(stance.meta_str("stance_target"), Some("A"));
    assert_eq!(
        Property::from_name("ethical_stance")
            .unwrap()
            .extract_with_target("A", stance.meta_str("stance_target")),
        Some("true".into())
    );
    let myopic = data
        .hypotheticals
        .iter()
        .find(|h| h.meta_str("property") == Some("matches_myopic_reward"))
        .unwrap();
    assert!(myopic.id.ends_with("#matches_myopic_reward"));
}

#[test]
fn a_bad_row_names_the_file_and_line() {
    let good = std::fs::read_to_string(FIXTURE).unwrap();
    let first = good.lines().next().unwrap();
    let path = std::path::Path::new("released/test/animals_long.jsonl");

    let missing = format!("{first}\n{{\"original_question\": \"x\"}}\n");
    let err = parse_released(&missing, path, Split::HeldOut)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("released/test/animals_long.jsonl:2:"),
        "{err}"
    );
    assert!(err.contains("original_dataset"), "{err}");

    let unknown = first.replace("\"first_character\"", "\"seventh_character\"");
    let err = parse_released(&format!("\n{unknown}"), path, Split::HeldOut)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("animals_long.jsonl:2") && err.contains("behavioral_property"),
        "{err}"
    );

    let not_json = format!("{first}\n{first}\nnot json\n");
    let err = parse_released(&not_json, path, Split::HeldOut)
        .unwrap_err()
        .to_string();
    assert!(err.contains(":3:"), "{err}");

    let err = load_released("no/such/file.jsonl", Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no/such/file.jsonl"), "{err}");
}
