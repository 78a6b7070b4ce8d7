//! HTML rendering of a [`Document`] through minijinja with HTML auto-escaping.
//!
//! Every piece of text reaches the page as an escaped template value. The only values marked
//! safe are the SVGs drawn by plotters, which escapes all text it writes into them.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, Value};

use super::document::{Block, Document, Table, spans};
use crate::error::RunnerError;

const PAGE: &str = r#"{%- macro text(spans) -%}
{%- for s in spans %}{% if s.code %}<code>{{ s.text }}</code>{% else %}{{ s.text }}{% endif %}{% endfor -%}
{%- endmacro -%}
{%- macro table(t) -%}
<table>{% if t.caption %}<caption>{{ text(t.caption) }}</caption>{% endif %}
<thead><tr>{% for h in t.headers %}<th>{{ text(h) }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in t.rows %}<tr>{% for c in r %}<td{% if c.error %} class="error"{% endif %}>{{ text(c.spans) }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{%- endmacro -%}
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
caption{text-align:left;font-style:italic;padding:4px 0}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#444}
.error{color:#a00;background:#fff3f3}div.error{border-left:4px solid #a00;padding:6px 10px;margin:1em 0}
code{background:#f3f3f3;padding:0 3px}
</style></head>
<body>
<h1>{{ text(title_spans) }}</h1>
{% for b in blocks -%}
{% if b.kind == "heading" -%}
<h{{ b.level }}>{{ text(b.spans) }}</h{{ b.level }}>
{% elif b.kind == "paragraph" -%}
<p>{{ text(b.spans) }}</p>
{% elif b.kind == "list" -%}
<ul>{% for i in b.items %}<li>{{ text(i) }}</li>{% endfor %}</ul>
{% elif b.kind == "table" -%}
{{ table(b.table) }}
{% elif b.kind == "figure" -%}
<figure><p><strong>Figure {{ b.number }}.</strong> {{ text(b.heading) }}</p>
{% if b.svg %}{{ b.svg }}{% else %}<div class="error"><strong>figure not drawn:</strong> {{ b.svg_error }}</div>{% endif %}
{% if b.caption %}<figcaption>{{ text(b.caption) }}</figcaption>{% endif %}
<details><summary>data</summary>{{ table(b.table) }}</details></figure>
{% elif b.kind == "error" -%}
<div class="error"><strong>Error — {{ text(b.what) }}:</strong> {{ b.message }}</div>
{% endif -%}
{% endfor -%}
</body></html>
"#;

fn map(entries: Vec<(&'static str, Value)>) -> Value {
    Value::from(entries.into_iter().collect::<BTreeMap<&str, Value>>())
}

fn text(s: &str) -> Value {
    spans(s)
        .into_iter()
        .map(|(code, t)| map(vec![("code", code.into()), ("text", t.into())]))
        .collect()
}

fn table(t: &Table) -> Value {
    let width = t
        .headers
        .len()
        .max(t.rows.iter().map(Vec::len).max().unwrap_or(0));
    let headers: Value = (0..width)
        .map(|i| text(t.headers.get(i).map_or("", String::as_str)))
        .collect();
    let rows: Value = t
        .rows
        .iter()
        .map(|r| {
            (0..width)
                .map(|i| {
                    let c = r.get(i).map_or("", String::as_str);
                    map(vec![
                        ("spans", text(c)),
                        ("error", c.starts_with("error: ").into()),
                    ])
                })
                .collect::<Value>()
        })
        .collect();
    let caption = if t.caption.is_empty() {
        Value::from(())
    } else {
        text(&t.caption)
    };
    map(vec![
        ("caption", caption),
        ("headers", headers),
        ("rows", rows),
    ])
}

/// Renders `doc` with `svgs[i]` the drawing (or drawing error) of its i-th figure.
pub(super) fn render(
    doc: &Document,
    svgs: &[Result<String, String>],
) -> Result<String, RunnerError> {
    let mut figure = 0usize;
    let blocks: Vec<Value> = doc
        .blocks
        .iter()
        .map(|b| match b {
            Block::Heading { level, text: t } => map(vec![
                ("kind", "heading".into()),
                ("level", (*level).clamp(1, 6).into()),
                ("spans", text(t)),
            ]),
            Block::Paragraph { text: t } => {
                map(vec![("kind", "paragraph".into()), ("spans", text(t))])
            }
            Block::List { items } => map(vec![
                ("kind", "list".into()),
                ("items", items.iter().map(|i| text(i)).collect()),
            ]),
            Block::Table(t) => map(vec![("kind", "table".into()), ("table", table(t))]),
            Block::Figure(f) => {
                figure += 1;
                let (svg, err) = match svgs.get(figure - 1) {
                    // Safe: plotters escapes every text and attribute it writes.
                    Some(Ok(svg)) => (Value::from_safe_string(svg.clone()), Value::from(())),
                    Some(Err(e)) => (Value::from(()), Value::from(e.as_str())),
                    None => (Value::from(()), Value::from("not drawn")),
                };
                let caption = if f.caption.is_empty() {
                    Value::from(())
                } else {
                    text(&f.caption)
                };
                map(vec![
                    ("kind", "figure".into()),
                    ("number", figure.into()),
                    ("heading", text(&f.heading())),
                    ("svg", svg),
                    ("svg_error", err),
                    ("caption", caption),
                    ("table", table(&f.data_table())),
                ])
            }
            Block::Error { what, message } => map(vec![
                ("kind", "error".into()),
                ("what", text(what)),
                ("message", message.as_str().into()),
            ]),
        })
        .collect();
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    let ctx = map(vec![
        ("title", doc.title.as_str().into()),
        ("title_spans", text(&doc.title)),
        ("blocks", Value::from(blocks)),
    ]);
    env.render_str(PAGE, ctx)
        .map_err(|e| RunnerError::Report(format!("cannot render the HTML page: {e:#}")))
}
