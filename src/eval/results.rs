//! Results as a JSON file, and what changed against a baseline: an assertion that held in
//! the baseline and fails now is a regression, one that failed and holds now an improvement.

use super::runner::{CaseResult, VariantInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything one `montage eval` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResults {
    /// Montage's version.
    pub montage: String,
    /// The variants, in the order given.
    pub variants: Vec<VariantInfo>,
    /// Every case on every variant.
    pub cases: Vec<CaseResult>,
}

/// One assertion's change against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `suite/case`.
    pub case: String,
    /// The variant.
    pub variant: String,
    /// The assertion's label (`hygiene scenes.*.prompt.prompt`).
    pub assertion: String,
    /// Why it fails now (a regression) or what it found (an improvement).
    pub reason: String,
}

/// What changed against a baseline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    /// Held in the baseline, fail now.
    pub regressions: Vec<Change>,
    /// Failed in the baseline, hold now.
    pub improvements: Vec<Change>,
    /// Cases the baseline has and this run does not (`suite/case`).
    pub missing: Vec<String>,
    /// Cases this run has and the baseline does not.
    pub new: Vec<String>,
}

impl Comparison {
    /// Whether the change fails the gate.
    pub fn regressed(&self) -> bool {
        !self.regressions.is_empty()
    }
}

/// One suite's figures on one variant.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    /// Cases that passed, of `of`.
    cases: usize,
    of: usize,
    /// Assertions that held, of `asserted`.
    held: usize,
    asserted: usize,
    cost: f64,
}

fn key(result: &CaseResult) -> String {
    format!("{}/{}", result.suite, result.case)
}

impl EvalResults {
    /// What changed from `baseline`. Each variant is held to the baseline's of the same
    /// label, or to the baseline's only variant when it has one (a new template set against
    /// the shipped one).
    pub fn compare(&self, baseline: &EvalResults) -> Comparison {
        let mut comparison = Comparison::default();
        let only = match baseline.variants.as_slice() {
            [one] => Some(one.label.as_str()),
            _ => None,
        };
        let before: BTreeMap<(String, String), &CaseResult> = baseline
            .cases
            .iter()
            .map(|c| ((c.variant.clone(), key(c)), c))
            .collect();
        for now in &self.cases {
            let variant = only.unwrap_or(&now.variant).to_owned();
            let Some(then) = before.get(&(variant, key(now))) else {
                comparison.new.push(key(now));
                continue;
            };
            for (index, verdict) in now.verdicts.iter().enumerate() {
                // The same assertion at the same place; an edited one is new.
                let Some(old) = then
                    .verdicts
                    .get(index)
                    .filter(|old| old.assertion == verdict.assertion)
                else {
                    continue;
                };
                let change = Change {
                    case: key(now),
                    variant: now.variant.clone(),
                    assertion: verdict.assertion.label(),
                    reason: verdict.reason.clone(),
                };
                match (old.pass, verdict.pass) {
                    (true, false) => comparison.regressions.push(change),
                    (false, true) => comparison.improvements.push(change),
                    _ => {}
                }
            }
        }
        let seen: std::collections::BTreeSet<String> = self.cases.iter().map(key).collect();
        comparison.missing = baseline
            .cases
            .iter()
            .map(key)
            .filter(|k| !seen.contains(k))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        comparison
    }

    /// A table of each suite's passing cases and assertions per variant, side by side.
    pub fn summary(&self) -> String {
        let labels: Vec<&str> = self.variants.iter().map(|v| v.label.as_str()).collect();
        let mut suites: BTreeMap<&str, BTreeMap<&str, Tally>> = BTreeMap::new();
        for case in &self.cases {
            let tally = suites
                .entry(&case.suite)
                .or_default()
                .entry(&case.variant)
                .or_default();
            tally.cases += usize::from(case.pass);
            tally.of += 1;
            tally.held += case.verdicts.iter().filter(|v| v.pass).count();
            tally.asserted += case.verdicts.len();
            tally.cost += case.cost_usd;
        }
        let mut out = String::new();
        let _ = write!(out, "{:<12}", "suite");
        for label in &labels {
            let _ = write!(out, " | {label:<34}");
        }
        out.push('\n');
        for (suite, cells) in &suites {
            let _ = write!(out, "{suite:<12}");
            for label in &labels {
                let t = cells.get(label).copied().unwrap_or_default();
                let cell = format!(
                    "{}/{} cases, {}/{} assertions, ${:.4}",
                    t.cases, t.of, t.held, t.asserted, t.cost
                );
                let _ = write!(out, " | {cell:<34}");
            }
            out.push('\n');
        }
        out
    }

    /// Each failing assertion, a line each.
    pub fn failures(&self) -> String {
        let mut out = String::new();
        for case in self.cases.iter().filter(|c| !c.pass) {
            for verdict in case.verdicts.iter().filter(|v| !v.pass) {
                let _ = writeln!(
                    out,
                    "  fails [{}] {}: {} — {}",
                    case.variant,
                    key(case),
                    verdict.assertion.label(),
                    verdict.reason
                );
            }
        }
        out
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for change in &self.regressions {
            writeln!(
                f,
                "REGRESSED [{}] {}: {} — {}",
                change.variant, change.case, change.assertion, change.reason
            )?;
        }
        for change in &self.improvements {
            writeln!(
                f,
                "improved  [{}] {}: {}",
                change.variant, change.case, change.assertion
            )?;
        }
        // With --only most of a baseline is not run: name a few.
        for case in self.missing.iter().take(5) {
            writeln!(f, "missing   {case} (in the baseline, not run now)")?;
        }
        if self.missing.len() > 5 {
            writeln!(f, "missing   and {} more", self.missing.len() - 5)?;
        }
        for case in &self.new {
            writeln!(f, "new       {case} (not in the baseline)")?;
        }
        write!(
            f,
            "{} regressed, {} improved against the baseline",
            self.regressions.len(),
            self.improvements.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Stage;
    use crate::eval::{Assertion, Verdict};

    fn case(name: &str, verdicts: &[(Assertion, bool)]) -> CaseResult {
        CaseResult {
            suite: "s".into(),
            case: name.into(),
            variant: "local".into(),
            reach: Stage::Intent,
            pass: verdicts.iter().all(|(_, pass)| *pass),
            score: 0.0,
            verdicts: verdicts
                .iter()
                .map(|(assertion, pass)| Verdict {
                    assertion: assertion.clone(),
                    pass: *pass,
                    score: f64::from(u8::from(*pass)),
                    reason: format!("pass {pass}"),
                })
                .collect(),
            error: None,
            cost_usd: 0.0,
            seconds: 0.0,
            text_model: String::new(),
            prompts: Vec::new(),
        }
    }

    fn results(variant: &str, cases: Vec<CaseResult>) -> EvalResults {
        EvalResults {
            montage: String::new(),
            variants: vec![VariantInfo {
                label: variant.into(),
                prompts: None,
                templates: Vec::new(),
                text_model: "local".into(),
            }],
            cases: cases
                .into_iter()
                .map(|c| CaseResult {
                    variant: variant.into(),
                    ..c
                })
                .collect(),
        }
    }

    #[test]
    fn an_assertion_that_held_and_fails_now_regresses_and_an_edited_one_is_new() {
        let cost = |max| Assertion::Cost { max };
        let baseline = results(
            "local",
            vec![
                case("a", &[(cost(1.0), true), (cost(2.0), false)]),
                case("b", &[(cost(1.0), true)]),
                case("gone", &[(cost(1.0), true)]),
            ],
        );
        let now = results(
            "local + worse/",
            vec![
                case("a", &[(cost(1.0), false), (cost(2.0), true)]),
                case("b", &[(cost(0.5), false)]),
                case("fresh", &[(cost(1.0), false)]),
            ],
        );
        let comparison = now.compare(&baseline);
        assert_eq!(comparison.regressions.len(), 1);
        assert_eq!(comparison.regressions[0].case, "s/a");
        assert_eq!(comparison.regressions[0].variant, "local + worse/");
        assert_eq!(comparison.improvements.len(), 1);
        assert_eq!(comparison.missing, ["s/gone"]);
        assert_eq!(comparison.new, ["s/fresh"]);
        assert!(comparison.regressed());
        assert!(!baseline.compare(&baseline).regressed());
    }
}
