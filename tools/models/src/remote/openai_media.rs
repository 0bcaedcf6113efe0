//! Stills and speech from an OpenAI-compatible endpoint: `/images/generations` (GPT image
//! models, which answer base64 only) and `/audio/speech` (asked for WAV). Requests are built with async-openai's types; what comes back is checked before
//! anything uses it.

use super::media::{MediaPrices, as_png, same_orientation};
use super::openai::client;
use super::policy::{CallError, Caller, Failure, Policy, PolicyConfig, explain};
use crate::error::ModelError;
use crate::traits::{ImageModel, SpeechModel};
use crate::types::{GeneratedImage, ImageRequest, ModelId, Speech, SpeechRequest};
use async_openai::types::audio::{
    CreateSpeechRequest, SpeechModel as WireSpeechModel, SpeechResponseFormat, Voice,
};
use async_openai::types::images::{
    CreateImageRequest, Image, ImageModel as WireImageModel, ImageSize, ImagesResponse,
};
use async_trait::async_trait;
use serde_json::Value;

/// How to reach one media model of an OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct OpenAiMediaConfig {
    /// The provider's name in model ids and messages.
    pub provider: String,
    /// The API's base, up to and including `/v1`.
    pub base_url: String,
    /// The environment variable holding the key.
    pub key_variable: String,
    /// The key, when the variable is set.
    pub key: Option<String>,
    /// The model (`gpt-image-1`; `gpt-4o-mini-tts`, `tts-1`).
    pub model: String,
    /// Limits, timeouts, retries and breaker.
    pub policy: PolicyConfig,
}

impl std::fmt::Debug for OpenAiMediaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiMediaConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("key_variable", &self.key_variable)
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("model", &self.model)
            .finish()
    }
}

/// One endpoint's media model, with what its calls share.
struct Endpoint {
    config: OpenAiMediaConfig,
    http: reqwest::Client,
    policy: Policy,
}

impl Endpoint {
    fn new(config: OpenAiMediaConfig) -> Result<Endpoint, ModelError> {
        Ok(Endpoint {
            http: client(&config.policy)?,
            policy: Policy::new(config.policy.clone()),
            config,
        })
    }

    fn id(&self) -> ModelId {
        ModelId::new(&self.config.provider, &self.config.model)
    }

    fn explain(&self, error: CallError) -> ModelError {
        explain(
            &Caller {
                provider: &self.config.provider,
                key_variable: &self.config.key_variable,
                base_url: &self.config.base_url,
                model: &self.config.model,
                timeout: self.config.policy.timeout,
            },
            error,
        )
    }

    /// POSTs `body` to `path` (once: images and speech are paid for, so only a request the
    /// endpoint surely never took is tried again) and hands back the answer's bytes.
    async fn post(&self, path: &str, body: &Value) -> Result<Vec<u8>, ModelError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        self.policy
            .call_unrepeated(|| async {
                let mut request = self.http.post(&url).json(body);
                if let Some(key) = &self.config.key {
                    request = request.bearer_auth(key);
                }
                let never = super::jobs::Repeat::Never;
                let response = request
                    .send()
                    .await
                    .map_err(|e| super::jobs::transport(e, never))?;
                let status = response.status();
                let after = super::policy::retry_after(response.headers());
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| super::jobs::transport(e, never))?;
                if status.is_success() {
                    return Ok(bytes.to_vec());
                }
                Err(Failure::Status {
                    status: status.as_u16(),
                    message: super::jobs::words_of(&String::from_utf8_lossy(&bytes)),
                    retry_after: after,
                })
            })
            .await
            .map_err(|error| super::jobs::unrepeated_failure(error, |e| self.explain(e)))
    }
}

/// Stills from `/images/generations`.
pub struct OpenAiImage {
    endpoint: Endpoint,
    prices: MediaPrices,
}

impl OpenAiImage {
    /// The model `config` names, at `prices`.
    pub fn new(config: OpenAiMediaConfig, prices: MediaPrices) -> Result<OpenAiImage, ModelError> {
        Ok(OpenAiImage {
            endpoint: Endpoint::new(config)?,
            prices,
        })
    }

    /// The size GPT image models make closest to the scene's shape.
    fn size(&self, request: &ImageRequest) -> ImageSize {
        let (width, height) = (f64::from(request.width), f64::from(request.height));
        if width > height * 1.1 {
            ImageSize::S1536x1024
        } else if height > width * 1.1 {
            ImageSize::S1024x1536
        } else {
            ImageSize::S1024x1024
        }
    }
}

#[async_trait]
impl ImageModel for OpenAiImage {
    fn id(&self) -> ModelId {
        self.endpoint.id()
    }

    fn price(&self) -> f64 {
        self.prices.per_output
    }

    async fn generate(&self, request: ImageRequest) -> Result<GeneratedImage, ModelError> {
        let model = &self.endpoint.config.model;
        let wire = CreateImageRequest {
            prompt: request.prompt.clone(),
            model: WireImageModel::Other(model.clone()),
            n: Some(1),
            size: Some(self.size(&request)),
            ..CreateImageRequest::default()
        };
        let body = serde_json::to_value(&wire)
            .map_err(|e| ModelError::InvalidRequest(format!("the image request: {e}")))?;
        let answer = self.endpoint.post("/images/generations", &body).await?;
        let answer: ImagesResponse = serde_json::from_slice(&answer).map_err(|e| {
            ModelError::InvalidOutput(format!("{} answered no image list: {e}", self.id()))
        })?;
        let bytes = match answer.data.first().map(|image| image.as_ref()) {
            Some(Image::B64Json { b64_json, .. }) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b64_json.trim())
                    .map_err(|e| {
                        ModelError::InvalidOutput(format!(
                            "{} answered an image that is not base64 ({e})",
                            self.id()
                        ))
                    })?
            }
            // Compatible endpoints may answer a link instead, as DALL·E did.
            Some(Image::Url { url, .. }) => {
                super::jobs::download(&self.endpoint.http, &self.endpoint.policy, url)
                    .await
                    .map_err(super::jobs::output_unavailable)?
            }
            None => {
                return Err(ModelError::InvalidOutput(format!(
                    "{} answered no image",
                    self.id()
                )));
            }
        };
        let id = self.id();
        let (png, size) = tokio::task::spawn_blocking(move || as_png(&bytes))
            .await
            .map_err(|_| ModelError::Unavailable("checking the picture stopped".into()))?
            .map_err(|why| {
                ModelError::InvalidOutput(format!("{id} made no usable picture: {why}"))
            })?;
        if !same_orientation((request.width, request.height), size) {
            return Err(ModelError::InvalidOutput(format!(
                "{} made a {}x{} picture for a {}x{} scene",
                self.id(),
                size.0,
                size.1,
                request.width,
                request.height
            )));
        }
        Ok(GeneratedImage {
            model: self.id(),
            bytes: png,
            media_type: "image/png".into(),
            cost_usd: self.prices.per_output,
            notices: Vec::new(),
            wasted: Vec::new(),
        })
    }
}

/// Speech from `/audio/speech`, as WAV.
pub struct OpenAiSpeech {
    endpoint: Endpoint,
    voice: String,
    /// US dollars per million characters spoken.
    per_million_characters: f64,
}

impl OpenAiSpeech {
    /// The model `config` names, speaking in `voice` (`alloy`, `nova`, …) at a price per
    /// million characters.
    pub fn new(
        config: OpenAiMediaConfig,
        voice: String,
        per_million_characters: f64,
    ) -> Result<OpenAiSpeech, ModelError> {
        Ok(OpenAiSpeech {
            endpoint: Endpoint::new(config)?,
            voice,
            per_million_characters,
        })
    }
}

#[async_trait]
impl SpeechModel for OpenAiSpeech {
    fn id(&self) -> ModelId {
        self.endpoint.id()
    }

    fn price(&self, text: &str) -> f64 {
        text.chars().count() as f64 * self.per_million_characters / 1e6
    }

    async fn speak(&self, request: SpeechRequest) -> Result<Speech, ModelError> {
        if request.text.trim().is_empty() {
            return Err(ModelError::InvalidRequest("there is nothing to say".into()));
        }
        let voice = match request.voice.as_str() {
            "" => self.voice.clone(),
            chosen => chosen.to_owned(),
        };
        let wire = CreateSpeechRequest {
            input: request.text.clone(),
            model: WireSpeechModel::Other(self.endpoint.config.model.clone()),
            voice: Voice::Other(voice),
            response_format: Some(SpeechResponseFormat::Wav),
            speed: Some(request.rate.clamp(0.25, 4.0) as f32),
            ..CreateSpeechRequest::default()
        };
        let body = serde_json::to_value(&wire)
            .map_err(|e| ModelError::InvalidRequest(format!("the speech request: {e}")))?;
        let wav = self.endpoint.post("/audio/speech", &body).await?;
        let seconds = wav_seconds(&wav).map_err(|why| {
            ModelError::InvalidOutput(format!("{} spoke no usable audio: {why}", self.id()))
        })?;
        Ok(Speech {
            model: self.id(),
            wav,
            seconds,
            cost_usd: self.price(&request.text),
            words: Vec::new(),
        })
    }
}

/// The length of a WAV file, read from its header. Streamed WAVs (OpenAI's) give no data
/// length, so the samples are counted to the end.
pub(crate) fn wav_seconds(wav: &[u8]) -> Result<f64, String> {
    let reader =
        hound::WavReader::new(std::io::Cursor::new(wav)).map_err(|e| format!("not WAV ({e})"))?;
    let spec = reader.spec();
    let frame = usize::from(spec.channels) * usize::from(spec.bits_per_sample / 8).max(1);
    let declared = reader.duration() as f64 / f64::from(spec.sample_rate.max(1));
    let counted = {
        // Header and `data` chunk header: at least 44 bytes before the samples.
        let samples = wav.len().saturating_sub(44) / frame.max(1);
        samples as f64 / f64::from(spec.sample_rate.max(1))
    };
    let seconds = if declared > 0.0 && declared < 3_600.0 {
        declared
    } else {
        counted
    };
    if seconds <= 0.0 {
        return Err("it is silent".into());
    }
    Ok(seconds)
}
