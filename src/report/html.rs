//! The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

use super::CorpusReport;
use crate::mixture::plan::human_bytes;
use crate::stats::profile::{Histogram, Profile, Scale};

/// Colours of the sources, in order (repeats after eight).
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

/// Escapes text for HTML element content and attribute values (`=` too, so that quoted
/// documents never spell `src=` or `href=`: the page loads nothing).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '=' => out.push_str("&#61;"),
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

/// Where `v` falls on a histogram's axis, from 0 (its low end) to 1 (its high end).
fn axis_fraction(h: &Histogram, v: f64) -> f64 {
    let f = match h.scale {
        Scale::Linear => (v - h.lo) / (h.hi - h.lo),
        Scale::Log10 => (v.max(1e-300).log10() - h.lo.log10()) / (h.hi.log10() - h.lo.log10()),
    };
    if f.is_nan() {
        0.0
    } else {
        f.clamp(0.0, 1.0)
    }
}

/// A value as an axis label (`1e4`, `0.25`).
fn axis_label(h: &Histogram, v: f64) -> String {
    match h.scale {
        Scale::Log10 => format!("1e{}", v.log10().round()),
        Scale::Linear => format!("{v:.2}"),
    }
}

/// One metric's histogram: kept documents in the source's colour, dropped ones in grey on top,
/// the stages' thresholds as red lines.
fn histogram_svg(h: &Histogram, marks: &[(String, f64)], colour: &str) -> String {
    let (width, height, left, bottom) = (360.0, 150.0, 36.0, 34.0);
    let plot_w = width - left - 10.0;
    let plot_h = height - bottom - 18.0;
    let n = h.kept.len();
    let top = (0..n)
        .map(|i| h.kept[i] + h.dropped[i])
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let title = match h.metric.as_str() {
        "length" => "document length (bytes)",
        "language_score" => "language-ID score",
        "perplexity" => "perplexity",
        "wiki_ref_prob" => "reference-classifier probability",
        other => other,
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}\"><text x=\"{left}\" y=\"12\" class=\"hdr\">{} ({} documents)</text>",
        escape(&h.metric),
        escape(title),
        h.total()
    );
    let bw = plot_w / n as f64;
    for i in 0..n {
        let x = left + i as f64 * bw;
        let hk = h.kept[i] as f64 / top * plot_h;
        let hd = h.dropped[i] as f64 / top * plot_h;
        let base = 18.0 + plot_h;
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hk:.1}\" fill=\"{colour}\"><title>{} to {}: {} kept</title></rect>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hd:.1}\" fill=\"#bbb\"><title>{} to {}: {} dropped</title></rect>",
            base - hk,
            (bw - 1.0).max(0.5),
            axis_label(h, h.edge(i)),
            axis_label(h, h.edge(i + 1)),
            h.kept[i],
            base - hk - hd,
            (bw - 1.0).max(0.5),
            axis_label(h, h.edge(i)),
            axis_label(h, h.edge(i + 1)),
            h.dropped[i],
        ));
    }
    let base = 18.0 + plot_h;
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{:.1}\" y2=\"{base}\" stroke=\"#333\"/>\
         <text x=\"{left}\" y=\"{:.1}\" class=\"lbl\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" class=\"lbl\" text-anchor=\"end\">{}</text>\
         <text x=\"{:.1}\" y=\"26\" class=\"lbl\" text-anchor=\"end\">{}</text>",
        left + plot_w,
        base + 14.0,
        axis_label(h, h.lo),
        left + plot_w,
        base + 14.0,
        axis_label(h, h.hi),
        left - 4.0,
        top as u64
    ));
    for (label, v) in marks {
        let x = left + axis_fraction(h, *v) * plot_w;
        svg.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"18\" x2=\"{x:.1}\" y2=\"{base}\" stroke=\"#d62728\" stroke-width=\"1.5\"><title>{} {v}</title></line>",
            escape(label),
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A source's histograms, language mix and sampled dropped documents.
fn profile_html(p: &Profile, colour: &str) -> String {
    let mut out = String::new();
    if !p.histograms.is_empty() {
        out.push_str("<div class=\"hists\">");
        for h in &p.histograms {
            let marks = p.marks.get(&h.metric).map(Vec::as_slice).unwrap_or(&[]);
            let caption = marks
                .iter()
                .map(|(label, v)| format!("{label} {v:.4}"))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!(
                "<figure>{}<figcaption>{}</figcaption></figure>",
                histogram_svg(h, marks, colour),
                if caption.is_empty() {
                    String::new()
                } else {
                    format!(
                        "<span class=\"mark\">thresholds (red): {}</span>",
                        escape(&caption)
                    )
                }
            ));
        }
        out.push_str("</div>");
    }
    if !p.languages.is_empty() {
        let mut langs: Vec<_> = p.languages.iter().collect();
        langs.sort_by(|a, b| (b.1 .0 + b.1 .1).cmp(&(a.1 .0 + a.1 .1)).then(a.0.cmp(b.0)));
        out.push_str(
            "<h4>Languages</h4><table><tr><th>language</th><th>kept</th><th>dropped</th></tr>",
        );
        for (lang, (kept, dropped)) in langs.iter().take(15) {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{kept}</td><td>{dropped}</td></tr>",
                escape(lang)
            ));
        }
        if langs.len() > 15 {
            let (k, d) = langs[15..]
                .iter()
                .fold((0, 0), |(k, d), (_, (a, b))| (k + a, d + b));
            out.push_str(&format!(
                "<tr><td>{} others</td><td>{k}</td><td>{d}</td></tr>",
                langs.len() - 15
            ));
        }
        out.push_str("</table>");
    }
    if !p.samples.is_empty() {
        out.push_str("<h4>Dropped documents, sampled per stage and reason</h4>");
        for (reason, docs) in &p.samples {
            out.push_str(&format!(
                "<details><summary>{} ({} shown)</summary>",
                escape(reason),
                docs.len()
            ));
            for d in docs {
                let meta = serde_json::to_string(&d.metadata).unwrap_or_default();
                let head: String = d.text.lines().take(12).collect::<Vec<_>>().join("\n");
                out.push_str(&format!(
                    "<div class=\"doc\"><b>{}</b> ({} bytes)<br><code>{}</code><pre>{}</pre></div>",
                    escape(&d.id),
                    d.bytes,
                    escape(&meta),
                    escape(&head)
                ));
            }
            out.push_str("</details>");
        }
    }
    out
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
    body.push_str("<h2>Drop funnel and what was kept and dropped, per source</h2>");
    for (i, s) in r.sources.iter().enumerate() {
        if s.funnel.is_empty() {
            continue;
        }
        body.push_str(&format!("<h3>{}</h3>", escape(&s.source)));
        body.push_str(&funnel_svg(s, PALETTE[i % PALETTE.len()]));
        body.push_str(&profile_html(&s.profile, PALETTE[i % PALETTE.len()]));
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
svg .in{{fill:#fff}}svg .hdr{{font-weight:bold}}.mark{{font-size:11px;color:#d62728}}figure{{margin:0}}\
.hists{{display:flex;flex-wrap:wrap;gap:8px}}details{{margin:2px 0}}summary{{cursor:pointer}}\
.doc{{border-left:3px solid #ccc;margin:6px 0 6px 1em;padding-left:8px}}.doc code{{font-size:11px;word-break:break-all}}\
.doc pre{{white-space:pre-wrap;max-height:14em;overflow:auto;background:#f7f7f7;padding:4px}}</style></head><body>{body}</body></html>\n",
        escape(&r.name)
    )
}
