//! The prompt templates of `prompts/`, embedded in the binary. Each starts with a
//! `{#- version: N -#}` header; a run records the id, that version and a hash of the text,
//! so any change to a template shows in the run record.

use super::state::TemplateRef;
use minijinja::Environment;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Each template: its id and the text embedded at build time from its file (see [`file`]).
const SOURCES: &[(&str, &str)] = &[
    (
        "intent.system",
        include_str!("../../prompts/intent/system.j2"),
    ),
    ("scene.image", include_str!("../../prompts/scene/image.j2")),
    (
        "scene.negative",
        include_str!("../../prompts/scene/negative.j2"),
    ),
    ("scene.clip", include_str!("../../prompts/scene/clip.j2")),
    ("scene.brief", include_str!("../../prompts/scene/brief.j2")),
    (
        "scene.writer",
        include_str!("../../prompts/scene/writer.j2"),
    ),
    (
        "story.system",
        include_str!("../../prompts/story/system.j2"),
    ),
    (
        "narration.line",
        include_str!("../../prompts/narration/line.j2"),
    ),
    (
        "critic.instruction",
        include_str!("../../prompts/critic/instruction.j2"),
    ),
    (
        "feedback.question",
        include_str!("../../prompts/feedback/question.j2"),
    ),
    (
        "storyboard.question",
        include_str!("../../prompts/storyboard/question.j2"),
    ),
];

/// A template that failed to render.
#[derive(Debug, thiserror::Error)]
#[error("template {id}: {source}")]
pub struct TemplateError {
    /// The template.
    pub id: String,
    /// Why.
    pub source: minijinja::Error,
}

/// The loaded templates.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    refs: BTreeMap<&'static str, TemplateRef>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("refs", &self.refs)
            .finish()
    }
}

fn declared_version(source: &str) -> u32 {
    source
        .lines()
        .next()
        .and_then(|line| line.split("version:").nth(1))
        .and_then(|rest| rest.trim().trim_end_matches("-#}").trim().parse().ok())
        .unwrap_or(0)
}

/// A template folder that cannot stand in for `prompts/`.
#[derive(Debug, thiserror::Error)]
pub enum TemplateLoadError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A template does not parse.
    #[error("{path} does not parse: {source}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: minijinja::Error,
    },
}

/// The file under `prompts/` a template comes from: `scene.image` is `scene/image.j2`.
fn file(id: &str) -> String {
    format!("{}.j2", id.replace('.', "/"))
}

impl Templates {
    /// The embedded templates.
    pub fn embedded() -> Templates {
        let sources = SOURCES
            .iter()
            .map(|(id, source)| (*id, (*source).to_owned()));
        Templates::of(sources)
            .unwrap_or_else(|(id, e)| panic!("embedded template {id} does not parse: {e}"))
    }

    /// The templates of a folder shaped like `prompts/` (`scene/image.j2`, …); a template
    /// the folder lacks is the embedded one. How a changed template set is tried without a
    /// new build.
    pub fn from_dir(dir: &std::path::Path) -> Result<Templates, TemplateLoadError> {
        let mut sources = Vec::new();
        for (id, embedded) in SOURCES {
            let path = dir.join(file(id));
            let source = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (*embedded).to_owned(),
                Err(source) => return Err(TemplateLoadError::Read { path, source }),
            };
            sources.push((*id, source));
        }
        Templates::of(sources).map_err(|(id, source)| TemplateLoadError::Parse {
            path: dir.join(file(id)),
            source,
        })
    }

    fn of(
        sources: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Result<Templates, (&'static str, minijinja::Error)> {
        let mut env = Environment::new();
        let mut refs = BTreeMap::new();
        for (id, source) in sources {
            let sha = hex::encode(Sha256::digest(source.as_bytes()));
            refs.insert(
                id,
                TemplateRef {
                    id: id.to_owned(),
                    version: declared_version(&source),
                    sha256: sha[..12].to_owned(),
                },
            );
            env.add_template_owned(id, source).map_err(|e| (id, e))?;
        }
        Ok(Templates { env, refs })
    }

    /// Each template's id, version and hash.
    pub fn refs(&self) -> impl Iterator<Item = &TemplateRef> {
        self.refs.values()
    }

    /// Renders a one-line template (a prompt): its lines are joined, a line starting with a
    /// comma onto the one before.
    pub fn render_line(
        &self,
        id: &str,
        context: minijinja::Value,
    ) -> Result<(String, TemplateRef), TemplateError> {
        let (text, reference) = self.render(id, context)?;
        let mut line = String::new();
        for part in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !line.is_empty() && !part.starts_with(',') && !part.starts_with(';') {
                line.push(' ');
            }
            line.push_str(part);
        }
        Ok((line, reference))
    }

    /// Renders template `id` with `context`; returns the text, trimmed, and the reference to
    /// record.
    pub fn render(
        &self,
        id: &str,
        context: minijinja::Value,
    ) -> Result<(String, TemplateRef), TemplateError> {
        let error = |source| TemplateError {
            id: id.to_owned(),
            source,
        };
        let template = self.env.get_template(id).map_err(error)?;
        let text = template.render(context).map_err(error)?;
        let reference = self.refs.get(id).cloned().ok_or_else(|| {
            error(minijinja::Error::new(
                minijinja::ErrorKind::TemplateNotFound,
                "not embedded",
            ))
        })?;
        Ok((text.trim().to_owned(), reference))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_declares_a_version_and_renders() {
        let templates = Templates::embedded();
        let prompts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        for (id, source) in SOURCES {
            assert!(
                templates.refs[id].version >= 1,
                "{id} has no version header"
            );
            let on_disk = std::fs::read_to_string(prompts.join(file(id))).unwrap();
            assert_eq!(&on_disk, source, "{id} is embedded from {}", file(id));
        }
        let (text, reference) = templates
            .render(
                "scene.negative",
                minijinja::context! { constraints => vec!["no text"] },
            )
            .unwrap();
        assert_eq!(text, "blurry, low quality, watermark, distorted, text");
        assert_eq!(reference.id, "scene.negative");
        assert_eq!(reference.sha256.len(), 12);
    }
}
