//! The provider registry: which model serves which capability, resolved from the
//! configuration (the server's, or a run's own choice among what the server allows).
//!
//! - [`local`]: the music bed and the critic Montage has offline, and the merge of a vision
//!   model's findings with the frame metrics.
//! - [`Registry`]: the models each run uses, resolved once per distinct choice.

mod local;
mod media;
mod registry;

pub use local::{LocalMusic, LocalVision, MergedVision};
pub use media::ImageEntry;
pub use registry::Registry;

use crate::config::{ModelsConfig, OpenAiSettings, VendorSettings};
use montage_models::local::{HashingEmbedder, LocalSpeech, LocalText};
use montage_models::remote::embeddings::OpenAiEmbeddings;
use montage_models::remote::jobs::{JobJournal, Wakeups};
use montage_models::remote::openai::{OpenAiConfig, OpenAiText};
use montage_models::remote::policy::PolicyConfig;
use montage_models::remote::vendor::{VendorConfig, VendorText};
use montage_models::remote::{FallbackText, Prices, SeeingCritic};
use montage_models::{
    ClipModel, EmbeddingModel, ImageModel, ModelError, ModelId, MusicModel, SpeechModel, TextModel,
    VisionModel,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The models a run uses.
#[derive(Clone)]
pub struct Providers {
    /// Intent extraction and the chat agent (the whole chain, when there is one).
    pub text: Arc<dyn TextModel>,
    /// The text chain's models in order, for checking.
    pub text_chain: Vec<ChainEntry>,
    /// Scene stills (the whole chain, when there is one).
    pub image: Arc<dyn ImageModel>,
    /// The still chain's models in order, for checking.
    pub image_chain: Vec<ImageEntry>,
    /// Scene clips, when a provider is configured.
    pub clip: Option<Arc<dyn ClipModel>>,
    /// Narration, when a provider is available.
    pub speech: Option<Arc<dyn SpeechModel>>,
    /// The music bed.
    pub music: Arc<dyn MusicModel>,
    /// The critic.
    pub vision: Arc<dyn VisionModel>,
    /// The critic's vision model, when one is configured beside the frame metrics.
    pub vision_remote: Option<ChainEntry>,
    /// Vectors for the generation cache.
    pub embeddings: Arc<dyn EmbeddingModel>,
    /// The embedding model's endpoint, when it is a remote one.
    pub embeddings_remote: Option<Arc<OpenAiEmbeddings>>,
}

/// Which model serves each capability, as recorded with a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedModels {
    /// The text model tried first, for the intent, the story and the prompts.
    pub text: ModelId,
    /// Every text model in the order they stand in for each other, when there are several
    /// (the run's ledger says which answered each call).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text_chain: Vec<ModelId>,
    /// Scene stills.
    pub image: ModelId,
    /// Scene clips (none: stills with camera motion).
    pub clip: Option<ModelId>,
    /// Narration (none: no narration).
    pub speech: Option<ModelId>,
    /// The music bed.
    pub music: ModelId,
    /// The critic.
    pub vision: ModelId,
    /// Embeddings.
    pub embeddings: ModelId,
}

/// Why the configured models cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A name Montage does not know.
    #[error(transparent)]
    Unknown(#[from] UnknownProvider),
    /// A remote provider that cannot be used as configured (no model to choose, an endpoint
    /// that does not answer when asked which models it has).
    #[error("models.{capability}: {source}")]
    Remote {
        /// The capability.
        capability: &'static str,
        /// What it said.
        source: ModelError,
    },
}

/// A provider name the configuration gives that Montage does not know.
#[derive(Debug, thiserror::Error)]
#[error("no provider {name:?} for {capability} (known: {known})")]
pub struct UnknownProvider {
    /// The capability.
    pub capability: &'static str,
    /// The name given.
    pub name: String,
    /// What would have worked.
    pub known: &'static str,
}

/// `provider[:model]`, as the configuration names a model.
fn provider_and_model(entry: &str) -> (&str, Option<String>) {
    match entry.split_once(':') {
        Some((name, model)) => (name, Some(model.to_owned())),
        None => (entry, None),
    }
}

/// One model of a chain, as checks see it.
#[derive(Clone)]
pub enum ChainEntry {
    /// Offline, always there.
    Local(ModelId),
    /// An OpenAI-compatible endpoint.
    OpenAi(Arc<OpenAiText>),
    /// A vendor's own API.
    Vendor(Arc<VendorText>),
}

/// One model a capability may use, and whether it can: what `montage models` prints and
/// `/api/models` answers (never a key: only the name of its variable, and whether it is set).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelReport {
    /// text, image, clip, speech, music, vision or embeddings.
    pub capability: String,
    /// `provider/model`, or none when the capability is off.
    pub model: Option<String>,
    /// Its place in the capability's chain, from 1 (the first choice).
    pub place: usize,
    /// Where a remote model is served.
    pub base_url: Option<String>,
    /// The environment variable its key comes from.
    pub key_variable: Option<String>,
    /// Whether that variable holds a key.
    pub key_present: Option<bool>,
    /// It can be used now.
    pub ok: bool,
    /// In words: what was checked, or what is wrong.
    pub verdict: String,
}

fn local_report(capability: &str, model: ModelId, place: usize) -> ModelReport {
    ModelReport {
        capability: capability.into(),
        model: Some(model.to_string()),
        place,
        base_url: None,
        key_variable: None,
        key_present: None,
        ok: true,
        verdict: "offline, always available".into(),
    }
}

/// A model that is local, or remote and not called to check it (every call is paid).
fn configured_report(capability: &str, model: ModelId) -> ModelReport {
    match model.provider.as_str() {
        "local" => local_report(capability, model, 1),
        _ => ModelReport {
            verdict: "configured (not called: every call is paid)".into(),
            ..local_report(capability, model, 1)
        },
    }
}

/// A remote model, checked.
async fn remote_report(capability: &str, remote: &OpenAiText, place: usize) -> ModelReport {
    let checked = remote.check().await;
    let (ok, verdict) = match checked.verdict {
        Ok(_) => (true, "answers and serves this model".to_owned()),
        Err(problem) => (false, problem),
    };
    ModelReport {
        capability: capability.into(),
        model: Some(TextModel::id(remote).to_string()),
        place,
        base_url: Some(checked.base_url),
        key_variable: Some(checked.key_variable),
        key_present: Some(checked.key_present),
        ok,
        verdict,
    }
}

/// A vendor's model, checked by listing the models its key may use (free; a call to the
/// model itself would be paid).
async fn vendor_report(capability: &str, remote: &VendorText, place: usize) -> ModelReport {
    let (ok, verdict) = match remote.check().await {
        Ok(()) => (true, "answers and offers this model".to_owned()),
        Err(problem) => (false, problem),
    };
    ModelReport {
        capability: capability.into(),
        model: Some(remote.id().to_string()),
        place,
        base_url: remote.base_url().map(str::to_owned),
        key_variable: Some(remote.key_variable().to_owned()),
        key_present: Some(true),
        ok,
        verdict,
    }
}

/// The providers a text or vision setting may name.
const REMOTE_KNOWN: &str = "local, openai, or a vendor: anthropic, gemini, mistral, xai, cohere, deepseek, groq, … (or a chain such as \"openai,anthropic:claude-sonnet-4-5,local\")";

impl ChainEntry {
    /// Its provider and model.
    fn id(&self) -> ModelId {
        match self {
            ChainEntry::Local(model) => model.clone(),
            ChainEntry::OpenAi(remote) => TextModel::id(remote.as_ref()),
            ChainEntry::Vendor(remote) => remote.id(),
        }
    }

    /// The model behind the entry.
    fn model(&self) -> Arc<dyn TextModel> {
        match self {
            ChainEntry::Local(_) => Arc::new(LocalText),
            ChainEntry::OpenAi(remote) => remote.clone(),
            ChainEntry::Vendor(remote) => remote.clone(),
        }
    }

    /// What `montage models` says about it.
    async fn report(&self, capability: &str, place: usize) -> ModelReport {
        match self {
            ChainEntry::Local(model) => local_report(capability, model.clone(), place),
            ChainEntry::OpenAi(remote) => remote_report(capability, remote, place).await,
            ChainEntry::Vendor(remote) => vendor_report(capability, remote, place).await,
        }
    }
}

/// One `provider[:model]` entry of a text or vision setting, connected.
async fn connect(
    config: &ModelsConfig,
    capability: &'static str,
    entry: &str,
) -> Result<ChainEntry, ProviderError> {
    let remote = |source| ProviderError::Remote { capability, source };
    let (name, model) = provider_and_model(entry);
    match name {
        "local" => Ok(ChainEntry::Local(LocalText.id())),
        "openai" => Ok(ChainEntry::OpenAi(Arc::new(
            OpenAiText::connect(openai_config(&config.openai, model))
                .await
                .map_err(remote)?,
        ))),
        vendor if montage_models::remote::vendor::key_variable(vendor).is_some() => {
            let settings = config.vendors.get(vendor).cloned().unwrap_or_default();
            Ok(ChainEntry::Vendor(Arc::new(
                VendorText::connect(vendor_config(capability, vendor, &settings, model)?)
                    .map_err(remote)?,
            )))
        }
        other => Err(UnknownProvider {
            capability,
            name: other.to_owned(),
            known: REMOTE_KNOWN,
        }
        .into()),
    }
}

/// The text model `config.text` names: one model, or a chain tried in order, with the local
/// model standing in last whenever a remote one is named.
async fn text_chain(
    config: &ModelsConfig,
) -> Result<(Arc<dyn TextModel>, Vec<ChainEntry>), ProviderError> {
    let mut entries = Vec::new();
    for entry in config
        .text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        entries.push(connect(config, "text", entry).await?);
    }
    if !matches!(entries.last(), Some(ChainEntry::Local(_))) {
        entries.push(ChainEntry::Local(LocalText.id()));
    }
    let mut chain: Vec<Arc<dyn TextModel>> = entries.iter().map(ChainEntry::model).collect();
    let model: Arc<dyn TextModel> = match chain.len() {
        1 => chain.remove(0),
        _ => Arc::new(
            FallbackText::new(chain).map_err(|source| ProviderError::Remote {
                capability: "text",
                source,
            })?,
        ),
    };
    Ok((model, entries))
}

/// The critic `config.vision` names: the local frame metrics, or a model that sees (on an
/// OpenAI-compatible endpoint or a vendor's) whose findings are added to theirs (the metrics
/// are free and exact, so they always run).
async fn vision_model(
    config: &ModelsConfig,
) -> Result<(Arc<dyn VisionModel>, Option<ChainEntry>), ProviderError> {
    match connect(config, "vision", config.vision.trim()).await? {
        ChainEntry::Local(_) => Ok((Arc::new(LocalVision), None)),
        remote => Ok((
            Arc::new(MergedVision {
                remote: SeeingCritic::new(remote.model()),
            }),
            Some(remote),
        )),
    }
}

/// The embedder `config.embeddings` names: the local hashing one, or an OpenAI-compatible
/// endpoint's `/embeddings` (`openai[:model]`) with the configured dimensions.
async fn embedding_model(
    config: &ModelsConfig,
) -> Result<(Arc<dyn EmbeddingModel>, Option<Arc<OpenAiEmbeddings>>), ProviderError> {
    let (name, model) = provider_and_model(config.embeddings.trim());
    match name {
        "local" => Ok((Arc::new(HashingEmbedder), None)),
        "openai" => {
            // The chat model is no embedding model: only a model named here counts.
            let mut endpoint = openai_config(&config.openai, None);
            endpoint.model = model;
            if let Some(base_url) = &config.openai.embeddings_base_url {
                endpoint.base_url = base_url.clone();
            }
            let remote = Arc::new(
                OpenAiEmbeddings::connect(
                    endpoint,
                    config.openai.embedding_dimensions,
                    config.openai.token_vectors,
                )
                .await
                .map_err(|source| ProviderError::Remote {
                    capability: "embeddings",
                    source,
                })?,
            );
            Ok((remote.clone(), Some(remote)))
        }
        other => Err(UnknownProvider {
            capability: "embeddings",
            name: other.to_owned(),
            known: "local, openai[:model] (an embedding model)",
        }
        .into()),
    }
}

/// A provider's limits as configured (each at least 1).
fn policy(timeout_secs: u64, concurrency: usize, per_minute: u32) -> PolicyConfig {
    PolicyConfig {
        timeout: std::time::Duration::from_secs(timeout_secs.max(1)),
        concurrency: concurrency.max(1),
        per_minute: per_minute.max(1),
        ..PolicyConfig::default()
    }
}

fn vendor_key_variable(vendor: &str, settings: &VendorSettings) -> String {
    settings.key_variable.clone().unwrap_or_else(|| {
        montage_models::remote::vendor::key_variable(vendor)
            .unwrap_or("API_KEY")
            .to_owned()
    })
}

/// The vendor `settings` describe, serving `model` (which must be named: vendors have many);
/// the key is read from its variable now and kept only by the provider.
fn vendor_config(
    capability: &'static str,
    vendor: &str,
    settings: &VendorSettings,
    model: Option<String>,
) -> Result<VendorConfig, ProviderError> {
    let key_variable = vendor_key_variable(vendor, settings);
    let model = model.ok_or_else(|| ProviderError::Remote {
        capability,
        source: ModelError::InvalidRequest(format!(
            "name the {vendor} model to use, as \"{vendor}:MODEL\""
        )),
    })?;
    Ok(VendorConfig {
        vendor: vendor.to_owned(),
        base_url: settings.base_url.clone(),
        key: std::env::var(&key_variable).ok().filter(|k| !k.is_empty()),
        key_variable,
        model,
        prices: Prices {
            input_per_million: settings.input_per_million,
            output_per_million: settings.output_per_million,
        },
        policy: policy(
            settings.timeout_secs,
            settings.concurrency,
            settings.requests_per_minute,
        ),
        max_tokens: settings.max_tokens.max(1),
    })
}

/// The endpoint `settings` describe, `model` overriding its model; the key is read from its
/// variable now and kept only by the provider.
fn openai_config(settings: &OpenAiSettings, model: Option<String>) -> OpenAiConfig {
    let base_url = settings
        .base_url
        .clone()
        .or_else(|| {
            std::env::var("OPENAI_BASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
    OpenAiConfig {
        provider: settings.name.clone(),
        base_url,
        key_variable: settings.key_variable.clone(),
        key: std::env::var(&settings.key_variable)
            .ok()
            .filter(|k| !k.is_empty()),
        model: model.or_else(|| settings.model.clone()),
        prices: Prices {
            input_per_million: settings.input_per_million,
            output_per_million: settings.output_per_million,
        },
        structured: settings.structured_output,
        tool_calling: settings.tool_calling,
        policy: policy(
            settings.timeout_secs,
            settings.concurrency,
            settings.requests_per_minute,
        ),
    }
}

/// What paid job providers share: the journal their jobs are written down in, and who is
/// woken when a provider calls back to say a job finished.
#[derive(Clone)]
pub struct JobServices {
    /// The journal of paid jobs.
    pub journal: Arc<dyn JobJournal>,
    /// The jobs waiting for a provider's webhook.
    pub wakeups: Arc<Wakeups>,
}

impl Providers {
    /// Resolves the configured providers; paid jobs are written down in `jobs`' journal.
    /// Returns notices for capabilities that are off.
    pub async fn resolve(
        config: &ModelsConfig,
        jobs: &JobServices,
    ) -> Result<(Providers, Vec<String>), ProviderError> {
        let mut notices = Vec::new();
        let (text, text_chain) = text_chain(config).await?;
        let (image, image_chain) = media::image_chain(config, jobs)?;
        let music = media::music_model(config, jobs)?;
        let (vision, vision_remote) = vision_model(config).await?;
        let (embeddings, embeddings_remote) = embedding_model(config).await?;
        let clip = media::clip_model(config, jobs)?;
        let (speech_name, speech_model) = provider_and_model(config.speech.trim());
        let speech: Option<Arc<dyn SpeechModel>> = match speech_name {
            "none" => None,
            "local" => match LocalSpeech::detect().await {
                Some(speech) => Some(Arc::new(speech)),
                None => {
                    notices.push("espeak-ng is not installed, so there is no narration (install it, or configure a speech provider)".to_owned());
                    None
                }
            },
            "openai" => Some(media::openai_speech(config, speech_model)?),
            "elevenlabs" => Some(media::elevenlabs_speech(config, speech_model)?),
            name => {
                return Err(UnknownProvider {
                    capability: "speech",
                    name: name.to_owned(),
                    known: "local, openai:MODEL, elevenlabs[:VOICE_ID], none",
                }
                .into());
            }
        };
        Ok((
            Providers {
                text,
                text_chain,
                image,
                image_chain,
                clip,
                speech,
                music,
                vision,
                vision_remote,
                embeddings,
                embeddings_remote,
            },
            notices,
        ))
    }

    /// Every model each capability may use, checked: remote endpoints are asked which models
    /// they serve.
    pub async fn report(&self) -> Vec<ModelReport> {
        let mut reports = Vec::new();
        for (k, entry) in self.text_chain.iter().enumerate() {
            reports.push(entry.report("text", k + 1).await);
        }
        for (k, entry) in self.image_chain.iter().enumerate() {
            reports.push(entry.report(k + 1));
        }
        reports.push(match &self.clip {
            Some(clip) => configured_report("clip", clip.id()),
            None => ModelReport {
                verdict: "off: scenes are stills with camera motion".into(),
                model: None,
                ..local_report("clip", ModelId::new("none", "none"), 1)
            },
        });
        reports.push(match &self.speech {
            Some(speech) => configured_report("speech", speech.id()),
            None => ModelReport {
                verdict: "off: no narration".into(),
                model: None,
                ..local_report("speech", ModelId::new("none", "none"), 1)
            },
        });
        reports.push(configured_report("music", self.music.id()));
        match &self.vision_remote {
            Some(remote) => {
                reports.push(remote.report("vision", 1).await);
                reports.push(ModelReport {
                    verdict: "offline, always runs beside the vision model".into(),
                    ..local_report("vision", LocalVision.id(), 2)
                });
            }
            None => reports.push(local_report("vision", self.vision.id(), 1)),
        }
        reports.push(match &self.embeddings_remote {
            Some(remote) => {
                let mut report = remote_report("embeddings", remote.endpoint(), 1).await;
                report.model = Some(remote.id().to_string());
                if report.ok
                    && let Err(error) = remote.embed(&["a check from montage".to_owned()]).await
                {
                    report.ok = false;
                    report.verdict = error.to_string();
                }
                report
            }
            None => local_report("embeddings", self.embeddings.id(), 1),
        });
        reports
    }

    /// The models, for the run record.
    pub fn resolved(&self) -> ResolvedModels {
        ResolvedModels {
            text: self.text.id(),
            // A lone model is `text` already.
            text_chain: match self.text_chain.len() {
                1 => Vec::new(),
                _ => self.text_chain.iter().map(ChainEntry::id).collect(),
            },
            image: self.image.id(),
            clip: self.clip.as_ref().map(|c| c.id()),
            speech: self.speech.as_ref().map(|s| s.id()),
            music: self.music.id(),
            vision: self.vision.id(),
            embeddings: self.embeddings.id(),
        }
    }
}
