//! A suite file: cases in promptfoo's shape (`tests = [{ vars, assert }]`), in TOML.

use super::EvalError;
use super::assertion::Assertion;
use crate::pipeline::Reach;
use montage_models::Format;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
    pub reach: Stage,
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
    pub reach: Option<Stage>,
    /// What must hold.
    #[serde(rename = "assert")]
    pub assertions: Vec<Assertion>,
}

/// How far a case runs: the pipeline up to one of its nodes, or the chat agent's first
/// decision on one message (no run is made: the model is given the agent's rules, tools and
/// a stated run, and its tool calls are the record).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The intent read from the request.
    Intent,
    /// Through the beat plan.
    Plan,
    /// Through the story and the scene prompts.
    Prompts,
    /// Through the pictures and the critic's first review.
    Critic,
    /// The finished video.
    #[default]
    Video,
    /// The agent's tool calls for one message.
    Agent,
}

impl Stage {
    /// The pipeline's reach for this stage; the agent's runs none.
    pub fn pipeline(self) -> Option<Reach> {
        match self {
            Stage::Intent => Some(Reach::Intent),
            Stage::Plan => Some(Reach::Plan),
            Stage::Prompts => Some(Reach::Prompts),
            Stage::Critic => Some(Reach::Critic),
            Stage::Video => Some(Reach::Video),
            Stage::Agent => None,
        }
    }
}

/// Who said an earlier message of an agent case's chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The person.
    User,
    /// Montage.
    Assistant,
}

/// An earlier message of an agent case's chat.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Who said it.
    pub role: Speaker,
    /// What was said.
    pub content: String,
}

/// What a case asks for, as a person would through `montage make` (or, for the agent, in a
/// chat: `prompt` is then the person's message).
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
    /// Agent cases: the chat's current run as the agent sees it (`status`, `scenes`,
    /// `question`, `formats`, `version`); none is a chat with no video yet.
    pub run: Option<Value>,
    /// Agent cases: ids of music the person uploaded earlier in the chat.
    #[serde(default)]
    pub uploaded_audio: Vec<String>,
    /// Agent cases: ids of pictures the person uploaded earlier in the chat.
    #[serde(default)]
    pub uploaded_images: Vec<String>,
    /// Agent cases: the chat's earlier messages, oldest first.
    #[serde(default)]
    pub turns: Vec<Turn>,
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
            run: self.run.clone().or_else(|| defaults.run.clone()),
            uploaded_audio: match self.uploaded_audio.is_empty() {
                true => defaults.uploaded_audio.clone(),
                false => self.uploaded_audio.clone(),
            },
            uploaded_images: match self.uploaded_images.is_empty() {
                true => defaults.uploaded_images.clone(),
                false => self.uploaded_images.clone(),
            },
            turns: match self.turns.is_empty() {
                true => defaults.turns.clone(),
                false => self.turns.clone(),
            },
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
    pub fn reach(&self, suite: &Suite) -> Stage {
        self.reach.unwrap_or(suite.reach)
    }
}
