//! `scripts/replicate.sh --reduced` end to end on the embedded model: the four paper examples at
//! tiny sizes with one fine-tuning seed each, then `replication_report`. Checks that every section
//! of the document is produced from real results, that each stage leaves its stamp, and that a
//! rerun skips the finished stages and writes the document again.
//!
//! The example binaries come from the same `cargo test --release` build (cargo builds examples
//! before it runs tests), so the script runs with `--no-build`.

use std::path::PathBuf;
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn replicate(out: &std::path::Path, doc: &std::path::Path) -> String {
    let output = Command::new("bash")
        .arg("scripts/replicate.sh")
        .args(["--reduced", "--no-build", "--out"])
        .arg(out)
        .arg("--doc")
        .arg(doc)
        .current_dir(repo_root())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "replicate.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn reduced_replication_produces_every_section_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let doc = dir.path().join("doc");
    let first = replicate(&out, &doc);

    let stages = [
        "looking_inward",
        "tell_me_about_yourself",
        "backdoor_awareness",
        "emergent_misalignment",
    ];
    for stage in stages {
        let stamp = std::fs::read_to_string(out.join(stage).join("done.json")).unwrap();
        let stamp: serde_json::Value = serde_json::from_str(&stamp).unwrap();
        assert!(
            stamp["command"].as_str().unwrap().contains("--seeds 1"),
            "{stamp}"
        );
        assert!(stamp["wall_s"].as_u64().is_some(), "{stamp}");
        assert!(first.contains(&format!("{stage}: done in")), "{first}");
    }

    let md = std::fs::read_to_string(doc.join("replication.md")).unwrap();
    for heading in [
        "## Summary",
        "## Looking Inward: ",
        "## Tell me about yourself: ",
        "## Backdoors: ",
        "## Emergent Misalignment: ",
    ] {
        assert!(md.contains(heading), "missing {heading:?} in\n{md}");
    }
    assert!(!md.contains("## Problems"), "{md}");
    // Every comparison each experiment lists in its headline.json is in the document, with the
    // paper's numbers beside them; the report knows only those files.
    for stage in stages {
        let headlines = psyche::runner::experiment::read_headline(out.join(stage)).unwrap();
        assert!(!headlines.is_empty(), "{stage} lists no comparison");
        for h in &headlines {
            assert!(
                md.contains(&h.comparison),
                "missing {:?} of {stage}",
                h.comparison
            );
        }
    }
    for paper in ["49.4 %", "self-trained 8.7", "97–99 %", "19.8 %"] {
        assert!(md.contains(paper), "missing the paper's {paper:?}");
    }
    // One seed per arm: the document says the between-run variance is not estimated and makes
    // no run-level verdict, instead of inventing one from the items.
    assert!(
        md.contains("no run-level verdict: one seed per arm: between-run variance not estimated"),
        "{md}"
    );
    assert!(!md.contains("excludes 0"), "{md}");
    assert!(md.contains("Command: `"), "{md}");
    assert!(
        md.contains("Subject: the embedded"),
        "each section names its setup: {md}"
    );
    let html = std::fs::read_to_string(doc.join("replication.html")).unwrap();
    assert!(html.contains("<svg"), "the HTML twin has the figures");
    let log = std::fs::read_to_string(doc.join("replication.log")).unwrap();
    assert!(
        log.contains("[4/4] emergent_misalignment: done in"),
        "{log}"
    );

    // A rerun skips every finished stage and regenerates the document.
    std::fs::remove_file(doc.join("replication.md")).unwrap();
    let second = replicate(&out, &doc);
    for stage in stages {
        assert!(
            second.contains(&format!("{stage}: finished before, skipped")),
            "{second}"
        );
    }
    assert!(doc.join("replication.md").exists());
}
