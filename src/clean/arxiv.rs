//! LaTeX cleaning as LLaMA did for arXiv: comments removed, user macros expanded, everything
//! before the first sectioning command and the bibliography dropped.
//!
//! Differences from RedPajama's cleaner, on purpose: macros with arguments, optional
//! arguments and multi-line bodies are expanded (RedPajama expanded only one-line,
//! argument-less ones); the sectioning match lists `\paragraph` and `\subparagraph` as separate
//! alternatives (RedPajama's regex lacked the `|` between them); a `%` preceded by an odd
//! number of backslashes is text, not a comment; only the bibliography itself is removed, so
//! sections after it (acknowledgements, appendices) stay. Appendices are kept by default
//! (`keep_appendix = true`): they are written prose (proofs, extra experiments); RedPajama cut
//! the text at `\appendix`, which `keep_appendix = false` reproduces.

use std::collections::HashMap;
use std::sync::OnceLock;

use anyhow::Result;
use regex::Regex;
use serde::Deserialize;

use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// Environments whose content is taken literally (no comments): their begin and end markers.
const VERBATIM_ENVS: &[(&str, &str)] = &[
    ("\\begin{verbatim}", "\\end{verbatim}"),
    ("\\begin{verbatim*}", "\\end{verbatim*}"),
    ("\\begin{Verbatim}", "\\end{Verbatim}"),
    ("\\begin{lstlisting}", "\\end{lstlisting}"),
    ("\\begin{minted}", "\\end{minted}"),
];

/// Removes LaTeX comments: a line that is only a comment disappears with its line end; text
/// after an unescaped `%` is cut (the line end stays); `comment` environments are removed.
/// Verbatim-like environments are left untouched.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut verbatim_end: Option<&str> = None;
    let mut in_comment_env = false;
    for line in text.split_inclusive('\n') {
        if let Some(end) = verbatim_end {
            out.push_str(line);
            if line.contains(end) {
                verbatim_end = None;
            }
            continue;
        }
        if in_comment_env {
            if line.contains("\\end{comment}") {
                in_comment_env = false;
            }
            continue;
        }
        let (content, newline) = match unescaped_percent(line) {
            Some(i) if line[..i].trim().is_empty() => continue,
            Some(i) => (&line[..i], line.ends_with('\n')),
            None => (line, false),
        };
        if content.trim_start().starts_with("\\begin{comment}") {
            in_comment_env = !content.contains("\\end{comment}");
            continue;
        }
        if content.contains("\\begin{") {
            for (begin, end) in VERBATIM_ENVS {
                if content.contains(begin) && !content.contains(end) {
                    verbatim_end = Some(end);
                }
            }
        }
        out.push_str(content);
        if newline {
            out.push('\n');
        }
    }
    out
}

/// Byte index of the first `%` that starts a comment: not escaped (`\%`) and not inside
/// `\verb|..|`.
fn unescaped_percent(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let mut i = 0;
    while let Some(k) = memchr::memchr2(b'\\', b'%', &b[i..]) {
        let at = i + k;
        if b[at] == b'%' {
            return Some(at);
        }
        if b[at + 1..].starts_with(b"verb") && !b.get(at + 5).is_some_and(u8::is_ascii_alphabetic) {
            let mut j = at + 5;
            if b.get(j) == Some(&b'*') {
                j += 1;
            }
            if let Some(&delim) = b.get(j) {
                if let Some(end) = memchr::memchr(delim, &b[j + 1..]) {
                    i = j + 1 + end + 1;
                    continue;
                }
            }
        }
        // A backslash escapes the next character (`\%`, and `\\` is a line break).
        i = at + 2;
        if i >= b.len() {
            return None;
        }
    }
    None
}

/// A user macro: parameter count, default of an optional first argument, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macro {
    /// Number of parameters (`#1` .. `#9`).
    pub params: usize,
    /// Default of the optional first parameter (`\newcommand{\x}[2][def]{...}`).
    pub default: Option<String>,
    /// Replacement text.
    pub body: String,
}

/// Limits of macro expansion.
const MAX_EXPANSION_DEPTH: usize = 32;

fn is_letter(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'@'
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b'\n' || b[i] == b'\r') {
        i += 1;
    }
    i
}

/// Reads a balanced `{...}` group starting at `i` (which must be `{`); returns the inner
/// range and the index after the closing brace.
fn braced(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((i + 1, j, j + 1));
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

/// Reads `[...]` at `i` (balanced over braces); returns inner range and the index after it.
fn bracketed(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut depth = 0usize;
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 1,
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b']' if depth == 0 => return Some((i + 1, j, j + 1)),
            _ => {}
        }
        j += 1;
    }
    None
}

/// Reads a control sequence name at `i` (`\name` or `\x`); returns the name and the end.
fn control_sequence(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if b.get(i) != Some(&b'\\') || i + 1 >= b.len() {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() && is_letter(b[j]) {
        j += 1;
    }
    if j == i + 1 {
        j += 1; // control symbol
    }
    Some((i + 1, j))
}

/// One macro argument at `i`: a braced group, a control sequence or one character.
fn argument(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let i = skip_spaces(b, i);
    match b.get(i)? {
        b'{' => braced(b, i),
        b'\\' => control_sequence(b, i).map(|(_, e)| (i, e, e)),
        b'}' => None,
        _ => {
            let len = utf8_len(b[i]);
            Some((i, i + len, i + len))
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The definition commands recognised, and whether the name is written like `\def` (bare).
const DEFINERS: &[&str] = &[
    "newcommand",
    "renewcommand",
    "providecommand",
    "DeclareRobustCommand",
    "DeclareMathOperator",
    "def",
    "gdef",
    "edef",
    "xdef",
];

/// Commands whose redefinitions are removed but never expanded: the cleaner depends on
/// seeing them (sections, environments, inputs, the bibliography).
const PROTECTED: &[&str] = &[
    "part",
    "chapter",
    "section",
    "subsection",
    "subsubsection",
    "paragraph",
    "subparagraph",
    "begin",
    "end",
    "input",
    "include",
    "appendix",
    "bibliography",
    "printbibliography",
    "documentclass",
];

/// Parses a definition whose command name spans `cmd` (without the backslash) and ends at
/// `i`; returns the macro name, the macro (None when it cannot be expanded, e.g. `\def` with
/// delimited parameters) and the end of the definition.
fn parse_definition(text: &str, cmd: &str, mut i: usize) -> Option<(String, Option<Macro>, usize)> {
    let b = text.as_bytes();
    let mut star = false;
    if b.get(i) == Some(&b'*') {
        star = true;
        i += 1;
    }
    i = skip_spaces(b, i);
    let name = if b.get(i) == Some(&b'{') {
        let (s, e, after) = braced(b, i)?;
        let inner = text[s..e].trim();
        let (ns, ne) = control_sequence(inner.as_bytes(), 0)?;
        if ne != inner.len() {
            return None;
        }
        i = after;
        inner[ns..ne].to_string()
    } else {
        let (s, e) = control_sequence(b, i)?;
        i = e;
        text[s..e].to_string()
    };
    if cmd.ends_with("def") {
        // Parameter text up to the body: only `#1#2...` is expandable.
        let body_start = memchr::memchr(b'{', &b[i..])? + i;
        let params_text: String = text[i..body_start]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let (s, e, after) = braced(b, body_start)?;
        let mut n = 0;
        let mut simple = params_text.len().is_multiple_of(2);
        for (k, pair) in params_text.as_bytes().chunks(2).enumerate() {
            simple &= pair == [b'#', b'1' + k as u8];
            n += 1;
        }
        let mac = simple.then(|| Macro {
            params: n,
            default: None,
            body: text[s..e].to_string(),
        });
        return Some((name, mac, after));
    }
    if cmd == "DeclareMathOperator" {
        let j = skip_spaces(b, i);
        let (s, e, after) = braced(b, j)?;
        let op = if star {
            "\\operatorname*"
        } else {
            "\\operatorname"
        };
        return Some((
            name,
            Some(Macro {
                params: 0,
                default: None,
                body: format!("{op}{{{}}}", &text[s..e]),
            }),
            after,
        ));
    }
    let mut params = 0;
    let mut default = None;
    let mut j = skip_spaces(b, i);
    if let Some((s, e, after)) = bracketed(b, j) {
        params = text[s..e].trim().parse::<usize>().ok()?.min(9);
        j = skip_spaces(b, after);
        if let Some((s, e, after)) = bracketed(b, j) {
            default = Some(text[s..e].to_string());
            j = skip_spaces(b, after);
        }
    }
    let (s, e, after) = braced(b, j)?;
    Some((
        name,
        Some(Macro {
            params,
            default,
            body: text[s..e].to_string(),
        }),
        after,
    ))
}

/// Substitutes `#1`..`#9` in `body` (and `##` by `#`).
fn substitute(body: &str, args: &[&str]) -> String {
    let b = body.as_bytes();
    let mut out = String::with_capacity(body.len() + args.iter().map(|a| a.len()).sum::<usize>());
    let mut last = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'#' {
            let next = b[i + 1];
            if next == b'#' {
                out.push_str(&body[last..i]);
                out.push('#');
                i += 2;
                last = i;
                continue;
            }
            if next.is_ascii_digit() && next != b'0' {
                let k = (next - b'1') as usize;
                out.push_str(&body[last..i]);
                out.push_str(args.get(k).copied().unwrap_or(""));
                i += 2;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&body[last..]);
    out
}

/// Expands user macros: definitions (`\newcommand`, `\renewcommand`, `\providecommand`,
/// `\DeclareRobustCommand`, `\def` and relatives, `\DeclareMathOperator`) are removed from the
/// text and registered in order; later uses are replaced by their bodies with arguments
/// substituted, recursively up to a depth limit and an output budget.
pub struct MacroExpander {
    macros: HashMap<String, Macro>,
    /// Definitions seen.
    pub definitions: usize,
    /// Uses expanded.
    pub expansions: usize,
    budget: usize,
}

impl MacroExpander {
    /// An expander that may produce at most `budget` bytes of output.
    pub fn new(budget: usize) -> Self {
        MacroExpander {
            macros: HashMap::new(),
            definitions: 0,
            expansions: 0,
            budget,
        }
    }

    /// The macros defined so far.
    pub fn macros(&self) -> &HashMap<String, Macro> {
        &self.macros
    }

    /// Expands `text` into `out`.
    pub fn expand(&mut self, text: &str, out: &mut String, depth: usize) {
        let b = text.as_bytes();
        let mut last = 0;
        let mut i = 0;
        while let Some(k) = memchr::memchr(b'\\', &b[i..]) {
            let at = i + k;
            let Some((ns, ne)) = control_sequence(b, at) else {
                break;
            };
            let name = &text[ns..ne];
            if DEFINERS.contains(&name) && !b.get(ne).copied().is_some_and(is_letter) {
                if let Some((mname, mac, end)) = parse_definition(text, name, ne) {
                    out.push_str(&text[last..at]);
                    self.definitions += 1;
                    let keep_old = (name == "providecommand" && self.macros.contains_key(&mname))
                        || PROTECTED.contains(&mname.as_str());
                    match mac {
                        Some(m) if !keep_old => {
                            self.macros.insert(mname, m);
                        }
                        None => {
                            self.macros.remove(&mname);
                        }
                        _ => {}
                    }
                    // Drop the line end that followed the definition.
                    let mut end = end;
                    if b.get(end) == Some(&b'\n') {
                        end += 1;
                    }
                    last = end;
                    i = end;
                    continue;
                }
            }
            if depth < MAX_EXPANSION_DEPTH && out.len() < self.budget {
                if let Some(mac) = self.macros.get(name).cloned() {
                    if let Some((args, end)) = read_arguments(text, ne, &mac) {
                        let replaced = substitute(&mac.body, &args);
                        out.push_str(&text[last..at]);
                        self.expansions += 1;
                        self.expand(&replaced, out, depth + 1);
                        last = end;
                        i = end;
                        continue;
                    }
                }
            }
            i = ne.max(at + 1);
        }
        out.push_str(&text[last..]);
    }
}

/// Reads the arguments of a use of `mac` starting at `i`; returns them and the end index.
/// An argument-less macro swallows a directly following `{}`; the space after it stays, so
/// that prose keeps its word breaks.
fn read_arguments<'a>(text: &'a str, i: usize, mac: &'a Macro) -> Option<(Vec<&'a str>, usize)> {
    let b = text.as_bytes();
    let mut args = Vec::with_capacity(mac.params);
    let mut j = i;
    if mac.params == 0 {
        if b.get(j) == Some(&b'{') && b.get(j + 1) == Some(&b'}') {
            j += 2;
        }
        return Some((args, j));
    }
    let mut k = 0;
    if let Some(def) = &mac.default {
        match bracketed(b, skip_spaces(b, j)) {
            Some((a, e, after)) => {
                args.push(&text[a..e]);
                j = after;
            }
            None => args.push(def.as_str()),
        }
        k = 1;
    }
    while k < mac.params {
        let (s, e, after) = argument(b, j)?;
        args.push(&text[s..e]);
        j = after;
        k += 1;
    }
    Some((args, j))
}

fn section_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\*?\s*[\[{]",
        )
        .expect("valid regex")
    })
}

/// Byte index of the first sectioning command (`\part` .. `\subparagraph`, starred or with
/// an optional title), if any.
pub fn first_section(text: &str) -> Option<usize> {
    section_regex().find(text).map(|m| m.start())
}

/// Removes the bibliography: `thebibliography` and `references` environments, and the
/// `\bibliography{..}`, `\bibliographystyle{..}`, `\printbibliography[..]`,
/// `\addbibresource{..}` commands. Text after them stays.
pub fn remove_bibliography(text: &str) -> String {
    let mut out = text.to_string();
    for env in ["thebibliography", "references", "REFERENCES"] {
        let open = format!("\\begin{{{env}}}");
        let close = format!("\\end{{{env}}}");
        while let Some(s) = out.find(&open) {
            let e = out[s..]
                .find(&close)
                .map_or(out.len(), |k| s + k + close.len());
            out.replace_range(s..e, "");
        }
    }
    for cmd in [
        "\\bibliographystyle",
        "\\bibliography",
        "\\printbibliography",
        "\\addbibresource",
    ] {
        let mut from = 0;
        while let Some(k) = out[from..].find(cmd) {
            let s = from + k;
            let b = out.as_bytes();
            let mut e = s + cmd.len();
            if b.get(e).copied().is_some_and(|c| c.is_ascii_alphabetic()) {
                from = e;
                continue;
            }
            if let Some((_, _, after)) = bracketed(b, skip_spaces(b, e)) {
                e = after;
            }
            if let Some((_, _, after)) = braced(b, skip_spaces(b, e)) {
                e = after;
            }
            out.replace_range(s..e, "");
            from = s;
        }
    }
    out
}

/// Collapses runs of blank lines into one and trims the ends.
pub fn normalize_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

/// Parameters of `type = "latex_clean"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatexCleanConfig {
    /// Keep appendices (default true); false cuts the text at `\appendix` as RedPajama did.
    #[serde(default = "yes")]
    pub keep_appendix: bool,
    /// Expand user macros (default true).
    #[serde(default = "yes")]
    pub expand_macros: bool,
    /// Output of macro expansion is capped at this multiple of the input size (default 4).
    #[serde(default = "default_growth")]
    pub max_expansion_growth: usize,
}

fn yes() -> bool {
    true
}
fn default_growth() -> usize {
    4
}

/// What [`clean_latex`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatexCleanReport {
    /// Macro definitions found.
    pub definitions: usize,
    /// Macro uses expanded.
    pub expansions: usize,
}

/// Cleans one flattened LaTeX document; `None` when it has no sectioning command.
pub fn clean_latex(text: &str, config: &LatexCleanConfig) -> Option<(String, LatexCleanReport)> {
    let text = strip_comments(text);
    let mut report = LatexCleanReport::default();
    let text = if config.expand_macros {
        let mut ex = MacroExpander::new(text.len().saturating_mul(config.max_expansion_growth));
        let mut out = String::with_capacity(text.len());
        ex.expand(&text, &mut out, 0);
        report.definitions = ex.definitions;
        report.expansions = ex.expansions;
        out
    } else {
        text
    };
    let mut body = &text[first_section(&text)?..];
    if let Some(end) = body.find("\\end{document}") {
        body = &body[..end];
    }
    if !config.keep_appendix {
        let cut = ["\\appendix", "\\begin{appendix}", "\\begin{appendices}"]
            .iter()
            .filter_map(|m| body.find(m))
            .min();
        if let Some(c) = cut {
            body = &body[..c];
        }
    }
    Some((normalize_blank_lines(&remove_bibliography(body)), report))
}

/// The `latex_clean` stage: [`clean_latex`] on each document; drops `no_section` when the
/// document has no sectioning command (RedPajama's cleaner made such papers empty).
pub struct LatexClean {
    config: LatexCleanConfig,
}

impl LatexClean {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        Ok(LatexClean {
            config: parse_params("latex_clean", params)?,
        })
    }
}

impl Stage for LatexClean {
    fn name(&self) -> &str {
        "latex_clean"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        match clean_latex(&doc.text, &self.config) {
            Some((text, report)) if !text.trim().is_empty() => {
                doc.text = text;
                doc.set("macro_definitions", report.definitions);
                doc.set("macro_expansions", report.expansions);
                Verdict::Keep
            }
            Some(_) => Verdict::drop("empty_after_cleaning"),
            None => Verdict::drop("no_section"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LatexCleanConfig {
        parse_params("latex_clean", &toml::Table::new()).unwrap()
    }

    #[test]
    fn comments_go_escaped_percent_stays() {
        let t = "% full line\nA 50\\% rise % note\nB\\\\% after a line break\n\\begin{comment}\nx\n\\end{comment}\nC \\verb|%d| D % E\n";
        assert_eq!(strip_comments(t), "A 50\\% rise \nB\\\\\nC \\verb|%d| D \n");
    }

    #[test]
    fn macros_with_arguments_defaults_and_multiline_bodies_expand() {
        let t = "\\newcommand{\\R}{\\mathbb{R}}\n\\newcommand{\\pair}[2]{(#1, #2)}\n\\newcommand\\opt[2][x]{[#1|#2]}\n\\def\\sq#1{#1^2}\n\\DeclareMathOperator*{\\argmin}{arg\\,min}\n\\newcommand{\\multi}{first\n  second}\n$\\R \\pair{a}{\\R} \\opt{y} \\opt[z]{w} \\sq{3} \\argmin_x$ \\multi.\n";
        let mut out = String::new();
        let mut ex = MacroExpander::new(1 << 20);
        ex.expand(t, &mut out, 0);
        assert_eq!(
            out,
            "$\\mathbb{R} (a, \\mathbb{R}) [x|y] [z|w] 3^2 \\operatorname*{arg\\,min}_x$ first\n  second.\n"
        );
        assert_eq!(ex.definitions, 6);
    }

    #[test]
    fn redefined_sectioning_commands_are_not_expanded() {
        let t = "\\renewcommand{\\section}[1]{\\textbf{#1}}\n\\begin{document}\n\\section{Intro}\nText\n";
        let (out, _) = clean_latex(t, &config()).unwrap();
        assert_eq!(out, "\\section{Intro}\nText");
    }

    #[test]
    fn recursive_macro_stops_at_depth_limit() {
        let mut out = String::new();
        MacroExpander::new(1 << 20).expand("\\def\\a{x\\a}\\a", &mut out, 0);
        assert!(out.starts_with("xxxx") && out.len() < 100, "{out}");
    }

    #[test]
    fn subparagraph_is_a_section_and_sectionmark_is_not() {
        assert_eq!(
            first_section("\\sectionmark{x} \\subparagraph{A}"),
            Some(16)
        );
        assert_eq!(first_section("\\paragraph*{B}"), Some(0));
        assert_eq!(first_section("no sections"), None);
    }

    #[test]
    fn clean_cuts_preamble_and_bibliography_keeps_appendix() {
        let t = "\\documentclass{article}\n\\newcommand{\\name}{World}\n\\begin{document}\n\\begin{abstract}Abs\\end{abstract}\n\\section{Intro}\nHello \\name. % hi\n\\bibliography{refs}\n\\begin{thebibliography}{9}\\bibitem{a} A.\\end{thebibliography}\n\\appendix\n\\section{Proofs}\nQED\n\\end{document}\n";
        let (out, rep) = clean_latex(t, &config()).unwrap();
        assert_eq!(
            out,
            "\\section{Intro}\nHello World.\n\n\\appendix\n\\section{Proofs}\nQED"
        );
        assert_eq!(rep.definitions, 1);
        let mut c = config();
        c.keep_appendix = false;
        let (out, _) = clean_latex(t, &c).unwrap();
        assert_eq!(out, "\\section{Intro}\nHello World.");
    }
}
