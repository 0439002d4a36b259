//! Wikitext to plain text.
//!
//! Removed: comments, templates and parser functions (`{{...}}`, nested), tables (`{| ... |}`),
//! `<ref>` and other tags whose content is not prose (`gallery`, `math`, `timeline`, ...),
//! file/image links with their captions, category and interlanguage links, magic words,
//! bold/italic quotes, and the trailing reference sections (References, External links, ...).
//! Kept: link text (`[[target|text]]` → `text`, `[[target]]` → `target`), external link
//! labels, headings and list items as their own lines (markers removed). HTML entities are
//! decoded last. No crate converts wikitext this way in Rust (parse_wiki_text is unmaintained
//! and builds a full tree), so this is a small hand-written converter with tests.

use std::collections::HashSet;

use anyhow::Result;
use serde::Deserialize;

use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// The 20 Wikipedia languages of LLaMA (and RedPajama).
pub const LLAMA_LANGUAGES: &[&str] = &[
    "bg", "ca", "cs", "da", "de", "en", "es", "fr", "hr", "hu", "it", "nl", "pl", "pt", "ro", "ru",
    "sl", "sr", "sv", "uk",
];

fn default_languages() -> Vec<String> {
    LLAMA_LANGUAGES.iter().map(|s| s.to_string()).collect()
}

/// Parameters of `type = "wiki_filter"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WikiFilterConfig {
    /// Languages kept (`metadata.language`); default LLaMA's 20. An empty list keeps all.
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
}

/// Drops what the `wikipedia` reader marked (`redirect`, `namespace`), pages in languages not
/// listed (`language_not_kept`) and articles with no text left (`empty_article`).
pub struct WikiFilter {
    languages: HashSet<String>,
}

impl WikiFilter {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: WikiFilterConfig = parse_params("wiki_filter", params)?;
        Ok(WikiFilter {
            languages: c.languages.into_iter().collect(),
        })
    }
}

impl Stage for WikiFilter {
    fn name(&self) -> &str {
        "wiki_filter"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        match doc.meta_str("wiki_skip") {
            Some("redirect") => return Verdict::drop("redirect"),
            Some(_) => return Verdict::drop("namespace"),
            None => {}
        }
        if !self.languages.is_empty()
            && !doc
                .meta_str("language")
                .is_some_and(|l| self.languages.contains(l))
        {
            return Verdict::drop("language_not_kept");
        }
        if doc.text.trim().is_empty() {
            return Verdict::drop("empty_article");
        }
        Verdict::Keep
    }
}

/// Link prefixes whose links are removed with their text: files, images, media and categories
/// in the languages of LLaMA's 20 Wikipedias and the sample dumps. A dump's own namespace names
/// are added by the reader (see [`LinkPrefixes::with_names`]).
const DROPPED_PREFIXES: &[&str] = &[
    "file",
    "image",
    "media",
    "category",
    "datei",
    "bild",
    "kategorie",
    "fichier",
    "catégorie",
    "archivo",
    "imagen",
    "categoría",
    "archivio",
    "immagine",
    "categoria",
    "ficheiro",
    "arquivo",
    "imagem",
    "bestand",
    "afbeelding",
    "categorie",
    "plik",
    "grafika",
    "kategoria",
    "soubor",
    "kategorie",
    "fájl",
    "kép",
    "kategória",
    "fișier",
    "imagine",
    "categorie",
    "fil",
    "bild",
    "kategori",
    "arxiu",
    "imatge",
    "categoria",
    "datoteka",
    "slika",
    "kategorija",
    "файл",
    "изображение",
    "категория",
    "файл",
    "зображення",
    "категорія",
    "датотека",
    "слика",
    "категорија",
    "картинка",
    "ファイル",
    "画像",
    "カテゴリ",
    "文件",
    "檔案",
    "图像",
    "圖像",
    "分类",
    "分類",
    "fails",
    "kategoreja",
    "attēls",
    "kategorija",
];

/// Which `[[prefix:...]]` links are dropped with their text.
#[derive(Debug, Clone)]
pub struct LinkPrefixes {
    names: HashSet<String>,
}

impl Default for LinkPrefixes {
    fn default() -> Self {
        LinkPrefixes {
            names: DROPPED_PREFIXES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl LinkPrefixes {
    /// The defaults plus a dump's own names (its File, Media and Category namespaces).
    pub fn with_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut p = Self::default();
        for n in names {
            p.names.insert(n.trim().to_lowercase());
        }
        p
    }

    fn drops(&self, target: &str) -> bool {
        let t = target.trim_start();
        if t.starts_with(':') {
            return false; // [[:Category:X]] is a visible link to the category page
        }
        let Some(colon) = t.find(':') else {
            return false;
        };
        let prefix = t[..colon].trim().to_lowercase();
        self.names.contains(&prefix) || is_interlanguage(&prefix)
    }
}

/// `de`, `zh-yue`, `simple`, `be-tarask`: interlanguage link prefixes.
fn is_interlanguage(prefix: &str) -> bool {
    let mut parts = prefix.split('-');
    let first = parts.next().unwrap_or("");
    let ok_first = (2..=3).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_lowercase());
    ok_first
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()))
        || prefix == "simple"
}

/// Tags removed together with their content.
const DROPPED_TAGS: &[&str] = &[
    "ref",
    "references",
    "gallery",
    "math",
    "chem",
    "ce",
    "timeline",
    "score",
    "graph",
    "imagemap",
    "mapframe",
    "maplink",
    "templatestyles",
    "templatedata",
    "hiero",
    "syntaxhighlight",
    "source",
    "inputbox",
    "categorytree",
    "noinclude",
    "section",
    "indicator",
];

/// Level-2 section titles after which an article is only references and links.
const TRAILING_SECTIONS: &[&str] = &[
    "references",
    "external links",
    "see also",
    "further reading",
    "notes",
    "sources",
    "bibliography",
    "einzelnachweise",
    "weblinks",
    "literatur",
    "siehe auch",
    "anmerkungen",
    "références",
    "liens externes",
    "voir aussi",
    "notes et références",
    "bibliographie",
    "примечания",
    "ссылки",
    "литература",
    "см. также",
    "脚注",
    "参考文献",
    "外部リンク",
    "関連項目",
    "外部链接",
    "参见",
    "参考资料",
    "注释",
    "referencias",
    "enlaces externos",
    "véase también",
    "note",
    "collegamenti esterni",
    "voci correlate",
    "bibliografia",
];

/// Converts one article's wikitext to plain text.
pub fn wikitext_to_text(wikitext: &str, prefixes: &LinkPrefixes) -> String {
    let s = remove_comments(wikitext);
    let s = remove_balanced(&s, "{{", "}}");
    let s = language_variants(&s);
    let s = remove_tables(&s);
    let s = remove_tags(&s);
    let s = convert_links(&s, prefixes);
    let s = convert_external_links(&s);
    let s = lines_and_markup(&s);
    let s = decode_entities(&s);
    tidy(&s)
}

/// The text without its HTML comments (`<!-- ... -->`; an unclosed one runs to the end).
pub fn remove_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        match rest[i + 4..].find("-->") {
            Some(j) => rest = &rest[i + 4 + j + 3..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes balanced `open ... close` spans (nested); an opening without a close is dropped on
/// its own so the rest of the text survives broken markup.
fn remove_balanced(s: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        if s[i..].starts_with(open) {
            match matching_close(s, i, open, close) {
                Some(end) => i = end,
                None => i += open.len(),
            }
            continue;
        }
        if s[i..].starts_with(close) {
            i += close.len(); // a close without an opening
            continue;
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Byte offset just after the `close` matching the `open` at `start`.
fn matching_close(s: &str, start: usize, open: &str, close: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        if b[i..].starts_with(open.as_bytes()) {
            depth += 1;
            i += open.len();
        } else if b[i..].starts_with(close.as_bytes()) {
            depth -= 1;
            i += close.len();
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Chinese-style language-variant markup: `-{zh-hans:联邦州; zh-hant:邦}-` keeps the first
/// variant's text, `-{text}-` keeps `text`.
fn language_variants(s: &str) -> String {
    if !s.contains("-{") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("-{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find("}-") else {
            out.push_str("-{");
            rest = after;
            continue;
        };
        let inner = &after[..end];
        let first = inner.split(';').next().unwrap_or("");
        let text = match first.split_once(':') {
            Some((code, t))
                if !code.is_empty()
                    && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') =>
            {
                t
            }
            _ => inner,
        };
        out.push_str(text.trim());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn remove_tables(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for line in s.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("{|") {
            depth += 1;
            continue;
        }
        if depth > 0 {
            if t.starts_with("|}") {
                depth -= 1;
            }
            continue;
        }
        out.push_str(line);
    }
    out
}

/// The tag name at `s[i..]` (which starts with `<`), lowercased, and whether it closes.
fn tag_at(s: &str, i: usize) -> Option<(String, bool, usize)> {
    let rest = &s[i + 1..];
    let (closing, rest) = match rest.strip_prefix('/') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let name_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if name_len == 0 {
        return None;
    }
    let after = rest.as_bytes().get(name_len).copied();
    if !matches!(after, Some(b'>' | b' ' | b'/' | b'\t' | b'\n')) {
        return None;
    }
    let end = rest.find('>')?;
    let tag_len = 1 + usize::from(closing) + end + 1;
    Some((rest[..name_len].to_ascii_lowercase(), closing, tag_len))
}

fn remove_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let Some(j) = s[i..].find('<') else {
            out.push_str(&s[i..]);
            break;
        };
        out.push_str(&s[i..i + j]);
        i += j;
        let Some((name, closing, len)) = tag_at(s, i) else {
            out.push('<');
            i += 1;
            continue;
        };
        let self_closing = s[..i + len].ends_with("/>");
        if !closing && !self_closing && DROPPED_TAGS.contains(&name.as_str()) {
            let close = format!("</{name}");
            let lower_rest = s[i + len..].to_ascii_lowercase();
            match lower_rest.find(&close) {
                Some(k) => {
                    let after = i + len + k;
                    let end = s[after..]
                        .find('>')
                        .map(|e| after + e + 1)
                        .unwrap_or(s.len());
                    i = end;
                }
                None => i += len,
            }
            continue;
        }
        if name == "br" || name == "p" || name == "div" || name == "li" {
            out.push('\n');
        }
        i += len;
    }
    out
}

fn convert_links(s: &str, prefixes: &LinkPrefixes) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let Some(j) = s[i..].find("[[") else {
            push_without_stray_close(&mut out, &s[i..]);
            break;
        };
        push_without_stray_close(&mut out, &s[i..i + j]);
        i += j;
        let Some(end) = matching_close(s, i, "[[", "]]") else {
            i += 2;
            continue;
        };
        let inner = &s[i + 2..end - 2];
        i = end;
        let (target, label) = match split_top_level_pipe(inner) {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        if prefixes.drops(target) {
            continue;
        }
        let text = match label {
            Some(l) if !l.trim().is_empty() => l,
            _ => target.trim_start_matches(':'),
        };
        out.push_str(&convert_links(text, prefixes));
    }
    out
}

/// Appends text outside links, dropping `]]` that close nothing (broken markup).
fn push_without_stray_close(out: &mut String, s: &str) {
    if s.contains("]]") {
        out.push_str(&s.replace("]]", ""));
    } else {
        out.push_str(s);
    }
}

/// Splits `target|label` at the first `|` outside nested `[[ ]]`; the label is everything after
/// the last top-level pipe (image-style options before it are dropped).
fn split_top_level_pipe(inner: &str) -> Option<(&str, &str)> {
    let b = inner.as_bytes();
    let mut depth = 0i32;
    let mut first = None;
    let mut last = None;
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"[[") {
            depth += 1;
            i += 2;
            continue;
        }
        if b[i..].starts_with(b"]]") {
            depth -= 1;
            i += 2;
            continue;
        }
        if b[i] == b'|' && depth == 0 {
            first.get_or_insert(i);
            last = Some(i);
        }
        i += 1;
    }
    let (f, l) = (first?, last?);
    Some((&inner[..f], &inner[l + 1..]))
}

fn convert_external_links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let Some(j) = s[i..].find('[') else {
            out.push_str(&s[i..]);
            break;
        };
        out.push_str(&s[i..i + j]);
        i += j;
        let rest = &s[i + 1..];
        let is_url = rest.starts_with("http://")
            || rest.starts_with("https://")
            || rest.starts_with("//")
            || rest.starts_with("ftp://");
        let close = rest.find(']').filter(|&c| !rest[..c].contains('\n'));
        match (is_url, close) {
            (true, Some(c)) => {
                if let Some(sp) = rest[..c].find(' ') {
                    out.push_str(rest[sp + 1..c].trim());
                }
                i += 1 + c + 1;
            }
            _ => {
                out.push('[');
                i += 1;
            }
        }
    }
    out
}

/// Headings and list items become plain lines; quotes, magic words and rules go; trailing
/// reference sections are dropped.
fn lines_and_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut skipping_level: Option<usize> = None;
    for line in s.split('\n') {
        let t = line.trim();
        if let Some((level, title)) = heading(t) {
            if let Some(l) = skipping_level {
                if level > l {
                    continue;
                }
                skipping_level = None;
            }
            let title = strip_quotes(title);
            if TRAILING_SECTIONS.contains(&title.trim().to_lowercase().as_str()) {
                skipping_level = Some(level);
                continue;
            }
            out.push('\n');
            out.push_str(title.trim());
            out.push('\n');
            continue;
        }
        if skipping_level.is_some() {
            continue;
        }
        if t.starts_with("----") {
            continue;
        }
        let body = t.trim_start_matches(['*', '#', ':', ';']).trim_start();
        let body = strip_quotes(body);
        let body = remove_magic_words(&body);
        out.push_str(body.trim_end());
        out.push('\n');
    }
    out
}

fn heading(t: &str) -> Option<(usize, &str)> {
    let level = t.bytes().take_while(|&b| b == b'=').count();
    if level == 0 || level > 6 {
        return None;
    }
    let trail = t.bytes().rev().take_while(|&b| b == b'=').count();
    if trail == 0 || t.len() <= level + trail {
        return None;
    }
    Some((level.min(trail), &t[level..t.len() - trail]))
}

fn strip_quotes(s: &str) -> String {
    if !s.contains("''") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("''") {
        out.push_str(&rest[..i]);
        let n = rest[i..].bytes().take_while(|&b| b == b'\'').count();
        // ''' and '' are markup; a 4th quote is a literal apostrophe before bold.
        if n == 4 {
            out.push('\'');
        }
        rest = &rest[i + n..];
    }
    out.push_str(rest);
    out
}

fn remove_magic_words(s: &str) -> String {
    if !s.contains("__") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("__") {
        let after = &rest[i + 2..];
        let name_len = after.bytes().take_while(|b| b.is_ascii_uppercase()).count();
        if name_len > 0 && after[name_len..].starts_with("__") {
            out.push_str(&rest[..i]);
            rest = &after[name_len + 2..];
        } else {
            out.push_str(&rest[..i + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Decodes HTML entities (`&nbsp;`, `&mdash;`, `&#8212;`, `&#x2014;`); unknown ones stay.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .bytes()
            .take(32)
            .position(|b| b == b';')
            .filter(|&e| e > 0);
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let ch = if let Some(num) = name.strip_prefix('#') {
                let v = match num.strip_prefix(['x', 'X']) {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => num.parse().ok(),
                };
                v.and_then(char::from_u32).map(|c| c.to_string())
            } else {
                quick_xml::escape::resolve_html5_entity(name).map(str::to_string)
            };
            ch.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push_str(if c == "\u{a0}" { " " } else { &c });
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Empty brackets left by removed templates go, spaces are collapsed, at most one empty line.
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.split('\n') {
        let mut l = line
            .replace("()", "")
            .replace("( )", "")
            .replace("(, )", "(")
            .replace("(; )", "(");
        while l.contains("  ") {
            l = l.replace("  ", " ");
        }
        let l = l.replace(" ,", ",").replace(" .", ".");
        let l = l.trim();
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: &str) -> String {
        wikitext_to_text(s, &LinkPrefixes::default())
    }

    #[test]
    fn templates_refs_comments_and_tables_go() {
        let w = "{{Infobox city|name=Berlin|pop={{formatnum:3600000}}}}'''Berlin''' ({{IPA|bɛʁˈliːn}}) is the capital<ref name=\"a\">{{cite web|url=x}}</ref> of [[Germany]].<ref name=b/><!-- hidden -->\n{| class=\"wikitable\"\n|-\n| a || b\n|}\nAfter the table.";
        assert_eq!(
            conv(w),
            "Berlin is the capital of Germany.\nAfter the table."
        );
    }

    #[test]
    fn links_keep_their_text_and_files_categories_interwiki_go() {
        let w = "[[File:Berlin.jpg|thumb|The [[Reichstag]] building]]A [[city|town]] on the [[Spree]]s.\n[[Category:Capitals]]\n[[de:Berlin]]\n[[:Category:Cities]] and [[Datei:x.png]] [http://example.org the site] [http://bare.org]";
        assert_eq!(
            conv(w),
            "A town on the Sprees.\n\nCategory:Cities and the site"
        );
    }

    #[test]
    fn headings_lists_entities_and_reference_sections() {
        let w = "Intro&nbsp;text &mdash; &#8212; &amp;\n== History ==\n* first item\n# second ''item''\n; term : definition\n__TOC__\n=== Sub ===\ntext\n== References ==\n* a ref\n== External links ==\n* [http://x.org x]";
        assert_eq!(
            conv(w),
            "Intro text — — &\n\nHistory\nfirst item\nsecond item\nterm : definition\n\nSub\ntext"
        );
    }

    #[test]
    fn broken_markup_does_not_swallow_the_rest() {
        assert_eq!(
            conv("a {{ broken\nb [[ also\nc <ref>x"),
            "a broken\nb also\nc x"
        );
        assert_eq!(conv("a [b|c]] d }} e"), "a [b|c d e");
        assert_eq!(
            conv("德国十六个-{zh-hans:联邦州; zh-hant:邦}-之一 -{Berlin}-"),
            "德国十六个联邦州之一 Berlin"
        );
    }
}
