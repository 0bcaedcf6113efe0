//! The critic on a vision model behind an OpenAI-compatible endpoint: each scene's first and
//! last frames, downscaled, as image parts beside what each scene was meant to show; the
//! answer is a list of issues in the critic's own schema, checked like any structured
//! answer.

use super::openai::OpenAiText;
use crate::error::ModelError;
use crate::traits::VisionModel;
use crate::types::{Critique, Issue, ModelId, VisionRequest};
use async_trait::async_trait;
use serde_json::{Value, json};

/// The longest side of a frame sent to the model: a 1080p PNG per frame costs tokens and
/// bandwidth and tells a critic nothing more.
const FRAME_SIDE: u32 = 512;

/// What the model answers.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Findings {
    /// Problems found, each for one scene (0-based).
    issues: Vec<Issue>,
}

/// A frame as a small JPEG data URI.
fn data_uri(encoded: &[u8]) -> Result<String, ModelError> {
    use base64::Engine;
    let picture = image::load_from_memory(encoded)
        .map_err(|e| ModelError::InvalidRequest(format!("a frame is not an image: {e}")))?;
    let small = picture.thumbnail(FRAME_SIDE, FRAME_SIDE).to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&small)
        .map_err(|e| ModelError::InvalidRequest(format!("a frame does not encode: {e}")))?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    ))
}

/// The user message: the instruction and, per scene, what it should show and its frames.
fn content(request: &VisionRequest) -> Result<Vec<Value>, ModelError> {
    let mut parts = vec![json!({
        "type": "text",
        "text": format!(
            "{}\nThe intended palette: {}. Report issues only where you see them; none is a fine answer.",
            request.instruction,
            request.palette.join(", ")
        ),
    })];
    for (index, scene) in request.scenes.iter().enumerate() {
        let about = if scene.generated {
            format!("Scene {index} was meant to show: {}", scene.prompt)
        } else {
            format!("Scene {index} is the person's own picture (it cannot be regenerated).")
        };
        parts.push(json!({ "type": "text", "text": about }));
        for frame in request.frames.iter().filter(|f| f.scene == index) {
            parts.push(json!({
                "type": "image_url",
                "image_url": { "url": data_uri(&frame.image)?, "detail": "low" },
            }));
        }
    }
    Ok(parts)
}

#[async_trait]
impl VisionModel for OpenAiText {
    fn id(&self) -> ModelId {
        crate::traits::TextModel::id(self)
    }

    async fn critique(&self, request: VisionRequest) -> Result<Critique, ModelError> {
        let owned = request.clone();
        let parts = tokio::task::spawn_blocking(move || content(&owned))
            .await
            .map_err(|_| ModelError::Unavailable("preparing the frames stopped".into()))??;
        let format = crate::types::JsonSchemaFormat::of::<Findings>("critique");
        let scenes = request.scenes.len();
        let (findings, response) = self
            .structured_parts::<Findings>(
                "You are the critic of a video's scenes: style drift, continuity across cuts, \
                 whether each picture shows what its prompt asked, artefacts, unwanted text.",
                parts,
                format,
            )
            .await?;
        // Issues about scenes the video does not have are the model's invention.
        let issues = findings
            .issues
            .into_iter()
            .filter(|issue| issue.scene < scenes)
            .collect();
        Ok(Critique {
            model: response.model,
            issues,
            cost_usd: response.cost_usd,
            usage: response.usage,
            notices: Vec::new(),
        })
    }
}
