//! Stills and music beds from job APIs (Replicate, fal): the request in the shape the model
//! takes, the job run once per request, its output fetched at once and checked before
//! anything uses it (a picture of the asked orientation, decodable; WAV audio), and a chain
//! of image models for when one fails.

use super::fal::Fal;
use super::jobs::{Finished, JobJournal, Jobs, Waiting, download, output_urls};
use super::policy::{Caller, Policy, PolicyConfig, explain};
use super::replicate::Replicate;
use crate::error::ModelError;
use crate::traits::{ImageModel, MusicModel};
use crate::types::{GeneratedImage, GeneratedMusic, ImageRequest, ModelId, MusicRequest, Wasted};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The job APIs Montage speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobService {
    /// Replicate's predictions.
    Replicate,
    /// fal.ai's queue.
    Fal,
}

impl JobService {
    /// Its name in model ids and messages.
    pub fn name(self) -> &'static str {
        match self {
            JobService::Replicate => "replicate",
            JobService::Fal => "fal",
        }
    }
}

/// What a job-based model costs: by output, by billed compute second, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaPrices {
    /// US dollars per output (an image, a clip).
    pub per_output: f64,
    /// US dollars per second of compute the provider bills.
    pub per_second: f64,
    /// US dollars per second of video made (clip models are priced by their length).
    pub per_video_second: f64,
}

/// How to reach one model of a job API.
#[derive(Clone)]
pub struct JobModelConfig {
    /// Which API.
    pub service: JobService,
    /// The API's base (`https://api.replicate.com/v1`, `https://queue.fal.run`).
    pub base_url: String,
    /// The environment variable holding the key.
    pub key_variable: String,
    /// The key, when the variable is set.
    pub key: Option<String>,
    /// The model (`black-forest-labs/flux-schnell`, `owner/name:version`,
    /// `fal-ai/flux/schnell`).
    pub model: String,
    /// What it costs.
    pub prices: MediaPrices,
    /// Limits, timeouts, retries and breaker of each HTTP request.
    pub policy: PolicyConfig,
    /// How long to wait for a job.
    pub waiting: Waiting,
    /// Inputs set for every request, over Montage's (a model's own options).
    pub extra_input: Map<String, Value>,
    /// Where Replicate says a job finished, when Montage is reachable from it.
    pub webhook: Option<super::jobs::JobWebhook>,
}

impl std::fmt::Debug for JobModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobModelConfig")
            .field("service", &self.service)
            .field("base_url", &self.base_url)
            .field("key_variable", &self.key_variable)
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("model", &self.model)
            .finish()
    }
}

/// A model on a job API, with what its calls share.
pub(crate) struct JobModel {
    pub config: JobModelConfig,
    pub jobs: Jobs,
    http: reqwest::Client,
    downloads: Policy,
}

/// How long a submission may wait for its job to finish, where the API allows it.
#[derive(Clone, Copy)]
pub(crate) enum Answer {
    /// Within the request, for seconds-long jobs (a still).
    Soon,
    /// Later, by polling (a clip takes minutes).
    Later,
}

impl JobModel {
    pub fn connect(
        config: JobModelConfig,
        journal: Arc<dyn JobJournal>,
        answer: Answer,
    ) -> Result<JobModel, ModelError> {
        if config.key.is_none() {
            return Err(ModelError::Rejected(format!(
                "{} needs a key, and {} is not set",
                config.service.name(),
                config.key_variable
            )));
        }
        let http = super::openai::client(&config.policy)?;
        let api: Arc<dyn super::jobs::JobApi> = match config.service {
            JobService::Replicate => Arc::new(Replicate {
                base_url: config.base_url.clone(),
                key: config.key.clone(),
                http: http.clone(),
                policy: Policy::new(config.policy.clone()),
                // A still is seconds of work: most answer within one request, which must
                // end before the request's own timeout does.
                wait_seconds: match answer {
                    Answer::Soon => (config.policy.timeout.as_secs() * 2 / 3).min(60) as u32,
                    Answer::Later => 0,
                },
                webhook: config.webhook.as_ref().map(|w| w.url.clone()),
            }),
            JobService::Fal => Arc::new(Fal {
                base_url: config.base_url.clone(),
                key: config.key.clone(),
                http: http.clone(),
                policy: Policy::new(config.policy.clone()),
            }),
        };
        Ok(JobModel {
            jobs: Jobs {
                api,
                journal,
                waiting: config.waiting,
                model: ModelId::new(config.service.name(), config.model.clone()),
                wakeups: config.webhook.as_ref().map(|w| Arc::clone(&w.wakeups)),
            },
            downloads: Policy::new(config.policy.clone()),
            http,
            config,
        })
    }

    pub fn id(&self) -> ModelId {
        self.jobs.model.clone()
    }

    pub fn explain(&self, error: super::policy::CallError) -> ModelError {
        explain(
            &Caller {
                provider: self.config.service.name(),
                key_variable: &self.config.key_variable,
                base_url: &self.config.base_url,
                model: &self.config.model,
                timeout: self.config.policy.timeout,
            },
            error,
        )
    }

    /// `input` with the configured inputs over it.
    pub fn with_extra(&self, mut input: Value) -> Value {
        if let Value::Object(fields) = &mut input {
            for (key, value) in &self.config.extra_input {
                fields.insert(key.clone(), value.clone());
            }
        }
        input
    }

    /// What a finished job cost.
    pub fn cost(&self, finished: &Finished, outputs: usize) -> f64 {
        self.config.prices.per_output * outputs as f64
            + self.config.prices.per_second * finished.billed_seconds.unwrap_or(0.0)
    }

    /// The first output of a finished job, fetched.
    pub async fn first_output(&self, finished: &Finished) -> Result<Vec<u8>, ModelError> {
        let urls = output_urls(&finished.output);
        let url = urls.first().ok_or_else(|| {
            ModelError::InvalidOutput(format!("{}'s job finished without an output", self.id()))
        })?;
        if let Some(data) = url.strip_prefix("data:") {
            use base64::Engine;
            let (_, encoded) = data.split_once(";base64,").ok_or_else(|| {
                ModelError::InvalidOutput(format!(
                    "{} answered a data URI that is not base64",
                    self.id()
                ))
            })?;
            return base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| ModelError::InvalidOutput(format!("{}'s output: {e}", self.id())));
        }
        download(&self.http, &self.downloads, url)
            .await
            .map_err(super::jobs::output_unavailable)
    }
}

/// The aspect ratio a FLUX-style model is asked for.
fn aspect_ratio(width: u32, height: u32) -> &'static str {
    let ratio = width as f64 / height.max(1) as f64;
    [
        ("1:1", 1.0),
        ("16:9", 16.0 / 9.0),
        ("9:16", 9.0 / 16.0),
        ("4:3", 4.0 / 3.0),
        ("3:4", 3.0 / 4.0),
        ("21:9", 21.0 / 9.0),
        ("9:21", 9.0 / 21.0),
    ]
    .into_iter()
    .min_by(|a, b| (a.1 - ratio).abs().total_cmp(&(b.1 - ratio).abs()))
    .map_or("1:1", |(name, _)| name)
}

/// Whether two sizes are the same shape: both wide, both tall, or both square-ish.
pub(crate) fn same_orientation(asked: (u32, u32), got: (u32, u32)) -> bool {
    let shape = |(w, h): (u32, u32)| {
        let ratio = w as f64 / h.max(1) as f64;
        if ratio > 1.1 {
            1
        } else if ratio < 0.9 {
            -1
        } else {
            0
        }
    };
    shape(asked) == shape(got)
}

/// A still from a job API.
pub struct JobImage {
    model: JobModel,
}

impl std::fmt::Debug for JobImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobImage")
            .field("config", &self.model.config)
            .finish()
    }
}

impl JobImage {
    /// The model `config` names; jobs are written down in `journal`. Fails without a key.
    pub fn connect(
        config: JobModelConfig,
        journal: Arc<dyn JobJournal>,
    ) -> Result<JobImage, ModelError> {
        Ok(JobImage {
            model: JobModel::connect(config, journal, Answer::Soon)?,
        })
    }

    /// The request in the shape FLUX-style models take on this API.
    fn input(&self, request: &ImageRequest) -> Value {
        let input = match self.model.config.service {
            JobService::Replicate => json!({
                "prompt": request.prompt,
                "aspect_ratio": aspect_ratio(request.width, request.height),
                "seed": request.seed % (1 << 31),
                "num_outputs": 1,
                "output_format": "png",
            }),
            JobService::Fal => json!({
                "prompt": request.prompt,
                "image_size": { "width": request.width, "height": request.height },
                "seed": request.seed % (1 << 31),
                "num_images": 1,
                "output_format": "png",
            }),
        };
        let mut input = self.model.with_extra(input);
        // A model configured to take a negative prompt gets the scene's, when it has one.
        if !request.negative_prompt.is_empty()
            && self
                .model
                .config
                .extra_input
                .contains_key("negative_prompt")
            && let Value::Object(fields) = &mut input
        {
            fields.insert("negative_prompt".into(), json!(request.negative_prompt));
        }
        input
    }
}

#[async_trait]
impl ImageModel for JobImage {
    fn id(&self) -> ModelId {
        self.model.id()
    }

    fn price(&self) -> f64 {
        self.model.config.prices.per_output
    }

    async fn cancel(&self, job_key: &str) -> Result<bool, ModelError> {
        self.model
            .jobs
            .cancel(job_key, |error| self.model.explain(error))
            .await
    }

    async fn generate(&self, request: ImageRequest) -> Result<GeneratedImage, ModelError> {
        let input = self.input(&request);
        let estimate = self.model.config.prices.per_output;
        let finished = self
            .model
            .jobs
            .run(
                request.job_key.as_deref(),
                estimate,
                async { Ok(input) },
                |error| self.model.explain(error),
            )
            .await?;
        let cost_usd = self.model.cost(&finished, 1);
        // The job is done and paid for: whatever is wrong with its output, the ledger
        // counts it.
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
        let (png, size) = tokio::task::spawn_blocking(move || as_png(&bytes))
            .await
            .map_err(|_| ModelError::Unavailable("checking the picture stopped".into()))?
            .map_err(|why| {
                paid(ModelError::InvalidOutput(format!(
                    "{} made no usable picture: {why}",
                    self.id()
                )))
            })?;
        if !same_orientation((request.width, request.height), size) {
            return Err(paid(ModelError::InvalidOutput(format!(
                "{} made a {}x{} picture for a {}x{} scene",
                self.id(),
                size.0,
                size.1,
                request.width,
                request.height
            ))));
        }
        Ok(GeneratedImage {
            model: self.id(),
            bytes: png,
            media_type: "image/png".into(),
            cost_usd,
            notices: finished.notices,
            wasted: Vec::new(),
        })
    }
}

/// `bytes` decoded (PNG, JPEG or WebP) and written as PNG, with its size.
pub(crate) fn as_png(bytes: &[u8]) -> Result<(Vec<u8>, (u32, u32)), String> {
    let picture =
        image::load_from_memory(bytes).map_err(|e| format!("it does not decode ({e})"))?;
    let size = (picture.width(), picture.height());
    if size.0 < 64 || size.1 < 64 {
        return Err(format!("it is {}x{} pixels", size.0, size.1));
    }
    let mut png = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("it does not encode as PNG ({e})"))?;
    Ok((png, size))
}

/// A music bed from a job API: MusicGen on Replicate (`meta/musicgen:VERSION`), Stable Audio
/// on fal (`fal-ai/stable-audio`), or any model taking the same inputs. The bed is asked for
/// as WAV and checked; its beats are found by analysing it, like an upload's.
pub struct JobMusic {
    model: JobModel,
}

impl JobMusic {
    /// The model `config` names; jobs are written down in `journal`. Fails without a key.
    pub fn connect(
        config: JobModelConfig,
        journal: Arc<dyn JobJournal>,
    ) -> Result<JobMusic, ModelError> {
        Ok(JobMusic {
            model: JobModel::connect(config, journal, Answer::Soon)?,
        })
    }

    /// The request in the shape MusicGen (Replicate) or Stable Audio (fal) takes: the tempo
    /// goes into the words, which is how both are steered.
    fn input(&self, request: &MusicRequest) -> Value {
        let prompt = format!("{}, {:.0} bpm", request.prompt.trim(), request.bpm);
        let seconds = request.seconds.ceil().clamp(1.0, 300.0) as u64;
        let input = match self.model.config.service {
            JobService::Replicate => json!({
                "prompt": prompt,
                "duration": seconds,
                "model_version": "stereo-large",
                "output_format": "wav",
                "normalization_strategy": "loudness",
                "seed": request.seed % (1 << 31),
            }),
            JobService::Fal => json!({
                "prompt": prompt,
                "seconds_total": seconds,
                "seed": request.seed % (1 << 31),
            }),
        };
        self.model.with_extra(input)
    }
}

#[async_trait]
impl MusicModel for JobMusic {
    fn id(&self) -> ModelId {
        self.model.id()
    }

    async fn cancel(&self, job_key: &str) -> Result<bool, ModelError> {
        self.model
            .jobs
            .cancel(job_key, |error| self.model.explain(error))
            .await
    }

    async fn compose(&self, request: MusicRequest) -> Result<GeneratedMusic, ModelError> {
        let input = self.input(&request);
        let finished = self
            .model
            .jobs
            .run(
                request.job_key.as_deref(),
                self.model.config.prices.per_output,
                async { Ok(input) },
                |error| self.model.explain(error),
            )
            .await?;
        let wav = self.model.first_output(&finished).await?;
        let seconds = super::openai_media::wav_seconds(&wav).map_err(|why| {
            ModelError::InvalidOutput(format!("{} made no usable music: {why}", self.id()))
        })?;
        if seconds < 1.0 {
            return Err(ModelError::InvalidOutput(format!(
                "{} made {seconds:.1} s of music",
                self.id()
            )));
        }
        Ok(GeneratedMusic {
            model: self.id(),
            wav,
            beats: None,
            cost_usd: self.model.cost(&finished, 1),
        })
    }
}

/// Image models tried in order: when one fails, the next makes the picture, and the picture
/// says which did.
pub struct FallbackImage {
    chain: Vec<Arc<dyn ImageModel>>,
}

impl FallbackImage {
    /// The chain, first choice first; at least one model.
    pub fn new(chain: Vec<Arc<dyn ImageModel>>) -> Result<FallbackImage, ModelError> {
        if chain.is_empty() {
            return Err(ModelError::InvalidRequest(
                "a fallback chain needs at least one model".into(),
            ));
        }
        Ok(FallbackImage { chain })
    }
}

#[async_trait]
impl ImageModel for FallbackImage {
    fn id(&self) -> ModelId {
        self.chain[0].id()
    }

    /// The dearest of the chain's: any of them may be the one paid.
    fn price(&self) -> f64 {
        self.chain.iter().map(|m| m.price()).fold(0.0, f64::max)
    }

    fn stand_ins(&self) -> Option<&[Arc<dyn ImageModel>]> {
        Some(&self.chain)
    }

    /// Each model of the chain may be the one whose job runs.
    async fn cancel(&self, job_key: &str) -> Result<bool, ModelError> {
        let mut stopped = false;
        let mut failed = None;
        for model in &self.chain {
            match model.cancel(job_key).await {
                Ok(this) => stopped |= this,
                Err(error) => failed = failed.or(Some(error)),
            }
        }
        match failed {
            Some(error) if !stopped => Err(error),
            _ => Ok(stopped),
        }
    }

    async fn generate(&self, request: ImageRequest) -> Result<GeneratedImage, ModelError> {
        let mut notices = Vec::new();
        let mut wasted = Vec::new();
        let mut last = None;
        for (place, model) in self.chain.iter().enumerate() {
            match model.generate(request.clone()).await {
                Ok(mut made) => {
                    if place > 0 {
                        notices.push(format!("{} made it instead", made.model));
                    }
                    notices.append(&mut made.notices);
                    made.notices = notices;
                    wasted.append(&mut made.wasted);
                    made.wasted = wasted;
                    return Ok(made);
                }
                Err(error @ ModelError::InvalidRequest(_)) => return Err(error),
                Err(error) => {
                    tracing::warn!(model = %model.id(), %error, "an image model failed; trying the next");
                    notices.push(format!("{} failed: {error}", model.id()));
                    wasted.extend_from_slice(error.wasted());
                    last = Some(error);
                }
            }
        }
        let failure =
            last.unwrap_or_else(|| ModelError::Unavailable("no image model answered".into()));
        Err(ModelError::with_wasted(failure, wasted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_asks_for_its_aspect_ratio() {
        assert_eq!(aspect_ratio(1920, 1080), "16:9");
        assert_eq!(aspect_ratio(1080, 1920), "9:16");
        assert_eq!(aspect_ratio(1080, 1080), "1:1");
        assert!(same_orientation((1920, 1080), (1344, 768)));
        assert!(!same_orientation((1080, 1920), (1344, 768)));
        assert!(same_orientation((1080, 1080), (1024, 1024)));
    }
}
