//! Builds stages from their pipeline TOML tables, by `type` name.

use anyhow::{bail, Context, Result};

use super::catalogue::stage_spec;
use super::params::check_table;
use crate::stage::Stage;

/// Builds one stage from its table (`type` plus parameters), after checking the parameters
/// against the stage's entry in the [catalogue](super::catalogue): an unknown stage type, an
/// unknown key or a value of the wrong type is an error naming the stage and the key.
pub fn build_stage(table: &toml::Table) -> Result<Box<dyn Stage>> {
    let kind = table
        .get("type")
        .and_then(toml::Value::as_str)
        .context("stage table has no `type`")?;
    let spec = stage_spec(kind)?;
    let mut params = table.clone();
    params.remove("type");
    check_table(&format!("stage `{kind}`"), spec.params, &params)?;
    let p = &params;
    Ok(match kind {
        "line_dedup" => Box::new(crate::dedup::line::LineDeduper::from_params(p)?),
        "exact_dedup" => Box::new(crate::dedup::exact::ExactDeduper::from_params(p)?),
        "license_filter" => Box::new(crate::clean::license::LicenseFilter::from_params(p)?),
        "code_file_filter" => Box::new(crate::clean::github::CodeFileFilter::from_params(p)?),
        "code_license_header" => Box::new(crate::clean::github::CodeLicenseHeader::from_params(p)?),
        "code_quality" => Box::new(crate::clean::github::CodeQuality::from_params(p)?),
        "latex_clean" => Box::new(crate::clean::arxiv::LatexClean::from_params(p)?),
        "langid" => Box::new(crate::filter::langid::LangIdFilter::from_params(p)?),
        "gopher_repetition" => {
            Box::new(crate::filter::gopher_repetition::GopherRepetition::from_params(p)?)
        }
        "gopher_quality" => Box::new(crate::filter::gopher_quality::GopherQuality::from_params(
            p,
        )?),
        "c4_quality" => Box::new(crate::filter::c4::C4Quality::from_params(p)?),
        "gutenberg_strip" => Box::new(crate::clean::books::GutenbergStrip::from_params(p)?),
        "wiki_filter" => Box::new(crate::clean::wiki::WikiFilter::from_params(p)?),
        "minhash_dedup" => Box::new(crate::dedup::minhash::MinHashDeduper::from_params(p)?),
        "perplexity" => Box::new(crate::quality::perplexity::PerplexityScorer::from_params(
            p,
        )?),
        "perplexity_bucket" => Box::new(
            crate::quality::perplexity::PerplexityBucketer::from_params(p)?,
        ),
        "classifier" => Box::new(crate::quality::classifier::ClassifierStage::from_params(p)?),
        "c4_badwords" => Box::new(crate::filter::badwords::BadWordsFilter::from_params(p)?),
        "c4_span_dedup" => Box::new(crate::dedup::span::SpanDeduper::from_params(p)?),
        other => bail!("stage type `{other}` is in the catalogue but not built here"),
    })
}
