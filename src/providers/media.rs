//! The media models the configuration names: stills from the local renderer or from job
//! APIs (Replicate, fal), one model or a chain tried in order.

use super::{
    ModelReport, ProviderError, UnknownProvider, local_report, policy, provider_and_model,
};
use crate::config::{JobServiceSettings, ModelsConfig};
use montage_models::local::LocalImage;
use montage_models::remote::jobs::{JobJournal, Waiting};
use montage_models::remote::media::{
    FallbackImage, JobImage, JobModelConfig, JobService, MediaPrices,
};
use montage_models::remote::openai_media::{OpenAiImage, OpenAiMediaConfig, OpenAiSpeech};
use montage_models::{ImageModel, ModelError, ModelId, SpeechModel};
use std::sync::Arc;
use std::time::Duration;

/// One model of the still chain, as checks see it.
#[derive(Debug, Clone)]
pub enum ImageEntry {
    /// The local renderer.
    Local(ModelId),
    /// A model on a job API: where, and the variable its key comes from.
    Job {
        /// The model.
        model: ModelId,
        /// Where it is served.
        base_url: String,
        /// The variable its key came from.
        key_variable: String,
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
            } => ModelReport {
                capability: "image".into(),
                model: Some(model.to_string()),
                place,
                base_url: Some(base_url.clone()),
                key_variable: Some(key_variable.clone()),
                key_present: Some(true),
                ok: true,
                verdict: "key present (not called: every job is paid)".into(),
            },
        }
    }
}

/// The settings of `service`, and where it is served.
fn service_settings(config: &ModelsConfig, service: JobService) -> (&JobServiceSettings, String) {
    let (settings, variable, default) = match service {
        JobService::Replicate => (
            &config.replicate,
            "REPLICATE_BASE_URL",
            "https://api.replicate.com/v1",
        ),
        JobService::Fal => (&config.fal, "FAL_BASE_URL", "https://queue.fal.run"),
    };
    let base_url = settings
        .base_url
        .clone()
        .or_else(|| std::env::var(variable).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| default.to_owned());
    (settings, base_url)
}

/// The still model `config.image` names: one, or a chain tried in order (`"replicate,local"`:
/// the local renderer stands in only when named, since its drawings are no match for a
/// generated picture). Paid jobs are written down in `journal`.
pub(super) fn image_chain(
    config: &ModelsConfig,
    journal: &Arc<dyn JobJournal>,
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
        let (settings, base_url) = service_settings(config, service);
        let model = model.unwrap_or_else(|| settings.image_model.clone());
        let made = JobImage::connect(
            JobModelConfig {
                service,
                base_url: base_url.clone(),
                key_variable: settings.key_variable.clone(),
                key: std::env::var(&settings.key_variable)
                    .ok()
                    .filter(|k| !k.is_empty()),
                model: model.clone(),
                prices: settings.image_prices,
                policy: policy(
                    settings.timeout_secs,
                    settings.concurrency,
                    settings.requests_per_minute,
                ),
                waiting: Waiting {
                    first_poll: Duration::from_millis(settings.first_poll_ms.max(1)),
                    deadline: Duration::from_secs(settings.deadline_secs.max(1)),
                },
                extra_input: settings.image_input.clone(),
            },
            Arc::clone(journal),
        )
        .map_err(|source| ProviderError::Remote {
            capability: "image",
            source,
        })?;
        entries.push(ImageEntry::Job {
            model: made.id(),
            base_url,
            key_variable: settings.key_variable.clone(),
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
