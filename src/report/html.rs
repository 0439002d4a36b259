//! The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

use super::CorpusReport;
use crate::mixture::plan::human_bytes;

/// Colours of the sources, in order (repeats after eight).
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The mixture chart: one stacked bar of sampling proportions, one of available tokens, and a
/// bar per source of its epochs.
fn mixture_svg(r: &CorpusReport) -> String {
    let width = 760.0;
    let left = 140.0;
    let bar_w = width - left - 20.0;
    let total_tokens: f64 = r.sources.iter().map(|s| s.tokens as f64).sum();
    let mut svg = String::new();
    let rows = r.sources.len() as f64;
    let height = 110.0 + rows * 26.0 + 30.0;
    svg.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"mixture\">"
    ));
    let stacked = |svg: &mut String, y: f64, label: &str, shares: &[f64]| {
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" class=\"lbl\">{}</text>",
            y + 15.0,
            escape(label)
        ));
        let mut x = left;
        for (i, share) in shares.iter().enumerate() {
            let w = share * bar_w;
            if w <= 0.0 {
                continue;
            }
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"22\" fill=\"{}\"><title>{}: {:.1}%</title></rect>",
                PALETTE[i % PALETTE.len()],
                escape(&r.sources[i].source),
                share * 100.0
            ));
            if w > 34.0 {
                svg.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{}\" class=\"in\">{:.1}%</text>",
                    x + 3.0,
                    y + 15.0,
                    share * 100.0
                ));
            }
            x += w;
        }
    };
    let props: Vec<f64> = r.sources.iter().map(|s| s.proportion).collect();
    stacked(&mut svg, 10.0, "sampling proportion", &props);
    let avail: Vec<f64> = r
        .sources
        .iter()
        .map(|s| {
            if total_tokens > 0.0 {
                s.tokens as f64 / total_tokens
            } else {
                0.0
            }
        })
        .collect();
    stacked(&mut svg, 40.0, "tokens available", &avail);
    let max_epochs = r
        .sources
        .iter()
        .filter_map(|s| s.epochs)
        .fold(r.plan.settings.max_epochs, f64::max);
    let y0 = 90.0;
    svg.push_str(&format!(
        "<text x=\"0\" y=\"{}\" class=\"hdr\">epochs per source (dashed line: max_epochs = {})</text>",
        y0 - 8.0,
        r.plan.settings.max_epochs
    ));
    for (i, s) in r.sources.iter().enumerate() {
        let y = y0 + i as f64 * 26.0;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" class=\"lbl\">{}</text>",
            y + 15.0,
            escape(&s.source)
        ));
        match s.epochs {
            Some(e) => {
                let w = (e / max_epochs * bar_w).max(1.0);
                svg.push_str(&format!(
                    "<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"20\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\" class=\"lbl\">{e:.2}</text>",
                    PALETTE[i % PALETTE.len()],
                    left + w + 4.0,
                    y + 15.0
                ));
            }
            None => svg.push_str(&format!(
                "<text x=\"{left}\" y=\"{}\" class=\"lbl\">no tokens</text>",
                y + 15.0
            )),
        }
    }
    let xm = left + r.plan.settings.max_epochs / max_epochs * bar_w;
    svg.push_str(&format!(
        "<line x1=\"{xm:.1}\" x2=\"{xm:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>",
        y0 - 4.0,
        y0 + rows * 26.0
    ));
    svg.push_str("</svg>");
    svg
}

/// One source's funnel: documents left after each stage, with the drop reasons.
fn funnel_svg(row: &super::SourceRow, colour: &str) -> String {
    let width = 760.0;
    let left = 140.0;
    let bar_w = 360.0;
    let n = row.funnel.len() as f64;
    let height = n * 26.0 + 10.0;
    let top = row.funnel.first().map(|s| s.docs_in.max(1)).unwrap_or(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"funnel {}\">",
        escape(&row.source)
    );
    for (i, st) in row.funnel.iter().enumerate() {
        let y = 4.0 + i as f64 * 26.0;
        let w_in = st.docs_in as f64 / top * bar_w;
        let w_out = st.docs_out as f64 / top * bar_w;
        let drops = st
            .drops
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" class=\"lbl\">{}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w_in:.1}\" height=\"20\" fill=\"#ddd\"/>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w_out:.1}\" height=\"20\" fill=\"{colour}\"><title>{} of {} kept</title></rect>\
             <text x=\"{:.1}\" y=\"{}\" class=\"lbl\">{} → {}{}</text>",
            y + 15.0,
            escape(&st.name),
            st.docs_out,
            st.docs_in,
            left + bar_w + 8.0,
            y + 15.0,
            st.docs_in,
            st.docs_out,
            if drops.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&drops))
            }
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The whole page.
pub fn render(r: &CorpusReport) -> String {
    let mut body = String::new();
    body.push_str(&format!(
        "<h1>Corpus report: {}</h1><p>Folder <code>{}</code>. Mixture planned for {:.3e} training tokens, sequence length {}, global batch {} tokens, {} GPUs (data-parallel {}).</p>",
        escape(&r.name),
        escape(&r.output),
        r.plan.settings.target_tokens,
        r.plan.settings.sequence_length,
        r.plan.settings.global_batch_tokens,
        r.plan.settings.gpus,
        r.plan.settings.data_parallel
    ));
    body.push_str("<table><tr><th>Dataset</th><th>Documents</th><th>Text</th><th>Tokens</th><th>Bytes/token</th><th>Sampling prop.</th><th>Epochs</th><th>Disk size (tokens)</th><th>Shards</th></tr>");
    for (i, s) in r.sources.iter().enumerate() {
        body.push_str(&format!(
            "<tr><td><span class=\"sw\" style=\"background:{}\"></span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            PALETTE[i % PALETTE.len()],
            escape(&s.source),
            s.docs,
            human_bytes(s.text_bytes as f64),
            s.tokens,
            s.bytes_per_token.map(|b| format!("{b:.2}")).unwrap_or_else(|| "-".into()),
            s.proportion * 100.0,
            s.epochs.map(|e| format!("{e:.2}")).unwrap_or_else(|| "-".into()),
            human_bytes(s.token_disk_bytes as f64),
            s.token_shards
        ));
    }
    body.push_str("</table><h2>Mixture</h2>");
    body.push_str(&mixture_svg(r));
    body.push_str("<h2>Drop funnel per source</h2>");
    for (i, s) in r.sources.iter().enumerate() {
        if s.funnel.is_empty() {
            continue;
        }
        body.push_str(&format!("<h3>{}</h3>", escape(&s.source)));
        body.push_str(&funnel_svg(s, PALETTE[i % PALETTE.len()]));
    }
    let notes: Vec<&String> = r.plan.warnings.iter().chain(&r.notes).collect();
    if !notes.is_empty() {
        body.push_str("<h2>Notes</h2><ul>");
        for n in notes {
            body.push_str(&format!("<li>{}</li>", escape(n)));
        }
        body.push_str("</ul>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Corpus report: {}</title>\
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
.sw{{display:inline-block;width:10px;height:10px;margin-right:6px}}svg text{{font:12px system-ui,sans-serif}}\
svg .in{{fill:#fff}}svg .hdr{{font-weight:bold}}</style></head><body>{body}</body></html>\n",
        escape(&r.name)
    )
}
