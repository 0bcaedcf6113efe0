//! The graph's nodes: intent, analyze, plan, critic, feedback, compose (story, prompts,
//! storyboard, assets and continuity have their own modules).

use super::events::{MusicOrigin, PipelineEvent};
use super::plan;
use super::state::{
    CostEntry, CriticReport, Cut, FeedbackAnswer, MAX_INSTRUCTION_CHARS, Music, MusicSource,
    Outputs, Plan, RenderedVideo, RunState, SceneIndex, SceneSource, Update,
};
use super::templates::{TemplateError, Templates};
use super::timeline;
use crate::objects::{ObjectError, ObjectRef, Objects};
use crate::providers::{ProviderError, Providers, Registry};
use crate::store::{Database, StoreError};
use minijinja::context;
use montage_audio::{BeatGrid, EnergyCurve, Section, SectionKind};
use montage_compositor::{CancelToken, Compositor, RenderTarget};
use montage_critic::frames;
use montage_graph::{Command, NodeContext, NodeError};
use montage_models::local::{INTENT_SCHEMA, palette};
use montage_models::{
    DURATION_RANGE, FramePosition, Intent, Issue, Message, ModelError, ModelId, MusicRequest,
    SceneBrief, Severity, SuggestedFix, TextRequest, VisionFrame, VisionRequest,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// What the nodes use besides the state.
pub struct Services {
    /// The models: the server's, and those runs chose.
    pub models: Arc<Registry>,
    /// The media store.
    pub objects: Objects,
    /// The database (the generation cache).
    pub database: Database,
    /// The prompt templates.
    pub templates: Templates,
    /// The compositor's segment cache.
    pub segments: PathBuf,
    /// Scratch space for renders.
    pub scratch: PathBuf,
}

pub(super) type NodeResult = Result<Command<Update>, NodeError>;

pub(super) fn model_error(what: &str, error: ModelError) -> NodeError {
    if error.is_transient() {
        NodeError::transient(format!("{what}: {error}"))
    } else {
        NodeError::permanent(format!("{what}: {error}"))
    }
}

/// The models `state`'s run uses: its own choice of text and vision models, or the server's.
pub(super) async fn run_models(
    services: &Services,
    state: &RunState,
) -> Result<Providers, NodeError> {
    services
        .models
        .of(&state.config.models)
        .await
        .map_err(|error| match &error {
            ProviderError::Remote { source, .. } if source.is_transient() => {
                NodeError::transient(format!("the run's models: {error}"))
            }
            _ => NodeError::permanent(format!("the run's models: {error}")),
        })
}

pub(super) fn store_error(error: ObjectError) -> NodeError {
    NodeError::transient(error)
}

pub(super) fn template_error(error: TemplateError) -> NodeError {
    NodeError::permanent(error)
}

pub(super) fn missing(what: &str) -> NodeError {
    NodeError::permanent(format!("the run has no {what} yet"))
}

/// Seed of one scene's take: changes with the scene and each new take, so regenerating
/// makes a new picture and an unchanged scene makes the same one.
pub fn scene_seed(seed: u64, scene: usize, take: u32) -> u64 {
    let digest = Sha256::digest(format!("{seed}/{scene}/{take}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The generation cache's key for a request of `owner`'s (none: a run nobody owns).
pub(super) fn request_hash(
    owner: Option<&str>,
    capability: &str,
    model: &ModelId,
    request: &impl Serialize,
) -> String {
    let mut key = json!({ "capability": capability, "model": model, "request": request });
    if let Some(owner) = owner {
        key["owner"] = json!(owner);
    }
    hex::encode(Sha256::digest(key.to_string().as_bytes()))
}

/// Stops a paid job at its provider when the node that waits for it is dropped because the
/// run was cancelled. A crash or a shutdown drops nothing this way: those jobs are resumed.
pub(super) struct StopOnCancel {
    ctx: NodeContext,
    stop: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl StopOnCancel {
    /// Stops `job_key`'s job through `model`'s `cancel` if the run is cancelled while this
    /// is held.
    pub(super) fn new<M, F>(
        ctx: &NodeContext,
        model: Arc<M>,
        job_key: &str,
        cancel: F,
    ) -> StopOnCancel
    where
        M: ?Sized + Send + Sync + 'static,
        F: for<'a> Fn(
                &'a M,
                &'a str,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<bool, ModelError>> + Send + 'a>,
            > + Send
            + 'static,
    {
        let key = job_key.to_owned();
        StopOnCancel {
            ctx: ctx.clone(),
            stop: Some(Box::pin(async move {
                if let Err(error) = cancel(&model, &key).await {
                    tracing::warn!(%error, "a paid job could not be stopped at its provider");
                }
            })),
        }
    }
}

impl Drop for StopOnCancel {
    fn drop(&mut self) {
        if !self.ctx.is_cancelled() {
            return;
        }
        if let (Some(stop), Ok(runtime)) = (self.stop.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(stop);
        }
    }
}

pub(super) fn database_error(error: StoreError) -> NodeError {
    NodeError::transient(error)
}

/// intent: the person's words → [`Intent`], then the request's own options on top.
pub async fn intent(state: Arc<RunState>, services: Arc<Services>) -> NodeResult {
    let request = &state.request;
    let uploads: Vec<String> = request
        .audio
        .iter()
        .chain(&request.images)
        .map(|u| u.name.clone())
        .collect();
    let (system, template) = services
        .templates
        .render(
            "intent.system",
            context! {
                default_duration => montage_models::DEFAULT_DURATION,
                min_duration => DURATION_RANGE.start(),
                max_duration => DURATION_RANGE.end(),
                uploads => uploads,
            },
        )
        .map_err(template_error)?;
    let text = TextRequest {
        messages: vec![Message::system(system), Message::user(&request.prompt)],
        seed: Some(request.seed),
        temperature: Some(0.0),
        ..TextRequest::default()
    };
    let text_model = run_models(&services, &state).await?.text;
    let (mut intent, response) =
        montage_models::structured::<Intent>(text_model.as_ref(), INTENT_SCHEMA, text)
            .await
            .map_err(|e| model_error("reading the request", e))?;
    let mut notices = response.notices.clone();
    if let Some(formats) = &request.formats {
        intent.formats = formats.clone();
    }
    if intent.formats.is_empty() {
        intent.formats.push(montage_models::Format::Landscape);
    }
    if let Some(duration) = request.duration {
        intent.duration = duration;
    }
    request.overrides.apply(&mut intent);
    if !DURATION_RANGE.contains(&intent.duration) {
        let clamped = intent
            .duration
            .clamp(*DURATION_RANGE.start(), *DURATION_RANGE.end());
        notices.push(format!(
            "{:.0} s is outside what Montage makes; the video is {clamped:.0} s",
            intent.duration
        ));
        intent.duration = clamped;
    }
    intent.palette.retain(|c| palette::parse_hex(c).is_some());
    if intent.palette.is_empty() {
        intent.palette = palette::mood_palette(intent.mood)
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
    }
    let mut cost: Vec<CostEntry> = CostEntry::wasted("intent", "text", &response.wasted).collect();
    cost.push(CostEntry {
        node: "intent".into(),
        scene: None,
        capability: "text".into(),
        model: response.model,
        usd: response.cost_usd,
        tokens: response.usage,
        cached: false,
    });
    Ok(Command::update(Update {
        templates: vec![template],
        intent: Some(intent),
        cost,
        notices,
        ..Update::default()
    }))
}

/// A steady grid at `bpm` over `seconds`, for audio without a beat to cut on.
fn steady_grid(bpm: f64, seconds: f64) -> BeatGrid {
    let period = 60.0 / bpm;
    let beats: Vec<f64> = (0..)
        .map(|i| f64::from(i) * period)
        .take_while(|&t| t < seconds)
        .collect();
    BeatGrid {
        duration: seconds,
        bpm,
        tempo_confidence: 0.0,
        tempo_curve: Vec::new(),
        meter: 4,
        downbeats: beats.iter().step_by(4).copied().collect(),
        beat_energy: vec![0.6; beats.len()],
        beats,
        onsets: Vec::new(),
        energy: EnergyCurve {
            rate: montage_audio::ENERGY_RATE,
            values: Vec::new(),
        },
        sections: vec![Section {
            start: 0.0,
            end: seconds,
            kind: SectionKind::Main,
            energy: 0.6,
        }],
    }
}

async fn analyze_object(objects: &Objects, object: &ObjectRef) -> Result<BeatGrid, NodeError> {
    let path = objects.local_path(object);
    tokio::task::spawn_blocking(move || montage_audio::analyze_file(&path))
        .await
        .map_err(|e| NodeError::permanent(format!("the analysis stopped: {e}")))?
        .map_err(|e| NodeError::permanent(format!("analysing the music: {e}")))
}

/// analyze: the person's music, or a bed made to the mood → [`BeatGrid`].
pub async fn analyze(
    state: Arc<RunState>,
    ctx: NodeContext,
    services: Arc<Services>,
) -> NodeResult {
    let intent = state.intent.as_ref().ok_or_else(|| missing("intent"))?;
    let mut notices = Vec::new();
    let mut cost = Vec::new();
    let (music, mut grid) = match &state.request.audio {
        Some(upload) => {
            let grid = analyze_object(&services.objects, &upload.object).await?;
            let music = Music {
                object: upload.object.clone(),
                source: MusicSource::Uploaded {
                    name: upload.name.clone(),
                },
            };
            (music, grid)
        }
        None => {
            let bpm = intent.mood.tempo();
            let mut request = MusicRequest {
                prompt: format!("{} {}", intent.mood.word(), intent.style.join(" ")),
                bpm,
                meter: 4,
                seconds: intent.duration + 4.0 * 60.0 / bpm,
                seed: state.request.seed,
                job_key: None,
            };
            let composer = &services.models.configured().music;
            // A paid bed for this request is submitted once, whatever happens to the run.
            request.job_key = Some(request_hash(
                state.owner.as_deref(),
                "music",
                &composer.id(),
                &request,
            ));
            let _stop = request.job_key.as_deref().map(|key| {
                StopOnCancel::new(&ctx, Arc::clone(composer), key, |model, key| {
                    model.cancel(key)
                })
            });
            let made = composer
                .compose(request)
                .await
                .map_err(|e| model_error("making music", e))?;
            cost.push(CostEntry {
                node: "analyze".into(),
                scene: None,
                capability: "music".into(),
                model: made.model.clone(),
                usd: made.cost_usd,
                tokens: Default::default(),
                cached: false,
            });
            let object = services
                .objects
                .put("music", "audio/wav", made.wav)
                .await
                .map_err(store_error)?;
            let grid = analyze_object(&services.objects, &object).await?;
            let music = Music {
                object,
                source: MusicSource::Generated {
                    model: made.model,
                    bpm,
                },
            };
            (music, grid)
        }
    };
    if grid.beats.len() < 4 {
        let bpm = intent.mood.tempo();
        notices.push(format!(
            "no steady beat was found in the music; cuts follow a steady {bpm:.0} BPM grid"
        ));
        grid = steady_grid(bpm, grid.duration);
    }
    // Announced so the music can be played while the run goes on.
    PipelineEvent::MusicReady {
        object: music.object.clone(),
        source: match music.source {
            MusicSource::Uploaded { .. } => MusicOrigin::Uploaded,
            MusicSource::Generated { .. } => MusicOrigin::Generated,
        },
        bpm: grid.bpm,
    }
    .emit(&ctx);
    Ok(Command::update(Update {
        music: Some(music),
        grid: Some(grid),
        cost,
        notices,
        ..Update::default()
    }))
}

/// plan: scenes on the beat grid.
pub async fn plan(state: Arc<RunState>) -> NodeResult {
    let intent = state.intent.as_ref().ok_or_else(|| missing("intent"))?;
    let grid = state.grid.as_ref().ok_or_else(|| missing("beat grid"))?;
    let (plan, notices) = plan::plan(intent, grid, state.request.images.len(), state.request.seed)
        .map_err(NodeError::permanent)?;
    let pending = (0..plan.scenes.len()).collect();
    Ok(Command::update(Update {
        plan: Some(plan),
        reset_scenes: true,
        pending: Some(pending),
        notices,
        ..Update::default()
    }))
}

/// Whether an issue is put to the person (the rest are recorded only).
pub fn actionable(issue: &Issue) -> bool {
    issue.severity >= Severity::Medium && issue.fix != SuggestedFix::Keep
}

/// critic: the first and last frame of every scene, as the main format frames them, and the
/// contact sheet, shown to the vision model.
pub async fn critic(state: Arc<RunState>, ctx: NodeContext, services: Arc<Services>) -> NodeResult {
    let intent = state.intent.as_ref().ok_or_else(|| missing("intent"))?;
    let plan = state.plan.as_ref().ok_or_else(|| missing("plan"))?;
    let frame = intent
        .formats
        .first()
        .map_or((1920, 1080), |f| f.dimensions());
    // Each scene's frames on the blocking pool, all at once.
    let mut grabs = Vec::with_capacity(plan.scenes.len());
    for (k, scene) in plan.scenes.iter().enumerate() {
        let asset = state
            .assets
            .get(&k)
            .ok_or_else(|| NodeError::permanent(format!("scene {} has no picture", k + 1)))?;
        let bytes = services
            .objects
            .get(&asset.object)
            .await
            .map_err(store_error)?;
        let (from, to) = timeline::motion(scene);
        let region = |r: montage_compositor::Rect| [r.x, r.y, r.w, r.h];
        let (from, to) = (region(from), region(to));
        grabs.push(tokio::task::spawn_blocking(
            move || -> Result<_, NodeError> {
                let failed = |e: image::ImageError| {
                    NodeError::permanent(format!("scene {}'s picture: {e}", k + 1))
                };
                let (first, last) =
                    frames::first_and_last(&bytes, from, to, frame).map_err(failed)?;
                let encoded = [
                    VisionFrame {
                        scene: k,
                        position: FramePosition::First,
                        image: frames::png(&first).map_err(failed)?,
                    },
                    VisionFrame {
                        scene: k,
                        position: FramePosition::Last,
                        image: frames::png(&last).map_err(failed)?,
                    },
                ];
                Ok((encoded, first))
            },
        ));
    }
    let mut frames = Vec::with_capacity(2 * grabs.len());
    let mut thumbs = Vec::with_capacity(grabs.len());
    for grab in futures::future::join_all(grabs).await {
        let (encoded, first) =
            grab.map_err(|e| NodeError::permanent(format!("the frame grabber stopped: {e}")))??;
        frames.extend(encoded);
        thumbs.push(first);
    }
    let sheet = tokio::task::spawn_blocking(move || frames::png(&frames::contact_sheet(&thumbs)))
        .await
        .map_err(|e| NodeError::permanent(format!("the contact sheet stopped: {e}")))?
        .map_err(NodeError::permanent)?;
    let contact_sheet = services
        .objects
        .put("sheets", "image/png", sheet)
        .await
        .map_err(store_error)?;
    let (instruction, template) = services
        .templates
        .render(
            "critic.instruction",
            context! { scenes => plan.scenes.len(), mood => intent.mood.word(), subject => intent.subject.clone(), palette => intent.palette.clone() },
        )
        .map_err(template_error)?;
    let briefs = plan
        .scenes
        .iter()
        .enumerate()
        .map(|(k, s)| SceneBrief {
            prompt: state
                .prompts
                .get(&k)
                .map(|p| p.prompt.clone())
                .unwrap_or_default(),
            generated: s.source == SceneSource::Generated,
            soft_cut_after: s.cut_after == Cut::Crossfade,
        })
        .collect();
    let critique = run_models(&services, &state)
        .await?
        .vision
        .critique(VisionRequest {
            instruction,
            scenes: briefs,
            palette: intent.palette.clone(),
            frames,
        })
        .await
        .map_err(|e| model_error("the critic", e))?;
    PipelineEvent::CriticReport {
        round: state.round,
        issues: critique.issues.clone(),
        contact_sheet: contact_sheet.clone(),
    }
    .emit(&ctx);
    let mut cost: Vec<CostEntry> =
        CostEntry::wasted("critic", "vision", &critique.wasted).collect();
    cost.push(CostEntry {
        node: "critic".into(),
        scene: None,
        capability: "vision".into(),
        model: critique.model.clone(),
        usd: critique.cost_usd,
        tokens: critique.usage,
        cached: false,
    });
    Ok(Command::update(Update {
        notices: critique.notices.clone(),
        templates: vec![template],
        cost,
        review: Some(CriticReport {
            round: state.round,
            model: critique.model,
            issues: critique.issues,
            contact_sheet,
        }),
        ..Update::default()
    }))
}

/// Where the run goes after the critic: the question when something is worth fixing and
/// rounds are left, else the final video.
pub fn after_critic(state: &RunState) -> &'static str {
    let worth_fixing = state
        .reviews
        .last()
        .is_some_and(|r| r.issues.iter().any(actionable));
    let fix_rounds_done = state.round.saturating_sub(1);
    if worth_fixing && fix_rounds_done < state.config.pipeline.max_iterations {
        "feedback"
    } else {
        "compose"
    }
}

/// feedback: asks the person about the critic's issues and waits.
pub async fn feedback(state: Arc<RunState>, services: Arc<Services>) -> NodeResult {
    let review = state
        .reviews
        .last()
        .ok_or_else(|| missing("critic report"))?;
    let issues: Vec<&Issue> = review.issues.iter().filter(|i| actionable(i)).collect();
    let (text, template) = services
        .templates
        .render(
            "feedback.question",
            context! { issues => minijinja::value::Serde(&issues), round => state.round, max_rounds => state.config.pipeline.max_iterations + 1 },
        )
        .map_err(template_error)?;
    let question = json!({
        "text": text,
        "round": state.round,
        "issues": issues,
        "choices": ["accept", "regenerate", "edit", "skip"],
    });
    Ok(Command::update(Update {
        templates: vec![template],
        ..Update::default()
    })
    .interrupt(question))
}

/// Turns an answer to the critic's question into the changes it asks for; a malformed
/// answer or one naming scenes that cannot be regenerated is refused and the run keeps waiting.
pub fn answer(state: &RunState, answer: serde_json::Value) -> Result<Update, NodeError> {
    let answer: FeedbackAnswer = serde_json::from_value(answer)
        .map_err(|e| NodeError::permanent(format!("not an answer to the question: {e}")))?;
    let plan = state.plan.as_ref().ok_or_else(|| missing("plan"))?;
    let mut update = Update::default();
    match &answer {
        FeedbackAnswer::Accept {} => {
            let review = state
                .reviews
                .last()
                .ok_or_else(|| missing("critic report"))?;
            let mut new_plan = plan.clone();
            let mut pending = Vec::new();
            // One instruction per scene, from its most severe issue: two fixes saying
            // "brighter" must not make it twice as bright.
            let mut chosen: std::collections::BTreeMap<usize, &Issue> =
                std::collections::BTreeMap::new();
            for issue in review.issues.iter().filter(|i| actionable(i)) {
                match &issue.fix {
                    SuggestedFix::Regenerate { .. } => {
                        let keep = chosen
                            .get(&issue.scene)
                            .is_some_and(|c| c.severity >= issue.severity);
                        if !keep {
                            chosen.insert(issue.scene, issue);
                        }
                    }
                    SuggestedFix::Crossfade => {
                        let last = new_plan.scenes.len().saturating_sub(1);
                        if let Some(before) = issue.scene.checked_sub(1) {
                            new_plan.scenes[before].cut_after = Cut::Crossfade;
                        }
                        if issue.scene < last {
                            new_plan.scenes[issue.scene].cut_after = Cut::Crossfade;
                        }
                    }
                    SuggestedFix::Keep => {}
                }
            }
            for (scene, issue) in chosen {
                if let SuggestedFix::Regenerate { instruction } = &issue.fix {
                    pending.push(scene);
                    update.new_takes.push(scene);
                    update
                        .instructions
                        .entry(scene)
                        .or_default()
                        .push(instruction.clone());
                }
            }
            pending.sort_unstable();
            update.pending = Some(pending);
            if new_plan != *plan {
                update.plan = Some(new_plan);
            }
        }
        FeedbackAnswer::Regenerate {
            scenes,
            instruction,
        } => {
            let pending = retaken(plan, scenes, instruction, &mut update)?;
            update.pending = Some(pending);
        }
        FeedbackAnswer::Edit { .. } => update.intent = Some(edited_intent(state, &answer)?),
        FeedbackAnswer::Skip {} => {}
        FeedbackAnswer::Cancel {} => {
            return Err(NodeError::permanent(
                "a cancel stops the run: it is not an answer the run goes on from",
            ));
        }
        FeedbackAnswer::Budget { .. } => {
            return Err(NodeError::permanent(
                "a budget is changed at the storyboard, before the pictures are made",
            ));
        }
    }
    update.answer = Some(answer);
    Ok(update)
}

/// The scenes a `Regenerate` answer names, each a new take with `instruction` added to its
/// prompt's instructions, in order; refused when it names none, a scene the video does not
/// have, or one of the person's own pictures (which has no prompt).
pub(super) fn retaken(
    plan: &Plan,
    scenes: &[SceneIndex],
    instruction: &str,
    update: &mut Update,
) -> Result<Vec<usize>, NodeError> {
    if scenes.is_empty() {
        return Err(NodeError::permanent(
            "name at least one scene to make again",
        ));
    }
    if instruction.chars().count() > MAX_INSTRUCTION_CHARS {
        return Err(NodeError::permanent(format!(
            "the instruction is longer than {MAX_INSTRUCTION_CHARS} characters"
        )));
    }
    for scene in scenes {
        match plan.scenes.get(scene.get()).map(|s| &s.source) {
            None => {
                return Err(NodeError::permanent(format!(
                    "there is no scene {} (the video has {})",
                    scene.number(),
                    plan.scenes.len()
                )));
            }
            Some(SceneSource::Upload { .. }) => {
                return Err(NodeError::permanent(format!(
                    "scene {} is your own image: it has no prompt to make again",
                    scene.number()
                )));
            }
            Some(SceneSource::Generated) => {}
        }
    }
    let mut chosen: Vec<usize> = scenes.iter().map(|s| s.get()).collect();
    chosen.sort_unstable();
    chosen.dedup();
    for &scene in &chosen {
        update.new_takes.push(scene);
        if !instruction.trim().is_empty() {
            update
                .instructions
                .entry(scene)
                .or_default()
                .push(instruction.trim().to_owned());
        }
    }
    Ok(chosen)
}

/// The run's intent with an `Edit` answer's pace, mood and duration; refused when it
/// changes nothing or names a length out of range.
pub(super) fn edited_intent(
    state: &RunState,
    answer: &FeedbackAnswer,
) -> Result<Intent, NodeError> {
    let mut intent = state.intent.clone().ok_or_else(|| missing("intent"))?;
    let FeedbackAnswer::Edit {
        pace,
        mood,
        duration,
    } = answer
    else {
        return Ok(intent);
    };
    if let Some(duration) = duration {
        if !DURATION_RANGE.contains(duration) {
            return Err(NodeError::permanent(format!(
                "{duration} s is outside {:.0}–{:.0} s",
                DURATION_RANGE.start(),
                DURATION_RANGE.end()
            )));
        }
        intent.duration = *duration;
    }
    if pace.is_none() && mood.is_none() && duration.is_none() {
        return Err(NodeError::permanent(
            "an edit needs a new pace, mood or duration",
        ));
    }
    intent.pace = pace.unwrap_or(intent.pace);
    intent.mood = mood.unwrap_or(intent.mood);
    Ok(intent)
}

/// Where the run goes after an answer.
pub fn after_feedback(state: &RunState) -> &'static str {
    match state.answers.last() {
        Some(
            FeedbackAnswer::Skip {} | FeedbackAnswer::Cancel {} | FeedbackAnswer::Budget { .. },
        )
        | None => "compose",
        Some(FeedbackAnswer::Edit { .. }) => "plan",
        Some(_) => "prompts",
    }
}

/// compose: the timeline → the 480p preview, then every format, captions and the contact sheet.
pub async fn compose(
    state: Arc<RunState>,
    ctx: NodeContext,
    services: Arc<Services>,
) -> NodeResult {
    let intent = state.intent.as_ref().ok_or_else(|| missing("intent"))?;
    let timeline = timeline::build(&state, &services.objects).map_err(NodeError::permanent)?;
    tracing::debug!(timeline = %serde_json::to_string(&timeline).unwrap_or_default(), "composing");
    std::fs::create_dir_all(&services.scratch).map_err(NodeError::transient)?;
    let scratch = tempfile::tempdir_in(&services.scratch).map_err(NodeError::transient)?;
    let target = RenderTarget::new(scratch.path(), "video");
    let compositor = Compositor::new().with_cache_dir(&services.segments);
    let cancel = CancelToken::new();
    let watcher = {
        let ctx = ctx.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            ctx.cancelled().await;
            cancel.cancel();
        })
    };
    let compositor_error = |e: montage_compositor::CompositorError| match e {
        montage_compositor::CompositorError::Cancelled => NodeError::cancelled(),
        other => NodeError::permanent(format!("rendering: {other}")),
    };
    let rendered = async {
        // The preview is stored and announced before the final encode starts, so a person
        // can watch it while the final videos render.
        let preview = {
            let (ctx, compositor, timeline, target, cancel) = (
                ctx.clone(),
                compositor.clone(),
                timeline.clone(),
                target.clone(),
                cancel.clone(),
            );
            tokio::task::spawn_blocking(move || {
                compositor.render_preview(
                    &timeline,
                    &target,
                    &|p| ctx.progress((p.percent / 100.0 * 0.2) as f32, "preview"),
                    &cancel,
                )
            })
            .await
            .map_err(|e| NodeError::permanent(format!("the compositor stopped: {e}")))?
            .map_err(compositor_error)?
        };
        let preview = services
            .objects
            .put_file("videos", "video/mp4", &preview.path)
            .await
            .map_err(store_error)?;
        PipelineEvent::PreviewReady {
            object: preview.clone(),
        }
        .emit(&ctx);
        let report = {
            let ctx = ctx.clone();
            tokio::task::spawn_blocking(move || {
                compositor.render(
                    &timeline,
                    &target,
                    &|p| ctx.progress((0.2 + p.percent / 100.0 * 0.8) as f32, "final video"),
                    &cancel,
                )
            })
            .await
            .map_err(|e| NodeError::permanent(format!("the compositor stopped: {e}")))?
            .map_err(compositor_error)?
        };
        Ok::<_, NodeError>((preview, report))
    }
    .await;
    watcher.abort();
    let (preview, report) = rendered?;
    let objects = &services.objects;
    let mut videos = Vec::new();
    for (format, output) in intent.formats.iter().zip(&report.outputs) {
        let object = objects
            .put_file("videos", "video/mp4", &output.path)
            .await
            .map_err(store_error)?;
        videos.push(RenderedVideo {
            format: *format,
            object,
        });
    }
    let sidecar = |extension: &str| {
        report
            .sidecars
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == extension))
            .cloned()
    };
    let srt = sidecar("srt")
        .ok_or_else(|| NodeError::permanent("the compositor wrote no SRT captions"))?;
    let vtt = sidecar("vtt")
        .ok_or_else(|| NodeError::permanent("the compositor wrote no WebVTT captions"))?;
    let srt = objects
        .put_file("captions", "application/x-subrip", &srt)
        .await
        .map_err(store_error)?;
    let vtt = objects
        .put_file("captions", "text/vtt", &vtt)
        .await
        .map_err(store_error)?;
    let review = state
        .reviews
        .last()
        .ok_or_else(|| missing("critic report"))?;
    let open: Vec<Issue> = review
        .issues
        .iter()
        .filter(|i| actionable(i))
        .cloned()
        .collect();
    let mut notices = Vec::new();
    if !open.is_empty() && !matches!(state.answers.last(), Some(FeedbackAnswer::Skip {})) {
        notices.push(format!(
            "finished after {} round{} of fixes with {} issue{} still open",
            state.round.saturating_sub(1),
            if state.round == 2 { "" } else { "s" },
            open.len(),
            if open.len() == 1 { "" } else { "s" }
        ));
    }
    let outputs = Outputs {
        preview,
        videos,
        srt,
        vtt,
        contact_sheet: review.contact_sheet.clone(),
    };
    PipelineEvent::FinalReady {
        outputs: outputs.clone(),
    }
    .emit(&ctx);
    Ok(Command::update(Update {
        outputs: Some(outputs),
        open_issues: Some(open),
        notices,
        ..Update::default()
    }))
}
