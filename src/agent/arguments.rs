//! The agent's tool arguments as types: the schemas offered to the model are generated from
//! them, and a call's arguments are parsed into them once, so a tool never indexes into JSON.

use super::AgentError;
use crate::pipeline::request;
use crate::pipeline::state::{FeedbackAnswer, SceneIndex};
use montage_models::{Format, Mood, Pace};
use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `create_video`: a new video from the person's description.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateVideo {
    /// The person's description of the video.
    pub prompt: String,
    /// Formats the person asked for (an empty list is none); none leaves them to the description.
    #[serde(default, deserialize_with = "lenient_formats")]
    pub formats: Option<Vec<Format>>,
    /// Seconds.
    pub duration: Option<f64>,
}

/// `revise`: a new version of the chat's video.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Revise {
    /// What to change, in the person's words.
    pub instruction: Option<String>,
    /// The formats the new version has (an empty list is none); none keeps the current ones.
    #[serde(default, deserialize_with = "lenient_formats")]
    pub formats: Option<Vec<Format>>,
    /// Seconds.
    pub duration: Option<f64>,
    /// An uploaded audio file's id.
    pub audio: Option<String>,
}

/// `regenerate_scene`: some scenes drawn again.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RegenerateScene {
    /// Scenes counted from 0; none means every generated scene.
    pub scenes: Option<Vec<usize>>,
    /// How to draw them ("brighter").
    pub instruction: Option<String>,
}

/// What an answer to the open question does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Take the critic's fixes, or approve the storyboard.
    Accept,
    /// Make chosen scenes (or their prompts) again.
    Regenerate,
    /// Change the plan.
    Edit,
    /// Finish the video as it is.
    Skip,
    /// Stop the video.
    Cancel,
    /// Hold the run to a budget.
    Budget,
}

/// `answer_feedback`: the answer to the question the run waits on, flat (one object whatever
/// the action, as providers want tool parameters) and read into a [`FeedbackAnswer`].
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnswerFeedback {
    /// What the answer does.
    pub action: Action,
    /// The budget in US dollars (`budget`).
    #[schemars(range(min = 0))]
    pub usd: Option<f64>,
    /// Scenes counted from 0 (`regenerate`).
    pub scenes: Option<Vec<usize>>,
    /// Added to the regenerated scenes' prompts (`regenerate`).
    pub instruction: Option<String>,
    /// A new pace (`edit`).
    pub pace: Option<Pace>,
    /// A new mood (`edit`).
    pub mood: Option<Mood>,
    /// A new length in seconds (`edit`).
    pub duration: Option<f64>,
}

impl AnswerFeedback {
    /// The answer the run takes; an action without what it needs is refused.
    pub fn into_answer(self) -> Result<FeedbackAnswer, AgentError> {
        let refuse = |why: &str| Err(AgentError::Refused(why.to_owned()));
        Ok(match self.action {
            Action::Accept => FeedbackAnswer::Accept {},
            Action::Skip => FeedbackAnswer::Skip {},
            Action::Cancel => FeedbackAnswer::Cancel {},
            Action::Regenerate => {
                let scenes: Option<Vec<SceneIndex>> = self
                    .scenes
                    .unwrap_or_default()
                    .into_iter()
                    .map(SceneIndex::new)
                    .collect();
                match scenes {
                    Some(scenes) if !scenes.is_empty() => FeedbackAnswer::Regenerate {
                        scenes,
                        instruction: self.instruction.unwrap_or_default(),
                    },
                    _ => return refuse("name the scenes to make again"),
                }
            }
            Action::Edit
                if self.pace.is_none() && self.mood.is_none() && self.duration.is_none() =>
            {
                return refuse("an edit changes the pace, the mood or the length");
            }
            Action::Edit => FeedbackAnswer::Edit {
                pace: self.pace,
                mood: self.mood,
                duration: self.duration,
            },
            Action::Budget => match self.usd {
                Some(usd) => FeedbackAnswer::Budget { usd },
                None => return refuse("a budget names the dollars (usd)"),
            },
        })
    }
}

/// `status`: where a video stands.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Status {
    /// One of the person's runs; none means the chat's video.
    pub run_id: Option<String>,
}

/// `export`: the download links.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Export {
    /// The format wanted; none lists every one the video has.
    #[serde(default, deserialize_with = "lenient_format")]
    #[schemars(with = "Option<Format>")]
    pub format: Option<Format>,
}

/// The JSON Schema of `T` as tool parameters: self-contained (no `$ref`s), without the
/// meta-schema line and title that providers do not want.
pub fn parameters_schema<T: JsonSchema>() -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft07();
    settings.inline_subschemas = true;
    let mut value = serde_json::to_value(settings.into_generator().into_root_schema_for::<T>())
        .unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    plain_enums(&mut value);
    value
}

/// Rewrites each `oneOf` of documented string constants (what schemars makes of an enum whose
/// variants have doc comments) as a plain `enum` list: the same choices, in a fraction of the
/// tokens, and the form small models follow best.
fn plain_enums(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let choices: Option<Vec<Value>> = object
                .get("oneOf")
                .and_then(Value::as_array)
                .and_then(|options| options.iter().map(|o| o.get("const").cloned()).collect());
            if let Some(choices) = choices.filter(|c| c.iter().all(Value::is_string)) {
                object.remove("oneOf");
                object.insert("type".into(), "string".into());
                object.insert("enum".into(), Value::Array(choices));
            }
            object.values_mut().for_each(plain_enums);
        }
        Value::Array(items) => items.iter_mut().for_each(plain_enums),
        _ => {}
    }
}

/// Parses a call's arguments; what does not fit is refused with the tool's name, so the reply
/// can say what was wrong instead of acting on half of it.
pub fn parse_arguments<T: for<'de> Deserialize<'de>>(
    tool: &str,
    arguments: &Value,
) -> Result<T, AgentError> {
    // Models send `null` or nothing for a call without arguments.
    let arguments = match arguments {
        Value::Null => Value::Object(Default::default()),
        other => other.clone(),
    };
    serde_json::from_value(arguments)
        .map_err(|e| AgentError::Refused(format!("the {tool} tool was called wrongly: {e}")))
}

/// Formats by ratio or by the words people use ("vertical"), as models send them; an empty
/// list names none (models send one where they mean "not given").
fn lenient_formats<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Format>>, D::Error> {
    let names: Option<Vec<String>> = Option::deserialize(deserializer)?;
    match names {
        Some(names) if !names.is_empty() => {
            request::formats_named(names.iter().map(String::as_str))
                .map(Some)
                .map_err(D::Error::custom)
        }
        _ => Ok(None),
    }
}

fn lenient_format<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Format>, D::Error> {
    let name: Option<String> = Option::deserialize(deserializer)?;
    name.map(|n| request::format_named(&n).map_err(D::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_are_read_by_ratio_or_by_name_and_unknown_ones_refused() {
        let call: CreateVideo = parse_arguments(
            "create_video",
            &json!({ "prompt": "rain", "formats": ["vertical", "9:16", "1:1"] }),
        )
        .unwrap();
        assert_eq!(call.formats, Some(vec![Format::Portrait, Format::Square]));
        let none: CreateVideo = parse_arguments(
            "create_video",
            &json!({ "prompt": "rain", "formats": null }),
        )
        .unwrap();
        assert!(none.formats.is_none());
        let empty: Revise = parse_arguments("revise", &json!({ "formats": [] })).unwrap();
        assert!(empty.formats.is_none());
        let wrong = parse_arguments::<CreateVideo>(
            "create_video",
            &json!({ "prompt": "rain", "formats": ["4:3"] }),
        );
        assert!(matches!(wrong, Err(AgentError::Refused(why)) if why.contains("4:3")));
        let missing = parse_arguments::<CreateVideo>("create_video", &json!({}));
        assert!(matches!(missing, Err(AgentError::Refused(why)) if why.contains("prompt")));
    }

    #[test]
    fn an_answer_names_one_of_the_actions() {
        let answer: AnswerFeedback =
            parse_arguments("answer_feedback", &json!({ "action": "skip" })).unwrap();
        assert_eq!(answer.action, Action::Skip);
        assert_eq!(answer.into_answer().unwrap(), FeedbackAnswer::Skip {});
        let again: AnswerFeedback = parse_arguments(
            "answer_feedback",
            &json!({ "action": "regenerate", "scenes": [1, 3], "instruction": "brighter" }),
        )
        .unwrap();
        assert_eq!(
            again.into_answer().unwrap(),
            FeedbackAnswer::Regenerate {
                scenes: vec![SceneIndex::new(1).unwrap(), SceneIndex::new(3).unwrap()],
                instruction: "brighter".into(),
            }
        );
        let slower: AnswerFeedback = parse_arguments(
            "answer_feedback",
            &json!({ "action": "edit", "pace": "slow" }),
        )
        .unwrap();
        assert_eq!(
            slower.into_answer().unwrap(),
            FeedbackAnswer::Edit {
                pace: Some(Pace::Slow),
                mood: None,
                duration: None
            }
        );
        for incomplete in [
            json!({ "action": "regenerate" }),
            json!({ "action": "regenerate", "scenes": [] }),
            json!({ "action": "budget" }),
            json!({ "action": "edit", "instruction": "nicer" }),
        ] {
            let answer: AnswerFeedback = parse_arguments("answer_feedback", &incomplete).unwrap();
            assert!(
                matches!(answer.into_answer(), Err(AgentError::Refused(_))),
                "{incomplete}"
            );
        }
        assert!(
            parse_arguments::<AnswerFeedback>("answer_feedback", &json!({ "action": "delete" }))
                .is_err()
        );
        let status: Status = parse_arguments("status", &Value::Null).unwrap();
        assert!(status.run_id.is_none());
    }

    #[test]
    fn the_schemas_are_self_contained_and_list_what_the_model_may_send() {
        let create = parameters_schema::<CreateVideo>();
        assert_eq!(create["type"], "object");
        assert_eq!(create["required"], json!(["prompt"]));
        let text = create.to_string();
        assert!(
            !text.contains("$ref") && !text.contains("$schema"),
            "{text}"
        );
        assert!(text.contains("\"9:16\""), "{text}");
        let answer = parameters_schema::<AnswerFeedback>();
        assert_eq!(answer["type"], "object");
        assert_eq!(
            answer["properties"]["action"]["enum"],
            json!(["accept", "regenerate", "edit", "skip", "cancel", "budget"])
        );
        let mood = &answer["properties"]["mood"]["anyOf"][0];
        assert_eq!(mood["type"], "string");
        assert!(
            mood["enum"].as_array().unwrap().contains(&json!("dreamy")),
            "{mood}"
        );
    }
}
