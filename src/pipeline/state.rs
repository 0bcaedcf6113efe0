//! The run state: references and decisions, never media bytes.

use crate::config::Config;
use crate::objects::ObjectRef;
use crate::providers::ResolvedModels;
use montage_audio::BeatGrid;
use montage_graph::{MergeError, State, StepWrites};
use montage_models::{Category, Format, Intent, Issue, ModelId, Mood, Pace, Usage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// A file the person brought, stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    /// The file's name as given (shown to people; never used as a path).
    pub name: String,
    /// The stored object.
    pub object: ObjectRef,
}

/// What a run was asked to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The person's words.
    pub prompt: String,
    /// Their music, if any.
    pub audio: Option<Upload>,
    /// Their images, in order.
    pub images: Vec<Upload>,
    /// Formats that override what the prompt says.
    pub formats: Option<Vec<Format>>,
    /// A length that overrides what the prompt says, in seconds.
    pub duration: Option<f64>,
    /// Seed of every generated thing.
    pub seed: u64,
    /// Choices that override what the prompt says (the web UI's prompt builder).
    #[serde(default)]
    pub overrides: IntentOverrides,
}

/// Parts of the intent the person chose outright; each replaces what was read from their words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntentOverrides {
    /// What kind of video.
    pub category: Option<Category>,
    /// The feeling.
    pub mood: Option<Mood>,
    /// How fast the cuts come.
    pub pace: Option<Pace>,
    /// Style words.
    pub style: Option<Vec<String>>,
}

impl IntentOverrides {
    /// Puts the chosen parts into `intent`.
    pub fn apply(&self, intent: &mut Intent) {
        if let Some(category) = self.category {
            intent.category = category;
        }
        if let Some(mood) = self.mood {
            intent.mood = mood;
        }
        if let Some(pace) = self.pace {
            intent.pace = pace;
        }
        if let Some(style) = &self.style {
            intent.style.clone_from(style);
        }
    }

    /// These choices, with `newer`'s on top.
    pub fn merged(&self, newer: &IntentOverrides) -> IntentOverrides {
        IntentOverrides {
            category: newer.category.or(self.category),
            mood: newer.mood.or(self.mood),
            pace: newer.pace.or(self.pace),
            style: newer.style.clone().or_else(|| self.style.clone()),
        }
    }

    /// Nothing is chosen.
    pub fn is_empty(&self) -> bool {
        *self == IntentOverrides::default()
    }
}

/// Where the soundtrack came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum MusicSource {
    /// The person's file.
    Uploaded {
        /// Its name.
        name: String,
    },
    /// Made for this run.
    Generated {
        /// By which model.
        model: ModelId,
        /// At which tempo.
        bpm: f64,
    },
}

/// The soundtrack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Music {
    /// The audio object.
    pub object: ObjectRef,
    /// Where it came from.
    pub source: MusicSource,
}

/// A framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shot {
    /// Far, establishing.
    Wide,
    /// Middle distance.
    Medium,
    /// Near, one subject filling the frame.
    CloseUp,
    /// Texture, very near.
    Detail,
    /// From above.
    Aerial,
}

/// How the camera moves over a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraMove {
    /// Moves in.
    PushIn,
    /// Moves out.
    PullOut,
    /// Slides left.
    PanLeft,
    /// Slides right.
    PanRight,
    /// Barely moves.
    Still,
}

/// The cut out of a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cut {
    /// A hard cut on the beat.
    Hard,
    /// A crossfade centred on the beat.
    Crossfade,
}

/// What a scene shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SceneSource {
    /// A generated picture.
    Generated,
    /// The person's image number `index`.
    Upload {
        /// Index into the request's images.
        index: usize,
    },
}

/// One planned scene, placed on the music.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedScene {
    /// Start, seconds (a beat, or 0).
    pub start: f64,
    /// End, seconds (a beat).
    pub end: f64,
    /// Beats it spans.
    pub beats: u32,
    /// Downbeats it spans, its accents.
    pub downbeats: u32,
    /// Whether it starts a new section on a downbeat: a big change.
    pub section_start: bool,
    /// The music's section it sits in (`intro`, `drop`, …).
    pub section: String,
    /// Mean energy of its beats, 0–1: 0.5 is the track's typical beat, 1 twice as loud.
    pub energy: f64,
    /// Its framing.
    pub shot: Shot,
    /// The camera.
    pub camera: CameraMove,
    /// Camera speed, 0 (still) to 1 (fast): tempo and energy.
    pub camera_speed: f64,
    /// The cut into the next scene.
    pub cut_after: Cut,
    /// What it shows.
    pub source: SceneSource,
}

/// The plan: scenes on the beat grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Total length, seconds (a beat).
    pub duration: f64,
    /// Tempo the plan was made at.
    pub bpm: f64,
    /// The scenes, in order, back to back from 0.
    pub scenes: Vec<PlannedScene>,
}

/// What happens in the video, scene by scene: written by the text model over the plan (which
/// fixed how many scenes there are and how long each is), or by the templates offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Story {
    /// Who wrote it: a text model, or `local/templates`.
    pub model: ModelId,
    /// The video's title.
    pub title: String,
    /// A sentence or two for the post.
    pub description: String,
    /// For the platforms its formats target, each starting with `#`.
    pub hashtags: Vec<String>,
    /// The look every scene shares (light, lens, colours by name), so the scenes read as
    /// one film.
    pub style_sheet: String,
    /// One per planned scene, in order.
    pub scenes: Vec<StoryScene>,
}

/// One scene of the story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryScene {
    /// What the camera sees.
    pub action: String,
    /// Words shown on screen.
    pub on_screen_text: Option<String>,
    /// The spoken line that starts in this scene (only when the video is narrated).
    pub narration: Option<String>,
    /// Whether it carries on the shot before it (the same place, the same moment): its clip
    /// then starts from the last frame of the one before.
    #[serde(default)]
    pub continues: bool,
}

/// One line of the script: captions always, narration when it is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptLine {
    /// The scene it starts in.
    pub scene: usize,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// What is said or shown.
    pub text: String,
}

/// A template used by a run: its id, declared version and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    /// Its id (`scene.image`).
    pub id: String,
    /// The version its header declares.
    pub version: u32,
    /// SHA-256 of its text, first 12 hex digits: changes with any edit.
    pub sha256: String,
}

/// A scene's generation prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenePrompt {
    /// What to show.
    pub prompt: String,
    /// What to avoid.
    pub negative: String,
    /// The prompt for a clip model, with the clip's length in beats.
    pub clip_prompt: String,
    /// Seed for this scene's generation.
    pub seed: u64,
    /// Instructions from the critic's fixes and the person's answers, oldest first.
    pub instructions: Vec<String>,
}

/// A scene's picture, generated or uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneAsset {
    /// The picture.
    pub object: ObjectRef,
    /// Hash of the request that made it (none for uploads).
    pub request_hash: Option<String>,
    /// The model that made it (none for uploads).
    pub model: Option<ModelId>,
    /// The generation round it comes from (1 = first).
    pub round: u32,
    /// The clip made from the picture, which the scene shows in its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<SceneClip>,
}

/// Where a run's storyboard stands. It is shown once per request, before the first
/// pictures, and again after each revision the person asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Storyboard {
    /// Whether it was approved (by the person, or by the run's policy).
    pub approved: bool,
    /// Revisions asked for before approval.
    pub revisions: u32,
    /// The sketches shown, by scene: drawn locally from each prompt, free.
    pub sketches: BTreeMap<usize, ObjectRef>,
    /// The person's last answer to it.
    #[serde(default)]
    pub answered: Option<FeedbackAnswer>,
}

/// A clip made from a scene's picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneClip {
    /// The MP4.
    pub object: ObjectRef,
    /// The model that made it.
    pub model: ModelId,
    /// Its length as made, seconds (at least the scene's; the compositor trims it).
    pub seconds: f64,
}

/// A narration line, spoken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpokenLine {
    /// The line's index in the script.
    pub line: usize,
    /// The speech.
    pub object: ObjectRef,
    /// Its length, seconds.
    pub seconds: f64,
    /// When each word is spoken, seconds into the speech, when its model says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<montage_models::SpokenWord>,
}

/// One model call in the cost ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEntry {
    /// The node that called.
    pub node: String,
    /// The scene, if per scene.
    pub scene: Option<usize>,
    /// What was asked (`image`, `speech`, …).
    pub capability: String,
    /// The model.
    pub model: ModelId,
    /// What it cost.
    pub usd: f64,
    /// Tokens in and out (none counted for models that do not bill by the token).
    #[serde(default)]
    pub tokens: Usage,
    /// Served from the generation cache (no call made).
    pub cached: bool,
}

/// What a round of pictures, clips and narration is expected to cost, before any of it is made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// US dollars, over the round.
    pub usd: f64,
    /// What the run had spent before the round.
    pub spent_before: f64,
    /// The most the run may spend in all (its own budget, or what its owner's monthly
    /// budget leaves, whichever is less), if it has a limit.
    pub budget: Option<f64>,
    /// The owner's monthly budget, when they have one.
    #[serde(default)]
    pub monthly: Option<MonthlyBudget>,
    /// Each expected paid call.
    pub items: Vec<EstimateItem>,
}

/// A person's monthly budget as a run's estimate saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MonthlyBudget {
    /// US dollars a month.
    pub limit: f64,
    /// What their other runs this month had committed.
    pub committed_elsewhere: f64,
}

impl MonthlyBudget {
    /// What the month leaves for this run.
    pub fn left(&self) -> f64 {
        (self.limit - self.committed_elsewhere).max(0.0)
    }
}

/// A round's estimate, and what the run's budget leaves out of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// What the round is expected to cost.
    pub estimate: Estimate,
    /// Scenes whose pictures the local renderer draws instead of the paid model.
    pub local_stills: BTreeSet<usize>,
    /// Scenes that keep their still (with camera motion) instead of a clip.
    pub stills_only: BTreeSet<usize>,
    /// Scenes whose pictures a model further down the image chain makes: its place in the
    /// chain, and which it is. The budget had no room for the first.
    #[serde(default)]
    pub image_tiers: BTreeMap<usize, (usize, ModelId)>,
    /// What the person should be told about the budget for this round.
    #[serde(default)]
    pub notices: Vec<String>,
}

/// One expected paid call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimateItem {
    /// The scene it is for.
    pub scene: Option<usize>,
    /// `image`, `clip` or `speech`.
    pub capability: String,
    /// The model that would be paid.
    pub model: ModelId,
    /// US dollars.
    pub usd: f64,
}

impl CostEntry {
    /// Entries for calls that were paid for and came to nothing (answers outside the
    /// schema): the ledger counts failed paid attempts too.
    pub fn wasted<'a>(
        node: &'a str,
        capability: &'a str,
        wasted: &'a [montage_models::Wasted],
    ) -> impl Iterator<Item = CostEntry> + 'a {
        wasted.iter().map(move |w| CostEntry {
            node: node.into(),
            scene: None,
            capability: capability.into(),
            model: w.model.clone(),
            usd: w.cost_usd,
            tokens: w.usage,
            cached: false,
        })
    }
}

/// The critic's report of one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticReport {
    /// The generation round it reviewed.
    pub round: u32,
    /// Which model looked.
    pub model: ModelId,
    /// What it found.
    pub issues: Vec<Issue>,
    /// The contact sheet it looked at.
    pub contact_sheet: ObjectRef,
}

/// The most scenes a video can have (a 600 s video cut on every beat at 200 BPM has 2,000).
pub const MAX_SCENES: usize = 10_000;
/// The longest instruction an answer may carry, in characters (as long as a prompt).
pub const MAX_INSTRUCTION_CHARS: usize = super::request::MAX_PROMPT_CHARS;

/// A scene's place in the plan, from 0, as clients name it; parsed once, bounded, so no
/// arithmetic on it can overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Number", into = "u64")]
pub struct SceneIndex(usize);

impl utoipa::PartialSchema for SceneIndex {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_SCENES - 1))
            .into()
    }
}

impl ToSchema for SceneIndex {}

impl SceneIndex {
    /// Scene `index` (0-based), when a video can have it.
    pub fn new(index: usize) -> Option<SceneIndex> {
        (index < MAX_SCENES).then_some(SceneIndex(index))
    }

    /// Its place, from 0.
    pub fn get(self) -> usize {
        self.0
    }

    /// Its number as people count, from 1.
    pub fn number(self) -> usize {
        self.0 + 1
    }
}

impl TryFrom<serde_json::Number> for SceneIndex {
    type Error = String;

    /// A whole number as JSON Schema counts one (`2` or `2.0`) within the scenes a video
    /// can have.
    fn try_from(index: serde_json::Number) -> Result<SceneIndex, String> {
        whole_number(&index)
            .and_then(|k| usize::try_from(k).ok())
            .and_then(SceneIndex::new)
            .ok_or_else(|| format!("scenes are numbered from 0 to {}", MAX_SCENES - 1))
    }
}

/// `number` as a whole number, as JSON Schema counts one: `3` or `3.0` (an integer-valued
/// number is an integer there), never `3.5`, a negative one or one past `u64`.
pub fn whole_number(number: &serde_json::Number) -> Option<u64> {
    number.as_u64().or_else(|| {
        number
            .as_f64()
            // `u64::MAX as f64` is 2^64 itself, one past the range.
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

impl From<SceneIndex> for u64 {
    fn from(index: SceneIndex) -> u64 {
        index.0 as u64
    }
}

/// The person's (or the default policy's) answer to the run's question: the critic's, or
/// the storyboard's (which takes accept, regenerate, edit and cancel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeedbackAnswer {
    /// Apply the critic's suggested fixes. (Fields of their own, none, so that unknown ones
    /// are refused.)
    Accept {},
    /// Generate these scenes (0-based) again with an instruction.
    Regenerate {
        /// The scenes, from 0.
        #[schema(min_items = 1, max_items = 10000)]
        scenes: Vec<SceneIndex>,
        /// Added to their prompts.
        #[serde(default)]
        #[schema(max_length = 4000)]
        instruction: String,
    },
    /// Change the plan's inputs and plan again: at least one of them.
    Edit {
        /// A new pace: slow, medium or fast.
        #[serde(default)]
        #[schema(schema_with = crate::server::schema::pace)]
        pace: Option<Pace>,
        /// A new mood.
        #[serde(default)]
        #[schema(schema_with = crate::server::schema::mood)]
        mood: Option<Mood>,
        /// A new length, seconds.
        #[serde(default)]
        #[schema(minimum = 3, maximum = 600)]
        duration: Option<f64>,
    },
    /// Go to the final video as it is.
    Skip {},
    /// Stop the run here: nothing more is made or paid for.
    Cancel {},
    /// The storyboard's: hold the run to this budget instead (at most what the server lets
    /// a run spend), and show the storyboard again with what it pays for.
    Budget {
        /// US dollars.
        #[schema(minimum = 0, maximum = 1000000)]
        usd: f64,
    },
}

/// A rendered video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedVideo {
    /// Its shape.
    pub format: Format,
    /// The MP4.
    pub object: ObjectRef,
}

/// What a finished run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    /// The 480p preview.
    pub preview: ObjectRef,
    /// One video per format.
    pub videos: Vec<RenderedVideo>,
    /// SubRip captions.
    pub srt: ObjectRef,
    /// WebVTT captions.
    pub vtt: ObjectRef,
    /// Thumbnails of the final scenes.
    pub contact_sheet: ObjectRef,
}

/// Everything a run knows. Serialized into every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// What was asked.
    pub request: RunRequest,
    /// Whose run it is: the generation cache answers each person only from their own
    /// requests, so nobody learns what another asked for.
    #[serde(default)]
    pub owner: Option<String>,
    /// The configuration in force.
    pub config: Config,
    /// The models in force.
    pub models: ResolvedModels,
    /// Templates used, by id.
    pub templates: BTreeMap<String, TemplateRef>,
    /// The structured request.
    pub intent: Option<Intent>,
    /// The soundtrack.
    pub music: Option<Music>,
    /// The soundtrack's beats.
    pub grid: Option<BeatGrid>,
    /// Scenes on the beat grid.
    pub plan: Option<Plan>,
    /// What happens in each scene (none in checkpoints written before there was a story).
    #[serde(default)]
    pub story: Option<Story>,
    /// Captions and narration.
    pub script: Vec<ScriptLine>,
    /// Prompts by scene.
    pub prompts: BTreeMap<usize, ScenePrompt>,
    /// Pictures by scene.
    pub assets: BTreeMap<usize, SceneAsset>,
    /// Spoken narration by line.
    pub speech: BTreeMap<usize, SpokenLine>,
    /// Scenes the current round (re)generates.
    pub pending: Vec<usize>,
    /// Instructions added to each scene's prompt by fixes and answers, oldest first.
    pub instructions: BTreeMap<usize, Vec<String>>,
    /// How often each scene was asked for again: a new take gets a new seed.
    pub takes: BTreeMap<usize, u32>,
    /// Generation rounds done.
    pub round: u32,
    /// The critic's reports, one per round.
    pub reviews: Vec<CriticReport>,
    /// Answers to the critic's questions.
    pub answers: Vec<FeedbackAnswer>,
    /// Issues left when the run finalized.
    pub open_issues: Vec<Issue>,
    /// Every model call.
    pub cost: Vec<CostEntry>,
    /// What the current round of pictures, clips and narration is expected to cost.
    #[serde(default)]
    pub estimate: Option<Estimate>,
    /// Scenes of the current round whose pictures the budget leaves to the local renderer.
    #[serde(default)]
    pub over_budget: BTreeSet<usize>,
    /// Scenes of the current round the budget leaves without a clip (stills with motion).
    #[serde(default)]
    pub stills_only: BTreeSet<usize>,
    /// Scenes of the current round whose pictures the budget leaves to a model further down
    /// the image chain, by its place.
    #[serde(default)]
    pub image_tiers: BTreeMap<usize, usize>,
    /// What the current round's budget leaves out, said (replaced with each estimate, so a
    /// budget changed since leaves no stale word behind).
    #[serde(default)]
    pub budget_notices: Vec<String>,
    /// The storyboard, once shown.
    #[serde(default)]
    pub storyboard: Option<Storyboard>,
    /// The most a run of this server may be allowed to spend (its configured budget), which
    /// a person's answer cannot raise the run's budget past.
    #[serde(default)]
    pub budget_ceiling: Option<f64>,
    /// The pending scenes whose prompts the next prompts pass writes (a storyboard
    /// revision); empty: all of them.
    #[serde(default)]
    pub rewrite: Vec<usize>,
    /// Things the person should know (no narration, music shorter than asked, …).
    pub notices: Vec<String>,
    /// The videos.
    pub outputs: Option<Outputs>,
}

impl RunState {
    /// A fresh run.
    pub fn new(
        request: RunRequest,
        config: Config,
        models: ResolvedModels,
        notices: Vec<String>,
    ) -> RunState {
        RunState {
            request,
            owner: None,
            config,
            models,
            templates: BTreeMap::new(),
            intent: None,
            music: None,
            grid: None,
            plan: None,
            story: None,
            script: Vec::new(),
            prompts: BTreeMap::new(),
            assets: BTreeMap::new(),
            speech: BTreeMap::new(),
            pending: Vec::new(),
            instructions: BTreeMap::new(),
            takes: BTreeMap::new(),
            round: 0,
            reviews: Vec::new(),
            answers: Vec::new(),
            open_issues: Vec::new(),
            cost: Vec::new(),
            estimate: None,
            over_budget: BTreeSet::new(),
            stills_only: BTreeSet::new(),
            image_tiers: BTreeMap::new(),
            budget_notices: Vec::new(),
            storyboard: None,
            budget_ceiling: None,
            rewrite: Vec::new(),
            notices,
            outputs: None,
        }
    }
}

/// A node's change to the state. Single values may be written by one node per step;
/// maps and lists merge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Update {
    /// Templates used.
    pub templates: Vec<TemplateRef>,
    /// A new intent.
    pub intent: Option<Intent>,
    /// The soundtrack.
    pub music: Option<Music>,
    /// Its beats.
    pub grid: Option<BeatGrid>,
    /// A new plan.
    pub plan: Option<Plan>,
    /// A new story.
    pub story: Option<Story>,
    /// A new script.
    pub script: Option<Vec<ScriptLine>>,
    /// Prompts to set, by scene.
    pub prompts: BTreeMap<usize, ScenePrompt>,
    /// Pictures to set, by scene.
    pub assets: BTreeMap<usize, SceneAsset>,
    /// Speech to set, by line.
    pub speech: BTreeMap<usize, SpokenLine>,
    /// Drop all prompts, pictures and speech (a new plan).
    pub reset_scenes: bool,
    /// Instructions to add, by scene.
    pub instructions: BTreeMap<usize, Vec<String>>,
    /// Scenes asked for again.
    pub new_takes: Vec<usize>,
    /// The next round's scenes.
    pub pending: Option<Vec<usize>>,
    /// A generation round finished.
    pub round_done: bool,
    /// A critic report.
    pub review: Option<CriticReport>,
    /// An answer.
    pub answer: Option<FeedbackAnswer>,
    /// Issues left at the end.
    pub open_issues: Option<Vec<Issue>>,
    /// Model calls.
    pub cost: Vec<CostEntry>,
    /// The round's estimate, and what its budget leaves out.
    pub estimate: Option<Allocation>,
    /// The storyboard as it now stands.
    pub storyboard: Option<Storyboard>,
    /// The scenes the next prompts pass writes (empty: every pending one).
    pub rewrite: Option<Vec<usize>>,
    /// A new budget for the run (none: no limit of its own).
    pub budget: Option<Option<f64>>,
    /// Notices.
    pub notices: Vec<String>,
    /// The videos.
    pub outputs: Option<Outputs>,
    /// A revision: the changed request, and a fresh start for the rounds, reviews, answers,
    /// costs and videos of the new version (what was made stays, for the caches to reuse).
    pub revision: Option<RunRequest>,
}

fn set<T>(
    slot: &mut T,
    value: Option<T>,
    key: &str,
    writes: &mut StepWrites,
) -> Result<(), MergeError> {
    if let Some(value) = value {
        writes.claim(key)?;
        *slot = value;
    }
    Ok(())
}

impl RunState {
    /// Everything the person should know about the run: its notices, then what the
    /// budget leaves out of the current round.
    pub fn all_notices(&self) -> Vec<String> {
        let mut all = self.notices.clone();
        all.extend(self.budget_notices.iter().cloned());
        all
    }
}

impl State for RunState {
    type Update = Update;

    fn merge(&mut self, update: Update, writes: &mut StepWrites) -> Result<(), MergeError> {
        if let Some(request) = update.revision {
            writes.claim("request")?;
            self.request = request;
            self.round = 0;
            self.pending.clear();
            self.reviews.clear();
            self.answers.clear();
            self.open_issues.clear();
            self.cost.clear();
            self.estimate = None;
            self.over_budget.clear();
            self.stills_only.clear();
            self.image_tiers.clear();
            self.budget_notices.clear();
            self.storyboard = None;
            self.rewrite.clear();
            self.outputs = None;
        }
        for template in update.templates {
            self.templates.insert(template.id.clone(), template);
        }
        if let Some(intent) = update.intent {
            writes.claim("intent")?;
            self.intent = Some(intent);
        }
        if let Some(music) = update.music {
            writes.claim("music")?;
            self.music = Some(music);
        }
        if let Some(grid) = update.grid {
            writes.claim("grid")?;
            self.grid = Some(grid);
        }
        if let Some(plan) = update.plan {
            writes.claim("plan")?;
            self.plan = Some(plan);
        }
        if let Some(story) = update.story {
            writes.claim("story")?;
            self.story = Some(story);
        }
        set(&mut self.script, update.script, "script", writes)?;
        if update.reset_scenes {
            writes.claim("scenes")?;
            self.prompts.clear();
            self.assets.clear();
            self.speech.clear();
            self.instructions.clear();
            self.takes.clear();
        }
        self.prompts.extend(update.prompts);
        self.assets.extend(update.assets);
        self.speech.extend(update.speech);
        for (scene, added) in update.instructions {
            self.instructions.entry(scene).or_default().extend(added);
        }
        for scene in update.new_takes {
            *self.takes.entry(scene).or_default() += 1;
        }
        set(&mut self.pending, update.pending, "pending", writes)?;
        if update.round_done {
            writes.claim("round")?;
            self.round += 1;
        }
        self.reviews.extend(update.review);
        self.answers.extend(update.answer);
        set(
            &mut self.open_issues,
            update.open_issues,
            "open_issues",
            writes,
        )?;
        self.cost.extend(update.cost);
        if let Some(allocation) = update.estimate {
            writes.claim("estimate")?;
            self.estimate = Some(allocation.estimate);
            self.over_budget = allocation.local_stills;
            self.stills_only = allocation.stills_only;
            self.image_tiers = allocation
                .image_tiers
                .into_iter()
                .map(|(scene, (tier, _))| (scene, tier))
                .collect();
            self.budget_notices = allocation.notices;
        }
        if let Some(storyboard) = update.storyboard {
            writes.claim("storyboard")?;
            self.storyboard = Some(storyboard);
        }
        set(&mut self.rewrite, update.rewrite, "rewrite", writes)?;
        set(
            &mut self.config.pipeline.budget_usd,
            update.budget,
            "budget",
            writes,
        )?;
        for notice in update.notices {
            if !self.notices.contains(&notice) {
                self.notices.push(notice);
            }
        }
        if let Some(outputs) = update.outputs {
            writes.claim("outputs")?;
            self.outputs = Some(outputs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    fn read(text: &str) -> Result<FeedbackAnswer, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn answers_are_read_to_the_letter() {
        let huge = read(r#"{"action":"regenerate","scenes":[18446744073709551615]}"#);
        assert!(huge.unwrap_err().contains("from 0 to 9999"));
        assert!(read(r#"{"action":"skip","extra":true}"#).is_err());
        assert!(read(r#"{"action":"accept","scenes":[1]}"#).is_err());
        assert_eq!(read(r#"{"action":"skip"}"#), Ok(FeedbackAnswer::Skip {}));
        assert_eq!(
            serde_json::to_value(FeedbackAnswer::Accept {}).unwrap(),
            serde_json::json!({ "action": "accept" })
        );
        assert!(read(r#"{"action":"regenerate","scenes":[2.5]}"#).is_err());
        let again = read(r#"{"action":"regenerate","scenes":[2.0]}"#).unwrap();
        assert_eq!(
            again,
            FeedbackAnswer::Regenerate {
                scenes: vec![SceneIndex(2)],
                instruction: String::new()
            }
        );
    }
}
