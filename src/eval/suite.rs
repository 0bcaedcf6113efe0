//! A suite file: cases in promptfoo's shape (`tests = [{ vars, assert }]`), in TOML.

use super::EvalError;
use super::assertion::Assertion;
use crate::pipeline::Reach;
use montage_models::Format;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One suite, read from `evals/NAME.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Its name: the file's stem, which results and baselines key cases by.
    #[serde(skip)]
    pub name: String,
    /// What the suite holds the pipeline to.
    pub description: String,
    /// How far its cases run, unless a case says otherwise.
    #[serde(default)]
    pub reach: Reach,
    /// Variables every case starts from (a case's own win).
    #[serde(default)]
    pub defaults: Vars,
    /// The cases.
    pub tests: Vec<Case>,
}

/// One case: a request, how far it runs, and what must hold of its run record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Its name, unique within the suite.
    pub description: String,
    /// The request.
    #[serde(default)]
    pub vars: Vars,
    /// How far it runs, over the suite's.
    pub reach: Option<Reach>,
    /// What must hold.
    #[serde(rename = "assert")]
    pub assertions: Vec<Assertion>,
}

/// What a case asks for, as a person would through `montage make`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Vars {
    /// Their words.
    pub prompt: Option<String>,
    /// A music file, relative to the suite's folder.
    pub audio: Option<PathBuf>,
    /// Image files, relative to the suite's folder.
    #[serde(default)]
    pub images: Vec<PathBuf>,
    /// Formats over the prompt's.
    pub formats: Option<Vec<Format>>,
    /// A length over the prompt's, seconds.
    pub duration: Option<f64>,
    /// The seed (1 unless set).
    pub seed: Option<u64>,
}

impl Vars {
    /// These variables over `defaults`.
    pub fn over(&self, defaults: &Vars) -> Vars {
        Vars {
            prompt: self.prompt.clone().or_else(|| defaults.prompt.clone()),
            audio: self.audio.clone().or_else(|| defaults.audio.clone()),
            images: match self.images.is_empty() {
                true => defaults.images.clone(),
                false => self.images.clone(),
            },
            formats: self.formats.clone().or_else(|| defaults.formats.clone()),
            duration: self.duration.or(defaults.duration),
            seed: self.seed.or(defaults.seed),
        }
    }
}

impl Suite {
    /// Reads the suite at `path`; every upload it names must exist.
    pub fn load(path: &Path) -> Result<Suite, EvalError> {
        let invalid = |reason: String| EvalError::Suite {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let mut suite: Suite = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        suite.name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let folder = path.parent().unwrap_or(Path::new("."));
        let mut names = std::collections::HashSet::new();
        for case in &mut suite.tests {
            if !names.insert(case.description.clone()) {
                return Err(invalid(format!(
                    "two cases are called {:?}",
                    case.description
                )));
            }
            if case.assertions.is_empty() {
                return Err(invalid(format!(
                    "case {:?} asserts nothing",
                    case.description
                )));
            }
            case.vars = case.vars.over(&suite.defaults);
            if case.vars.prompt.is_none() {
                return Err(invalid(format!(
                    "case {:?} has no prompt",
                    case.description
                )));
            }
            let files = case
                .vars
                .audio
                .iter_mut()
                .chain(case.vars.images.iter_mut());
            for file in files {
                *file = folder.join(&*file);
                if !file.is_file() {
                    return Err(invalid(format!(
                        "case {:?} names {}, which is not there",
                        case.description,
                        file.display()
                    )));
                }
            }
        }
        Ok(suite)
    }
}

impl Case {
    /// How far it runs in `suite`.
    pub fn reach(&self, suite: &Suite) -> Reach {
        self.reach.unwrap_or(suite.reach)
    }
}
