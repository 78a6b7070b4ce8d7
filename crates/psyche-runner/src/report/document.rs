//! [`Document`]: a report built block by block and rendered to markdown and HTML.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::figure::Figure;
use super::html;
use crate::error::RunnerError;

/// A table: an optional caption, a header row and rows of cells.
///
/// Cells are plain text (see [`Document`] for the one bit of markup); rows shorter than the
/// header are padded with empty cells. A statistic that failed goes in as its error text
/// ([`error_cell`]), never as a dash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Shown above the table; empty for none.
    pub caption: String,
    /// Column names.
    pub headers: Vec<String>,
    /// The rows, one `Vec` of cells each.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column names.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            caption: String::new(),
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Sets the caption.
    #[must_use]
    pub fn caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = caption.into();
        self
    }

    /// Appends a row.
    #[must_use]
    pub fn row<S: Into<String>>(mut self, cells: impl IntoIterator<Item = S>) -> Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }
}

/// The cell text of a statistic that could not be computed: `error: <message>`.
pub fn error_cell(err: impl std::fmt::Display) -> String {
    format!("error: {err}")
}

/// One block of a [`Document`], in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Block {
    /// A section heading, level 1–6 (markdown `#`…`######`, HTML `<h1>`…`<h6>`; the
    /// document title is the level-1 heading at the top, so sections usually start at 2).
    Heading {
        /// 1 (largest) to 6.
        level: u8,
        /// The heading text.
        text: String,
    },
    /// A paragraph of text.
    Paragraph {
        /// The text.
        text: String,
    },
    /// A bulleted list.
    List {
        /// One entry per bullet.
        items: Vec<String>,
    },
    /// A table.
    Table(Table),
    /// A figure: an SVG plot, with its data as a table.
    Figure(Figure),
    /// A statistic or figure that could not be computed, with the error's text.
    Error {
        /// What failed ("accuracy CI for property X").
        what: String,
        /// The error message.
        message: String,
    },
}

/// The files written by [`Document::write`] (and [`write_reports`](super::write_reports)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    /// The markdown report (`<stem>.md`).
    pub markdown: PathBuf,
    /// The self-contained HTML page (`<stem>.html`, figures inline).
    pub html: PathBuf,
    /// One SVG per figure that could be drawn (`<stem>-fig<N>.svg`), linked from the markdown.
    pub figures: Vec<PathBuf>,
}

/// A report document: a title and blocks (headings, paragraphs, lists, tables, figures and
/// errors), rendered to markdown ([`to_markdown`](Self::to_markdown)) and to a self-contained
/// HTML page ([`to_html`](Self::to_html), minijinja with HTML auto-escaping), or written to
/// both at once ([`write`](Self::write)).
///
/// All text is plain text: it is escaped in HTML (`<`, `&`, quotes) and in markdown (what
/// could start raw HTML, and `|` inside table cells). The one piece of markup is a
/// `` `backtick span` ``, shown as code in both formats.
///
/// A figure becomes, in markdown, a data table plus a link to its SVG file (when written by
/// [`write`](Self::write)); in HTML, the inline SVG with its data table in a collapsed
/// `<details>`. A figure that cannot be drawn shows the error in place of the plot.
///
/// ```
/// use psyche_runner::report::{Bar, Document, Figure, Table};
///
/// let accuracy = psyche_stats::wilson(41, 60, 0.95)?;
/// let failed = psyche_stats::mean_ci(&[0.5], 0.95).unwrap_err();
/// let doc = Document::new("Self-prediction: <model>")
///     .heading(2, "Accuracy vs the mode baseline")
///     .paragraph("One 0/1 score per item; Wilson 95% intervals.")
///     .table(Table {
///         caption: "per property".into(),
///         headers: vec!["property".into(), "accuracy".into(), "n".into()],
///         rows: vec![vec!["first_character".into(), "0.683".into(), "60".into()]],
///     })
///     .figure(Figure::bars(
///         "accuracy",
///         vec![Bar::from_estimate("first_character", &accuracy).baseline(0.42)],
///     ))
///     .error("mean score of `second_word`", &failed);
/// let md = doc.to_markdown();
/// assert!(md.contains("| first_character | 0.683 | 60 |"));
/// assert!(md.contains(&failed.to_string()));
/// let html = doc.to_html()?;
/// assert!(html.contains("&lt;model&gt;") && html.contains("<svg"));
/// # let dir = tempfile::tempdir()?;
/// let paths = doc.write(dir.path(), "report")?; // report.md, report.html, report-fig1.svg
/// assert_eq!(paths.figures.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The page title (markdown `#`, HTML `<title>` and `<h1>`).
    pub title: String,
    /// The content, in order.
    pub blocks: Vec<Block>,
}

impl Document {
    /// An empty document with this title.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// Appends a heading; `level` is clamped to 1–6.
    #[must_use]
    pub fn heading(mut self, level: u8, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Heading {
            level: level.clamp(1, 6),
            text: text.into(),
        });
        self
    }

    /// Appends a paragraph.
    #[must_use]
    pub fn paragraph(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Paragraph { text: text.into() });
        self
    }

    /// Appends a bulleted list.
    #[must_use]
    pub fn list<S: Into<String>>(mut self, items: impl IntoIterator<Item = S>) -> Self {
        self.blocks.push(Block::List {
            items: items.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Appends a table.
    #[must_use]
    pub fn table(mut self, table: Table) -> Self {
        self.blocks.push(Block::Table(table));
        self
    }

    /// Appends a figure.
    #[must_use]
    pub fn figure(mut self, figure: Figure) -> Self {
        self.blocks.push(Block::Figure(figure));
        self
    }

    /// Appends the error of a statistic (or anything else) that could not be computed, so the
    /// report shows why a number is missing: `what` names it, `err` is shown in full.
    #[must_use]
    pub fn error(mut self, what: impl Into<String>, err: impl std::fmt::Display) -> Self {
        self.blocks.push(Block::Error {
            what: what.into(),
            message: err.to_string(),
        });
        self
    }

    /// Appends a block (for building a document in a loop without reassigning).
    pub fn push(&mut self, block: Block) -> &mut Self {
        self.blocks.push(block);
        self
    }

    /// The document as markdown (GitHub-flavoured tables). Figures appear as their data
    /// tables; [`write`](Self::write) adds links to their SVG files.
    pub fn to_markdown(&self) -> String {
        self.markdown(&[])
    }

    /// The document as one self-contained HTML page (figures as inline SVG).
    ///
    /// # Errors
    ///
    /// [`RunnerError::Report`] when the page template fails to render (a bug, not bad data:
    /// a figure that cannot be drawn shows its error in the page instead).
    pub fn to_html(&self) -> Result<String, RunnerError> {
        html::render(self, &self.svgs())
    }

    /// Writes `<stem>.md`, `<stem>.html` and one `<stem>-fig<N>.svg` per drawable figure into
    /// `dir` (created if missing), each file atomically (a reader never sees half a file).
    ///
    /// # Errors
    ///
    /// [`RunnerError::Io`] naming the file when `dir` cannot be created or a file cannot be
    /// written; as [`to_html`](Self::to_html).
    pub fn write(&self, dir: impl AsRef<Path>, stem: &str) -> Result<ReportPaths, RunnerError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
        let svgs = self.svgs();
        let mut figures = Vec::new();
        let mut links = Vec::new();
        for (i, svg) in svgs.iter().enumerate() {
            match svg {
                Ok(svg) => {
                    let name = format!("{stem}-fig{}.svg", i + 1);
                    let path = dir.join(&name);
                    write_file(&path, svg.as_bytes())?;
                    figures.push(path);
                    links.push(Some(name));
                }
                Err(_) => links.push(None),
            }
        }
        let markdown = dir.join(format!("{stem}.md"));
        write_file(&markdown, self.markdown(&links).as_bytes())?;
        let html = dir.join(format!("{stem}.html"));
        write_file(&html, html::render(self, &svgs)?.as_bytes())?;
        Ok(ReportPaths {
            markdown,
            html,
            figures,
        })
    }

    /// The figures in order, each drawn to SVG or its drawing error.
    fn svgs(&self) -> Vec<Result<String, String>> {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                Block::Figure(f) => Some(f.to_svg().map_err(|e| e.to_string())),
                _ => None,
            })
            .collect()
    }

    /// Markdown with `links[i]` (the SVG file of figure i, when written).
    fn markdown(&self, links: &[Option<String>]) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# {}", md_line(&self.title));
        let mut figure = 0usize;
        for block in &self.blocks {
            md.push('\n');
            match block {
                Block::Heading { level, text } => {
                    let hashes = "#".repeat(usize::from((*level).clamp(1, 6)));
                    let _ = writeln!(md, "{hashes} {}", md_line(text));
                }
                Block::Paragraph { text } => {
                    let _ = writeln!(md, "{}", md_text(text));
                }
                Block::List { items } => {
                    for item in items {
                        let _ = writeln!(md, "- {}", md_line(item));
                    }
                }
                Block::Table(t) => md_table(&mut md, t),
                Block::Figure(f) => {
                    figure += 1;
                    let _ = writeln!(md, "**Figure {figure}.** {}\n", md_line(&f.heading()));
                    if let Some(Some(link)) = links.get(figure - 1) {
                        let _ = writeln!(md, "![{}]({link})\n", md_line(&f.title));
                    }
                    if !f.caption.is_empty() {
                        let _ = writeln!(md, "{}\n", md_text(&f.caption));
                    }
                    md_table(&mut md, &f.data_table());
                }
                Block::Error { what, message } => {
                    let _ = writeln!(md, "> **Error** — {}: {}", md_line(what), md_line(message));
                }
            }
        }
        md
    }
}

/// Writes a whole file atomically ([`psyche_core::write_atomic`]).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RunnerError> {
    psyche_core::write_atomic(path, bytes).map_err(|e| RunnerError::io(path, e))
}

/// Splits text into (is_code, text) spans on backticks; an unmatched backtick is literal.
pub(super) fn spans(s: &str) -> Vec<(bool, String)> {
    let mut parts: Vec<String> = s.split('`').map(str::to_owned).collect();
    if parts.len().is_multiple_of(2) {
        // An odd number of backticks: the last one opens nothing.
        if let Some(last) = parts.pop()
            && let Some(prev) = parts.last_mut()
        {
            prev.push('`');
            prev.push_str(&last);
        }
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, t)| (i % 2 == 1, t))
        .filter(|(code, t)| *code || !t.is_empty())
        .collect()
}

/// Markdown for plain text: backslash-escapes a `<` that could open raw HTML (outside code
/// spans; inside them nothing is interpreted).
fn md_text(s: &str) -> String {
    let mut out = String::new();
    for (code, t) in spans(s) {
        if code {
            let ticks = if t.contains('`') { "``" } else { "`" };
            let _ = write!(out, "{ticks}{t}{ticks}");
            continue;
        }
        let mut chars = t.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '<' if chars
                    .peek()
                    .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) =>
                {
                    out.push_str("\\<");
                }
                '\\' if chars.peek().is_some_and(char::is_ascii_punctuation) => {
                    out.push_str("\\\\");
                }
                c => out.push(c),
            }
        }
    }
    out
}

/// [`md_text`] on one line (newlines become spaces).
fn md_line(s: &str) -> String {
    md_text(&s.replace(['\r', '\n'], " "))
}

/// A table cell: one line, `|` escaped (also inside code spans, as GFM requires).
fn md_cell(s: &str) -> String {
    let t = md_line(s).replace('|', "\\|");
    if t.is_empty() { " ".into() } else { t }
}

fn md_table(md: &mut String, t: &Table) {
    if !t.caption.is_empty() {
        let _ = writeln!(md, "*{}*\n", md_line(&t.caption).replace('*', "\\*"));
    }
    let width = t
        .headers
        .len()
        .max(t.rows.iter().map(Vec::len).max().unwrap_or(0))
        .max(1);
    let row = |md: &mut String, cells: &[String]| {
        md.push('|');
        for i in 0..width {
            let _ = write!(
                md,
                " {} |",
                md_cell(cells.get(i).map_or("", String::as_str))
            );
        }
        md.push('\n');
    };
    row(md, &t.headers);
    md.push('|');
    for _ in 0..width {
        md.push_str("---|");
    }
    md.push('\n');
    for r in &t.rows {
        row(md, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_split_code_and_keep_unmatched_backticks() {
        assert_eq!(
            spans("Judge `exact` ok"),
            vec![
                (false, "Judge ".into()),
                (true, "exact".into()),
                (false, " ok".into())
            ]
        );
        assert_eq!(spans("a ` b"), vec![(false, "a ` b".into())]);
        assert_eq!(spans(""), Vec::<(bool, String)>::new());
    }

    #[test]
    fn markdown_escapes_html_and_pipes_but_not_comparisons() {
        assert_eq!(md_text("<script>x</script>"), "\\<script>x\\</script>");
        assert_eq!(md_text("n < 2 & `<b>`"), "n < 2 & `<b>`");
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
        assert_eq!(md_cell(""), " ");
    }
}
