//! Chooses the character encoding of an HTML payload and decodes it to UTF-8.
//!
//! Order: a byte-order mark; the `charset` of the HTTP `Content-Type`; a `<meta charset>` or
//! `<meta http-equiv="Content-Type">` in the first 4 KB; else detection with `chardetng`
//! (hinted by the URL's top-level domain). A declared legacy encoding is overridden when the
//! bytes are valid UTF-8 with non-ASCII text in them, the common case of a server default
//! (`ISO-8859-1`) contradicting a UTF-8 page. Decoding replaces bad sequences, never fails.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// Where the chosen encoding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharsetSource {
    /// A byte-order mark.
    Bom,
    /// The HTTP `Content-Type` header.
    Http,
    /// A `<meta>` tag in the page.
    Meta,
    /// The bytes are valid UTF-8 (no declaration, or a legacy declaration they contradict).
    Utf8Valid,
    /// Guessed by `chardetng`.
    Detected,
}

impl CharsetSource {
    /// Short name for metadata (`http`, `meta`, `bom`, `utf8_valid`, `detected`).
    pub fn as_str(self) -> &'static str {
        match self {
            CharsetSource::Bom => "bom",
            CharsetSource::Http => "http",
            CharsetSource::Meta => "meta",
            CharsetSource::Utf8Valid => "utf8_valid",
            CharsetSource::Detected => "detected",
        }
    }
}

/// A payload decoded to text, with the encoding used.
#[derive(Debug, Clone)]
pub struct DecodedText {
    /// The text (malformed sequences replaced by U+FFFD).
    pub text: String,
    /// The encoding used.
    pub encoding: &'static Encoding,
    /// Why that encoding was used.
    pub source: CharsetSource,
}

/// How many bytes at the start of a page are searched for a `<meta>` charset.
pub const META_PRESCAN_BYTES: usize = 4096;

/// The `charset` parameter of a `Content-Type` value, if any.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(|c| c == '"' || c == '\''))
            .filter(|v| !v.is_empty())
    })
}

/// An encoding label resolved as the HTML standard does for declarations (UTF-16 labels in a
/// page mean UTF-8, `x-user-defined` means windows-1252).
fn resolve_label(label: &[u8]) -> Option<&'static Encoding> {
    let enc = Encoding::for_label(label)?;
    Some(
        if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
            UTF_8
        } else if enc == encoding_rs::X_USER_DEFINED {
            WINDOWS_1252
        } else {
            enc
        },
    )
}

/// Finds a charset declared in a `<meta>` tag in the first [`META_PRESCAN_BYTES`] bytes.
pub fn meta_charset(html: &[u8]) -> Option<&'static Encoding> {
    let head: Vec<u8> = html[..html.len().min(META_PRESCAN_BYTES)]
        .iter()
        .map(u8::to_ascii_lowercase)
        .collect();
    let mut at = 0;
    while let Some(i) = memchr::memmem::find(&head[at..], b"<meta") {
        let tag_start = at + i + 5;
        let tag_end = memchr::memchr(b'>', &head[tag_start..])
            .map(|j| tag_start + j)
            .unwrap_or(head.len());
        let tag = &head[tag_start..tag_end];
        if let Some(k) = memchr::memmem::find(tag, b"charset") {
            let mut rest = &tag[k + 7..];
            rest = skip_spaces(rest);
            if let Some(r) = rest.strip_prefix(b"=") {
                let value = skip_spaces(r);
                let value = value
                    .strip_prefix(b"\"")
                    .or_else(|| value.strip_prefix(b"'"))
                    .unwrap_or(value);
                let end = value
                    .iter()
                    .position(|&b| {
                        matches!(b, b'"' | b'\'' | b';' | b'/' | b'>') || b.is_ascii_whitespace()
                    })
                    .unwrap_or(value.len());
                if let Some(enc) = resolve_label(&value[..end]) {
                    return Some(enc);
                }
            }
        }
        at = tag_end.max(tag_start);
        if at >= head.len() {
            break;
        }
    }
    None
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

/// The top-level domain of a URL in the form `chardetng` accepts (lower-case ASCII letters,
/// digits and `-`), if the URL has one.
pub fn url_tld(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let tld = host.trim_end_matches('.').rsplit('.').next()?;
    let tld = tld.to_ascii_lowercase();
    let ok = !tld.is_empty()
        && tld
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(tld)
}

/// Decodes an HTML payload, choosing the encoding as the module documentation says.
pub fn decode_html(bytes: &[u8], http_charset: Option<&str>, url: &str) -> DecodedText {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        return finish(&bytes[bom_len..], enc, CharsetSource::Bom);
    }
    let declared = http_charset
        .and_then(|c| resolve_label(c.as_bytes()))
        .map(|e| (e, CharsetSource::Http))
        .or_else(|| meta_charset(bytes).map(|e| (e, CharsetSource::Meta)));
    let valid_utf8 = || std::str::from_utf8(bytes).is_ok();
    match declared {
        Some((enc, source)) if enc == UTF_8 => finish(bytes, enc, source),
        Some((enc, source)) => {
            if enc.is_ascii_compatible() && !bytes.is_ascii() && valid_utf8() {
                finish(bytes, UTF_8, CharsetSource::Utf8Valid)
            } else {
                finish(bytes, enc, source)
            }
        }
        None if valid_utf8() => finish(bytes, UTF_8, CharsetSource::Utf8Valid),
        None => {
            let mut detector =
                chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
            detector.feed(bytes, true);
            let tld = url_tld(url);
            let enc = detector.guess(
                tld.as_deref().map(str::as_bytes),
                chardetng::Utf8Detection::Allow,
            );
            finish(bytes, enc, CharsetSource::Detected)
        }
    }
}

fn finish(bytes: &[u8], encoding: &'static Encoding, source: CharsetSource) -> DecodedText {
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    DecodedText {
        text: text.into_owned(),
        encoding,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_declarations() {
        assert_eq!(
            charset_param("text/html; Charset=\"GB2312\""),
            Some("GB2312")
        );
        assert_eq!(charset_param("text/html"), None);
        let page =
            b"<html><head><META http-equiv='Content-Type' content='text/html; charset=Shift_JIS'>";
        assert_eq!(meta_charset(page), Some(encoding_rs::SHIFT_JIS));
        assert_eq!(meta_charset(b"<meta charset = utf-16>"), Some(UTF_8));
        assert_eq!(
            meta_charset(b"<meta name=x><meta charset=\"koi8-r\">"),
            Some(encoding_rs::KOI8_R)
        );
        assert_eq!(meta_charset(b"<meta charset=bogus>"), None);
        assert_eq!(meta_charset(b"<meta"), None);
    }

    #[test]
    fn decodes_by_declaration_validity_or_detection() {
        let (gbk, _, _) = encoding_rs::GBK.encode("中文网页的内容，这是一个测试。中华人民共和国");
        let d = decode_html(&gbk, Some("gb2312"), "http://a.cn/");
        assert_eq!(
            (d.encoding, d.source),
            (encoding_rs::GBK, CharsetSource::Http)
        );
        assert!(d.text.contains("中文网页"));
        let d = decode_html(&gbk, None, "http://a.cn/");
        assert_eq!(d.source, CharsetSource::Detected);
        assert!(
            d.text.contains("中文网页"),
            "{} {}",
            d.encoding.name(),
            d.text
        );
        let d = decode_html("café".as_bytes(), Some("iso-8859-1"), "");
        assert_eq!(
            (d.text.as_str(), d.source),
            ("café", CharsetSource::Utf8Valid)
        );
        let d = decode_html(b"caf\xe9", Some("iso-8859-1"), "");
        assert_eq!(d.text, "café");
        let d = decode_html(b"\xEF\xBB\xBFx", Some("koi8-r"), "");
        assert_eq!((d.text.as_str(), d.source), ("x", CharsetSource::Bom));
    }

    #[test]
    fn tld_is_safe_for_chardetng() {
        assert_eq!(
            url_tld("https://user@Example.CO.JP:8080/x?y"),
            Some("jp".into())
        );
        assert_eq!(url_tld("http://xn--p1ai/"), Some("xn--p1ai".into()));
        assert_eq!(url_tld("http://例え.テスト/"), None);
        assert_eq!(url_tld(""), None);
    }
}
