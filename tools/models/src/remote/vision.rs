//! The critic on any text model that sees (an OpenAI-compatible one, or a vendor's): each
//! scene's first and last frames, downscaled, as pictures beside what each scene was meant
//! to show; the answer is a list of issues in the critic's own schema, checked like any
//! structured answer.

use crate::error::ModelError;
use crate::traits::{TextModel, VisionModel};
use crate::types::{
    Critique, FramePosition, Issue, Message, ModelId, Picture, TextRequest, VisionRequest,
};
use async_trait::async_trait;
use std::sync::Arc;

/// The longest side of a frame sent to the model: a 1080p PNG per frame costs tokens and
/// bandwidth and tells a critic nothing more.
const FRAME_SIDE: u32 = 512;

const SYSTEM: &str = "You are the critic of a video's scenes: style drift, continuity across \
cuts, whether each picture shows what its prompt asked, artefacts, unwanted text.";

/// What the model answers.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Findings {
    /// Problems found, each for one scene (0-based).
    issues: Vec<Issue>,
}

/// A text model that sees, as the critic.
pub struct SeeingCritic {
    model: Arc<dyn TextModel>,
}

impl SeeingCritic {
    /// The critic on `model`, which must take pictures (the endpoint refuses them otherwise,
    /// and the refusal is the critic's error).
    pub fn new(model: Arc<dyn TextModel>) -> SeeingCritic {
        SeeingCritic { model }
    }
}

/// A frame as a small JPEG, base64-encoded.
fn small_jpeg(encoded: &[u8]) -> Result<String, ModelError> {
    use base64::Engine;
    let picture = image::load_from_memory(encoded)
        .map_err(|e| ModelError::InvalidRequest(format!("a frame is not an image: {e}")))?;
    let small = picture.thumbnail(FRAME_SIDE, FRAME_SIDE).to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&small)
        .map_err(|e| ModelError::InvalidRequest(format!("a frame does not encode: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(jpeg))
}

/// The question: the instruction, then per scene what it should show and its frames.
fn question(request: &VisionRequest) -> Result<Message, ModelError> {
    let mut message = Message::user(format!(
        "{}\nThe intended palette: {}. Report issues only where you see them; none is a fine answer.",
        request.instruction,
        request.palette.join(", ")
    ));
    for (index, scene) in request.scenes.iter().enumerate() {
        let about = if scene.generated {
            format!("Scene {index} was meant to show: {}.", scene.prompt)
        } else {
            format!("Scene {index} is the person's own picture (it cannot be regenerated).")
        };
        for frame in request.frames.iter().filter(|f| f.scene == index) {
            let which = match frame.position {
                FramePosition::First => "first",
                FramePosition::Last => "last",
            };
            message.pictures.push(Picture {
                caption: format!("{about} Its {which} frame:"),
                jpeg_base64: small_jpeg(&frame.image)?,
            });
        }
    }
    Ok(message)
}

#[async_trait]
impl VisionModel for SeeingCritic {
    fn id(&self) -> ModelId {
        self.model.id()
    }

    async fn critique(&self, request: VisionRequest) -> Result<Critique, ModelError> {
        let owned = request.clone();
        let asked = tokio::task::spawn_blocking(move || question(&owned))
            .await
            .map_err(|_| ModelError::Unavailable("preparing the frames stopped".into()))??;
        let scenes = request.scenes.len();
        let (findings, response) = crate::traits::structured::<Findings>(
            self.model.as_ref(),
            "critique",
            TextRequest {
                messages: vec![Message::system(SYSTEM), asked],
                temperature: Some(0.0),
                ..TextRequest::default()
            },
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
            notices: response.notices,
            wasted: response.wasted,
        })
    }
}
