//! Declared parameters of stages and readers: name, type, default and a line of doc.
//!
//! The stage and reader catalogues ([`crate::run::catalogue`], [`crate::sources::catalogue`])
//! list them; a pipeline's table is checked against them before anything is built, and
//! `datamill stages` / `datamill readers` print them.

use anyhow::{bail, Result};

/// The TOML type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// `true` or `false`.
    Bool,
    /// A whole number at least 0.
    Count,
    /// A number (a whole number is accepted).
    Number,
    /// A string.
    Text,
    /// A file or folder path (a string).
    Path,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// An array of strings.
    TextList,
    /// An array of `[n, fraction]` pairs.
    PairList,
    /// A table from a language code to a path.
    PathPerLanguage,
    /// A table from a language code to `[head, middle]` numbers.
    CutoffsPerLanguage,
    /// A table (its own keys listed elsewhere).
    Table,
    /// An array of tables.
    TableList,
}

impl ParamType {
    /// The type as the reference tables print it.
    pub fn label(self) -> String {
        match self {
            ParamType::Bool => "bool".into(),
            ParamType::Count => "integer".into(),
            ParamType::Number => "number".into(),
            ParamType::Text => "string".into(),
            ParamType::Path => "path".into(),
            ParamType::Choice(options) => options
                .iter()
                .map(|o| format!("`\"{o}\"`"))
                .collect::<Vec<_>>()
                .join(" \\| "),
            ParamType::TextList => "list of strings".into(),
            ParamType::PairList => "list of `[n, fraction]`".into(),
            ParamType::PathPerLanguage => "table: language → path".into(),
            ParamType::CutoffsPerLanguage => "table: language → `[head, middle]`".into(),
            ParamType::Table => "table".into(),
            ParamType::TableList => "list of tables".into(),
        }
    }

    /// Whether `value` has this type.
    pub fn accepts(self, value: &toml::Value) -> bool {
        use toml::Value as V;
        let number = |v: &V| matches!(v, V::Integer(_) | V::Float(_));
        match (self, value) {
            (ParamType::Bool, V::Boolean(_)) => true,
            (ParamType::Count, V::Integer(n)) => *n >= 0,
            (ParamType::Number, v) => number(v),
            (ParamType::Text | ParamType::Path, V::String(_)) => true,
            (ParamType::Choice(options), V::String(s)) => options.contains(&s.as_str()),
            (ParamType::TextList, V::Array(a)) => a.iter().all(|v| v.is_str()),
            (ParamType::PairList, V::Array(a)) => a.iter().all(|pair| {
                pair.as_array().is_some_and(|p| {
                    p.len() == 2 && matches!(p[0], V::Integer(n) if n >= 0) && number(&p[1])
                })
            }),
            (ParamType::PathPerLanguage, V::Table(t)) => t.values().all(|v| v.is_str()),
            (ParamType::CutoffsPerLanguage, V::Table(t)) => t.values().all(|v| {
                v.as_array()
                    .is_some_and(|p| p.len() == 2 && p.iter().all(number))
            }),
            (ParamType::Table, V::Table(_)) => true,
            (ParamType::TableList, V::Array(a)) => a.iter().all(|v| v.is_table()),
            _ => false,
        }
    }
}

/// What a parameter is when the pipeline does not set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamDefault {
    /// This TOML value (the catalogue test checks it against the code's default).
    Value(&'static str),
    /// No value; the text says what happens then.
    Unset(&'static str),
    /// The pipeline must set it.
    Required,
}

/// One declared parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// The key in the TOML table.
    pub name: &'static str,
    /// Its type.
    pub kind: ParamType,
    /// Its default.
    pub default: ParamDefault,
    /// One line: what it does.
    pub doc: &'static str,
}

/// A [`Param`] (short for the catalogue tables).
pub const fn param(
    name: &'static str,
    kind: ParamType,
    default: ParamDefault,
    doc: &'static str,
) -> Param {
    Param {
        name,
        kind,
        default,
        doc,
    }
}

/// A reason a stage drops a document for, or a reader sets a record aside for.
#[derive(Debug, Clone, Copy)]
pub struct Reason {
    /// The reason as the stats, `metadata.reject_reason` and quarantine records write it.
    pub reason: &'static str,
    /// When it applies.
    pub when: &'static str,
}

/// A [`Reason`] (short for the catalogue tables).
pub const fn reason(reason: &'static str, when: &'static str) -> Reason {
    Reason { reason, when }
}

/// A Markdown table `| title | when |` of `reasons`; empty when there is none.
pub fn markdown_reasons(title: &str, reasons: &[Reason]) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let mut out = format!("\n| {title} | when |\n|---|---|\n");
    for r in reasons {
        out.push_str(&format!("| `{}` | {} |\n", r.reason, r.when));
    }
    out
}

/// Plain-text lines `  title:` then `    reason: when` for a terminal; empty when there is none.
pub fn text_reasons(title: &str, reasons: &[Reason]) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let mut out = format!("  {title}:\n");
    for r in reasons {
        out.push_str(&format!("    {}: {}\n", r.reason, r.when.replace('`', "")));
    }
    out
}

/// Checks a stage's or reader's table against its declared parameters: an unknown key, a value
/// of the wrong type or a missing required key is an error naming `what` and the key.
pub fn check_table(what: &str, params: &[Param], table: &toml::Table) -> Result<()> {
    for (key, value) in table {
        let Some(p) = params.iter().find(|p| p.name == key.as_str()) else {
            let known: Vec<&str> = params.iter().map(|p| p.name).collect();
            if known.is_empty() {
                bail!("{what}: unknown parameter `{key}` (it takes none)");
            }
            bail!(
                "{what}: unknown parameter `{key}` (known: {})",
                known.join(", ")
            );
        };
        if !p.kind.accepts(value) {
            bail!(
                "{what}: parameter `{key}` must be {}, got `{value}`",
                p.kind.label()
            );
        }
    }
    for p in params {
        if p.default == ParamDefault::Required && !table.contains_key(p.name) {
            bail!("{what}: parameter `{}` is required", p.name);
        }
    }
    Ok(())
}

/// The table of the declared defaults that have a value (for the catalogue tests).
pub fn default_table(params: &[Param]) -> Result<toml::Table> {
    let mut text = String::new();
    for p in params {
        if let ParamDefault::Value(v) = p.default {
            text.push_str(&format!("{} = {v}\n", p.name));
        }
    }
    Ok(toml::from_str(&text)?)
}

/// Parses `table` into the configuration type `C` (errors name `what`) and prints it (`{:?}`):
/// the form in which the catalogues compare their declarations with the code.
pub fn parsed_debug<C: serde::de::DeserializeOwned + std::fmt::Debug>(
    what: &str,
    table: &toml::Table,
) -> Result<String> {
    Ok(format!(
        "{:?}",
        crate::run::config::parse_params::<C>(what, table)?
    ))
}

/// Checks one catalogue entry against its configuration type (`parse`, see [`parsed_debug`]):
/// the type accepts exactly the declared keys, and the declared defaults parse to the same
/// configuration as an empty table (required keys are given a plain value of their type in
/// both: `"x"` for a string or path, an empty table or list, 0, false).
pub fn check_declarations(
    what: &str,
    params: &[Param],
    parse: fn(&toml::Table) -> Result<String>,
) -> Result<()> {
    let mut code = accepted_keys(parse);
    code.sort();
    let mut declared: Vec<String> = params.iter().map(|p| p.name.to_string()).collect();
    declared.sort();
    if code != declared {
        bail!("{what}: the code takes {code:?}, the catalogue declares {declared:?}");
    }
    let mut required = toml::Table::new();
    for p in params
        .iter()
        .filter(|p| p.default == ParamDefault::Required)
    {
        required.insert(p.name.into(), plain_value(p.kind));
    }
    let mut with_defaults = default_table(params)?;
    with_defaults.extend(required.clone());
    check_table(what, params, &with_defaults)?;
    let (code, declared) = (parse(&required)?, parse(&with_defaults)?);
    if code != declared {
        bail!("{what}: the declared defaults give {declared}, the code's {code}");
    }
    Ok(())
}

/// A plain value of `kind` (for required keys in the catalogue tests).
fn plain_value(kind: ParamType) -> toml::Value {
    use toml::Value as V;
    match kind {
        ParamType::Bool => V::Boolean(false),
        ParamType::Count | ParamType::Number => V::Integer(0),
        ParamType::Text | ParamType::Path => V::String("x".into()),
        ParamType::Choice(options) => V::String(options.first().copied().unwrap_or("").into()),
        ParamType::TextList | ParamType::PairList | ParamType::TableList => V::Array(Vec::new()),
        ParamType::PathPerLanguage | ParamType::CutoffsPerLanguage | ParamType::Table => {
            V::Table(toml::Table::new())
        }
    }
}

/// The keys a configuration type accepts, read from serde's error for an unknown key (the
/// catalogue tests compare them with the declared parameters); `parse` parses a table into it.
pub fn accepted_keys(parse: fn(&toml::Table) -> Result<String>) -> Vec<String> {
    let mut probe = toml::Table::new();
    probe.insert("__probe__".into(), toml::Value::Integer(0));
    let Err(e) = parse(&probe) else {
        return vec!["(accepts any key)".into()];
    };
    let e = e.to_string();
    match e.split_once("expected ") {
        Some((_, list)) => list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    }
}

/// Markdown rows `| name | type | default | doc |` for a parameter list.
pub fn markdown_rows(params: &[Param]) -> String {
    markdown_table("parameter", params)
}

/// [`markdown_rows`] with `first` as the title of the name column.
pub fn markdown_table(first: &str, params: &[Param]) -> String {
    let mut out = format!("| {first} | type | default | what it does |\n|---|---|---|---|\n");
    for p in params {
        let default = match p.default {
            ParamDefault::Value(v) => format!("`{v}`"),
            ParamDefault::Unset(s) => s.to_string(),
            ParamDefault::Required => "required".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            p.name,
            p.kind.label(),
            default,
            p.doc
        ));
    }
    out
}

/// Plain-text lines `name  type  default  doc` for a terminal.
pub fn text_rows(params: &[Param]) -> String {
    let width = params.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for p in params {
        let default = match p.default {
            ParamDefault::Value(v) => format!("default {v}"),
            ParamDefault::Unset(s) => format!("default: {s}"),
            ParamDefault::Required => "required".to_string(),
        };
        out.push_str(&format!(
            "    {:<width$}  {} ({}; {})\n",
            p.name,
            p.doc,
            p.kind.label().replace('`', ""),
            default
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[Param] = &[
        Param {
            name: "n",
            kind: ParamType::Count,
            default: ParamDefault::Value("3"),
            doc: "Counts.",
        },
        Param {
            name: "model",
            kind: ParamType::Path,
            default: ParamDefault::Required,
            doc: "Loads.",
        },
    ];

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn unknown_key_wrong_type_and_missing_key_name_the_key() {
        let e = check_table("stage `x`", PARAMS, &table("model = \"m\"\nm = 1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("stage `x`") && e.contains("`m`") && e.contains("n, model"));
        let e = check_table("stage `x`", PARAMS, &table("model = \"m\"\nn = -1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`n` must be integer"), "{e}");
        let e = check_table("stage `x`", PARAMS, &table("n = 2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`model` is required"), "{e}");
        check_table("stage `x`", PARAMS, &table("model = \"m\"\nn = 2")).unwrap();
    }

    #[test]
    fn compound_types_check_their_elements() {
        let v = |s: &str| table(&format!("v = {s}"))["v"].clone();
        assert!(ParamType::PairList.accepts(&v("[[2, 0.2], [3, 1]]")));
        assert!(!ParamType::PairList.accepts(&v("[[2, 0.2, 1]]")));
        assert!(ParamType::TextList.accepts(&v("[\"en\"]")));
        assert!(!ParamType::TextList.accepts(&v("[1]")));
        assert!(ParamType::CutoffsPerLanguage.accepts(&v("{ en = [1, 2.5] }")));
        assert!(!ParamType::CutoffsPerLanguage.accepts(&v("{ en = [1] }")));
        assert!(ParamType::Choice(&["first", "longest"]).accepts(&v("\"longest\"")));
        assert!(!ParamType::Choice(&["first", "longest"]).accepts(&v("\"last\"")));
        assert!(ParamType::Number.accepts(&v("1")));
    }
}
