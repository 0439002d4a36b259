//! The one URL normalisation that cited URLs and crawled pages are compared under: parsed as
//! WHATWG URLs (the `url` crate), so scheme and host are lower case (international hosts in
//! punycode), the default port is dropped, an empty path becomes `/`, and the path is
//! percent-encoded; the fragment is dropped. Only `http` and `https` URLs are kept.

/// The normalised form of an `http(s)` URL, or `None` when it is not one.
pub fn normalize_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    // Protocol-relative links (`//example.org/x`) are https.
    let owned;
    let raw = if let Some(rest) = raw.strip_prefix("//") {
        owned = format!("https://{rest}");
        owned.as_str()
    } else {
        raw
    };
    let mut u = url::Url::parse(raw).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    u.host_str().filter(|h| !h.is_empty())?;
    u.set_fragment(None);
    Some(u.into())
}

/// A URL as a crawl export may store it: without a scheme (`example.com/a`) it is read as
/// `http://`.
fn with_scheme(raw: &str) -> std::borrow::Cow<'_, str> {
    let raw = raw.trim();
    if raw.contains("://") || raw.starts_with("//") {
        std::borrow::Cow::Borrowed(raw)
    } else {
        std::borrow::Cow::Owned(format!("http://{raw}"))
    }
}

/// The key a page's URL and a cited URL are matched by: the normalised URL without its
/// scheme, so a page cited as `http://` and served as `https://` is the same page. A URL
/// without a scheme (as some crawl exports store it) is read as `http://`.
pub fn match_key(raw: &str) -> Option<String> {
    let norm = normalize_url(&with_scheme(raw))?;
    let (_, rest) = norm.split_once("://")?;
    Some(rest.to_string())
}

/// The site a URL is on, for matching by host: its lower-case host without a leading `www.`
/// (a URL without a scheme is read as `http://`).
pub fn host_key(raw: &str) -> Option<String> {
    let u = url::Url::parse(&normalize_url(&with_scheme(raw))?).ok()?;
    let host = u.host_str()?;
    Some(host.strip_prefix("www.").unwrap_or(host).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_and_host_lower_case_default_port_and_fragment_dropped() {
        let n = |s: &str| normalize_url(s);
        assert_eq!(
            n("HTTP://Www.Example.COM:80/A/b?q=1#sec").as_deref(),
            Some("http://www.example.com/A/b?q=1")
        );
        assert_eq!(
            n("https://example.com:443").as_deref(),
            Some("https://example.com/")
        );
        assert_eq!(
            n("https://example.com:8443/x").as_deref(),
            Some("https://example.com:8443/x")
        );
        assert_eq!(
            n("//example.org/p").as_deref(),
            Some("https://example.org/p")
        );
        assert_eq!(n("ftp://example.com/x"), None);
        assert_eq!(n("mailto:a@b.c"), None);
        assert_eq!(n("not a url"), None);
        assert_eq!(
            host_key("https://WWW.Nytimes.com/2016/x.html").as_deref(),
            Some("nytimes.com")
        );
        assert_eq!(
            host_key("http://in.reuters.com/a").as_deref(),
            Some("in.reuters.com")
        );
        assert_eq!(host_key("Example.org/x").as_deref(), Some("example.org"));
        assert_eq!(
            match_key("HTTPS://example.org:443/x#f"),
            match_key("example.org/x")
        );
        assert_eq!(match_key("example.org/x").as_deref(), Some("example.org/x"));
    }
}
