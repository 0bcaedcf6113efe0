//! Montage's configuration: built-in defaults, then `montage.toml`, then `MONTAGE_*`
//! environment variables (`MONTAGE_MODELS__IMAGE=local`, `MONTAGE_RENDER__CRF=18`), then
//! the options of one run. The resolved result is saved with every run.

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use montage_compositor::Preset;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which provider serves each capability.
    pub models: ModelsConfig,
    /// How videos are encoded.
    pub render: RenderConfig,
    /// How runs behave.
    pub pipeline: PipelineConfig,
    /// Where data lives.
    pub storage: StorageConfig,
    /// How `montage serve` serves.
    #[serde(default)]
    pub server: ServerConfig,
}

/// How `montage serve` serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The address to listen on (`--addr` overrides it).
    pub addr: String,
    /// Runs executed at once; the rest wait in the queue.
    pub runs_at_once: usize,
    /// The largest upload accepted, in megabytes (images are also held to 50 MB).
    pub max_upload_mb: u64,
    /// Who may use the API: `local` (requests without a token act as the one local user;
    /// only on a loopback address) or `tokens` (every request names its user's token).
    pub auth: AuthMode,
    /// Host names (with or without `:port`) the server answers besides the address it is
    /// bound to, such as the name a reverse proxy forwards; a request naming any other
    /// `Host`, or a browser `Origin` on none of them, is refused (DNS rebinding,
    /// cross-site WebSockets).
    pub allowed_hosts: Vec<String>,
    /// What one person may ask of the server.
    pub limits: LimitsConfig,
}

/// What one person may ask of the server; beyond it, requests are answered 429 with
/// `Retry-After`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Runs of one person waiting in the queue at once.
    pub runs_queued_per_user: u32,
    /// Runs (new videos and versions) one person may start in an hour.
    pub runs_per_hour: u32,
    /// Messages one person may send to chats in a minute.
    pub chat_messages_per_minute: u32,
    /// Megabytes one person may upload in a day.
    pub upload_mb_per_day: u64,
    /// Runs waiting in the queue, everyone's together; beyond it the server answers 503.
    pub queue_capacity: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            runs_queued_per_user: 20,
            runs_per_hour: 60,
            chat_messages_per_minute: 30,
            upload_mb_per_day: 5_000,
            queue_capacity: 500,
        }
    }
}

/// The largest `server.max_upload_mb` (1 TiB).
const MAX_UPLOAD_MB: u64 = 1 << 20;

impl ServerConfig {
    /// The largest upload accepted, in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb.min(MAX_UPLOAD_MB) << 20
    }
}

/// Who may use the API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Requests without a token act as the local user (loopback only).
    #[default]
    Local,
    /// Every request carries a user's token.
    Tokens,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:8080".into(),
            runs_at_once: 2,
            max_upload_mb: 500,
            auth: AuthMode::Local,
            allowed_hosts: Vec::new(),
            limits: LimitsConfig::default(),
        }
    }
}

/// What a run does when the critic has a question.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackPolicy {
    /// Ask the person and wait for the answer.
    #[default]
    Ask,
    /// Take the critic's suggested fixes without asking.
    Accept,
}

/// Which provider serves each capability: `local` (offline) or `none` where a capability
/// may be absent; the text model may be a remote one, or a fallback chain of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Intent extraction and the chat agent: `local`, `openai`, or a chain tried in order
    /// (`"openai:gpt-4.1-mini,local"`; the local model stands in last either way).
    pub text: String,
    /// Still images for scenes.
    pub image: String,
    /// Video clips for scenes, made from each scene's still: `none` (scenes are stills with
    /// camera motion), `replicate[:owner/name]` or `fal[:owner/app/path]`.
    pub clip: String,
    /// Narration (`local` is espeak-ng when installed).
    pub speech: String,
    /// The music bed when the person brings no music.
    pub music: String,
    /// The critic.
    pub vision: String,
    /// Vectors for the generation cache.
    pub embeddings: String,
    /// The OpenAI-compatible endpoint `openai` names.
    #[serde(default)]
    pub openai: OpenAiSettings,
    /// Vendors with APIs of their own, by the name a chain gives them (`anthropic`,
    /// `gemini`, `mistral`, `xai`, `cohere`, …): `[models.vendors.anthropic]`. A vendor named
    /// in a chain without a section here gets the defaults.
    #[serde(default)]
    pub vendors: std::collections::BTreeMap<String, VendorSettings>,
    /// What a run asked for over the API may choose as its text or vision model, beside
    /// `local` and the models configured above (`["openai:gpt-4.1", "anthropic:claude-…"]`):
    /// every remote call is paid with the server's keys, so nothing else is taken.
    #[serde(default)]
    pub run_choices: Vec<String>,
    /// Replicate, for `replicate[:owner/name[:version]]` (`REPLICATE_API_TOKEN`).
    #[serde(default)]
    pub replicate: JobServiceSettings,
    /// fal.ai, for `fal[:owner/app/path]` (`FAL_KEY`).
    #[serde(default)]
    pub fal: JobServiceSettings,
    /// ElevenLabs, for `speech = "elevenlabs[:VOICE_ID]"` (`ELEVENLABS_API_KEY`).
    #[serde(default)]
    pub elevenlabs: ElevenLabsSettings,
}

/// ElevenLabs' settings (its key comes from the environment, never from here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElevenLabsSettings {
    /// The API's base; unset: `ELEVENLABS_BASE_URL`, else `https://api.elevenlabs.io`.
    pub base_url: Option<String>,
    /// The environment variable that holds the key.
    pub key_variable: String,
    /// The model.
    pub model: String,
    /// The voice's id when `speech = "elevenlabs"` names none (an example: one of
    /// ElevenLabs' premade voices).
    pub voice: String,
    /// US dollars per million characters spoken (your plan's; none is assumed).
    pub per_million_characters: f64,
    /// The longest one request may take, seconds.
    pub timeout_secs: u64,
    /// Requests in flight at once (plans allow a few).
    pub concurrency: usize,
    /// Requests started per minute.
    pub requests_per_minute: u32,
}

impl Default for ElevenLabsSettings {
    fn default() -> Self {
        ElevenLabsSettings {
            base_url: None,
            key_variable: "ELEVENLABS_API_KEY".into(),
            model: "eleven_multilingual_v2".into(),
            voice: "JBFqnCBsd6RMkjVDRZzb".into(),
            per_million_characters: 0.0,
            timeout_secs: 60,
            concurrency: 2,
            requests_per_minute: 120,
        }
    }
}

/// A job API's settings (its key comes from the environment, never from here). What is left
/// out takes the service's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobServiceSettings {
    /// The API's base; unset: `REPLICATE_BASE_URL` / `FAL_BASE_URL`, else the service's own.
    pub base_url: Option<String>,
    /// The environment variable that holds the key; unset: `REPLICATE_API_TOKEN` /
    /// `FAL_KEY`.
    pub key_variable: Option<String>,
    /// The still model when none is named (`models.image = "replicate"`); unset:
    /// `black-forest-labs/flux-schnell` / `fal-ai/flux/schnell`.
    pub image_model: Option<String>,
    /// What the still model costs, for the ledger, estimates and budgets; unset: $0.003 a
    /// still (both services' FLUX schnell price at the time of writing; set yours).
    pub image_prices: Option<montage_models::remote::media::MediaPrices>,
    /// Inputs sent with every still request, over Montage's (the model's own options, such
    /// as `{ go_fast = false }`, or `negative_prompt = ""` for a model that takes one).
    pub image_input: serde_json::Map<String, serde_json::Value>,
    /// The music model when none is named (`models.music = "replicate"`); unset: MusicGen
    /// (`meta/musicgen:VERSION`) / `fal-ai/stable-audio`.
    pub music_model: Option<String>,
    /// What the music model costs; unset: $0.0014 per GPU second on Replicate, nothing
    /// assumed on fal (set yours).
    pub music_prices: Option<montage_models::remote::media::MediaPrices>,
    /// Inputs sent with every music request, over Montage's.
    pub music_input: serde_json::Map<String, serde_json::Value>,
    /// The image-to-video model when none is named (`models.clip = "replicate"`); unset:
    /// Kling v2.1 (`kwaivgi/kling-v2.1` / `fal-ai/kling-video/v2.1/standard/image-to-video`).
    /// Kling, Hailuo (MiniMax), Seedance, Wan and LTX models are known by their names.
    pub clip_model: Option<String>,
    /// What the clip model costs; unset: $0.056 per second of video (Kling v2.1 standard's
    /// price on fal at the time of writing; set yours).
    pub clip_prices: Option<montage_models::remote::media::MediaPrices>,
    /// Inputs sent with every clip request, over Montage's (`{ mode = "pro" }` for Kling's
    /// 1080p).
    pub clip_input: serde_json::Map<String, serde_json::Value>,
    /// Replicate only: the URL Replicate calls when a prediction finishes (Montage's
    /// `/api/webhooks/replicate` as Replicate reaches it, such as
    /// `https://montage.example.com/api/webhooks/replicate`); unset: jobs are polled. Needs the
    /// account's signing secret in `REPLICATE_WEBHOOK_SECRET`.
    pub webhook_url: Option<String>,
    /// Prices of models by name (`"black-forest-labs/flux-1.1-pro" = { per_output = 0.04 }`),
    /// over the capability's prices: what a chain of this service's models steps down by.
    pub model_prices:
        std::collections::BTreeMap<String, montage_models::remote::media::MediaPrices>,
    /// The longest one HTTP request may take, seconds.
    pub timeout_secs: u64,
    /// The longest a job may take, queue included, seconds.
    pub deadline_secs: u64,
    /// The first pause between polls, milliseconds (each next one is longer, up to 5 s).
    pub first_poll_ms: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests started per minute.
    pub requests_per_minute: u32,
}

impl Default for JobServiceSettings {
    fn default() -> Self {
        JobServiceSettings {
            base_url: None,
            key_variable: None,
            image_model: None,
            image_prices: None,
            image_input: serde_json::Map::new(),
            music_model: None,
            music_prices: None,
            music_input: serde_json::Map::new(),
            clip_model: None,
            clip_prices: None,
            clip_input: serde_json::Map::new(),
            model_prices: std::collections::BTreeMap::new(),
            webhook_url: None,
            timeout_secs: 90,
            deadline_secs: 900,
            first_poll_ms: 500,
            concurrency: 4,
            requests_per_minute: 300,
        }
    }
}

/// A run's own choice of text and vision models, named as the configuration names them
/// (`"anthropic:claude-sonnet-4-5,local"`); what it leaves out is the server's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelChoice {
    /// The text model or chain for the intent, the story and the prompts.
    pub text: Option<String>,
    /// The critic's model.
    pub vision: Option<String>,
}

/// The most models one chain may name.
const MAX_CHAIN: usize = 4;

fn entries(chain: &str) -> impl Iterator<Item = &str> {
    chain.split(',').map(str::trim).filter(|e| !e.is_empty())
}

impl ModelsConfig {
    /// What a run asked for over the API may choose: `local`, the models this configuration
    /// names, and `run_choices`, each once.
    pub fn offered(&self) -> Vec<&str> {
        let mut offered: Vec<&str> = vec!["local"];
        for entry in entries(&self.text)
            .chain(entries(&self.vision))
            .chain(self.run_choices.iter().map(|c| c.trim()))
        {
            if !entry.is_empty() && !offered.contains(&entry) {
                offered.push(entry);
            }
        }
        offered
    }

    /// These models with `choice` applied. `restricted` (a run asked for over the API) takes
    /// only what the configuration [offers](ModelsConfig::offered).
    pub fn chosen(&self, choice: &ModelChoice, restricted: bool) -> Result<ModelsConfig, String> {
        let offered = self.offered();
        let allowed = |entry: &str| offered.contains(&entry);
        let check = |what: &str, chain: &str| -> Result<String, String> {
            let named: Vec<&str> = entries(chain).collect();
            if named.is_empty() || named.len() > MAX_CHAIN {
                return Err(format!(
                    "models.{what}: name 1 to {MAX_CHAIN} models, as \"provider:model\" separated by commas"
                ));
            }
            if restricted && let Some(refused) = named.iter().find(|e| !allowed(e)) {
                return Err(format!(
                    "models.{what}: {refused:?} is not a model this server offers (choose from {})",
                    offered.join(", ")
                ));
            }
            Ok(named.join(","))
        };
        let mut models = self.clone();
        if let Some(text) = &choice.text {
            models.text = check("text", text)?;
        }
        if let Some(vision) = &choice.vision {
            if entries(vision).count() > 1 {
                return Err("models.vision: the critic takes one model, not a chain".into());
            }
            models.vision = check("vision", vision)?;
        }
        Ok(models)
    }
}

/// One vendor's settings (its key comes from the environment, never from here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VendorSettings {
    /// Where it is served, when not at the vendor's own address (a proxy).
    pub base_url: Option<String>,
    /// The environment variable that holds the key; unset: the vendor's usual one
    /// (`ANTHROPIC_API_KEY`, `GEMINI_API_KEY`, …).
    pub key_variable: Option<String>,
    /// The longest answer, in tokens.
    pub max_tokens: u64,
    /// The longest one request may take, seconds.
    pub timeout_secs: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests started per minute.
    pub requests_per_minute: u32,
    /// US dollars per million tokens in.
    pub input_per_million: f64,
    /// US dollars per million tokens out.
    pub output_per_million: f64,
}

impl Default for VendorSettings {
    fn default() -> Self {
        VendorSettings {
            base_url: None,
            key_variable: None,
            max_tokens: 4096,
            timeout_secs: 120,
            concurrency: 4,
            requests_per_minute: 600,
            input_per_million: 0.0,
            output_per_million: 0.0,
        }
    }
}

/// An OpenAI-compatible endpoint: OpenAI itself by default; Ollama, vLLM, llama.cpp's
/// server, LM Studio, OpenRouter, Groq, Together, DeepSeek or Gemini's compatible endpoint
/// by `base_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiSettings {
    /// What to call it in model ids and messages (`openai`, `ollama`, `gemini`, …).
    pub name: String,
    /// The API's base, `/v1` included; unset: `OPENAI_BASE_URL`, else OpenAI's.
    pub base_url: Option<String>,
    /// The environment variable that holds the key (none is sent when it is unset).
    pub key_variable: String,
    /// The model; unset: the endpoint's only model, or a refusal naming those it has.
    pub model: Option<String>,
    /// How the endpoint takes a schema: `json_schema` (OpenAI, Ollama, vLLM) or
    /// `json_object` (llama.cpp's server).
    pub structured_output: montage_models::remote::StructuredOutput,
    /// How it is asked to call tools: `auto` (large models) or `routed` (first which tool,
    /// then that tool forced: small models such as llama.cpp's answer in prose otherwise).
    pub tool_calling: montage_models::remote::ToolCalling,
    /// The longest one request may take, seconds.
    pub timeout_secs: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests started per minute.
    pub requests_per_minute: u32,
    /// US dollars per million tokens in.
    pub input_per_million: f64,
    /// US dollars per million tokens out.
    pub output_per_million: f64,
    /// Where its embedding model is served, when not at `base_url` (llama.cpp's server
    /// embeds only in a mode of its own, so it runs twice).
    pub embeddings_base_url: Option<String>,
    /// Length of the vectors asked of its embedding model (OpenAI's text-embedding-3 models
    /// shorten theirs); unset: the model's own, whatever it is.
    pub embedding_dimensions: Option<usize>,
    /// What to do when its `/embeddings` answers one vector per token (llama.cpp's server
    /// without pooling): `refuse`, or `mean` to average them.
    pub token_vectors: montage_models::remote::embeddings::TokenVectors,
    /// US dollars per still from its image model (`models.image = "openai:gpt-image-1"`).
    pub image_price: f64,
    /// The voice its speech model speaks in (`alloy`, `nova`, …).
    pub speech_voice: String,
    /// US dollars per million characters its speech model speaks.
    pub speech_per_million_characters: f64,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        OpenAiSettings {
            name: "openai".into(),
            base_url: None,
            key_variable: "OPENAI_API_KEY".into(),
            model: None,
            structured_output: montage_models::remote::StructuredOutput::JsonSchema,
            tool_calling: montage_models::remote::ToolCalling::Auto,
            timeout_secs: 120,
            concurrency: 4,
            requests_per_minute: 600,
            input_per_million: 0.0,
            output_per_million: 0.0,
            embeddings_base_url: None,
            embedding_dimensions: None,
            token_vectors: montage_models::remote::embeddings::TokenVectors::Refuse,
            image_price: 0.0,
            speech_voice: "alloy".into(),
            speech_per_million_characters: 0.0,
        }
    }
}

/// How videos are encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderConfig {
    /// x264 preset of the final videos.
    pub preset: Preset,
    /// x264 constant rate factor of the final videos.
    pub crf: u8,
    /// Frames per second.
    pub fps: f64,
    /// Burn the captions into the picture as well as writing sidecars.
    pub burn_captions: bool,
}

/// How runs behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Rounds of fixes after the critic's first review (0: review only).
    pub max_iterations: u32,
    /// Scenes generated at once.
    pub concurrency: usize,
    /// Attempts per model call, the first included.
    pub attempts: u32,
    /// Ask about the critic's issues, or accept its fixes (the server; `montage make` asks
    /// only with `--interactive`).
    #[serde(default)]
    pub feedback: FeedbackPolicy,
    /// The most a run may spend on models, in US dollars; unset: no limit. Pictures the
    /// budget leaves no room for are drawn by the local renderer, and the run says so.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// What each person may spend on models in a calendar month (UTC), in US dollars,
    /// unless `montage user budget` gives them their own; unset: no limit. Like a run's
    /// budget, it is never overrun: what does not fit is drawn locally, and the run says so.
    #[serde(default)]
    pub monthly_budget_usd: Option<f64>,
    /// When a run stops after its prompts, before any picture is made, to have its
    /// storyboard approved.
    #[serde(default)]
    pub storyboard: StoryboardPolicy,
    /// What a run does when its budget has no room for what it would make.
    #[serde(default)]
    pub over_budget: OverBudget,
    /// Clips of scenes the story marks as carrying on the shot before start from that
    /// clip's last frame (made one after another, for continuity); off: every clip starts
    /// from its own scene's still.
    #[serde(default = "yes")]
    pub clip_continuation: bool,
}

fn yes() -> bool {
    true
}

/// What a run does when its budget (its own, or its owner's monthly) has no room for what
/// it would make.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverBudget {
    /// Step down the image chain (and drop clips), to the local renderer, and say so.
    #[default]
    StepDown,
    /// Stop before the pictures with the storyboard and ask: go on stepped down, change the
    /// budget, or cancel (runs that ask their questions; others step down).
    Ask,
}

/// When a run shows its storyboard (the scenes' timings, prompts and sketches, and what the
/// pictures will cost) and waits for approval before making them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoryboardPolicy {
    /// When the pictures or clips would be paid for, and the run asks its questions.
    #[default]
    Paid,
    /// Every run that asks its questions.
    Always,
    /// Never: the pictures are made at once.
    Never,
}

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Objects, caches and the embedded SQLite database.
    pub data_dir: PathBuf,
    /// A `postgres://` (or `sqlite://`) URL to use instead of the embedded database.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Runs that ended longer ago than this many days are deleted, with every object only
    /// they use; none: runs are kept until deleted.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// The encoded-segment cache is trimmed to this many megabytes, least recently used
    /// first.
    #[serde(default = "default_segment_cache_mb")]
    pub segment_cache_mb: u64,
    /// Objects written or reused within this many seconds are never deleted, even when no
    /// record names them yet (a run may be about to); a later sweep takes them.
    #[serde(default = "default_object_grace_secs")]
    pub object_grace_secs: u64,
}

fn default_object_grace_secs() -> u64 {
    3_600
}

fn default_segment_cache_mb() -> u64 {
    2_048
}

impl Default for Config {
    fn default() -> Self {
        let local = || "local".to_owned();
        Config {
            models: ModelsConfig {
                text: local(),
                image: local(),
                clip: "none".into(),
                speech: local(),
                music: local(),
                vision: local(),
                embeddings: local(),
                openai: OpenAiSettings::default(),
                vendors: Default::default(),
                run_choices: Vec::new(),
                replicate: JobServiceSettings::default(),
                fal: JobServiceSettings::default(),
                elevenlabs: ElevenLabsSettings::default(),
            },
            render: RenderConfig {
                preset: Preset::Veryfast,
                crf: 20,
                fps: 30.0,
                burn_captions: false,
            },
            pipeline: PipelineConfig {
                max_iterations: 3,
                concurrency: 4,
                attempts: 3,
                feedback: FeedbackPolicy::Ask,
                budget_usd: None,
                monthly_budget_usd: None,
                storyboard: StoryboardPolicy::Paid,
                over_budget: OverBudget::StepDown,
                clip_continuation: true,
            },
            storage: StorageConfig {
                data_dir: "montage-data".into(),
                database_url: None,
                retention_days: None,
                segment_cache_mb: default_segment_cache_mb(),
                object_grace_secs: default_object_grace_secs(),
            },
            server: ServerConfig::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Defaults, then `file` (`montage.toml` in the working folder when `None`, skipped if
    /// absent), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let path = file.map_or_else(|| PathBuf::from("montage.toml"), Path::to_path_buf);
        if file.is_some() && !path.is_file() {
            return Err(ConfigError(format!("{} does not exist", path.display())));
        }
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            // The conventional variable names the database too; MONTAGE_STORAGE__DATABASE_URL wins.
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "storage.database_url".into()),
            )
            // Only `MONTAGE_<SECTION>__<KEY>`: other MONTAGE_ variables are not configuration.
            .merge(
                Env::prefixed("MONTAGE_")
                    .filter(|key| key.as_str().contains("__"))
                    .split("__"),
            )
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Checks values no type can: ranges.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.render.crf > 51 {
            return Err(ConfigError(format!(
                "render.crf {} is above 51",
                self.render.crf
            )));
        }
        if !(10.0..=60.0).contains(&self.render.fps) {
            return Err(ConfigError(format!(
                "render.fps {} is outside 10–60",
                self.render.fps
            )));
        }
        if self.pipeline.max_iterations > 10 {
            return Err(ConfigError("pipeline.max_iterations is at most 10".into()));
        }
        if let Some(budget) = self.pipeline.budget_usd
            && !(0.0..=100_000.0).contains(&budget)
        {
            return Err(ConfigError(
                "pipeline.budget_usd is between 0 and 100000 dollars".into(),
            ));
        }
        if !(1..=64).contains(&self.server.runs_at_once) {
            return Err(ConfigError("server.runs_at_once is 1–64".into()));
        }
        if !(1..=MAX_UPLOAD_MB).contains(&self.server.max_upload_mb) {
            return Err(ConfigError(format!(
                "server.max_upload_mb is 1–{MAX_UPLOAD_MB}"
            )));
        }
        let limits = &self.server.limits;
        if limits.runs_queued_per_user == 0
            || limits.runs_per_hour == 0
            || limits.chat_messages_per_minute == 0
            || limits.queue_capacity == 0
        {
            return Err(ConfigError(
                "server.limits: every limit must be at least 1".into(),
            ));
        }
        if !(1..=MAX_UPLOAD_MB * 1024).contains(&limits.upload_mb_per_day) {
            return Err(ConfigError(format!(
                "server.limits.upload_mb_per_day is 1–{}",
                MAX_UPLOAD_MB * 1024
            )));
        }
        if self.storage.retention_days == Some(0) {
            return Err(ConfigError(
                "storage.retention_days must be at least 1 (leave it out to keep runs)".into(),
            ));
        }
        if self.server.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError(format!(
                "server.addr {:?} is not HOST:PORT",
                self.server.addr
            )));
        }
        if !(1..=64).contains(&self.pipeline.concurrency) {
            return Err(ConfigError("pipeline.concurrency is 1–64".into()));
        }
        if !(1..=10).contains(&self.pipeline.attempts) {
            return Err(ConfigError("pipeline.attempts is 1–10".into()));
        }
        if self
            .models
            .openai
            .embedding_dimensions
            .is_some_and(|d| !(1..=16_000).contains(&d))
        {
            return Err(ConfigError(
                "models.openai.embedding_dimensions is 1–16000 (pgvector's longest vector)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // figment's Jail closure returns figment's own (large) error type.
    #[allow(clippy::result_large_err)]
    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "montage.toml",
                "[render]\ncrf = 18\n[pipeline]\nmax_iterations = 1\n",
            )?;
            jail.set_env("MONTAGE_PIPELINE__MAX_ITERATIONS", "2");
            jail.set_env("MONTAGE_SOMETHING_ELSE", "not configuration");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.render.crf, 18);
            assert_eq!(config.pipeline.max_iterations, 2);
            assert_eq!(config.models.image, "local");
            jail.set_env("DATABASE_URL", "postgres://db/montage");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                config.storage.database_url.as_deref(),
                Some("postgres://db/montage")
            );
            jail.set_env("MONTAGE_STORAGE__DATABASE_URL", "sqlite://other.db");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                config.storage.database_url.as_deref(),
                Some("sqlite://other.db")
            );
            jail.set_env("MONTAGE_SERVER__RUNS_AT_ONCE", "0");
            assert!(Config::load(None).is_err());
            jail.set_env("MONTAGE_SERVER__RUNS_AT_ONCE", "3");
            assert_eq!(
                Config::load(None)
                    .map_err(|e| e.to_string())?
                    .server
                    .runs_at_once,
                3
            );
            // 2^44 MB in bytes would wrap around to nothing.
            jail.set_env("MONTAGE_SERVER__MAX_UPLOAD_MB", "17592186044416");
            assert!(Config::load(None).is_err());
            jail.set_env("MONTAGE_SERVER__MAX_UPLOAD_MB", "500");
            jail.set_env("MONTAGE_SERVER__LIMITS__RUNS_PER_HOUR", "5");
            assert_eq!(
                Config::load(None)
                    .map_err(|e| e.to_string())?
                    .server
                    .limits
                    .runs_per_hour,
                5
            );
            jail.set_env("MONTAGE_RENDER__CRF", "80");
            assert!(Config::load(None).is_err());
            jail.create_file("bad.toml", "[render]\nwhat = 1\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            assert!(Config::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn a_run_chooses_only_among_what_the_server_offers() {
        let mut models = Config::default().models;
        models.text = "openai:gpt-4.1-mini,local".into();
        models.run_choices = vec!["anthropic:claude-sonnet-4-5".into()];
        let choose = |text: &str, restricted| {
            models.chosen(
                &ModelChoice {
                    text: Some(text.into()),
                    vision: None,
                },
                restricted,
            )
        };
        assert_eq!(
            choose(" anthropic:claude-sonnet-4-5 , local", true)
                .unwrap()
                .text,
            "anthropic:claude-sonnet-4-5,local"
        );
        assert_eq!(choose("local", true).unwrap().text, "local");
        let refused = choose("openai:o3-pro", true).unwrap_err();
        assert!(
            refused.contains("\"openai:o3-pro\" is not a model this server offers")
                && refused.contains("anthropic:claude-sonnet-4-5"),
            "{refused}"
        );
        assert_eq!(
            choose("openai:o3-pro", false).unwrap().text,
            "openai:o3-pro"
        );
        assert!(choose(" , ", false).is_err());
        assert!(choose("local,local,local,local,local", false).is_err());
        let chain_as_critic = models.chosen(
            &ModelChoice {
                text: None,
                vision: Some("openai:gpt-4.1-mini,local".into()),
            },
            false,
        );
        assert!(chain_as_critic.is_err());
    }
}
