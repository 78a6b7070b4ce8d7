//! The report document: escaping, failed statistics shown with their error, written files.

use std::io::Write as _;
use std::path::Path;

use psyche_core::{Conversation, Record, Sample, Score, Verdict};
use psyche_runner::report::{
    Bar, Document, Figure, Point, ReportConfig, Series, Table, summarize, write_reports,
};

const NASTY: &str = "<script>alert('x')</script> & co";

fn nasty_document() -> Document {
    let curve = psyche_stats::calibration_curve(&[(0.2, 0.0), (0.8, 1.0), (0.5, 1.0)], 2).unwrap();
    Document::new(NASTY)
        .heading(2, NASTY)
        .paragraph(NASTY)
        .list([NASTY])
        .table(Table {
            caption: NASTY.into(),
            headers: vec![NASTY.into(), "b|c".into()],
            rows: vec![vec![NASTY.into(), "x | y".into()]],
        })
        .figure(Figure::bars(NASTY, vec![Bar::new(NASTY, 0.5).ci(0.4, 0.6)]).y_label(NASTY))
        .figure(Figure::scatter(
            NASTY,
            vec![Point::new(0.0, 1.0).label(NASTY).group(NASTY)],
        ))
        .figure(Figure::lines(
            NASTY,
            vec![Series::new(NASTY, [(0.0, 1.0), (1.0, 0.5)])],
        ))
        .figure(Figure::calibration(NASTY, &curve))
        .error(NASTY, NASTY)
}

#[test]
fn html_escapes_every_text_including_labels_inside_figures() {
    let html = nasty_document().to_html().unwrap();
    assert!(!html.contains("<script"), "raw script tag in the page");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("&amp; co"));
    assert!(!html.contains("& co"), "unescaped ampersand");
    assert_eq!(html.matches("<svg").count(), 4);
    assert_eq!(html.matches("</svg>").count(), 4);
}

#[test]
fn markdown_escapes_pipes_in_cells_and_raw_html() {
    let md = nasty_document().to_markdown();
    assert!(md.contains("| b\\|c |"), "{md}");
    assert!(md.contains("| x \\| y |"), "{md}");
    // Every `<` that could open a tag is backslash-escaped (CommonMark shows it literally).
    assert!(!md.replace("\\<", "").contains("<script"), "{md}");
    assert!(md.contains("\\<script>"), "{md}");
    // Every table row has the header's column count: no stray pipe split a cell.
    for line in md.lines().filter(|l| l.starts_with("| ")) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!((3..=5).contains(&cells), "{line}");
    }
}

#[test]
fn a_failed_statistic_shows_its_error_in_both_formats() {
    let err = psyche_stats::mean_ci(&[0.25], 0.95)
        .unwrap_err()
        .to_string();
    let doc = Document::new("r")
        .figure(Figure::bars("m", vec![Bar::failed("only one", &err)]))
        .error("mean of `only one`", &err);
    let md = doc.to_markdown();
    let html = doc.to_html().unwrap();
    assert_eq!(md.matches(&err).count(), 2, "{md}");
    let escaped = err
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert!(html.contains(&escaped), "{html}");
    assert!(html.contains("class=\"error\""));
}

/// Writes a headerless log: `scores[i]` is the score of record i; `clusters[i]` its cluster.
fn write_log(path: &Path, rows: &[(&str, &str, Score)]) {
    let mut f = std::fs::File::create(path).unwrap();
    for (i, (property, cluster, score)) in rows.iter().enumerate() {
        let s = Sample::new(format!("s{i}"), Conversation::user("q"))
            .with_meta("property", *property)
            .with_cluster(*cluster);
        let mut r = Record::for_sample("run", &s, "m", 0);
        r.output = Some("a".into());
        r.scores
            .insert("j".into(), Verdict::new("j", score.clone()));
        serde_json::to_writer(&mut f, &r).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

#[test]
fn summary_with_a_failing_statistic_shows_the_error_not_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fail.jsonl");
    write_log(
        &log,
        &[
            // One cluster repeated: the clustered interval cannot be computed.
            ("one_cluster", "c", Score::Bool(true)),
            ("one_cluster", "c", Score::Bool(false)),
            // One non-0/1 score: no t interval.
            ("single", "d", Score::Number(0.3)),
            // A working group.
            ("fine", "e", Score::Bool(true)),
            ("fine", "f", Score::Bool(false)),
            ("fine", "g", Score::Bool(true)),
        ],
    );
    let config = ReportConfig {
        group_by: vec!["property".into()],
        ..ReportConfig::default()
    };
    let summary = summarize(&log, &config).unwrap();
    let by = |p: &str| summary.rows.iter().find(|r| r.group[0] == p).unwrap();
    let one = by("one_cluster");
    assert!(one.estimate.is_none());
    let one_err = one.estimate_error.clone().expect("error kept");
    let single_err = by("single").estimate_error.clone().expect("error kept");
    assert!(by("fine").estimate.is_some() && by("fine").estimate_error.is_none());

    let md = summary.to_markdown();
    for err in [&one_err, &single_err] {
        assert!(
            md.contains(&format!("error: {err}")),
            "{err} missing in\n{md}"
        );
    }
    assert!(!md.contains(" – |") && !md.contains(" - | - |"), "{md}");
    let paths = write_reports(&log, None, &config).unwrap();
    let html = std::fs::read_to_string(&paths.html).unwrap();
    assert!(html.contains(&one_err.replace('<', "&lt;")), "{html}");
    assert!(paths.markdown.exists());
}

#[test]
fn write_puts_figures_next_to_the_markdown_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let doc = Document::new("t")
        .figure(Figure::bars("a", vec![Bar::new("x", 1.0)]))
        .paragraph("between")
        .figure(Figure::lines("b", vec![Series::new("s", [(0.0, 1.0)])]));
    let paths = doc.write(dir.path().join("sub"), "rep").unwrap();
    assert_eq!(paths.figures.len(), 2);
    let md = std::fs::read_to_string(&paths.markdown).unwrap();
    assert!(
        md.contains("![a](rep-fig1.svg)") && md.contains("![b](rep-fig2.svg)"),
        "{md}"
    );
    for f in &paths.figures {
        assert!(std::fs::read_to_string(f).unwrap().contains("<svg"));
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    // Rewriting replaces the files whole.
    doc.write(dir.path().join("sub"), "rep").unwrap();
    assert_eq!(std::fs::read_to_string(&paths.markdown).unwrap(), md);
}
