//! The external URLs a Wikipedia article cites, found in its raw wikitext:
//!
//! - the URL parameters of citation templates (`{{cite web|url=...}}`, `{{cite news}}`,
//!   `{{Cite journal}}`, ... any template whose name starts with `cite`, and `{{citation}}`):
//!   `url` and every `*-url` / `*url` parameter except the archive copies (`archive-url`),
//!   when its value is a link (`dead-url=no` is a flag);
//! - bare URLs inside `<ref>...</ref>` elements (outside templates);
//! - bracketed external links anywhere in the article (`[https://example.org label]`,
//!   protocol-relative `[//example.org]`).
//!
//! HTML comments are ignored. URLs come back raw (see [`super::url::normalize_url`]).

/// Appends the raw external URLs cited in `wikitext` to `out` (repeats included).
pub fn cited_urls(wikitext: &str, out: &mut Vec<String>) {
    let text = if wikitext.contains("<!--") {
        std::borrow::Cow::Owned(crate::clean::wiki::remove_comments(wikitext))
    } else {
        std::borrow::Cow::Borrowed(wikitext)
    };
    let text = text.as_ref();
    citation_template_urls(text, out);
    ref_urls(text, out);
    bracketed_urls(text, out);
}

/// The end (exclusive, after `}}`) of the template opening at `start` (which holds `{{`), or
/// the end of the text when it is never closed.
fn template_end(s: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < s.len() {
        if s[i] == b'{' && s[i + 1] == b'{' {
            depth += 1;
            i += 2;
        } else if s[i] == b'}' && s[i + 1] == b'}' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    s.len()
}

/// Splits a template's inside at the `|`s that are not inside a nested template or link.
fn top_level_parts(inner: &str) -> Vec<&str> {
    let b = inner.as_bytes();
    let (mut braces, mut brackets) = (0usize, 0usize);
    let mut parts = Vec::new();
    let mut from = 0;
    let mut i = 0;
    while i < b.len() {
        // `{{`, `}}`, `[[`, `]]` open and close nested templates and links.
        if i + 1 < b.len() && b[i] == b[i + 1] && matches!(b[i], b'{' | b'}' | b'[' | b']') {
            let depth = if matches!(b[i], b'{' | b'}') {
                &mut braces
            } else {
                &mut brackets
            };
            *depth = if matches!(b[i], b'{' | b'[') {
                *depth + 1
            } else {
                depth.saturating_sub(1)
            };
            i += 2;
            continue;
        }
        if b[i] == b'|' && braces == 0 && brackets == 0 {
            parts.push(&inner[from..i]);
            from = i + 1;
        }
        i += 1;
    }
    parts.push(&inner[from..]);
    parts
}

fn is_citation_template(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase().replace('_', " ");
    let name = name.strip_prefix("template:").unwrap_or(&name);
    name.starts_with("cite") || name == "citation"
}

fn is_url_parameter(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    key.ends_with("url") && !key.contains("archive")
}

/// A parameter value that is a link (not a flag such as `dead-url=no`, not empty).
fn is_link(value: &str) -> bool {
    ["http://", "https://", "//"]
        .iter()
        .any(|p| starts_with_ci(value, p))
}

/// URL parameters of every citation template, nested ones included.
fn citation_template_urls(s: &str, out: &mut Vec<String>) {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find("{{").map(|i| i + from) {
        let end = template_end(b, i);
        let inner_end = if b[..end].ends_with(b"}}") && end >= i + 4 {
            end - 2
        } else {
            end
        };
        let parts = top_level_parts(&s[i + 2..inner_end]);
        if parts.first().is_some_and(|n| is_citation_template(n)) {
            for part in &parts[1..] {
                if let Some((key, value)) = part.split_once('=') {
                    let value = value.trim();
                    if is_url_parameter(key) && is_link(value) {
                        out.push(value.to_string());
                    }
                }
            }
        }
        // Nested templates are looked at too.
        from = i + 2;
    }
}

/// Finds `needle` (ASCII) case-insensitively.
fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    h.windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

/// True when `s` starts with the ASCII `prefix`, ignoring case.
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Bare URLs in the text of `<ref>` elements, templates left out.
fn ref_urls(s: &str, out: &mut Vec<String>) {
    let mut rest = s;
    while let Some(i) = find_ascii_ci(rest, "<ref") {
        let after = &rest[i + 4..];
        // `<ref>` or `<ref name=...>`, not `<references/>`.
        if !after.starts_with(['>', ' ', '\t', '\n', '/']) {
            rest = after;
            continue;
        }
        let Some(gt) = after.find('>') else { return };
        if after[..gt].ends_with('/') {
            rest = &after[gt + 1..];
            continue;
        }
        let body = &after[gt + 1..];
        let end = find_ascii_ci(body, "</ref").unwrap_or(body.len());
        bare_urls(&without_templates(&body[..end]), out);
        rest = &body[end..];
    }
}

/// The text with every template replaced by a space.
fn without_templates(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    while let Some(i) = s[from..].find("{{").map(|i| i + from) {
        out.push_str(&s[from..i]);
        out.push(' ');
        from = template_end(b, i).min(s.len());
    }
    out.push_str(&s[from..]);
    out
}

/// Characters that end a URL in wikitext.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '|' | '[' | ']' | '<' | '>' | '"' | '{' | '}')
}

/// `http://` and `https://` URLs in running text, with trailing punctuation removed the way
/// MediaWiki does (`.,;:!?'` and a `)` that closes nothing in the URL).
fn bare_urls(s: &str, out: &mut Vec<String>) {
    let mut from = 0;
    while let Some(i) = find_ascii_ci(&s[from..], "http").map(|i| i + from) {
        let rest = &s[i..];
        let scheme_len = if starts_with_ci(rest, "https://") {
            8
        } else if starts_with_ci(rest, "http://") {
            7
        } else {
            from = i + 4;
            continue;
        };
        let len = rest.find(ends_url).unwrap_or(rest.len());
        let mut url = &rest[..len];
        loop {
            let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'']);
            let unbalanced = trimmed.matches(')').count() > trimmed.matches('(').count();
            let trimmed = match trimmed.strip_suffix(')') {
                Some(t) if unbalanced => t,
                _ => trimmed,
            };
            if trimmed.len() == url.len() {
                break;
            }
            url = trimmed;
        }
        if url.len() > scheme_len {
            out.push(url.to_string());
        }
        from = i + len.max(4);
    }
}

/// The URLs of bracketed external links: `[http://...`, `[https://...`, `[//...`.
fn bracketed_urls(s: &str, out: &mut Vec<String>) {
    let mut from = 0;
    while let Some(i) = s[from..].find('[').map(|i| i + from) {
        let rest = &s[i + 1..];
        let linked = ["http://", "https://", "//"]
            .iter()
            .any(|p| starts_with_ci(rest, p))
            && !rest.starts_with("///");
        if linked {
            let len = rest.find(ends_url).unwrap_or(rest.len());
            out.push(rest[..len].to_string());
            from = i + 1 + len;
        } else {
            from = i + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(w: &str) -> Vec<String> {
        let mut v = Vec::new();
        cited_urls(w, &mut v);
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn cite_templates_refs_and_bracketed_links() {
        let w = "Intro.<ref>{{cite web |url= https://a.example/x |title=T \
                 |archive-url=https://web.archive.org/web/1/https://a.example/x |dead-url=no}}</ref> \
                 More<ref name=\"n\">See http://b.example/page.html. Also [http://c.example/p Label].</ref>\
                 <ref name=\"again\"/> {{Cite_News|title=N|chapter-url=http://d.example/ch|url=\
                 http://e.example/{{!}}x}} <!-- [http://hidden.example/ x] --> \
                 == External links ==\n* [//f.example/home Home]\n\
                 {{Infobox|website=http://not-cited.example/}} Plain http://not-in-ref.example/ text.\
                 <ref>(see http://g.example/a_(b)) and (http://h.example/q)</ref><references/>";
        assert_eq!(
            urls(w),
            [
                "//f.example/home",
                "http://b.example/page.html",
                "http://c.example/p",
                "http://d.example/ch",
                "http://e.example/{{!}}x",
                "http://g.example/a_(b)",
                "http://h.example/q",
                "https://a.example/x",
            ]
        );
    }

    #[test]
    fn unclosed_markup_does_not_loop_or_panic() {
        for w in [
            "{{cite web|url=http://a.example",
            "<ref>http://b.example",
            "<ref",
            "[http",
            "<!-- open",
            "}}}}{{",
            "<ref>{{</ref>",
            "<ref>httpé http€ https://é.example/ü</ref> [htt€",
        ] {
            let _ = urls(w);
        }
        assert_eq!(urls("<ref>http://b.example/x"), ["http://b.example/x"]);
    }
}
