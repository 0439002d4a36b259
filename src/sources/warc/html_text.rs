//! Turns an HTML page into its main-content text with `scraper` (html5ever's spec parser).
//!
//! Boilerplate containers are dropped (`script`, `style`, `nav`, `header` outside an article,
//! `footer`, `aside`, `form`, `noscript`, embedded objects, hidden elements and their ARIA
//! equivalents), and so are link lists: a `ul`/`ol`/`dl`/`div`/`section`/`table` with at least
//! 3 links whose text is at least 80% link text (menus not marked up as `nav`, tag clouds). When the page has exactly one `<main>` element with text, only it is kept.
//! Paragraphs, headings, list items, table rows and `<br>` become lines, table cells of a row
//! are joined with ` | `, whitespace runs collapse to one space, `<pre>` keeps its lines.

use ego_tree::iter::Edge;
use std::collections::HashSet;

use ego_tree::NodeRef;
use scraper::{Html, Node};

/// Put between the cells of a table row.
pub const CELL_SEPARATOR: &str = " | ";

/// What the extraction gives: the text and the page title.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractedText {
    /// Main-content text, one block per line, no empty lines.
    pub text: String,
    /// The `<title>`, whitespace collapsed, if the page has a non-empty one.
    pub title: Option<String>,
}

/// Elements whose whole subtree is boilerplate or not text.
fn is_dropped_element(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "head"
            | "nav"
            | "footer"
            | "aside"
            | "form"
            | "button"
            | "select"
            | "textarea"
            | "input"
            | "iframe"
            | "frame"
            | "frameset"
            | "object"
            | "embed"
            | "applet"
            | "svg"
            | "canvas"
            | "video"
            | "audio"
            | "map"
            | "dialog"
            | "menu"
    )
}

/// Elements that start and end a line.
fn is_block_element(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "blockquote"
            | "body"
            | "caption"
            | "center"
            | "dd"
            | "details"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "legend"
            | "li"
            | "main"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "tbody"
            | "tfoot"
            | "thead"
            | "tr"
            | "ul"
    )
}

/// ARIA roles of navigation and page chrome.
fn is_dropped_role(role: &str) -> bool {
    const ROLES: &[&str] = &[
        "navigation",
        "banner",
        "contentinfo",
        "complementary",
        "search",
        "menu",
        "menubar",
    ];
    let role = role.trim();
    ROLES.iter().any(|r| r.eq_ignore_ascii_case(role))
}

/// True when an inline `style` hides the element (`display: none`, `visibility: hidden`),
/// compared without case and ignoring whitespace.
fn style_hides(style: &str) -> bool {
    let squeezed = style.bytes().filter(|b| !b.is_ascii_whitespace());
    let mut window = [0u8; 17];
    let mut len = 0usize;
    for b in squeezed {
        if len == window.len() {
            window.copy_within(1.., 0);
            len -= 1;
        }
        window[len] = b.to_ascii_lowercase();
        len += 1;
        let w = &window[..len];
        if w.ends_with(b"display:none") || w.ends_with(b"visibility:hidden") {
            return true;
        }
    }
    false
}

/// True for an element that is hidden or plays a boilerplate role.
fn is_hidden(el: &scraper::node::Element) -> bool {
    if el.attr("hidden").is_some() {
        return true;
    }
    if el
        .attr("aria-hidden")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return true;
    }
    if el.attr("role").is_some_and(is_dropped_role) {
        return true;
    }
    el.attr("style").is_some_and(style_hides)
}

/// Fewest links a container needs to be judged a link list.
pub const LINK_LIST_MIN_LINKS: u32 = 3;
/// A container whose text is at least this share (in percent) inside links is a link list
/// (menus, tag clouds, "related" boxes that are not marked up as `nav`).
pub const LINK_LIST_MIN_LINK_PERCENT: u64 = 80;

/// Containers judged by their link density.
fn is_link_list_candidate(name: &str) -> bool {
    matches!(name, "ul" | "ol" | "dl" | "div" | "section" | "table")
}

/// Text bytes (without whitespace) of a subtree, how many of them are inside links, and the
/// number of links.
#[derive(Debug, Default, Clone, Copy)]
struct LinkStats {
    text: u64,
    link_text: u64,
    links: u32,
}

/// The containers under `root` that are link lists (see [`LINK_LIST_MIN_LINK_PERCENT`]),
/// measured without the text of dropped elements.
fn link_lists(root: NodeRef<'_, Node>) -> HashSet<ego_tree::NodeId> {
    let mut found = HashSet::new();
    let mut stack: Vec<LinkStats> = Vec::new();
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(_) => stack.push(LinkStats::default()),
                Node::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        top.text += t.bytes().filter(|b| !b.is_ascii_whitespace()).count() as u64;
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                let Node::Element(el) = node.value() else {
                    continue;
                };
                let Some(mut stats) = stack.pop() else {
                    continue;
                };
                let name = el.name();
                if name == "a" && el.attr("href").is_some() {
                    stats.links += 1;
                    stats.link_text = stats.text;
                }
                if is_link_list_candidate(name)
                    && stats.links >= LINK_LIST_MIN_LINKS
                    && stats.link_text * 100 >= stats.text * LINK_LIST_MIN_LINK_PERCENT
                {
                    found.insert(node.id());
                }
                if is_dropped_element(name) {
                    continue;
                }
                if let Some(parent) = stack.last_mut() {
                    parent.text += stats.text;
                    parent.link_text += stats.link_text;
                    parent.links += stats.links;
                }
            }
        }
    }
    found
}

/// Builds the text line by line, collapsing whitespace.
struct TextBuilder {
    out: String,
    at_line_start: bool,
    pending_space: bool,
    /// A cell separator written only if more text follows on the same line.
    pending_separator: bool,
}

impl TextBuilder {
    fn new(capacity: usize) -> Self {
        TextBuilder {
            out: String::with_capacity(capacity),
            at_line_start: true,
            pending_space: false,
            pending_separator: false,
        }
    }

    /// Writes what goes between the previous text on the line and the next word.
    fn before_word(&mut self) {
        if !self.at_line_start {
            if self.pending_separator {
                self.out.push_str(CELL_SEPARATOR);
            } else if self.pending_space {
                self.out.push(' ');
            }
        }
        self.pending_separator = false;
    }

    fn push_text(&mut self, text: &str) {
        for word in text.split(|c: char| c.is_whitespace() || c == '\u{feff}') {
            if word.is_empty() {
                self.pending_space = true;
                continue;
            }
            self.before_word();
            self.out.push_str(word);
            self.at_line_start = false;
            self.pending_space = true;
        }
        // `split` yields a final piece after the last separator; a text ending in a word
        // must not add a space before the next inline text.
        if !text.ends_with(|c: char| c.is_whitespace() || c == '\u{feff}') {
            self.pending_space = false;
        }
    }

    fn push_preformatted(&mut self, text: &str) {
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.newline();
            }
            let line = line.trim_end();
            if !line.is_empty() {
                self.before_word();
                self.out.push_str(line);
                self.at_line_start = false;
                self.pending_space = false;
            }
        }
    }

    fn cell(&mut self) {
        self.pending_separator = true;
    }

    fn newline(&mut self) {
        if !self.at_line_start {
            self.out.push('\n');
            self.at_line_start = true;
        }
        self.pending_space = false;
        self.pending_separator = false;
    }

    fn finish(mut self) -> String {
        while self.out.ends_with('\n') {
            self.out.pop();
        }
        self.out
    }
}

/// Collapses whitespace of a short text (titles).
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Extracts the text under `root`, skipping dropped subtrees.
fn extract_under(
    root: NodeRef<'_, Node>,
    link_lists: &HashSet<ego_tree::NodeId>,
    capacity: usize,
) -> String {
    let mut b = TextBuilder::new(capacity);
    // While `Some(id)`, everything up to the close of that node is skipped.
    let mut skipping: Option<ego_tree::NodeId> = None;
    let mut pre_depth = 0usize;
    let mut content_depth = 0usize;
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => {
                if skipping.is_some() {
                    continue;
                }
                match node.value() {
                    Node::Text(t) => {
                        if pre_depth > 0 {
                            b.push_preformatted(t);
                        } else {
                            b.push_text(t);
                        }
                    }
                    Node::Element(el) => {
                        let name = el.name();
                        let dropped = is_dropped_element(name)
                            || (name == "header" && content_depth == 0)
                            || is_hidden(el)
                            || link_lists.contains(&node.id());
                        if dropped && node.id() != root.id() {
                            skipping = Some(node.id());
                            continue;
                        }
                        match name {
                            "br" => b.newline(),
                            "td" | "th" => b.cell(),
                            "pre" => {
                                pre_depth += 1;
                                b.newline();
                            }
                            "article" | "main" => {
                                content_depth += 1;
                                b.newline();
                            }
                            "img" => {}
                            _ if is_block_element(name) => b.newline(),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            Edge::Close(node) => {
                if let Some(id) = skipping {
                    if id == node.id() {
                        skipping = None;
                    }
                    continue;
                }
                if let Node::Element(el) = node.value() {
                    let name = el.name();
                    match name {
                        "pre" => {
                            pre_depth = pre_depth.saturating_sub(1);
                            b.newline();
                        }
                        "article" | "main" => {
                            content_depth = content_depth.saturating_sub(1);
                            b.newline();
                        }
                        _ if is_block_element(name) => b.newline(),
                        _ => {}
                    }
                }
            }
        }
    }
    b.finish()
}

/// Deepest element nesting [`html_to_text`] accepts (see [`nesting_depth_estimate`]): the
/// spec parser checks its stack of open elements on every tag, so its time grows with the
/// square of the depth (about 0.3 s at 5,000 nested `<div>`s).
pub const MAX_NESTING_DEPTH: usize = 4096;

/// Elements that never contain others or whose end tag may be left out (`<p>`, `<li>`, ...).
fn never_nests(name: &[u8]) -> bool {
    matches!(
        name,
        b"area"
            | b"base"
            | b"br"
            | b"col"
            | b"embed"
            | b"hr"
            | b"img"
            | b"input"
            | b"link"
            | b"meta"
            | b"param"
            | b"source"
            | b"track"
            | b"wbr"
            | b"p"
            | b"li"
            | b"dt"
            | b"dd"
            | b"tr"
            | b"td"
            | b"th"
            | b"tbody"
            | b"thead"
            | b"tfoot"
            | b"option"
            | b"optgroup"
            | b"rt"
            | b"rp"
            | b"colgroup"
            | b"caption"
            | b"html"
            | b"head"
            | b"body"
            | b"!doctype"
    )
}

/// Where the end tag `</name` (any case) starts at or after `from`.
fn find_end_tag(bytes: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut k = from;
    while let Some(j) = memchr::memmem::find(&bytes[k..], b"</") {
        let p = k + j + 2;
        if bytes
            .get(p..p + name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        {
            return Some(k + j);
        }
        k = p;
    }
    None
}

/// A fast upper estimate of the element nesting depth of a page, from its tags alone:
/// open tags count up and end tags down, except elements that cannot nest; comments and
/// the contents of `script`, `style`, `textarea` and `title` are skipped.
pub fn nesting_depth_estimate(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while let Some(i) = memchr::memchr(b'<', &bytes[at..]) {
        let tag = at + i + 1;
        if bytes[tag..].starts_with(b"!--") {
            at = memchr::memmem::find(&bytes[tag..], b"-->").map_or(bytes.len(), |j| tag + j + 3);
            continue;
        }
        let closing = bytes.get(tag) == Some(&b'/');
        let name_start = tag + usize::from(closing);
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'!' || **b == b'-')
            .count();
        let end =
            memchr::memchr(b'>', &bytes[name_start..]).map_or(bytes.len(), |j| name_start + j);
        at = (end + 1).min(bytes.len());
        if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
            continue;
        }
        let mut lower = [0u8; 16];
        let name = &mut lower[..name_len.min(16)];
        name.copy_from_slice(&bytes[name_start..name_start + name.len()]);
        name.make_ascii_lowercase();
        let name: &[u8] = if name_len > 16 {
            b"long-custom-element"
        } else {
            name
        };
        if never_nests(name) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
            continue;
        }
        if matches!(name, b"script" | b"style" | b"textarea" | b"title") {
            at = find_end_tag(bytes, at, name).unwrap_or(bytes.len());
            continue;
        }
        if end > 0 && bytes.get(end - 1) == Some(&b'/') {
            continue;
        }
        depth += 1;
        deepest = deepest.max(depth);
    }
    deepest
}

/// True for a `<main>` element or one with `role="main"`.
fn is_main(node: &NodeRef<'_, Node>) -> bool {
    match node.value() {
        Node::Element(el) => {
            el.name() == "main"
                || el
                    .attr("role")
                    .is_some_and(|r| r.trim().eq_ignore_ascii_case("main"))
        }
        _ => false,
    }
}

/// Extracts main-content text and title from an HTML document.
pub fn html_to_text(html: &str) -> ExtractedText {
    let doc = Html::parse_document(html);
    let root = doc.tree.root();
    let mut title = None;
    let mut mains = Vec::new();
    for node in root.descendants() {
        if let Node::Element(el) = node.value() {
            if title.is_none() && el.name() == "title" {
                let t: String = node
                    .children()
                    .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
                    .collect();
                let t = collapse(&t);
                if !t.is_empty() {
                    title = Some(t);
                }
            }
            if is_main(&node) {
                mains.push(node);
            }
        }
    }
    let capacity = html.len() / 4;
    let lists = link_lists(root);
    let mut text = String::new();
    if let [main] = mains.as_slice() {
        text = extract_under(*main, &lists, capacity);
    }
    if text.is_empty() {
        text = extract_under(root, &lists, capacity);
    }
    ExtractedText { text, title }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_blocks_as_lines_and_drops_boilerplate() {
        let html = r#"<html><head><title> A
            page </title><style>p{}</style></head><body>
            <header><a href="/">Site</a></header>
            <nav><ul><li>Home</li><li>About</li></ul></nav>
            <h1>Heading   one</h1>
            <p>First <b>bold</b>
               paragraph.<br>Second line.</p>
            <div hidden>secret</div><div style="display: none">gone</div>
            <ul><li>item one</li><li>item <i>two</i></li></ul>
            <table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td><td> </td></tr>
            <tr><td>x<br>y</td><td></td></tr></table>
            <pre>fn main() {
    x();
}</pre>
            <script>var x = "<p>no</p>";</script>
            <footer>Copyright</footer></body></html>"#;
        let out = html_to_text(html);
        assert_eq!(out.title.as_deref(), Some("A page"));
        assert_eq!(
            out.text,
            "Heading one\nFirst bold paragraph.\nSecond line.\nitem one\nitem two\nk | v\na | 1\nx\ny\nfn main() {\n    x();\n}"
        );
    }

    #[test]
    fn single_main_wins_and_article_header_is_kept() {
        let html = "<body><div>menu junk</div><main><article><header><h1>Title</h1></header><p>Body text.</p></article></main><div>more junk</div></body>";
        assert_eq!(html_to_text(html).text, "Title\nBody text.");
        let two = "<body><main><p>a</p></main><main><p>b</p></main></body>";
        assert_eq!(html_to_text(two).text, "a\nb");
    }

    #[test]
    fn link_lists_are_dropped_but_linked_prose_is_kept() {
        let html = r#"<body>
            <div class="menu"><a href="/">Home</a> | <a href="/a">About</a> | <a href="/b">Blog</a></div>
            <ul><li><a href="/x">Tag one</a></li><li><a href="/y">Tag two</a></li><li><a href="/z">Tag three</a></li></ul>
            <div><p>A long paragraph of prose that mentions <a href="/1">one</a>, <a href="/2">two</a>
            and <a href="/3">three</a> links but is mostly text written by a person.</p></div>
            <ul><li>plain item</li><li>another plain item</li></ul>
            <div><a href="/only">Two</a> <a href="/links">links</a></div></body>"#;
        assert_eq!(
            html_to_text(html).text,
            "A long paragraph of prose that mentions one, two and three links but is mostly text written by a person.\nplain item\nanother plain item\nTwo links"
        );
    }

    #[test]
    fn hiding_styles_and_roles() {
        assert!(style_hides("color: red; DISPLAY : None"));
        assert!(style_hides("visibility:\thidden"));
        assert!(!style_hides("display: block; visibility: visible"));
        assert!(is_dropped_role(" Navigation "));
        assert!(!is_dropped_role("main"));
    }

    #[test]
    fn estimates_nesting_depth() {
        assert_eq!(
            nesting_depth_estimate("<div><p>a<p>b<br><img src=x/></div>"),
            1
        );
        assert_eq!(
            nesting_depth_estimate("<div><div><span>x</span></div></div>"),
            3
        );
        let script = "<script>for(;;){ if (a<b) x = '<div><div>' }</script><div/>";
        assert_eq!(nesting_depth_estimate(script), 0);
        assert_eq!(nesting_depth_estimate("<!-- <div><div> --><b>"), 1);
        assert_eq!(nesting_depth_estimate(&"<font>".repeat(5000)), 5000);
        assert_eq!(nesting_depth_estimate("< <3 </ <"), 0);
    }

    #[test]
    fn survives_broken_and_deep_markup() {
        assert_eq!(html_to_text("").text, "");
        assert_eq!(
            html_to_text("<p>unclosed <b>bold <i>x").text,
            "unclosed bold x"
        );
        let deep = "<div>".repeat(5_000) + "deep" + &"</div>".repeat(5_000);
        assert_eq!(html_to_text(&deep).text, "deep");
        assert_eq!(html_to_text("a&amp;b &lt;c&gt; &nbsp;d").text, "a&b <c> d");
        assert_eq!(html_to_text("<p>\u{feff}x</p>").text, "x");
    }
}
