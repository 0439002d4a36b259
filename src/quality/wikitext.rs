//! A rough prose extractor for MediaWiki XML dumps, used only to get reference text for
//! training the quality models (the `wikipedia` reader is the corpus-grade path).
//!
//! Streams `<text>` elements line by line, un-escapes XML entities, skips templates
//! (`{{...}}`, also multi-line), tables, lists, headings, categories and files, removes
//! `<ref>` notes and tags, and turns links into their label. Paragraphs with fewer than
//! [`MIN_WORDS`] words are left out.

use std::io::BufRead;

/// Paragraphs with fewer words than this are not kept.
pub const MIN_WORDS: usize = 6;

/// Reads pages from a MediaWiki XML stream, calling `page` with each page's prose (one
/// paragraph a line) when it has any.
pub fn for_each_page(mut input: impl BufRead, mut page: impl FnMut(&str)) -> std::io::Result<()> {
    let mut raw = Vec::new();
    let mut in_text = false;
    let mut cleaner = WikitextCleaner::default();
    let mut out = String::new();
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&raw);
        let mut rest: &str = &line;
        if !in_text {
            let Some(start) = rest.find("<text") else {
                continue;
            };
            rest = &rest[start..];
            let Some(gt) = rest.find('>') else { continue };
            if rest[..gt].ends_with('/') {
                continue;
            }
            rest = &rest[gt + 1..];
            in_text = true;
            cleaner = WikitextCleaner::default();
            out.clear();
        }
        let (content, end) = match rest.find("</text>") {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        let unescaped = unescape_xml(content.trim_end_matches(['\n', '\r']));
        cleaner.line(&unescaped, &mut out);
        if end {
            in_text = false;
            cleaner.flush(&mut out);
            let text = out.trim_end();
            if !text.is_empty() {
                page(text);
            }
        }
    }
    Ok(())
}

fn unescape_xml(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#039;", "'")
        .replace("&amp;", "&")
        .replace("&nbsp;", " ")
}

/// Turns wikitext lines into prose paragraphs, keeping state across lines.
#[derive(Default)]
struct WikitextCleaner {
    /// Depth of open `{{` / `{|` across lines.
    braces: usize,
    /// Inside a `<ref>...</ref>` or `<!-- -->` spanning lines.
    in_ref: bool,
    in_comment: bool,
    para: String,
}

impl WikitextCleaner {
    fn flush(&mut self, out: &mut String) {
        let p = self.para.trim();
        if p.split_whitespace().count() >= MIN_WORDS {
            out.push_str(p);
            out.push('\n');
        }
        self.para.clear();
    }

    fn line(&mut self, line: &str, out: &mut String) {
        let trimmed = line.trim();
        let structural = self.braces == 0
            && (trimmed.is_empty()
                || trimmed.starts_with(['|', '!', '*', '#', ':', ';', '='])
                || trimmed.starts_with("[[Category:")
                || trimmed.starts_with("[[File:")
                || trimmed.starts_with("[[Image:"));
        if structural {
            self.flush(out);
            // Still track braces opened on skipped lines.
            self.inline(trimmed, false);
            return;
        }
        let at_start = self.braces;
        let cleaned = self.inline(trimmed, true);
        if at_start > 0 && cleaned.trim().is_empty() {
            return;
        }
        if !cleaned.trim().is_empty() {
            if !self.para.is_empty() {
                self.para.push(' ');
            }
            self.para.push_str(cleaned.trim());
        }
    }

    /// Removes markup from one line; returns the visible text (when `keep`).
    fn inline(&mut self, s: &str, keep: bool) -> String {
        let mut out = String::with_capacity(s.len());
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let rest = &s[i..];
            if self.in_comment {
                match rest.find("-->") {
                    Some(j) => {
                        self.in_comment = false;
                        i += j + 3;
                        continue;
                    }
                    None => break,
                }
            }
            if self.in_ref {
                match rest.find("</ref>") {
                    Some(j) => {
                        self.in_ref = false;
                        i += j + 6;
                        continue;
                    }
                    None => break,
                }
            }
            if rest.starts_with("<!--") {
                self.in_comment = true;
                i += 4;
                continue;
            }
            if rest.starts_with("{{") || rest.starts_with("{|") {
                self.braces += 1;
                i += 2;
                continue;
            }
            if self.braces > 0 && (rest.starts_with("}}") || rest.starts_with("|}")) {
                self.braces -= 1;
                i += 2;
                continue;
            }
            if self.braces > 0 {
                i += rest.chars().next().map_or(1, char::len_utf8);
                continue;
            }
            if rest.starts_with("<ref") {
                match rest.find('>') {
                    Some(j) if rest[..j].ends_with('/') => i += j + 1,
                    Some(j) => {
                        self.in_ref = true;
                        i += j + 1;
                    }
                    None => break,
                }
                continue;
            }
            if rest.starts_with('<') {
                match rest.find('>') {
                    Some(j) => i += j + 1,
                    None => i += 1,
                }
                continue;
            }
            if rest.starts_with("[[") {
                let Some(j) = rest.find("]]") else {
                    i += 2;
                    continue;
                };
                let inner = &rest[2..j];
                if !inner.contains(':') || inner.starts_with(':') {
                    let label = inner.rsplit('|').next().unwrap_or(inner);
                    if keep {
                        out.push_str(label.trim_start_matches(':'));
                    }
                }
                i += j + 2;
                continue;
            }
            if rest.starts_with("[http") {
                let end = rest.find(']').unwrap_or(rest.len() - 1);
                if let Some(sp) = rest[..end].find(' ') {
                    if keep {
                        out.push_str(&rest[sp + 1..end]);
                    }
                }
                i += end + 1;
                continue;
            }
            if rest.starts_with("''") {
                i += rest.bytes().take_while(|&c| c == b'\'').count();
                continue;
            }
            let c = rest.chars().next().map_or(1, char::len_utf8);
            if keep {
                out.push_str(&rest[..c]);
            }
            i += c;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_prose_from_a_page() {
        let xml = "<page><revision><text xml:space=\"preserve\">{{Infobox person\n| name = X\n}}\n\
'''Ada Lovelace''' was an [[England|English]] mathematician and writer, known for work on the [[Analytical Engine]].&lt;ref&gt;{{cite web|url=x}}&lt;/ref&gt;\n\
== Life ==\n* a list item that should go away entirely from the output\n\
She was the only legitimate child of the poet Lord Byron and his wife.\n\
[[Category:Mathematicians]]</text></revision></page>\n";
        let mut pages = Vec::new();
        for_each_page(xml.as_bytes(), |p| pages.push(p.to_string())).unwrap();
        assert_eq!(
            pages,
            ["Ada Lovelace was an English mathematician and writer, known for work on the Analytical Engine.\n\
She was the only legitimate child of the poet Lord Byron and his wife."]
        );
    }
}
