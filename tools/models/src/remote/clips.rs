//! Image-to-video clips from job APIs (Replicate, fal): the scene's still handed over as the
//! clip's first frame (uploaded to Replicate's file store, a data URI on fal), the clip made
//! at the model's nearest length at or above the scene's, fetched at once and checked to be
//! an MP4. Each family of models takes its inputs under its own names and types (see
//! docs/media-apis.md): Kling and Hailuo take no seed; Kling and LTX take a negative prompt.
//! LTX on Replicate is published by version (`lightricks/ltx-video:VERSION`) and answers a
//! list of URLs, which the output reader takes as it takes any.

use super::jobs::JobJournal;
use super::media::{Answer, JobModel, JobModelConfig, JobService};
use crate::error::ModelError;
use crate::traits::{ClipModel, clip_length};
use crate::types::{ClipRequest, GeneratedClip, ModelId, Wasted};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

/// The families of image-to-video models Montage knows the inputs of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipFamily {
    /// Kling (Kuaishou): 5 or 10 s from a start image.
    Kling,
    /// Hailuo (MiniMax): 6 or 10 s from a first frame.
    Hailuo,
    /// Seedance (ByteDance): 2 to 12 s from an image.
    Seedance,
    /// Wan (Alibaba): 81 frames at 16 fps from an image.
    Wan,
    /// LTX Video (Lightricks): 97 to 257 frames at 24 fps from an image.
    Ltx,
}

/// Wan's clip: 81 frames at 16 frames a second.
const WAN_FRAMES: u32 = 81;
const WAN_FPS: u32 = 16;
/// The frame counts LTX makes (Replicate's `length`), at 24 frames a second.
const LTX_FRAMES: [u32; 6] = [97, 129, 161, 193, 225, 257];
const LTX_FPS: u32 = 24;

impl ClipFamily {
    /// The family of `model` (a Replicate `owner/name` or a fal app path), from its name.
    pub fn of(model: &str) -> Option<ClipFamily> {
        let name = model.to_ascii_lowercase();
        [
            ("kling", ClipFamily::Kling),
            ("hailuo", ClipFamily::Hailuo),
            ("minimax", ClipFamily::Hailuo),
            ("seedance", ClipFamily::Seedance),
            ("wan-", ClipFamily::Wan),
            ("/wan", ClipFamily::Wan),
            ("ltx", ClipFamily::Ltx),
        ]
        .into_iter()
        .find(|(word, _)| name.contains(word))
        .map(|(_, family)| family)
    }

    /// The lengths it makes, in seconds, shortest first.
    pub fn lengths(self) -> Vec<f64> {
        match self {
            ClipFamily::Kling => vec![5.0, 10.0],
            ClipFamily::Seedance => (2..=12).map(f64::from).collect(),
            ClipFamily::Hailuo => vec![6.0, 10.0],
            ClipFamily::Wan => vec![f64::from(WAN_FRAMES) / f64::from(WAN_FPS)],
            ClipFamily::Ltx => LTX_FRAMES
                .iter()
                .map(|&frames| f64::from(frames) / f64::from(LTX_FPS))
                .collect(),
        }
    }

    /// The request in the family's inputs on `service`, starting from the picture at
    /// `image`, `seconds` long (one of [`lengths`](Self::lengths)).
    fn input(self, service: JobService, request: &ClipRequest, image: &str, seconds: f64) -> Value {
        let whole = seconds.round() as u64;
        // fal's durations are strings ("5"), Replicate's integers.
        let duration = match service {
            JobService::Replicate => json!(whole),
            JobService::Fal => json!(whole.to_string()),
        };
        let image_field = match (service, self) {
            (JobService::Fal, _) => "image_url",
            (JobService::Replicate, ClipFamily::Kling) => "start_image",
            (JobService::Replicate, ClipFamily::Hailuo) => "first_frame_image",
            (JobService::Replicate, ClipFamily::Seedance | ClipFamily::Wan | ClipFamily::Ltx) => {
                "image"
            }
        };
        let seed = request.seed % (1 << 31);
        let mut input = match self {
            ClipFamily::Kling => json!({
                "prompt": request.prompt,
                "duration": duration,
                "negative_prompt": request.negative_prompt,
            }),
            ClipFamily::Hailuo => {
                let mut input = json!({
                    "prompt": request.prompt,
                    "duration": duration,
                    // Montage's prompts are written for the shot already.
                    "prompt_optimizer": false,
                });
                // Replicate's default, 1080p, makes no 10 s clips.
                if service == JobService::Replicate {
                    input["resolution"] = json!("768p");
                }
                input
            }
            ClipFamily::Seedance => json!({
                "prompt": request.prompt,
                "duration": duration,
                "resolution": "720p",
                "seed": seed,
            }),
            ClipFamily::Wan => json!({
                "prompt": request.prompt,
                "num_frames": WAN_FRAMES,
                "frames_per_second": WAN_FPS,
                "resolution": "720p",
                "seed": seed,
            }),
            ClipFamily::Ltx => {
                let frames = (seconds * f64::from(LTX_FPS)).round() as u32;
                let mut input = json!({
                    "prompt": request.prompt,
                    "negative_prompt": request.negative_prompt,
                    "seed": seed,
                });
                match service {
                    JobService::Replicate => input["length"] = json!(frames),
                    JobService::Fal => {
                        input["num_frames"] = json!(frames);
                        input["frame_rate"] = json!(LTX_FPS);
                    }
                }
                input
            }
        };
        input[image_field] = json!(image);
        input
    }
}

/// A clip model on a job API.
pub struct JobClip {
    model: JobModel,
    family: ClipFamily,
}

impl std::fmt::Debug for JobClip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobClip")
            .field("config", &self.model.config)
            .field("family", &self.family)
            .finish()
    }
}

impl JobClip {
    /// The model `config` names; jobs are written down in `journal`. Fails without a key, or
    /// for a model of no family Montage knows the inputs of.
    pub fn connect(
        config: JobModelConfig,
        journal: Arc<dyn JobJournal>,
    ) -> Result<JobClip, ModelError> {
        let family = ClipFamily::of(&config.model).ok_or_else(|| {
            ModelError::InvalidRequest(format!(
                "Montage does not know the inputs of the clip model {}: name a Kling, Hailuo (MiniMax), Seedance, Wan or LTX image-to-video model",
                config.model
            ))
        })?;
        Ok(JobClip {
            model: JobModel::connect(config, journal, Answer::Later)?,
            family,
        })
    }
}

/// A still as a JPEG: a tenth of a PNG's weight, which matters in an upload or a data URI.
fn as_jpeg(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let picture =
        image::load_from_memory(bytes).map_err(|e| format!("it does not decode ({e})"))?;
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&picture.to_rgb8())
        .map_err(|e| format!("it does not encode as JPEG ({e})"))?;
    Ok(jpeg)
}

/// Whether `bytes` are an MP4 (an ISO media file, whose first box is `ftyp`).
fn is_mp4(bytes: &[u8]) -> bool {
    bytes.len() > 12 && &bytes[4..8] == b"ftyp"
}

#[async_trait]
impl ClipModel for JobClip {
    fn id(&self) -> ModelId {
        self.model.id()
    }

    fn lengths(&self) -> Vec<f64> {
        self.family.lengths()
    }

    fn price(&self, seconds: f64) -> f64 {
        let prices = self.model.config.prices;
        prices.per_output + prices.per_video_second * seconds
    }

    async fn cancel(&self, job_key: &str) -> Result<bool, ModelError> {
        self.model
            .jobs
            .cancel(job_key, |error| self.model.explain(error))
            .await
    }

    async fn generate(&self, request: ClipRequest) -> Result<GeneratedClip, ModelError> {
        let seconds = clip_length(&self.family.lengths(), request.seconds).ok_or_else(|| {
            ModelError::InvalidRequest(format!(
                "{} makes clips of at most {:.0} s, and the scene is {:.1} s",
                self.id(),
                self.family.lengths().last().copied().unwrap_or(0.0),
                request.seconds
            ))
        })?;
        if request.start_frame.is_empty() {
            return Err(ModelError::InvalidRequest(
                "a clip needs the still it starts from".into(),
            ));
        }
        let input = async {
            let still = request.start_frame.clone();
            let jpeg = tokio::task::spawn_blocking(move || as_jpeg(&still))
                .await
                .map_err(|_| ModelError::Unavailable("encoding the still stopped".into()))?
                .map_err(|why| {
                    ModelError::InvalidRequest(format!("the still a clip starts from: {why}"))
                })?;
            let image = self
                .model
                .jobs
                .api
                .file_input(jpeg, "image/jpeg")
                .await
                .map_err(|error| self.model.explain(error))?;
            Ok(self.model.with_extra(self.family.input(
                self.model.config.service,
                &request,
                &image,
                seconds,
            )))
        };
        let finished = self
            .model
            .jobs
            .run(
                request.job_key.as_deref(),
                self.price(seconds),
                input,
                |error| self.model.explain(error),
            )
            .await?;
        let cost_usd =
            self.model.cost(&finished, 1) + self.model.config.prices.per_video_second * seconds;
        let paid = |failure| {
            ModelError::with_wasted(
                failure,
                vec![Wasted {
                    model: self.id(),
                    usage: Default::default(),
                    cost_usd,
                }],
            )
        };
        let bytes = self.model.first_output(&finished).await.map_err(paid)?;
        if !is_mp4(&bytes) {
            return Err(paid(ModelError::InvalidOutput(format!(
                "{} made no MP4 ({} bytes of something else)",
                self.id(),
                bytes.len()
            ))));
        }
        Ok(GeneratedClip {
            model: self.id(),
            bytes,
            seconds,
            cost_usd,
            notices: finished.notices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ClipRequest {
        ClipRequest {
            prompt: "a lighthouse, waves rolling in".into(),
            negative_prompt: "text, watermark".into(),
            seconds: 3.2,
            width: 1080,
            height: 1920,
            seed: 42,
            start_frame_id: "abc".into(),
            start_frame: vec![1, 2, 3],
            job_key: None,
        }
    }

    #[test]
    fn each_model_is_known_by_its_family() {
        assert_eq!(
            ClipFamily::of("kwaivgi/kling-v2.1"),
            Some(ClipFamily::Kling)
        );
        assert_eq!(
            ClipFamily::of("fal-ai/kling-video/v2.1/standard/image-to-video"),
            Some(ClipFamily::Kling)
        );
        assert_eq!(
            ClipFamily::of("minimax/hailuo-02"),
            Some(ClipFamily::Hailuo)
        );
        assert_eq!(
            ClipFamily::of("fal-ai/bytedance/seedance/v1/lite/image-to-video"),
            Some(ClipFamily::Seedance)
        );
        assert_eq!(
            ClipFamily::of("wan-video/wan-2.2-i2v-fast"),
            Some(ClipFamily::Wan)
        );
        assert_eq!(
            ClipFamily::of("fal-ai/wan/v2.2-a14b/image-to-video"),
            Some(ClipFamily::Wan)
        );
        assert_eq!(
            ClipFamily::of(
                "lightricks/ltx-video:8c47da666861d081eeb4d1261853087de23923a268a69b63febdf5dc1dee08e4"
            ),
            Some(ClipFamily::Ltx)
        );
        assert_eq!(ClipFamily::of("black-forest-labs/flux-schnell"), None);
    }

    #[test]
    fn a_clip_is_made_at_the_nearest_length_that_covers_the_scene() {
        assert_eq!(clip_length(&ClipFamily::Kling.lengths(), 3.2), Some(5.0));
        assert_eq!(clip_length(&ClipFamily::Kling.lengths(), 5.0), Some(5.0));
        assert_eq!(clip_length(&ClipFamily::Kling.lengths(), 5.3), Some(10.0));
        assert_eq!(clip_length(&ClipFamily::Hailuo.lengths(), 5.3), Some(6.0));
        assert_eq!(clip_length(&ClipFamily::Seedance.lengths(), 3.2), Some(4.0));
        assert_eq!(clip_length(&ClipFamily::Kling.lengths(), 10.5), None);
        assert_eq!(clip_length(&ClipFamily::Wan.lengths(), 5.0), Some(5.0625));
        assert_eq!(
            clip_length(&ClipFamily::Ltx.lengths(), 4.5),
            Some(129.0 / 24.0)
        );
    }

    #[test]
    fn each_family_takes_the_picture_and_length_under_its_own_names() {
        let image = "https://api.replicate.com/v1/files/f1";
        let kling = ClipFamily::Kling.input(JobService::Replicate, &request(), image, 5.0);
        assert_eq!(kling["start_image"], image);
        assert_eq!(kling["duration"], 5);
        assert_eq!(kling["negative_prompt"], "text, watermark");
        let hailuo = ClipFamily::Hailuo.input(JobService::Replicate, &request(), image, 6.0);
        assert_eq!(hailuo["first_frame_image"], image);
        assert_eq!(hailuo["duration"], 6);
        assert_eq!(hailuo["resolution"], "768p");
        assert!(hailuo.get("seed").is_none() && hailuo.get("negative_prompt").is_none());
        let seedance = ClipFamily::Seedance.input(JobService::Fal, &request(), image, 4.0);
        assert_eq!(
            (
                seedance["image_url"].as_str(),
                seedance["duration"].as_str()
            ),
            (Some(image), Some("4"))
        );
        assert_eq!(seedance["seed"], 42);
        let on_fal = ClipFamily::Kling.input(
            JobService::Fal,
            &request(),
            "data:image/jpeg;base64,AA",
            10.0,
        );
        assert_eq!(on_fal["image_url"], "data:image/jpeg;base64,AA");
        assert_eq!(on_fal["duration"], "10");
        let wan = ClipFamily::Wan.input(JobService::Replicate, &request(), image, 5.0625);
        assert_eq!(
            (
                wan["num_frames"].as_u64(),
                wan["frames_per_second"].as_u64()
            ),
            (Some(81), Some(16))
        );
        assert_eq!(wan["image"], image);
        assert!(wan.get("duration").is_none());
        let ltx = ClipFamily::Ltx.input(JobService::Replicate, &request(), image, 161.0 / 24.0);
        assert_eq!(
            (ltx["length"].as_u64(), ltx["image"].as_str()),
            (Some(161), Some(image))
        );
        let ltx = ClipFamily::Ltx.input(JobService::Fal, &request(), image, 97.0 / 24.0);
        assert_eq!(
            (ltx["num_frames"].as_u64(), ltx["frame_rate"].as_u64()),
            (Some(97), Some(24))
        );
    }

    #[test]
    fn only_an_mp4_is_taken_as_a_clip() {
        assert!(is_mp4(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2"));
        assert!(!is_mp4(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"));
        assert!(!is_mp4(b"<html>"));
    }
}
