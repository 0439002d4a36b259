//! robots.txt as RFC 9309 reads it: the groups for our product token (else those for `*`),
//! `Allow`/`Disallow` rules with `*` and `$`, the longest matching rule deciding (an `Allow`
//! wins a tie), and the groups' `Crawl-delay` (seconds between two requests, a widespread
//! extension). Other lines (`Sitemap`, unknown keys) are ignored.

use std::time::Duration;

/// Largest robots.txt body parsed (RFC 9309 asks for at least 500 KiB); the rest is ignored.
pub const MAX_ROBOTS_BYTES: usize = 512 << 10;

/// The rules that apply to one crawler on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Robots {
    /// `(allow, pattern)` pairs of the groups that apply.
    rules: Vec<(bool, String)>,
    /// Every path is forbidden (robots.txt could not be fetched because of a server error).
    disallow_all: bool,
    /// `Crawl-delay` of the groups that apply (the largest when several say it).
    crawl_delay: Option<Duration>,
}

impl Robots {
    /// No rules: everything allowed (no robots.txt, or a 4xx for it).
    pub fn allow_all() -> Self {
        Robots::default()
    }

    /// Everything forbidden (robots.txt unreachable: RFC 9309 says assume complete disallow).
    pub fn disallow_all() -> Self {
        Robots {
            disallow_all: true,
            ..Robots::default()
        }
    }

    /// Parses a robots.txt body for the crawler whose product token is `token`.
    pub fn parse(body: &[u8], token: &str) -> Self {
        let body = &body[..body.len().min(MAX_ROBOTS_BYTES)];
        let text = String::from_utf8_lossy(body);
        let token = token.to_ascii_lowercase();
        let (mut mine, mut star) = (Vec::new(), Vec::new());
        let (mut mine_delay, mut star_delay): (Option<Duration>, Option<Duration>) = (None, None);
        // The user agents of the group being read, and whether its rules started.
        let mut agents: Vec<String> = Vec::new();
        let mut in_rules = false;
        // Whether some group names our token (then only such groups apply, even if empty).
        let mut named = false;
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if in_rules {
                        agents.clear();
                        in_rules = false;
                    }
                    let ua = value
                        .split(|c: char| c == '/' || c.is_whitespace())
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    named |= ua == token;
                    agents.push(ua);
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    if value.is_empty() {
                        continue;
                    }
                    let rule = (key == "allow", value.to_string());
                    if agents.contains(&token) {
                        mine.push(rule.clone());
                    }
                    if agents.iter().any(|a| a == "*") {
                        star.push(rule);
                    }
                }
                "crawl-delay" => {
                    in_rules = true;
                    let Some(delay) = value
                        .parse::<f64>()
                        .ok()
                        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                    else {
                        continue;
                    };
                    let larger = |d: Option<Duration>| Some(d.map_or(delay, |d| d.max(delay)));
                    if agents.contains(&token) {
                        mine_delay = larger(mine_delay);
                    }
                    if agents.iter().any(|a| a == "*") {
                        star_delay = larger(star_delay);
                    }
                }
                _ => {}
            }
        }
        Robots {
            rules: if named { mine } else { star },
            disallow_all: false,
            crawl_delay: if named { mine_delay } else { star_delay },
        }
    }

    /// The `Crawl-delay` that applies.
    pub fn crawl_delay(&self) -> Option<Duration> {
        self.crawl_delay
    }

    /// Whether `path` (path and query of a URL, starting with `/`) may be fetched.
    pub fn allows(&self, path: &str) -> bool {
        if path == "/robots.txt" {
            return true;
        }
        if self.disallow_all {
            return false;
        }
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if pattern_matches(pattern, path) {
                let len = pattern.len();
                let better = match best {
                    None => true,
                    Some((l, a)) => len > l || (len == l && *allow && !a),
                };
                if better {
                    best = Some((len, *allow));
                }
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }

    /// Bytes held (for the cache's accounting).
    pub fn heap_bytes(&self) -> usize {
        self.rules.iter().map(|(_, p)| p.len() + 32).sum::<usize>() + 48
    }
}

/// Whether a rule pattern (`*` any run of characters, a final `$` the end) matches the start
/// of `path`.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = path.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    if parts.is_empty() {
        return !anchored || rest.is_empty();
    }
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if last && anchored {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_rule_wins_and_allow_breaks_ties() {
        let r = Robots::parse(
            b"User-agent: *\nDisallow: /private\nAllow: /private/open\nDisallow: /*.pdf$\n\
              Allow: /same\nDisallow: /same\n",
            "datamill",
        );
        assert!(r.allows("/"));
        assert!(!r.allows("/private/x"));
        assert!(r.allows("/private/open/x"));
        assert!(!r.allows("/doc/a.pdf"));
        assert!(r.allows("/doc/a.pdf?x=1"));
        assert!(r.allows("/same"));
        assert!(r.allows("/robots.txt"));
    }

    #[test]
    fn our_group_replaces_the_star_group() {
        let text = b"User-agent: *\nDisallow: /\n\nUser-agent: other\nUser-agent: DataMill/1.0\nDisallow: /no\n# c\nUser-agent: x\nDisallow: /x\n";
        let r = Robots::parse(text, "datamill");
        assert!(r.allows("/yes"));
        assert!(!r.allows("/no/1"));
        assert!(r.allows("/x"));
        let star = Robots::parse(text, "somebot");
        assert!(!star.allows("/yes"));
        assert!(Robots::allow_all().allows("/a"));
        assert!(!Robots::disallow_all().allows("/a"));
    }

    #[test]
    fn crawl_delay_comes_from_the_groups_that_apply() {
        let text = b"User-agent: *
Crawl-delay: 10
Disallow: /a

User-agent: datamill
Crawl-delay: 0.5
Crawl-delay: 2
Disallow: /b

User-agent: x
Crawl-delay: nonsense
";
        let ours = Robots::parse(text, "datamill");
        assert_eq!(ours.crawl_delay(), Some(Duration::from_secs(2)));
        assert!(ours.allows("/a") && !ours.allows("/b"));
        assert_eq!(
            Robots::parse(text, "other").crawl_delay(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(Robots::parse(text, "x").crawl_delay(), None);
        assert_eq!(Robots::allow_all().crawl_delay(), None);
    }

    #[test]
    fn wildcards_match_inside_and_at_the_end() {
        assert!(pattern_matches("/a*b", "/a/x/b/c"));
        assert!(!pattern_matches("/a*b$", "/a/x/b/c"));
        assert!(pattern_matches("/a*b$", "/a/x/b"));
        assert!(pattern_matches("*", "/anything"));
        assert!(pattern_matches("/$", "/"));
        assert!(!pattern_matches("/$", "/a"));
    }
}
