//! The normalized request and result types every provider speaks. Provider wire formats stay
//! inside their provider's module; these are what the pipeline sees.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which provider and model served a call; recorded with every result and in the cost ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelId {
    /// The provider (`local`, `openai`, …).
    pub provider: String,
    /// The model within it.
    pub model: String,
}

impl ModelId {
    /// A provider's model.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> ModelId {
        ModelId {
            provider: provider.into(),
            model: model.into(),
        }
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// Who said a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, answering the call named by `tool_call_id`.
    Tool,
}

/// One chat message, in the shape OpenAI-compatible chat APIs use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// The text, if any (an assistant message may hold only tool calls).
    #[serde(default)]
    pub content: Option<String>,
    /// Tools the assistant asked to call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Pictures shown after the text, in order (a user message only; for models that see).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pictures: Vec<Picture>,
}

/// A picture put to a model that sees: a small JPEG (a full-size frame costs tokens and tells
/// a critic nothing more).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Picture {
    /// What it shows, said just before it (`Scene 2, first frame`).
    pub caption: String,
    /// The JPEG, base64-encoded.
    pub jpeg_base64: String,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture")
            .field("caption", &self.caption)
            .field("jpeg_bytes", &(self.jpeg_base64.len() / 4 * 3))
            .finish()
    }
}

impl Message {
    /// A message of `role` with text `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
            pictures: Vec::new(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Message {
        Message::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message::new(Role::User, content)
    }
}

/// A tool the model may call: a name, what it does and its arguments' JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The tool's name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments object.
    pub parameters: Value,
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Identifies the call, so its result can answer it.
    pub id: String,
    /// The tool.
    pub name: String,
    /// Its arguments.
    pub arguments: Value,
}

/// Asks for an answer as JSON matching a schema (OpenAI's `response_format: json_schema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    /// The schema's name; also tells the local model which parser to use.
    pub name: String,
    /// The JSON Schema.
    pub schema: Value,
}

impl JsonSchemaFormat {
    /// The format for type `T`, its schema generated from the type.
    pub fn of<T: JsonSchema>(name: impl Into<String>) -> JsonSchemaFormat {
        JsonSchemaFormat {
            name: name.into(),
            schema: serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null),
        }
    }
}

/// A request to a text model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TextRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// The tool the model must call, by name (small models answer in prose where a call is
    /// needed unless the choice is forced).
    #[serde(default)]
    pub tool_choice: Option<String>,
    /// Ask for structured output against this schema.
    #[serde(default)]
    pub response_format: Option<JsonSchemaFormat>,
    /// Makes sampling repeatable where the provider supports it.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f32>,
}

/// Why a text model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It finished its answer.
    Stop,
    /// It wants tools called.
    ToolCalls,
    /// It ran out of tokens.
    Length,
    /// The provider's content filter stopped it.
    ContentFilter,
}

/// Tokens a call used, for the cost ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in.
    pub input_tokens: u64,
    /// Tokens out.
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// A text model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextResponse {
    /// Which model answered.
    pub model: ModelId,
    /// The text (JSON text for structured output).
    pub content: Option<String>,
    /// Tools it asked to call.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish: FinishReason,
    /// Tokens used.
    pub usage: Usage,
    /// What the call cost, in US dollars.
    pub cost_usd: f64,
    /// What the person should know about how it was answered (a model that failed and the
    /// one that stood in for it).
    #[serde(default)]
    pub notices: Vec<String>,
    /// Calls to models before the one that answered that were paid for and came to nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wasted: Vec<Wasted>,
}

/// Calls to one model that were paid for and came to nothing (answers outside the schema):
/// the ledger counts them all the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wasted {
    /// The model paid.
    pub model: ModelId,
    /// Tokens, over those calls.
    pub usage: Usage,
    /// US dollars, over those calls.
    pub cost_usd: f64,
}

/// A request for a still image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRequest {
    /// What to show.
    pub prompt: String,
    /// What to avoid.
    #[serde(default)]
    pub negative_prompt: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Makes the result repeatable.
    pub seed: u64,
    /// What a paid provider writes the job down under, so it is never submitted twice for
    /// this request (the generation cache's request hash); not part of the request itself.
    #[serde(skip)]
    pub job_key: Option<String>,
}

/// An encoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedImage {
    /// Which model made it.
    pub model: ModelId,
    /// The encoded file.
    pub bytes: Vec<u8>,
    /// Its media type (`image/png`, …).
    pub media_type: String,
    /// What it cost, in US dollars.
    pub cost_usd: f64,
    /// What the person should know about how it was made (a model that failed and the one
    /// that stood in for it).
    pub notices: Vec<String>,
    /// Calls to models before the one that made it that were paid for and came to nothing.
    pub wasted: Vec<Wasted>,
}

/// A request for a short video clip that starts from a still.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipRequest {
    /// What happens in it.
    pub prompt: String,
    /// What to avoid.
    #[serde(default)]
    pub negative_prompt: String,
    /// The shortest it may be, in seconds: the model makes its nearest supported length at
    /// or above this, and the compositor trims it on the beat.
    pub seconds: f64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Makes the result repeatable.
    pub seed: u64,
    /// The content hash of the still it starts from, so that requests from two pictures
    /// never hash alike; the picture itself is [`start_frame`](Self::start_frame).
    pub start_frame_id: String,
    /// The still it starts from, encoded (PNG or JPEG).
    #[serde(skip)]
    pub start_frame: Vec<u8>,
    /// What a paid provider writes the job down under (see [`ImageRequest::job_key`]).
    #[serde(skip)]
    pub job_key: Option<String>,
}

/// An encoded video clip.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedClip {
    /// Which model made it.
    pub model: ModelId,
    /// The encoded file (MP4).
    pub bytes: Vec<u8>,
    /// The length it was asked for, in seconds (the model's, at or above the request's).
    pub seconds: f64,
    /// What it cost, in US dollars.
    pub cost_usd: f64,
    /// What the person should know about how it was made.
    pub notices: Vec<String>,
}

/// A request to speak a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechRequest {
    /// What to say.
    pub text: String,
    /// The voice (provider-specific; empty for the default).
    #[serde(default)]
    pub voice: String,
    /// Speaking rate relative to normal (1.0).
    pub rate: f64,
}

/// Spoken audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    /// Which model spoke.
    pub model: ModelId,
    /// A WAV file.
    pub wav: Vec<u8>,
    /// Its length in seconds.
    pub seconds: f64,
    /// What it cost, in US dollars.
    pub cost_usd: f64,
    /// When each word is spoken, from models that say (empty: they do not).
    pub words: Vec<SpokenWord>,
}

/// One word of a narration and when it is spoken, in seconds into the audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpokenWord {
    /// The word, with its punctuation.
    pub text: String,
    /// When it starts.
    pub start: f64,
    /// When it ends.
    pub end: f64,
}

/// A request for music.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicRequest {
    /// Style and mood, in words.
    pub prompt: String,
    /// Tempo in beats per minute.
    pub bpm: f64,
    /// Beats per bar: 3 or 4.
    pub meter: u8,
    /// At least this long, in seconds.
    pub seconds: f64,
    /// Makes the result repeatable.
    pub seed: u64,
    /// What a paid provider writes the job down under, so it is never submitted twice for
    /// this request; not part of the request itself.
    #[serde(skip)]
    pub job_key: Option<String>,
}

/// Generated music.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedMusic {
    /// Which model made it.
    pub model: ModelId,
    /// A WAV file.
    pub wav: Vec<u8>,
    /// The beats it was made on, in seconds, when the model knows them.
    pub beats: Option<Vec<f64>>,
    /// What it cost, in US dollars.
    pub cost_usd: f64,
}

/// Where in a scene a frame shown to a vision model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FramePosition {
    /// The scene's first frame.
    First,
    /// The scene's last frame.
    Last,
}

/// A frame shown to a vision model.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionFrame {
    /// The scene it belongs to (0-based).
    pub scene: usize,
    /// Where in the scene.
    pub position: FramePosition,
    /// An encoded image (PNG or JPEG).
    pub image: Vec<u8>,
}

/// A scene as the critic needs to know it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneBrief {
    /// The generation prompt (empty for a person's own image).
    pub prompt: String,
    /// Whether Montage generated it (a person's upload cannot be regenerated).
    pub generated: bool,
    /// Whether the cut into the next scene is softened by a transition.
    pub soft_cut_after: bool,
}

/// Frames to critique, with what they were meant to show.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionRequest {
    /// What to look for.
    pub instruction: String,
    /// The scenes, in order.
    pub scenes: Vec<SceneBrief>,
    /// The intended palette, `#rrggbb`.
    pub palette: Vec<String>,
    /// First and last frames of the scenes.
    pub frames: Vec<VisionFrame>,
}

/// What kind of problem a critic found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A jump in brightness or contrast across a cut.
    Continuity,
    /// Colours far from the intended palette.
    PaletteDrift,
    /// Nearly the same picture as another scene.
    Duplicate,
    /// A blank, flat or black frame.
    Blank,
    /// The picture doesn't show what the prompt asked.
    PromptAdherence,
    /// Anything else.
    Other,
}

/// How much an issue matters. Low issues are reported; medium and high ones are put to the person.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Low,
    /// Worth fixing.
    Medium,
    /// Must be fixed.
    High,
}

/// What a critic suggests doing about an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SuggestedFix {
    /// Generate the scene again, with this added to its prompt.
    Regenerate {
        /// The instruction.
        instruction: String,
    },
    /// Soften the cut into the next scene with a crossfade.
    Crossfade,
    /// Leave it.
    Keep,
}

/// One problem a critic found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Issue {
    /// The scene (0-based).
    pub scene: usize,
    /// What kind of problem.
    pub kind: IssueKind,
    /// How much it matters.
    pub severity: Severity,
    /// What is wrong, for a person.
    pub message: String,
    /// What to do about it.
    pub fix: SuggestedFix,
}

/// A critic's findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Critique {
    /// Which model looked.
    pub model: ModelId,
    /// What it found.
    pub issues: Vec<Issue>,
    /// What it cost, in US dollars.
    pub cost_usd: f64,
    /// Tokens a vision model used.
    #[serde(default)]
    pub usage: Usage,
    /// What the person should know about how it looked (a model that failed).
    #[serde(default)]
    pub notices: Vec<String>,
    /// Calls to a model that were paid for and came to nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wasted: Vec<Wasted>,
}

/// Vectors for texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Which model made them.
    pub model: ModelId,
    /// One unit-length vector per input text.
    pub vectors: Vec<Vec<f32>>,
    /// What it cost, in US dollars.
    pub cost_usd: f64,
}
