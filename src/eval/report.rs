//! The side-by-side report: one HTML file with a table per suite, a row per case and a
//! column per variant, each cell its verdicts, the reasons of those that failed, and the
//! scene prompts the case's run wrote, so two template sets can be read side by side.

use super::results::EvalResults;
use minijinja::{Environment, context};
use serde::Serialize;
use std::collections::BTreeMap;

const TEMPLATE: &str = include_str!("report.html");

#[derive(Serialize)]
struct Cell<'a> {
    pass: bool,
    score: f64,
    cost_usd: f64,
    seconds: f64,
    error: Option<&'a str>,
    verdicts: Vec<VerdictCell>,
    prompts: &'a [String],
}

#[derive(Serialize)]
struct VerdictCell {
    label: String,
    pass: bool,
    reason: String,
}

#[derive(Serialize)]
struct Row<'a> {
    case: &'a str,
    cells: Vec<Option<Cell<'a>>>,
}

#[derive(Serialize)]
struct SuiteTable<'a> {
    name: &'a str,
    rows: Vec<Row<'a>>,
}

/// `results` as an HTML page.
pub fn html(results: &EvalResults) -> Result<String, minijinja::Error> {
    let mut suites: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for case in &results.cases {
        let cases = suites.entry(&case.suite).or_default();
        if !cases.contains(&case.case.as_str()) {
            cases.push(&case.case);
        }
    }
    let tables: Vec<SuiteTable> = suites
        .into_iter()
        .map(|(suite, cases)| SuiteTable {
            name: suite,
            rows: cases
                .into_iter()
                .map(|name| Row {
                    case: name,
                    cells: results
                        .variants
                        .iter()
                        .map(|variant| {
                            results
                                .cases
                                .iter()
                                .find(|c| {
                                    c.suite == suite && c.case == name && c.variant == variant.label
                                })
                                .map(|c| Cell {
                                    pass: c.pass,
                                    score: c.score,
                                    cost_usd: c.cost_usd,
                                    seconds: c.seconds,
                                    error: c.error.as_deref(),
                                    verdicts: c
                                        .verdicts
                                        .iter()
                                        .map(|v| VerdictCell {
                                            label: v.assertion.label(),
                                            pass: v.pass,
                                            reason: v.reason.clone(),
                                        })
                                        .collect(),
                                    prompts: &c.prompts,
                                })
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    env.get_template("report.html")?.render(context! {
        montage => &results.montage,
        passed => results.cases.iter().filter(|c| c.pass).count(),
        total => results.cases.len(),
        variants => minijinja::value::Serde(&results.variants),
        suites => minijinja::value::Serde(&tables),
    })
}
