//! The prompt templates of `prompts/`, embedded in the binary. Each starts with a
//! `{#- version: N -#}` header; a run records the id, that version and a hash of the text,
//! so any change to a template shows in the run record.

use super::state::TemplateRef;
use minijinja::Environment;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

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

impl Templates {
    /// The embedded templates.
    pub fn embedded() -> Templates {
        let mut env = Environment::new();
        let mut refs = BTreeMap::new();
        for (id, source) in SOURCES {
            env.add_template(id, source)
                .unwrap_or_else(|e| panic!("embedded template {id} does not parse: {e}"));
            let sha = hex::encode(Sha256::digest(source.as_bytes()));
            refs.insert(
                *id,
                TemplateRef {
                    id: (*id).to_owned(),
                    version: declared_version(source),
                    sha256: sha[..12].to_owned(),
                },
            );
        }
        Templates { env, refs }
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
        for (id, _) in SOURCES {
            assert!(
                templates.refs[id].version >= 1,
                "{id} has no version header"
            );
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
