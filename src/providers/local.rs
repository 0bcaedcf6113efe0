//! The critics and the music bed Montage has offline (they build on the critic and audio
//! tools), and a vision model's findings merged with the frame metrics.

use async_trait::async_trait;
use montage_models::local::palette;
use montage_models::remote::SeeingCritic;
use montage_models::{
    Critique, FramePosition, GeneratedMusic, Issue, IssueKind, ModelError, ModelId, MusicModel,
    MusicRequest, Severity, SuggestedFix, VisionModel, VisionRequest,
};

/// A vision model's findings beside the frame metrics'. When the model fails, the metrics'
/// stand alone and the run is told.
pub struct MergedVision {
    pub(super) remote: SeeingCritic,
}

#[async_trait]
impl VisionModel for MergedVision {
    fn id(&self) -> ModelId {
        self.remote.id()
    }

    async fn critique(&self, request: VisionRequest) -> Result<Critique, ModelError> {
        let mut measured = LocalVision.critique(request.clone()).await?;
        match self.remote.critique(request).await {
            Ok(seen) => {
                for issue in seen.issues {
                    let known = measured
                        .issues
                        .iter()
                        .any(|m| m.scene == issue.scene && m.kind == issue.kind);
                    if !known {
                        measured.issues.push(issue);
                    }
                }
                measured.issues.sort_by_key(|i| i.scene);
                measured.model = seen.model;
                measured.cost_usd += seen.cost_usd;
                measured.usage = seen.usage;
                measured.wasted = seen.wasted;
                measured.notices.extend(seen.notices);
            }
            Err(error) => {
                tracing::warn!(%error, "the vision model failed; the frame metrics stand alone");
                measured.notices.push(format!(
                    "{} failed ({error}); the critic used the frame metrics alone",
                    self.remote.id()
                ));
                measured.wasted = error.wasted().to_vec();
            }
        }
        Ok(measured)
    }
}

/// The local music bed: drums, bass and chords synthesised at the asked tempo, with known beats.
#[derive(Debug, Clone, Default)]
pub struct LocalMusic;

#[async_trait]
impl MusicModel for LocalMusic {
    fn id(&self) -> ModelId {
        ModelId::new("local", "synth-bed-1")
    }

    async fn compose(&self, request: MusicRequest) -> Result<GeneratedMusic, ModelError> {
        if !(40.0..=220.0).contains(&request.bpm) || !(1.0..=900.0).contains(&request.seconds) {
            return Err(ModelError::InvalidRequest(format!(
                "music at {} BPM for {} s is out of range",
                request.bpm, request.seconds
            )));
        }
        let model = self.id();
        tokio::task::spawn_blocking(move || {
            let mut spec = montage_audio::synth::TrackSpec::steady(request.bpm, request.seconds);
            spec.meter = if request.meter == 3 { 3 } else { 4 };
            spec.sample_rate = 44_100;
            spec.seed = request.seed;
            let track = montage_audio::synth::render(&spec);
            let file = tempfile::Builder::new().suffix(".wav").tempfile()?;
            track
                .write_wav(file.path())
                .map_err(|e| ModelError::InvalidOutput(format!("writing the music: {e}")))?;
            Ok(GeneratedMusic {
                model,
                wav: std::fs::read(file.path())?,
                beats: Some(track.beats),
                cost_usd: 0.0,
            })
        })
        .await
        .map_err(|e| ModelError::Unavailable(format!("the synthesiser stopped: {e}")))?
    }
}

/// The local critic: montage-critic's frame metrics behind the vision interface.
#[derive(Debug, Clone, Default)]
pub struct LocalVision;

#[async_trait]
impl VisionModel for LocalVision {
    fn id(&self) -> ModelId {
        ModelId::new("local", "frame-metrics-1")
    }

    async fn critique(&self, request: VisionRequest) -> Result<Critique, ModelError> {
        let model = self.id();
        tokio::task::spawn_blocking(move || {
            let decode = |bytes: &[u8]| {
                image::load_from_memory(bytes)
                    .map(|i| i.to_rgb8())
                    .map_err(|e| {
                        ModelError::InvalidRequest(format!("a frame is not an image: {e}"))
                    })
            };
            let mut scenes = Vec::with_capacity(request.scenes.len());
            for (index, brief) in request.scenes.iter().enumerate() {
                let frame = |position| {
                    request
                        .frames
                        .iter()
                        .find(|f| f.scene == index && f.position == position)
                        .ok_or_else(|| {
                            ModelError::InvalidRequest(format!(
                                "scene {} has no {position:?} frame",
                                index + 1
                            ))
                        })
                };
                scenes.push(montage_critic::SceneFrames {
                    first: decode(&frame(FramePosition::First)?.image)?,
                    last: decode(&frame(FramePosition::Last)?.image)?,
                    generated: brief.generated,
                    soft_cut_after: brief.soft_cut_after,
                });
            }
            let palette: Vec<[u8; 3]> = request
                .palette
                .iter()
                .filter_map(|c| palette::parse_hex(c))
                .collect();
            let review =
                montage_critic::review(&scenes, &palette, &montage_critic::Thresholds::default());
            Ok(Critique {
                model,
                issues: review.issues.into_iter().map(issue).collect(),
                cost_usd: 0.0,
                usage: Default::default(),
                notices: Vec::new(),
                wasted: Vec::new(),
            })
        })
        .await
        .map_err(|e| ModelError::Unavailable(format!("the critic stopped: {e}")))?
    }
}

fn issue(found: montage_critic::Issue) -> Issue {
    use montage_critic::{Fix, IssueKind as Kind, Severity as Level};
    Issue {
        scene: found.scene,
        kind: match found.kind {
            Kind::Continuity => IssueKind::Continuity,
            Kind::PaletteDrift => IssueKind::PaletteDrift,
            Kind::Duplicate => IssueKind::Duplicate,
            Kind::Blank => IssueKind::Blank,
        },
        severity: match found.severity {
            Level::Low => Severity::Low,
            Level::Medium => Severity::Medium,
            Level::High => Severity::High,
        },
        message: found.message,
        fix: match found.fix {
            Fix::Regenerate { instruction } => SuggestedFix::Regenerate { instruction },
            Fix::Crossfade => SuggestedFix::Crossfade,
            Fix::Keep => SuggestedFix::Keep,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OpenAiSettings;
    use crate::providers::openai_config;
    use montage_models::remote::openai::OpenAiText;
    use montage_models::{FramePosition, SceneBrief, VisionFrame};
    use std::sync::Arc;

    fn frame(rgb: [u8; 3]) -> Vec<u8> {
        let picture = image::RgbImage::from_pixel(64, 36, image::Rgb(rgb));
        let mut bytes = Vec::new();
        picture
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        bytes
    }

    #[tokio::test]
    async fn the_frame_metrics_stand_alone_when_the_vision_model_fails_and_say_so() {
        let mut settings = OpenAiSettings {
            base_url: Some("http://127.0.0.1:9/v1".into()),
            model: Some("gpt-4.1-mini".into()),
            ..OpenAiSettings::default()
        };
        settings.timeout_secs = 2;
        let vision = MergedVision {
            remote: SeeingCritic::new(Arc::new(
                OpenAiText::connect(openai_config(&settings, None))
                    .await
                    .unwrap(),
            )),
        };
        let mut frames = Vec::new();
        for (scene, rgb) in [[250, 250, 250], [5, 5, 5]].into_iter().enumerate() {
            for position in [FramePosition::First, FramePosition::Last] {
                frames.push(VisionFrame {
                    scene,
                    position,
                    image: frame(rgb),
                });
            }
        }
        let brief = || SceneBrief {
            prompt: "a bright beach".into(),
            generated: true,
            soft_cut_after: false,
        };
        let critique = vision
            .critique(VisionRequest {
                instruction: "Find what is wrong.".into(),
                scenes: vec![brief(), brief()],
                palette: vec!["#ffb000".into()],
                frames,
            })
            .await
            .unwrap();
        assert_eq!(critique.model, LocalVision.id());
        assert!(
            !critique.issues.is_empty(),
            "the metrics found the jump to black"
        );
        assert!(
            critique.notices[0].contains("openai/gpt-4.1-mini failed")
                && critique.notices[0].contains("frame metrics alone"),
            "{:?}",
            critique.notices
        );
    }
}
