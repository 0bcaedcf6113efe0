//! The media models the configuration names: stills from the local renderer, job APIs
//! (Replicate, fal) or an OpenAI-compatible endpoint, one model or a chain tried in order;
//! music beds from the local synthesiser or a job API; clips from a job API's
//! image-to-video model; speech from an OpenAI-compatible endpoint or ElevenLabs.

use super::{
    JobServices, ModelReport, ProviderError, UnknownProvider, local_report, policy,
    provider_and_model,
};
use crate::config::{JobServiceSettings, ModelsConfig};
use montage_models::local::LocalImage;
use montage_models::remote::clips::JobClip;
use montage_models::remote::elevenlabs::{ElevenLabsConfig, ElevenLabsSpeech};
use montage_models::remote::jobs::{JobWebhook, Waiting};
use montage_models::remote::media::{
    FallbackImage, JobImage, JobModelConfig, JobMusic, JobService, MediaPrices,
};
use montage_models::remote::openai_media::{OpenAiImage, OpenAiMediaConfig, OpenAiSpeech};
use montage_models::{ClipModel, ImageModel, ModelError, ModelId, MusicModel, SpeechModel};
use std::sync::Arc;
use std::time::Duration;

/// One model of the still chain, as checks see it.
#[derive(Debug, Clone)]
pub enum ImageEntry {
    /// The local renderer.
    Local(ModelId),
    /// A paid model (a job API's, an OpenAI-compatible endpoint's): where, and the variable
    /// its key comes from.
    Job {
        /// The model.
        model: ModelId,
        /// Where it is served.
        base_url: String,
        /// The variable its key came from.
        key_variable: String,
        /// Whether that variable holds a key (an endpoint of one's own may need none).
        key_present: bool,
    },
}

impl ImageEntry {
    /// What `montage models` says about it.
    pub(super) fn report(&self, place: usize) -> ModelReport {
        match self {
            ImageEntry::Local(model) => local_report("image", model.clone(), place),
            ImageEntry::Job {
                model,
                base_url,
                key_variable,
                key_present,
            } => ModelReport {
                capability: "image".into(),
                model: Some(model.to_string()),
                place,
                base_url: Some(base_url.clone()),
                key_variable: Some(key_variable.clone()),
                key_present: Some(*key_present),
                ok: true,
                verdict: "configured (not called: every picture is paid)".into(),
            },
        }
    }
}

/// What a job API's settings leave out, by service.
struct ServiceDefaults {
    base_variable: &'static str,
    base_url: &'static str,
    key_variable: &'static str,
    image_model: &'static str,
    image_prices: MediaPrices,
    music_model: &'static str,
    music_prices: MediaPrices,
    clip_model: &'static str,
    clip_prices: MediaPrices,
}

/// Kling v2.1 standard (720p): fal's $0.28 for 5 s and $0.056 for each second more, taken
/// for Replicate too (which publishes no price per model).
const KLING_STANDARD: MediaPrices = MediaPrices {
    per_output: 0.0,
    per_second: 0.0,
    per_video_second: 0.056,
};

fn defaults(service: JobService) -> ServiceDefaults {
    match service {
        JobService::Replicate => ServiceDefaults {
            base_variable: "REPLICATE_BASE_URL",
            base_url: "https://api.replicate.com/v1",
            key_variable: "REPLICATE_API_TOKEN",
            image_model: "black-forest-labs/flux-schnell",
            image_prices: MediaPrices {
                per_output: 0.003,
                per_second: 0.0,
                per_video_second: 0.0,
            },
            // MusicGen is published by version, and billed by the GPU second.
            music_model: "meta/musicgen:671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb",
            music_prices: MediaPrices {
                per_output: 0.0,
                per_second: 0.0014,
                per_video_second: 0.0,
            },
            clip_model: "kwaivgi/kling-v2.1",
            clip_prices: KLING_STANDARD,
        },
        JobService::Fal => ServiceDefaults {
            base_variable: "FAL_BASE_URL",
            base_url: "https://queue.fal.run",
            key_variable: "FAL_KEY",
            image_model: "fal-ai/flux/schnell",
            image_prices: MediaPrices {
                per_output: 0.003,
                per_second: 0.0,
                per_video_second: 0.0,
            },
            music_model: "fal-ai/stable-audio",
            music_prices: MediaPrices::default(),
            clip_model: "fal-ai/kling-video/v2.1/standard/image-to-video",
            clip_prices: KLING_STANDARD,
        },
    }
}

/// Which capability of a job API is being connected.
#[derive(Clone, Copy)]
enum Made {
    Image,
    Music,
    Clip,
}

/// The job model `model` (or the service's default) of `service` for `made`.
fn job_config(
    config: &ModelsConfig,
    jobs: &JobServices,
    service: JobService,
    made: Made,
    model: Option<String>,
) -> JobModelConfig {
    let settings: &JobServiceSettings = match service {
        JobService::Replicate => &config.replicate,
        JobService::Fal => &config.fal,
    };
    let fallback = defaults(service);
    let base_url = settings
        .base_url
        .clone()
        .or_else(|| {
            std::env::var(fallback.base_variable)
                .ok()
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| fallback.base_url.to_owned());
    let key_variable = settings
        .key_variable
        .clone()
        .unwrap_or_else(|| fallback.key_variable.to_owned());
    let (named, prices, extra_input) = match made {
        Made::Image => (
            settings
                .image_model
                .clone()
                .unwrap_or_else(|| fallback.image_model.to_owned()),
            settings.image_prices.unwrap_or(fallback.image_prices),
            settings.image_input.clone(),
        ),
        Made::Music => (
            settings
                .music_model
                .clone()
                .unwrap_or_else(|| fallback.music_model.to_owned()),
            settings.music_prices.unwrap_or(fallback.music_prices),
            settings.music_input.clone(),
        ),
        Made::Clip => (
            settings
                .clip_model
                .clone()
                .unwrap_or_else(|| fallback.clip_model.to_owned()),
            settings.clip_prices.unwrap_or(fallback.clip_prices),
            settings.clip_input.clone(),
        ),
    };
    let model = model.unwrap_or(named);
    JobModelConfig {
        service,
        base_url,
        key: std::env::var(&key_variable).ok().filter(|k| !k.is_empty()),
        key_variable,
        prices: settings.model_prices.get(&model).copied().unwrap_or(prices),
        model,
        policy: policy(
            settings.timeout_secs,
            settings.concurrency,
            settings.requests_per_minute,
        ),
        waiting: Waiting {
            first_poll: Duration::from_millis(settings.first_poll_ms.max(1)),
            deadline: Duration::from_secs(settings.deadline_secs.max(1)),
        },
        extra_input,
        // Only Replicate signs its webhooks in a scheme Montage verifies.
        webhook: match service {
            JobService::Replicate => settings.webhook_url.clone().map(|url| JobWebhook {
                url,
                wakeups: Arc::clone(&jobs.wakeups),
            }),
            JobService::Fal => None,
        },
    }
}

/// The music bed `config.music` names: the local synthesiser, or a job API's model
/// (`replicate[:owner/name:version]`, `fal[:owner/app]`).
pub(super) fn music_model(
    config: &ModelsConfig,
    jobs: &JobServices,
) -> Result<Arc<dyn MusicModel>, ProviderError> {
    let (name, model) = provider_and_model(config.music.trim());
    let service = match name {
        "local" => return Ok(Arc::new(super::LocalMusic)),
        "replicate" => JobService::Replicate,
        "fal" => JobService::Fal,
        other => {
            return Err(UnknownProvider {
                capability: "music",
                name: other.to_owned(),
                known: "local, replicate[:owner/name:version], fal[:owner/app]",
            }
            .into());
        }
    };
    let made = JobMusic::connect(
        job_config(config, jobs, service, Made::Music, model),
        Arc::clone(&jobs.journal),
    )
    .map_err(|source| ProviderError::Remote {
        capability: "music",
        source,
    })?;
    Ok(Arc::new(made))
}

/// The clip model `config.clip` names: none (scenes are stills with camera motion), or a
/// job API's image-to-video model (`replicate[:owner/name]`, `fal[:owner/app/path]`).
pub(super) fn clip_model(
    config: &ModelsConfig,
    jobs: &JobServices,
) -> Result<Option<Arc<dyn ClipModel>>, ProviderError> {
    let (name, model) = provider_and_model(config.clip.trim());
    let service = match name {
        "none" => return Ok(None),
        "replicate" => JobService::Replicate,
        "fal" => JobService::Fal,
        other => {
            return Err(UnknownProvider {
                capability: "clip",
                name: other.to_owned(),
                known: "none, replicate[:owner/name], fal[:owner/app/path] (Kling, Hailuo, Seedance, Wan or LTX image-to-video)",
            }
            .into());
        }
    };
    let made = JobClip::connect(
        job_config(config, jobs, service, Made::Clip, model),
        Arc::clone(&jobs.journal),
    )
    .map_err(|source| ProviderError::Remote {
        capability: "clip",
        source,
    })?;
    Ok(Some(Arc::new(made)))
}

/// The still model `config.image` names: one, or a chain tried in order (`"replicate,local"`:
/// the local renderer stands in only when named, since its drawings are no match for a
/// generated picture). Paid jobs are written down in `journal`.
pub(super) fn image_chain(
    config: &ModelsConfig,
    jobs: &JobServices,
) -> Result<(Arc<dyn ImageModel>, Vec<ImageEntry>), ProviderError> {
    let mut chain: Vec<Arc<dyn ImageModel>> = Vec::new();
    let mut entries = Vec::new();
    for entry in config
        .image
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, model) = provider_and_model(entry);
        let service = match name {
            "local" => {
                chain.push(Arc::new(LocalImage));
                entries.push(ImageEntry::Local(LocalImage.id()));
                continue;
            }
            "replicate" => JobService::Replicate,
            "fal" => JobService::Fal,
            "openai" => {
                let endpoint = openai_media(config, "image", model)?;
                let made = OpenAiImage::new(
                    endpoint.clone(),
                    MediaPrices {
                        per_output: config.openai.image_price,
                        per_second: 0.0,
                        per_video_second: 0.0,
                    },
                )
                .map_err(|source| ProviderError::Remote {
                    capability: "image",
                    source,
                })?;
                entries.push(ImageEntry::Job {
                    model: made.id(),
                    base_url: endpoint.base_url,
                    key_variable: endpoint.key_variable,
                    key_present: endpoint.key.is_some(),
                });
                chain.push(Arc::new(made));
                continue;
            }
            other => {
                return Err(UnknownProvider {
                    capability: "image",
                    name: other.to_owned(),
                    known: "local, replicate[:owner/name[:version]], fal[:owner/app/path], openai:MODEL, or a chain such as \"replicate,local\"",
                }
                .into());
            }
        };
        let job = job_config(config, jobs, service, Made::Image, model);
        let (base_url, key_variable) = (job.base_url.clone(), job.key_variable.clone());
        let made = JobImage::connect(job, Arc::clone(&jobs.journal)).map_err(|source| {
            ProviderError::Remote {
                capability: "image",
                source,
            }
        })?;
        entries.push(ImageEntry::Job {
            model: made.id(),
            base_url,
            key_variable,
            // A job API refuses to start without its key.
            key_present: true,
        });
        chain.push(Arc::new(made));
    }
    let model: Arc<dyn ImageModel> = match chain.len() {
        0 => {
            return Err(UnknownProvider {
                capability: "image",
                name: config.image.clone(),
                known: "local, replicate, fal",
            }
            .into());
        }
        1 => chain.remove(0),
        _ => Arc::new(
            FallbackImage::new(chain).map_err(|source| ProviderError::Remote {
                capability: "image",
                source,
            })?,
        ),
    };
    Ok((model, entries))
}

/// The OpenAI-compatible endpoint's `capability` model, which must be named (`openai:MODEL`):
/// its chat model is no image or speech model.
fn openai_media(
    config: &ModelsConfig,
    capability: &'static str,
    model: Option<String>,
) -> Result<OpenAiMediaConfig, ProviderError> {
    let model = model.ok_or_else(|| ProviderError::Remote {
        capability,
        source: ModelError::InvalidRequest(format!(
            "name the {capability} model to use, as \"openai:MODEL\""
        )),
    })?;
    let endpoint = super::openai_config(&config.openai, Some(model.clone()));
    if endpoint.key.is_none() && endpoint.base_url.starts_with("https://api.openai.com") {
        return Err(ProviderError::Remote {
            capability,
            source: ModelError::Rejected(format!(
                "openai needs a key, and {} is not set",
                endpoint.key_variable
            )),
        });
    }
    Ok(OpenAiMediaConfig {
        provider: endpoint.provider,
        base_url: endpoint.base_url,
        key_variable: endpoint.key_variable,
        key: endpoint.key,
        model,
        policy: endpoint.policy,
    })
}

/// Narration from an OpenAI-compatible endpoint's `/audio/speech` (`openai:MODEL`).
pub(super) fn openai_speech(
    config: &ModelsConfig,
    model: Option<String>,
) -> Result<Arc<dyn SpeechModel>, ProviderError> {
    let endpoint = openai_media(config, "speech", model)?;
    let speech = OpenAiSpeech::new(
        endpoint,
        config.openai.speech_voice.clone(),
        config.openai.speech_per_million_characters,
    )
    .map_err(|source| ProviderError::Remote {
        capability: "speech",
        source,
    })?;
    Ok(Arc::new(speech))
}

/// Narration from ElevenLabs (`elevenlabs[:VOICE_ID]`).
pub(super) fn elevenlabs_speech(
    config: &ModelsConfig,
    voice: Option<String>,
) -> Result<Arc<dyn SpeechModel>, ProviderError> {
    let settings = &config.elevenlabs;
    let speech = ElevenLabsSpeech::connect(ElevenLabsConfig {
        base_url: settings
            .base_url
            .clone()
            .or_else(|| {
                std::env::var("ELEVENLABS_BASE_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
            })
            .unwrap_or_else(|| "https://api.elevenlabs.io".to_owned()),
        key_variable: settings.key_variable.clone(),
        key: std::env::var(&settings.key_variable)
            .ok()
            .filter(|k| !k.is_empty()),
        model: settings.model.clone(),
        voice: voice.unwrap_or_else(|| settings.voice.clone()),
        per_million_characters: settings.per_million_characters,
        policy: policy(
            settings.timeout_secs,
            settings.concurrency,
            settings.requests_per_minute,
        ),
    })
    .map_err(|source| ProviderError::Remote {
        capability: "speech",
        source,
    })?;
    Ok(Arc::new(speech))
}
