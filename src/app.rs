//! What `montage make` and `montage serve` both stand on: the configuration, the models,
//! the media store, the database and the compiled pipeline, opened once.

use crate::config::{Config, ConfigError};
use crate::objects::{ObjectError, ObjectRef, Objects};
use crate::pipeline::templates::Templates;
use crate::pipeline::{Pipeline, Reach, RunRequest, RunState, Services};
use crate::providers::{JobServices, ProviderError, Providers, Registry, ResolvedModels};
use crate::store::jobs::DatabaseJournal;
use crate::store::{AssetRow, Database, LedgerRow, StoreError};
use montage_models::remote::jobs::Wakeups;
use std::sync::Arc;

/// Why Montage could not open its services.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A configured provider does not exist.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The media store cannot be opened.
    #[error(transparent)]
    Objects(#[from] ObjectError),
    /// The database cannot be opened.
    #[error(transparent)]
    Database(#[from] StoreError),
    /// The graph does not build.
    #[error("the pipeline does not build: {0}")]
    Build(#[from] montage_graph::BuildError),
}

/// The opened services.
pub struct App {
    /// The configuration in force.
    pub config: Config,
    /// The models in force.
    pub models: ResolvedModels,
    /// What people should know about the models (narration unavailable, …).
    pub notices: Vec<String>,
    /// The media store.
    pub objects: Objects,
    /// The database.
    pub database: Database,
    /// The video graph, checkpointing into the database.
    pub pipeline: Pipeline,
    /// The text model, for the chat agent.
    pub text: Arc<dyn montage_models::TextModel>,
    /// Every configured model, for checks.
    pub providers: Providers,
    /// The models of every run.
    registry: Arc<Registry>,
    /// Paid jobs waiting for their provider's webhook.
    pub wakeups: Arc<Wakeups>,
}

/// What an [`App`] is opened with beside its configuration: `montage serve` and `make` use
/// the defaults, the eval harness other templates and a shorter graph.
#[derive(Debug)]
pub struct Opening {
    /// The prompt templates.
    pub templates: Templates,
    /// How far the graph goes.
    pub reach: Reach,
}

impl Default for Opening {
    fn default() -> Opening {
        Opening {
            templates: Templates::embedded(),
            reach: Reach::Video,
        }
    }
}

impl App {
    /// Resolves the models and opens the store, the database and the graph for `config`.
    pub async fn open(config: Config) -> Result<App, OpenError> {
        App::open_with(config, Opening::default()).await
    }

    /// [`App::open`] with `opening`'s templates and graph.
    pub async fn open_with(config: Config, opening: Opening) -> Result<App, OpenError> {
        let data = config.storage.data_dir.clone();
        let objects = open_objects(&config)?;
        let database = open_database(&config).await?;
        let jobs = JobServices {
            journal: Arc::new(DatabaseJournal(database.clone())),
            wakeups: Arc::new(Wakeups::default()),
        };
        let (providers, notices) = Providers::resolve(&config.models, &jobs).await?;
        let models = providers.resolved();
        let text = Arc::clone(&providers.text);
        let wakeups = Arc::clone(&jobs.wakeups);
        let registry = Arc::new(Registry::new(
            config.models.clone(),
            providers.clone(),
            jobs,
        ));
        let services = Services {
            models: Arc::clone(&registry),
            objects: objects.clone(),
            database: database.clone(),
            templates: opening.templates,
            segments: data.join("segments"),
            scratch: data.join("renders"),
        };
        let pipeline = Pipeline::reaching(
            services,
            config.pipeline.concurrency,
            config.pipeline.attempts,
            opening.reach,
        )?
        .with_checkpointer(Arc::new(database.checkpointer()));
        Ok(App {
            config,
            models,
            notices,
            objects,
            database,
            pipeline,
            text,
            providers,
            registry,
            wakeups,
        })
    }

    /// The first state of a run of `request` under `config` (this app's, or one with a run's
    /// own options applied), its models resolved now: a run's choice of models that cannot
    /// be used is refused before the run exists.
    pub async fn new_state(
        &self,
        request: RunRequest,
        config: Config,
    ) -> Result<RunState, ProviderError> {
        let models = self.registry.of(&config.models).await?.resolved();
        let mut state = RunState::new(request, config, models, self.notices.clone());
        state.budget_ceiling = self.config.pipeline.budget_usd;
        Ok(state)
    }
}

/// The media store `config` names: `objects/` under the data folder.
pub fn open_objects(config: &Config) -> Result<Objects, ObjectError> {
    Objects::local(&config.storage.data_dir.join("objects"))
}

/// The database `config` names: `storage.database_url`, or SQLite in the data folder.
pub async fn open_database(config: &Config) -> Result<Database, StoreError> {
    match &config.storage.database_url {
        Some(url) => Database::connect(url).await,
        None => Database::open_default(&config.storage.data_dir).await,
    }
}

/// Records in the database every object a finished run made or used, with its scene and
/// round, and the run's cost ledger.
pub async fn keep_lineage(
    database: &Database,
    run: &str,
    state: &RunState,
) -> Result<(), StoreError> {
    let scene = |k: usize| u32::try_from(k).ok();
    let mut assets: Vec<AssetRow> = Vec::new();
    let mut add = |object: &ObjectRef, kind: &str, scene: Option<u32>, round: Option<u32>| {
        assets.push(AssetRow {
            object: object.clone(),
            kind: kind.to_owned(),
            scene,
            round,
        });
    };
    for upload in state.request.audio.iter().chain(&state.request.images) {
        add(&upload.object, "upload", None, None);
    }
    if let Some(music) = &state.music {
        add(&music.object, "music", None, None);
    }
    for (k, asset) in &state.assets {
        add(&asset.object, "scene", scene(*k), Some(asset.round));
        if let Some(clip) = &asset.clip {
            add(&clip.object, "clip", scene(*k), Some(asset.round));
        }
    }
    for (k, sketch) in state.storyboard.iter().flat_map(|s| &s.sketches) {
        add(sketch, "sketch", scene(*k), None);
    }
    for spoken in state.speech.values() {
        let line = state.script.get(spoken.line).map(|l| l.scene);
        add(&spoken.object, "narration", line.and_then(scene), None);
    }
    for review in &state.reviews {
        add(
            &review.contact_sheet,
            "contact_sheet",
            None,
            Some(review.round),
        );
    }
    if let Some(outputs) = &state.outputs {
        add(&outputs.preview, "preview", None, None);
        for video in &outputs.videos {
            add(&video.object, "video", None, None);
        }
        add(&outputs.srt, "captions", None, None);
        add(&outputs.vtt, "captions", None, None);
    }
    for asset in &assets {
        database.record_asset(run, asset).await?;
    }
    database
        .commit_spending(run, state.cost.iter().map(|c| c.usd).sum())
        .await?;
    let ledger: Vec<LedgerRow> = state
        .cost
        .iter()
        .map(|entry| LedgerRow {
            node: entry.node.clone(),
            scene: entry.scene.and_then(scene),
            capability: entry.capability.clone(),
            model: entry.model.to_string(),
            usd: entry.usd,
            cached: entry.cached,
        })
        .collect();
    database.record_costs(run, &ledger).await
}
