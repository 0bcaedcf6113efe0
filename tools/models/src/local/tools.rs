//! The local text model's tool calling: a rule-based reading of the person's last message,
//! in the context the caller gives, into calls of the tools it was offered. It answers in the
//! same shape a remote model does, so whoever calls it never knows the difference.
//!
//! The context is the first JSON object in the conversation's last system message (the
//! agent's view of the current run: `{"run": {"status", "scenes", "question", "formats"} |
//! null, "audio_uploads": [...], "image_uploads": [...]}`). A tool result is turned into the
//! reply by reading its `summary`.

use crate::types::{Message, Role, ToolCall, ToolSpec};
use serde_json::{Value, json};

/// What the interpreter decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Call these tools.
    Call(Vec<ToolCall>),
    /// Say this.
    Say(String),
}

/// Reads the conversation: after tool results, a reply made of their summaries; after a
/// person's message, the tool calls it asks for, or a plain answer that says what it can do.
pub fn read(messages: &[Message], tools: &[ToolSpec]) -> Reading {
    let last = messages.last();
    if last.is_some_and(|m| m.role == Role::Tool) {
        let results: Vec<String> = messages
            .iter()
            .rev()
            .take_while(|m| m.role == Role::Tool)
            .filter_map(|m| m.content.as_deref())
            .map(|c| {
                serde_json::from_str::<Value>(c)
                    .ok()
                    .and_then(|v| v.get("summary").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| c.to_owned())
            })
            .collect();
        return Reading::Say(results.into_iter().rev().collect::<Vec<_>>().join(" "));
    }
    let said = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .and_then(|m| m.content.as_deref())
        .unwrap_or("");
    let context = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::System)
        .and_then(|m| m.content.as_deref())
        .and_then(first_json_object)
        .unwrap_or(Value::Null);
    let offered = |name: &str| tools.iter().any(|t| t.name == name);
    match intent_of(said, &context) {
        Some((name, arguments)) if offered(name) => Reading::Call(vec![ToolCall {
            id: "call_1".into(),
            name: name.to_owned(),
            arguments,
        }]),
        _ => Reading::Say(not_understood(&context)),
    }
}

fn not_understood(context: &Value) -> String {
    let run = &context["run"];
    if run.is_null() {
        "I didn't catch a video in that. Tell me what to make — for example \"a 20 second \
         upbeat neon city music video, vertical\" — and upload music or pictures if you have them."
            .into()
    } else {
        "I'm not sure what to change. I can make a new video, change this one (\"make it \
         vertical\", \"slower cuts\", \"scene 3 darker\", \"use my song instead\"), answer the \
         critic (\"looks good\", \"skip\"), tell you where it stands (\"status\"), or export it \
         (\"export it square\")."
            .into()
    }
}

/// The first `{…}` in `text` that parses as JSON.
fn first_json_object(text: &str) -> Option<Value> {
    let start = text.find('{')?;
    let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
    stream.next()?.ok().filter(Value::is_object)
}

fn has(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| {
        let padded = format!(" {text} ");
        padded.contains(&format!(" {w} "))
    })
}

/// The formats a message names.
fn formats(text: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    if has(
        text,
        &[
            "vertical", "portrait", "9:16", "tiktok", "reels", "shorts", "story",
        ],
    ) {
        found.push("9:16");
    }
    if has(text, &["square", "1:1"]) {
        found.push("1:1");
    }
    if has(
        text,
        &["horizontal", "landscape", "widescreen", "16:9", "youtube"],
    ) {
        found.push("16:9");
    }
    found
}

/// Scene numbers as people say them ("scene 3", "scenes 2 and 4"), 0-based.
fn scenes(text: &str) -> Vec<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if word.starts_with("scene") {
            for next in words.iter().skip(i + 1).take(4) {
                let number = next.trim_matches(|c: char| !c.is_ascii_digit());
                match number.parse::<u64>() {
                    Ok(n) if n >= 1 => found.push(n - 1),
                    _ if *next == "and" || *next == "&" => {}
                    _ => break,
                }
            }
        }
    }
    found.dedup();
    found
}

/// What is left of a message once the scene words are taken out: the instruction.
fn instruction(text: &str) -> String {
    let skip = [
        "scene",
        "scenes",
        "and",
        "please",
        "make",
        "regenerate",
        "redo",
        "remake",
        "the",
        "again",
        "can",
        "you",
        "could",
        "with",
        "it",
    ];
    let kept: Vec<&str> = text
        .split_whitespace()
        .filter(|w| !skip.contains(w) && w.parse::<u64>().is_err())
        .collect();
    kept.join(" ")
}

fn intent_of(said: &str, context: &Value) -> Option<(&'static str, Value)> {
    let text: String = said
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ':' || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    let run = &context["run"];
    let has_run = !run.is_null();
    let asking = run["question"].as_bool().unwrap_or(false);
    // "make a 20 second video about dogs" describes a new video even when one exists;
    // "make it vertical" changes the current one.
    let describes_one = [
        "make a ",
        "make an ",
        "create a ",
        "create an ",
        "i want a ",
        "i'd like a ",
    ]
    .iter()
    .any(|start| format!("{text} ").starts_with(start))
        && has(&text, &["video", "clip", "reel", "montage"]);
    let new_video = has(
        &text,
        &["new video", "another video", "new one", "start over"],
    ) || describes_one
        || (!has_run
            && has(
                &text,
                &["video", "clip", "make", "create", "edit", "montage", "reel"],
            ));
    if new_video {
        return Some(("create_video", json!({ "prompt": said.trim() })));
    }
    if !has_run {
        return None;
    }
    if has(
        &text,
        &[
            "status",
            "progress",
            "how is it going",
            "where are we",
            "is it done",
            "done yet",
            "how's it going",
        ],
    ) {
        return Some(("status", json!({})));
    }
    let wanted_formats = formats(&text);
    if has(&text, &["export", "download", "give me", "send me"]) {
        let mut arguments = json!({});
        if let Some(format) = wanted_formats.first() {
            arguments["format"] = json!(format);
        }
        return Some(("export", arguments));
    }
    let picked = scenes(&text);
    if asking {
        if has(
            &text,
            &[
                "cancel",
                "stop it",
                "stop the video",
                "never mind",
                "forget it",
            ],
        ) {
            return Some(("answer_feedback", json!({ "action": "cancel" })));
        }
        if has(&text, &["budget", "spend"])
            && let Some(usd) = said
                .split_whitespace()
                .filter_map(|word| {
                    word.trim_start_matches('$')
                        .trim_end_matches(|c: char| !c.is_ascii_digit())
                        .parse::<f64>()
                        .ok()
                })
                .find(|usd| usd.is_finite() && *usd >= 0.0)
        {
            return Some(("answer_feedback", json!({ "action": "budget", "usd": usd })));
        }
        if has(&text, &["skip", "as it is", "just finish", "finish it"]) {
            return Some(("answer_feedback", json!({ "action": "skip" })));
        }
        if picked.is_empty()
            && has(
                &text,
                &[
                    "looks good",
                    "look good",
                    "good",
                    "great",
                    "accept",
                    "yes",
                    "ok",
                    "okay",
                    "fine",
                    "go ahead",
                    "fix it",
                    "sure",
                    "perfect",
                ],
            )
        {
            return Some(("answer_feedback", json!({ "action": "accept" })));
        }
        if !picked.is_empty() {
            return Some((
                "answer_feedback",
                json!({ "action": "regenerate", "scenes": picked, "instruction": instruction(&text) }),
            ));
        }
    }
    if !picked.is_empty() {
        return Some((
            "regenerate_scene",
            json!({ "scenes": picked, "instruction": instruction(&text) }),
        ));
    }
    if has(
        &text,
        &[
            "my song",
            "my music",
            "my track",
            "my audio",
            "this song",
            "the song i",
        ],
    ) {
        let audio = context["audio_uploads"]
            .as_array()
            .and_then(|a| a.last())
            .cloned();
        return audio.map(|audio| ("revise", json!({ "audio": audio })));
    }
    if !wanted_formats.is_empty()
        && has(
            &text,
            &[
                "make it",
                "make this",
                "turn it",
                "change it",
                "as",
                "in",
                "format",
                "also",
                "and",
            ],
        )
    {
        return Some(("revise", json!({ "formats": wanted_formats })));
    }
    let change_words = [
        "slower", "faster", "slow", "fast", "darker", "brighter", "warmer", "cooler", "calmer",
        "more", "less", "shorter", "longer", "change", "make", "add", "remove", "without",
    ];
    if change_words.iter().any(|w| has(&text, &[w])) {
        return Some(("revise", json!({ "instruction": said.trim() })));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<ToolSpec> {
        [
            "create_video",
            "revise",
            "regenerate_scene",
            "answer_feedback",
            "status",
            "export",
        ]
        .into_iter()
        .map(|name| ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: json!({}),
        })
        .collect()
    }

    fn call(said: &str, context: Value) -> Reading {
        read(
            &[
                Message::system(format!("Context: {context}")),
                Message::user(said),
            ],
            &tools(),
        )
    }

    fn one(reading: Reading) -> (String, Value) {
        match reading {
            Reading::Call(calls) => (calls[0].name.clone(), calls[0].arguments.clone()),
            Reading::Say(text) => panic!("said {text:?}"),
        }
    }

    #[test]
    fn the_everyday_requests_become_the_right_calls() {
        let none = json!({ "run": null });
        let done = json!({ "run": { "status": "completed", "scenes": 6, "question": false }, "audio_uploads": ["up1"] });
        let asking = json!({ "run": { "status": "waiting", "scenes": 6, "question": true } });
        assert_eq!(
            one(call("Make a 20 second neon city video", none.clone())),
            (
                "create_video".into(),
                json!({ "prompt": "Make a 20 second neon city video" })
            )
        );
        assert_eq!(
            one(call("make it vertical", done.clone())),
            ("revise".into(), json!({ "formats": ["9:16"] }))
        );
        assert_eq!(
            one(call("scene 3 darker", done.clone())),
            (
                "regenerate_scene".into(),
                json!({ "scenes": [2], "instruction": "darker" })
            )
        );
        assert_eq!(
            one(call("looks good!", asking.clone())),
            ("answer_feedback".into(), json!({ "action": "accept" }))
        );
        assert_eq!(
            one(call("skip it", asking.clone())),
            ("answer_feedback".into(), json!({ "action": "skip" }))
        );
        assert_eq!(
            one(call("raise the budget to $2.50", asking.clone())),
            (
                "answer_feedback".into(),
                json!({ "action": "budget", "usd": 2.5 })
            )
        );
        assert_eq!(
            one(call("never mind, cancel it", asking.clone())),
            ("answer_feedback".into(), json!({ "action": "cancel" }))
        );
        assert_eq!(
            one(call("redo scene 2 with more neon", asking)),
            (
                "answer_feedback".into(),
                json!({ "action": "regenerate", "scenes": [1], "instruction": "more neon" })
            )
        );
        assert_eq!(
            one(call("slower cuts", done.clone())),
            ("revise".into(), json!({ "instruction": "slower cuts" }))
        );
        assert_eq!(
            one(call("use my song instead", done.clone())),
            ("revise".into(), json!({ "audio": "up1" }))
        );
        assert_eq!(
            one(call("export it square", done.clone())),
            ("export".into(), json!({ "format": "1:1" }))
        );
        assert_eq!(
            one(call("what's the status?", done.clone())),
            ("status".into(), json!({}))
        );
        assert_eq!(
            one(call("Make a 15 second video about dogs", done.clone())).0,
            "create_video",
            "a described video is a new one, even beside the current"
        );
        assert_eq!(one(call("make it a bit slower", done)).0, "revise");
    }

    #[test]
    fn it_says_plainly_when_it_does_not_understand() {
        let Reading::Say(text) = call(
            "purple monkey dishwasher",
            json!({ "run": { "status": "completed" } }),
        ) else {
            panic!("no tool for nonsense")
        };
        assert!(text.contains("make it vertical"), "{text}");
        let Reading::Say(text) = call("hello", json!({ "run": null })) else {
            panic!("no tool for a greeting")
        };
        assert!(text.contains("Tell me what to make"));
    }

    #[test]
    fn tool_results_become_the_reply() {
        let reading = read(
            &[
                Message::user("make it vertical"),
                Message {
                    role: Role::Tool,
                    content: Some(json!({ "summary": "Version 2 is on its way." }).to_string()),
                    tool_calls: Vec::new(),
                    tool_call_id: Some("call_1".into()),
                    pictures: Vec::new(),
                },
            ],
            &tools(),
        );
        assert_eq!(reading, Reading::Say("Version 2 is on its way.".into()));
    }
}
