//! `/api/runs`: create, list, read, answer, cancel and revise runs.

use super::AppState;
use super::auth::Caller;
use super::bodies::{self, request_error};
use super::chat_hub::ChatEvent;
use super::error::{ApiError, Body, ErrorBody, Query};
use super::protocol::asset_url;
use super::schema;
use crate::config::{FeedbackPolicy, StoryboardPolicy};
use crate::objects::ObjectRef;
use crate::pipeline::request;
use crate::pipeline::state::{MusicSource, SceneSource};
use crate::pipeline::{RunRequest, RunState};
use crate::store::{RunStatus, StoredRun};
use crate::worker::{Cancelled, Changes};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use montage_models::{Category, Mood, Pace};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// What `POST /api/runs` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// What the video should be ("a 20 second upbeat neon city music video, vertical").
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub prompt: String,
    /// Formats, overriding the prompt: any of "16:9", "9:16", "1:1".
    #[serde(default)]
    #[schema(schema_with = schema::formats)]
    pub formats: Option<Vec<String>>,
    /// Length in seconds, overriding the prompt.
    #[serde(default)]
    #[schema(minimum = 3, maximum = 600)]
    pub duration: Option<f64>,
    /// The same prompt, files and seed make the same video (default 1).
    #[serde(default, deserialize_with = "super::schema::whole_number")]
    pub seed: Option<u64>,
    /// An uploaded audio file's id: the music to cut to.
    #[serde(default)]
    pub audio: Option<String>,
    /// Uploaded images' ids, used as scenes.
    #[serde(default)]
    #[schema(max_items = 200)]
    pub images: Vec<String>,
    /// Rounds of fixes after the critic's first review (0–10).
    #[serde(default, deserialize_with = "super::schema::whole_number")]
    #[schema(maximum = 10)]
    pub max_iterations: Option<u32>,
    /// "ask" (default): wait for an answer when the critic finds something; "accept":
    /// take its fixes without asking.
    #[serde(default)]
    pub feedback: Option<FeedbackPolicy>,
    /// When the run stops after its prompts for the storyboard to be approved, before any
    /// picture is made: "paid" (default: when the pictures or clips would be paid for),
    /// "always", "never". Only runs that ask (feedback "ask") stop.
    #[serde(default)]
    pub storyboard: Option<StoryboardPolicy>,
    /// What kind of video, overriding the prompt: music_video, promo, trailer, slideshow,
    /// explainer, travel, social.
    #[serde(default)]
    #[schema(schema_with = schema::category)]
    pub category: Option<Category>,
    /// The feeling, overriding the prompt: upbeat, energetic, calm, dreamy, dark, melancholic,
    /// epic, playful, romantic, mysterious.
    #[serde(default)]
    #[schema(schema_with = schema::mood)]
    pub mood: Option<Mood>,
    /// How fast the cuts come, overriding the prompt: slow, medium, fast.
    #[serde(default)]
    #[schema(schema_with = schema::pace)]
    pub pace: Option<Pace>,
    /// Style words, overriding the prompt's (at most 8).
    #[serde(default)]
    #[schema(schema_with = schema::style)]
    pub style: Option<Vec<String>>,
    /// This run's text and vision models, among those the server offers (`GET /api/models`
    /// and its `models.run_choices`); what is left out is the server's.
    #[serde(default, deserialize_with = "super::schema::object_or_null")]
    pub models: Option<crate::config::ModelChoice>,
    /// The most this run may spend on models, US dollars, up to the server's
    /// `pipeline.budget_usd` (its default). Pictures it leaves no room for are drawn locally.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000)]
    pub budget_usd: Option<f64>,
}

/// What `POST /api/runs/{id}/revise` takes: at least one change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct ReviseRun {
    /// What to change, in words ("slower cuts, warmer colours"); added to the prompt.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub instruction: Option<String>,
    /// New formats.
    #[serde(default)]
    #[schema(schema_with = schema::formats)]
    pub formats: Option<Vec<String>>,
    /// A new length in seconds.
    #[serde(default)]
    #[schema(minimum = 3, maximum = 600)]
    pub duration: Option<f64>,
    /// What kind of video, overriding the prompt: music_video, promo, trailer, slideshow,
    /// explainer, travel, social.
    #[serde(default)]
    #[schema(schema_with = schema::category)]
    pub category: Option<Category>,
    /// The feeling, overriding the prompt: upbeat, energetic, calm, dreamy, dark, melancholic,
    /// epic, playful, romantic, mysterious.
    #[serde(default)]
    #[schema(schema_with = schema::mood)]
    pub mood: Option<Mood>,
    /// How fast the cuts come, overriding the prompt: slow, medium, fast.
    #[serde(default)]
    #[schema(schema_with = schema::pace)]
    pub pace: Option<Pace>,
    /// Style words, overriding the prompt's (at most 8).
    #[serde(default)]
    #[schema(schema_with = schema::style)]
    pub style: Option<Vec<String>>,
}

/// `GET /api/runs` paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListRuns {
    /// At most this many (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Only runs created before this time (milliseconds since the Unix epoch): pass the
    /// last `created_at_ms` of a page to get the next.
    pub before: Option<i64>,
}

/// A run in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunSummary {
    /// Its id.
    pub id: String,
    /// queued, running, waiting, completed, failed or cancelled.
    pub status: String,
    /// What was asked.
    pub prompt: String,
    /// Its version among the revisions of the first run, from 1.
    pub version: u32,
    /// The run it revises.
    pub parent: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Last change of status, milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

impl From<&StoredRun> for RunSummary {
    fn from(run: &StoredRun) -> RunSummary {
        RunSummary {
            id: run.id.clone(),
            status: run.status.as_str().to_owned(),
            prompt: run.prompt.clone(),
            version: run.version,
            parent: run.parent.clone(),
            created_at_ms: run.created_at_ms,
            updated_at_ms: run.updated_at_ms,
        }
    }
}

/// A stored object, as a download.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetLink {
    /// Its id (the SHA-256 of its bytes).
    pub id: String,
    /// Where to download it.
    pub url: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

impl From<&ObjectRef> for AssetLink {
    fn from(object: &ObjectRef) -> AssetLink {
        AssetLink {
            id: object.sha256.clone(),
            url: asset_url(&object.sha256),
            media_type: object.media_type.clone(),
            size: object.size,
        }
    }
}

/// One planned scene.
#[derive(Debug, Serialize, ToSchema)]
pub struct SceneView {
    /// Its number, from 0.
    pub index: usize,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Beats it lasts.
    pub beats: u32,
    /// The music's section it is in.
    pub section: String,
    /// "generated" or "upload".
    pub source: String,
    /// The prompt written for it.
    pub prompt: Option<String>,
    /// Its picture, once made.
    pub thumbnail: Option<AssetLink>,
    /// The model that made its picture (`provider/model`; none for an upload).
    pub model: Option<String>,
    /// The clip made from its picture, which the video shows in its place.
    pub clip: Option<AssetLink>,
    /// The model that made the clip.
    pub clip_model: Option<String>,
    /// The critic's latest issues with it.
    #[schema(value_type = Vec<Object>)]
    pub issues: Vec<Value>,
}

/// The plan: scenes on the beat grid.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// Length, seconds.
    pub duration: f64,
    /// Tempo of the music.
    pub bpm: f64,
    /// The scenes, in order.
    pub scenes: Vec<SceneView>,
}

/// The soundtrack and its beats, for drawing the timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct MusicView {
    /// The audio file.
    pub audio: AssetLink,
    /// "uploaded" or "generated".
    pub source: String,
    /// Length, seconds.
    pub duration: f64,
    /// Tempo.
    pub bpm: f64,
    /// Beats per bar (4 or 3).
    pub meter: u8,
    /// Beats, seconds.
    pub beats: Vec<f64>,
    /// Bar starts, seconds.
    pub downbeats: Vec<f64>,
    /// Loudness from 0 to 1, evenly spaced over the whole length (at most
    /// [`WAVEFORM_POINTS`] values).
    pub waveform: Vec<f64>,
    /// Where the music changes: `start`, `end`, `kind`.
    #[schema(value_type = Vec<Object>)]
    pub sections: Vec<Value>,
}

/// How many loudness values a [`MusicView`] carries at most.
pub const WAVEFORM_POINTS: usize = 600;

/// Peak loudness of each of at most `points` equal stretches of `values`.
fn waveform(values: &[f64], points: usize) -> Vec<f64> {
    if values.len() <= points {
        return values.to_vec();
    }
    (0..points)
        .map(|k| {
            let from = k * values.len() / points;
            let to = ((k + 1) * values.len() / points).max(from + 1);
            values[from..to].iter().copied().fold(0.0, f64::max)
        })
        .collect()
}

/// One version of a video.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// The run that made it.
    pub id: String,
    /// Its number, from 1.
    pub version: u32,
    /// Its run's status.
    pub status: String,
}

/// One rendered video.
#[derive(Debug, Serialize, ToSchema)]
pub struct VideoView {
    /// "16:9", "9:16" or "1:1".
    pub format: String,
    /// The MP4.
    pub asset: AssetLink,
}

/// What a finished run made.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputsView {
    /// The 480p preview.
    pub preview: AssetLink,
    /// One video per format.
    pub videos: Vec<VideoView>,
    /// SubRip captions.
    pub srt: AssetLink,
    /// WebVTT captions.
    pub vtt: AssetLink,
    /// Thumbnails of the final scenes.
    pub contact_sheet: AssetLink,
}

/// What the run's model calls cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostView {
    /// In US dollars.
    pub usd: f64,
    /// Model calls.
    pub calls: usize,
    /// Of which served from the generation cache.
    pub cached: usize,
    /// Every call.
    pub ledger: Vec<LedgerEntry>,
    /// What the last round of pictures, clips and narration was expected to cost before it was
    /// made: `usd`, `spent_before`, `budget` and each expected call (none: nothing paid was
    /// expected).
    #[schema(value_type = Option<Object>)]
    pub estimate: Option<Value>,
}

/// One model call.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntry {
    /// The node that called.
    pub node: String,
    /// The scene, for per-scene calls.
    pub scene: Option<usize>,
    /// What was asked: image, speech, music, vision, text.
    pub capability: String,
    /// The model, as provider/model.
    pub model: String,
    /// In US dollars.
    pub usd: f64,
    /// Served from the generation cache.
    pub cached: bool,
}

/// A run in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// Its id, status, prompt, version and times.
    #[serde(flatten)]
    pub summary: RunSummary,
    /// Why it failed, for people (details stay in the server's log).
    pub error: Option<String>,
    /// The open question when waiting: text, issues and choices.
    #[schema(value_type = Option<Object>)]
    pub question: Option<Value>,
    /// The structured request.
    #[schema(value_type = Option<Object>)]
    pub intent: Option<Value>,
    /// The models this run uses, by capability (`{"provider", "model"}` each; never keys).
    #[schema(value_type = Option<Object>)]
    pub models: Option<Value>,
    /// The plan.
    pub plan: Option<PlanView>,
    /// What happens in each scene, the title, description and hashtags, once written.
    #[schema(value_type = Option<Object>)]
    pub story: Option<Value>,
    /// The critic's latest issues.
    #[schema(value_type = Vec<Object>)]
    pub issues: Vec<Value>,
    /// The videos, when finished.
    pub outputs: Option<OutputsView>,
    /// What it cost so far.
    pub cost: CostView,
    /// Things to know (no narration, music shorter than asked, …).
    pub notices: Vec<String>,
    /// The soundtrack and its beats, once analysed.
    pub music: Option<MusicView>,
    /// Every version of this video, this one included, by version.
    pub versions: Vec<VersionView>,
}

fn run_view(run: &StoredRun, thread: Option<montage_graph::ThreadState<RunState>>) -> RunView {
    let error = (run.status == RunStatus::Failed)
        .then(|| "the run stopped on an error; the server's log has the details".to_owned());
    let mut view = RunView {
        summary: RunSummary::from(run),
        error,
        question: None,
        intent: None,
        models: None,
        plan: None,
        story: None,
        issues: Vec::new(),
        outputs: None,
        cost: CostView {
            usd: 0.0,
            calls: 0,
            cached: 0,
            ledger: Vec::new(),
            estimate: None,
        },
        notices: Vec::new(),
        music: None,
        versions: Vec::new(),
    };
    let Some(thread) = thread else {
        return view;
    };
    let state = &thread.state;
    view.summary.status = crate::worker::status_now(run, &thread).as_str().to_owned();
    if view.summary.status == RunStatus::Waiting.as_str() {
        view.question = thread.interrupt.as_ref().map(|i| i.question.clone());
    }
    view.intent = state
        .intent
        .as_ref()
        .and_then(|i| serde_json::to_value(i).ok());
    view.models = serde_json::to_value(&state.models).ok();
    view.story = state
        .story
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok());
    let issues = state
        .reviews
        .last()
        .map(|r| r.issues.clone())
        .unwrap_or_default();
    let to_json = |issue: &montage_models::Issue| serde_json::to_value(issue).unwrap_or_default();
    view.issues = issues.iter().map(to_json).collect();
    let clip = |k: usize| state.assets.get(&k).and_then(|a| a.clip.as_ref());
    view.plan = state.plan.as_ref().map(|plan| PlanView {
        duration: plan.duration,
        bpm: plan.bpm,
        scenes: plan
            .scenes
            .iter()
            .enumerate()
            .map(|(k, scene)| SceneView {
                index: k,
                start: scene.start,
                end: scene.end,
                beats: scene.beats,
                section: scene.section.clone(),
                source: match scene.source {
                    SceneSource::Generated => "generated".into(),
                    SceneSource::Upload { .. } => "upload".into(),
                },
                prompt: state.prompts.get(&k).map(|p| p.prompt.clone()),
                thumbnail: state.assets.get(&k).map(|a| AssetLink::from(&a.object)),
                model: state
                    .assets
                    .get(&k)
                    .and_then(|a| a.model.as_ref())
                    .map(ToString::to_string),
                clip: clip(k).map(|c| AssetLink::from(&c.object)),
                clip_model: clip(k).map(|c| c.model.to_string()),
                issues: issues
                    .iter()
                    .filter(|i| i.scene == k)
                    .map(to_json)
                    .collect(),
            })
            .collect(),
    });
    view.outputs = state.outputs.as_ref().map(|o| OutputsView {
        preview: AssetLink::from(&o.preview),
        videos: o
            .videos
            .iter()
            .map(|v| VideoView {
                format: v.format.ratio().to_owned(),
                asset: AssetLink::from(&v.object),
            })
            .collect(),
        srt: AssetLink::from(&o.srt),
        vtt: AssetLink::from(&o.vtt),
        contact_sheet: AssetLink::from(&o.contact_sheet),
    });
    view.cost = CostView {
        usd: state.cost.iter().map(|c| c.usd).sum(),
        calls: state.cost.len(),
        cached: state.cost.iter().filter(|c| c.cached).count(),
        ledger: state
            .cost
            .iter()
            .map(|c| LedgerEntry {
                node: c.node.clone(),
                scene: c.scene,
                capability: c.capability.clone(),
                model: c.model.to_string(),
                usd: c.usd,
                cached: c.cached,
            })
            .collect(),
        estimate: state
            .estimate
            .as_ref()
            .filter(|e| e.usd > 0.0)
            .and_then(|e| serde_json::to_value(e).ok()),
    };
    view.notices = state.all_notices();
    view.music = state
        .music
        .as_ref()
        .zip(state.grid.as_ref())
        .map(|(music, grid)| MusicView {
            audio: AssetLink::from(&music.object),
            source: match music.source {
                MusicSource::Uploaded { .. } => "uploaded".into(),
                MusicSource::Generated { .. } => "generated".into(),
            },
            duration: grid.duration,
            bpm: grid.bpm,
            meter: grid.meter,
            beats: grid.beats.clone(),
            downbeats: grid.downbeats.clone(),
            waveform: waveform(&grid.energy.values, WAVEFORM_POINTS),
            sections: grid
                .sections
                .iter()
                .filter_map(|s| serde_json::to_value(s).ok())
                .collect(),
        });
    view
}

/// The full view of `owner`'s run `id`.
async fn view_of(shared: &AppState, owner: &str, id: &str) -> Result<RunView, ApiError> {
    let run = shared.workers.run(owner, id).await?;
    let thread = match shared.workers.thread(id).await {
        Ok(thread) => Some(thread),
        Err(montage_graph::GraphError::ThreadNotFound(_)) => None,
        Err(error) => return Err(ApiError::internal(&error)),
    };
    let mut view = run_view(&run, thread);
    view.versions = shared
        .workers
        .app()
        .database
        .run_versions(id)
        .await?
        .iter()
        .map(|run| VersionView {
            id: run.id.clone(),
            version: run.version,
            // This run's status may be ahead of the stored one (see run_view).
            status: match run.id == id {
                true => view.summary.status.clone(),
                false => run.status.as_str().to_owned(),
            },
        })
        .collect();
    Ok(view)
}

/// Start a run.
#[utoipa::path(post, path = "/api/runs", tag = "runs", request_body = CreateRun,
    responses(
        (status = 201, description = "Queued", body = RunView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "An upload it names does not exist", body = ErrorBody),
        (status = 422, description = "Not a run Montage can make", body = ErrorBody),
    ))]
pub async fn create_run(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Body(body): Body<CreateRun>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let prompt = request::check_prompt(&body.prompt, body.duration).map_err(request_error)?;
    if body.images.len() > request::MAX_IMAGES {
        return Err(ApiError::invalid(format!(
            "at most {} images per video",
            request::MAX_IMAGES
        )));
    }
    let formats = bodies::formats(body.formats.as_ref())?;
    let audio = match &body.audio {
        Some(id) => Some(shared.workers.upload(&user.id, id, Some("audio")).await?),
        None => None,
    };
    let mut images = Vec::with_capacity(body.images.len());
    for id in &body.images {
        images.push(shared.workers.upload(&user.id, id, Some("image")).await?);
    }
    let app = shared.workers.app();
    let mut config = app.config.clone();
    if let Some(max) = body.max_iterations {
        config.pipeline.max_iterations = max;
    }
    if let Some(policy) = body.feedback {
        config.pipeline.feedback = policy;
    }
    if let Some(policy) = body.storyboard {
        config.pipeline.storyboard = policy;
    }
    // The server's budget is the most a run may ask for: its keys pay.
    if let Some(budget) = body.budget_usd {
        config.pipeline.budget_usd = Some(match config.pipeline.budget_usd {
            Some(ceiling) => budget.min(ceiling),
            None => budget,
        });
    }
    if let Some(choice) = &body.models {
        config.models = config
            .models
            .chosen(choice, true)
            .map_err(ApiError::invalid)?;
    }
    config
        .check()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let request = RunRequest {
        prompt,
        audio,
        images,
        formats,
        duration: body.duration,
        seed: body.seed.unwrap_or(1),
        overrides: bodies::overrides(body.category, body.mood, body.pace, body.style)?,
    };
    let state = app.new_state(request, config).await?;
    let run = shared.workers.submit(&user.id, state).await?;
    Ok((StatusCode::CREATED, Json(run_view(&run, None))))
}

/// List runs, newest first.
#[utoipa::path(get, path = "/api/runs", tag = "runs", params(ListRuns),
    responses((status = 200, description = "Runs, newest first", body = Vec<RunSummary>)))]
pub async fn list_runs(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Query(query): Query<ListRuns>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "limit is 1–200",
        ));
    }
    let runs = shared
        .workers
        .app()
        .database
        .list_runs(&user.id, limit, query.before)
        .await?;
    Ok(Json(runs.iter().map(RunSummary::from).collect()))
}

/// One run: status, plan, scenes with thumbnails, the critic's issues, outputs, cost.
#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 404, description = "No such run", body = ErrorBody),
    ))]
pub async fn get_run(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(view_of(&shared, &user.id, &id).await?))
}

/// Answer the run's open question (the critic's, or the storyboard's): `{"action":"accept"}`,
/// `{"action":"skip"}` (the critic's only),
/// `{"action":"regenerate","scenes":[2],"instruction":"brighter"}` (scenes from 0),
/// `{"action":"edit","pace":"slow","mood":"calm","duration":20}`,
/// `{"action":"budget","usd":1.5}` (the storyboard's), or `{"action":"cancel"}` (the run is
/// cancelled).
#[utoipa::path(post, path = "/api/runs/{id}/feedback", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    request_body(content = crate::pipeline::FeedbackAnswer, description = "The answer"),
    responses(
        (status = 202, description = "Answered; the run goes on", body = RunView),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "The run is not waiting for an answer", body = ErrorBody),
        (status = 422, description = "Not an answer to the question", body = ErrorBody),
    ))]
pub async fn answer_run(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    Body(answer): Body<crate::pipeline::FeedbackAnswer>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let answer = serde_json::to_value(answer).map_err(|e| ApiError::internal(&e))?;
    shared.workers.answer(&user.id, &id, answer).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(view_of(&shared, &user.id, &id).await?),
    ))
}

/// Cancel a queued, waiting or running run.
#[utoipa::path(post, path = "/api/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "Cancelled", body = RunView),
        (status = 202, description = "Running: it stops at its next safe point", body = RunView),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "The run has already ended", body = ErrorBody),
    ))]
pub async fn cancel_run(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let status = match shared.workers.cancel(&user.id, &id).await? {
        Cancelled::Now => StatusCode::OK,
        Cancelled::Requested => StatusCode::ACCEPTED,
    };
    Ok((status, Json(view_of(&shared, &user.id, &id).await?)))
}

/// Delete a run and every object only it used (pictures, videos, captions); other versions
/// of the video keep theirs. Refused while a version of the video is still being made.
#[utoipa::path(delete, path = "/api/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "Deleted: what was removed", body = DeletedView),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "A version of the video is still being made", body = ErrorBody),
    ))]
pub async fn delete_run(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<Json<DeletedView>, ApiError> {
    let swept = shared.workers.delete(&user.id, &id).await?;
    Ok(Json(DeletedView {
        objects: swept.objects,
        bytes: swept.bytes,
        kept_recent: swept.kept_recent,
    }))
}

/// What deleting a run removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedView {
    /// Objects deleted.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Objects no longer used but written within the grace period: a later sweep deletes them.
    pub kept_recent: usize,
}

/// Make a new version of a run with an instruction and/or changed options; what did not
/// change is reused, not generated again.
#[utoipa::path(post, path = "/api/runs/{id}/revise", tag = "runs", request_body = ReviseRun,
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 201, description = "The new version, queued", body = RunView),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "The run has not stopped yet", body = ErrorBody),
        (status = 422, description = "No change, or an impossible one", body = ErrorBody),
    ))]
pub async fn revise_run(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    Body(body): Body<ReviseRun>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    if body
        .instruction
        .as_deref()
        .is_some_and(|i| i.trim().is_empty())
    {
        return Err(ApiError::invalid(
            "the instruction is empty: say what to change, or leave it out",
        ));
    }
    let changes = Changes {
        instruction: body.instruction,
        formats: bodies::formats(body.formats.as_ref())?,
        duration: body.duration,
        audio: None,
        overrides: bodies::overrides(body.category, body.mood, body.pace, body.style)?,
    };
    let run = shared.workers.revise(&user.id, &id, changes).await?;
    // The chats making this video follow its newest version.
    for chat in shared
        .workers
        .app()
        .database
        .follow_version(&run.id)
        .await?
    {
        shared.chats.send(&chat, ChatEvent::Run(run.id.clone()));
    }
    Ok((StatusCode::CREATED, Json(run_view(&run, None))))
}

#[cfg(test)]
mod tests {
    use super::waveform;

    #[test]
    fn a_waveform_keeps_the_peak_of_each_stretch() {
        let values: Vec<f64> = (0..1000).map(|k| f64::from(k % 10) / 10.0).collect();
        let points = waveform(&values, 100);
        assert_eq!(points.len(), 100);
        assert!(points.iter().all(|v| (*v - 0.9).abs() < 1e-9), "{points:?}");
        // A lone loud moment is not averaged away.
        let mut quiet = vec![0.0; 1234];
        quiet[777] = 1.0;
        let points = waveform(&quiet, 600);
        assert_eq!(points.len(), 600);
        assert_eq!(points.iter().filter(|v| **v == 1.0).count(), 1);
        // Short curves come back as they are.
        assert_eq!(waveform(&[0.1, 0.5], 600), vec![0.1, 0.5]);
    }
}
