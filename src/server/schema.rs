//! The API document's contract: the schemas of values whose types live in other crates
//! (categories, moods, paces, formats), and what every operation can answer besides success
//! (the error statuses, with the `{code, message}` body) and how it is authenticated. A
//! client generated from the document, or a fuzzer reading it, meets no status, field or
//! value the document does not name.

use super::error::ErrorBody;
use schemars::JsonSchema;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};
use utoipa::{Modify, PartialSchema};

/// An optional whole number as JSON Schema sees one (see
/// [`whole_number`](crate::pipeline::state::whole_number)), within `T`'s range.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    crate::pipeline::state::whole_number(&number)
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// An optional object, refusing the array form serde would otherwise also read a struct
/// from (`[null, null]`).
pub fn object_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::Deserialize;
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        object @ Value::Object(_) => serde_json::from_value(object)
            .map(Some)
            .map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::custom(format!(
            "expected an object, found {}",
            kind_of(&other)
        ))),
    }
}

/// What sort of JSON value `value` is, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every string value `T`'s JSON Schema (from schemars) allows.
fn values_of<T: JsonSchema>() -> Vec<Value> {
    fn walk(value: &Value, out: &mut Vec<Value>) {
        match value {
            Value::Object(map) => {
                if let Some(constant @ Value::String(_)) = map.get("const") {
                    out.push(constant.clone());
                }
                if let Some(Value::Array(listed)) = map.get("enum") {
                    out.extend(listed.iter().filter(|v| v.is_string()).cloned());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    let mut values = Vec::new();
    walk(&schema, &mut values);
    values.dedup();
    values
}

/// A string that is one of `values`, or null when `nullable`.
fn one_of(values: Vec<Value>, nullable: bool, description: &str) -> Schema {
    let (kind, values) = if nullable {
        let mut with_null = values;
        with_null.push(Value::Null);
        (SchemaType::from_iter([Type::String, Type::Null]), with_null)
    } else {
        (SchemaType::Type(Type::String), values)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}

/// The names a format may be given by (`16:9`, `vertical`, `square`, …).
fn format_names() -> Vec<Value> {
    [
        "16:9",
        "16x9",
        "landscape",
        "horizontal",
        "widescreen",
        "9:16",
        "9x16",
        "vertical",
        "portrait",
        "1:1",
        "1x1",
        "square",
    ]
    .into_iter()
    .map(Value::from)
    .collect()
}

/// A category, or null.
pub fn category() -> Schema {
    one_of(
        values_of::<montage_models::Category>(),
        true,
        "What kind of video, overriding the words.",
    )
}

/// A mood, or null.
pub fn mood() -> Schema {
    one_of(
        values_of::<montage_models::Mood>(),
        true,
        "The feeling, overriding the words.",
    )
}

/// A pace, or null.
pub fn pace() -> Schema {
    one_of(
        values_of::<montage_models::Pace>(),
        true,
        "How fast the cuts come, overriding the words.",
    )
}

/// A list of formats (at least one), or null.
pub fn formats() -> Schema {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(utoipa::openapi::schema::ArrayItems::RefOrSchema(Box::new(
            RefOr::T(one_of(format_names(), false, "A frame shape.")),
        )))
        .min_items(Some(1))
        .description(Some(
            "Frame shapes, overriding the words: 16:9 (landscape), 9:16 (vertical), 1:1 (square).",
        ))
        .into()
}

/// Style words, or null.
pub fn style() -> Schema {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(40)),
        )
        .max_items(Some(8))
        .description(Some("Style words, overriding the words' (at most 8)."))
        .into()
}

/// What the guard, authentication and body parsing can answer on any operation, by which
/// operations they apply to.
struct Answer {
    status: &'static str,
    description: &'static str,
    applies: fn(&Kind) -> bool,
}

/// What sort of operation it is, for the answers that apply to it.
struct Kind {
    secured: bool,
    json_body: bool,
    query: bool,
    limited: bool,
    queues: bool,
}

const ANSWERS: &[Answer] = &[
    Answer {
        status: "400",
        description: "Malformed: a body that is not JSON, a query that does not parse",
        applies: |k| k.json_body || k.query,
    },
    Answer {
        status: "401",
        description: "No valid token (servers with server.auth = \"tokens\")",
        applies: |k| k.secured,
    },
    Answer {
        status: "403",
        description: "A host or site this server does not serve (server.allowed_hosts)",
        applies: |_| true,
    },
    Answer {
        status: "413",
        description: "The body is larger than the server takes",
        applies: |k| k.json_body,
    },
    Answer {
        status: "415",
        description: "The body is not application/json",
        applies: |k| k.json_body,
    },
    Answer {
        status: "422",
        description: "JSON that does not fit the schema, or a request Montage cannot carry out",
        applies: |k| k.json_body,
    },
    Answer {
        status: "429",
        description: "Beyond one of the person's limits (server.limits); see Retry-After",
        applies: |k| k.limited,
    },
    Answer {
        status: "503",
        description: "The queue is full; see Retry-After",
        applies: |k| k.queues,
    },
];

/// Adds the bearer scheme, each operation's security and every error answer it can give.
pub struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `montage user add NAME`. A server on loopback without \
                         server.auth = \"tokens\" serves requests without one as its local user.",
                    ))
                    .build(),
            ),
        );
        components
            .schemas
            .insert("ErrorBody".into(), ErrorBody::schema());
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("delete", item.delete.as_mut()),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                // Forgetting a cookie needs no token: there may be none left to send.
                let open = matches!(path.as_str(), "/healthz" | "/api/openapi.json")
                    || (method, path.as_str()) == ("delete", "/api/session");
                let kind = Kind {
                    secured: !open,
                    json_body: operation
                        .request_body
                        .as_ref()
                        .is_some_and(|b| b.content.contains_key("application/json")),
                    query: operation.parameters.as_ref().is_some_and(|p| {
                        p.iter()
                            .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query)
                    }),
                    limited: method == "post"
                        && matches!(
                            path.as_str(),
                            "/api/runs"
                                | "/api/runs/{id}/revise"
                                | "/api/uploads"
                                | "/api/chats/{id}/messages"
                        ),
                    queues: method == "post"
                        && matches!(path.as_str(), "/api/runs" | "/api/runs/{id}/revise"),
                };
                complete(operation, &kind, open);
            }
        }
    }
}

fn complete(operation: &mut Operation, kind: &Kind, open: bool) {
    operation.security = Some(if open {
        vec![SecurityRequirement::default()]
    } else {
        vec![SecurityRequirement::new("bearer", Vec::<String>::new())]
    });
    for answer in ANSWERS.iter().filter(|a| (a.applies)(kind)) {
        operation
            .responses
            .responses
            .entry(answer.status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(answer.description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                    "ErrorBody",
                                ))))
                                .build(),
                        )
                        .build(),
                )
            });
    }
}

/// The document as served: the typed one, then what the types cannot say — unknown fields
/// refused in each kind of answer, and "at least one change" in an edit and a revision.
pub fn document(typed: OpenApi) -> Value {
    let mut document = serde_json::to_value(typed).unwrap_or_default();
    if let Some(Value::Array(kinds)) =
        document["components"]["schemas"]["FeedbackAnswer"].get_mut("oneOf")
    {
        for kind in kinds {
            kind["additionalProperties"] = Value::Bool(false);
            if kind["properties"]["action"]["enum"][0] == "edit" {
                kind["anyOf"] = at_least_one(&["pace", "mood", "duration"]);
            }
        }
    }
    document["paths"]["/api/uploads"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"] = serde_json::json!({
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "array",
                "items": { "type": "string", "format": "binary" },
                "minItems": 1,
                "description": "Audio (WAV, MP3, FLAC, OGG/Vorbis, M4A) or images (PNG, JPEG), each decoded before it is kept",
            },
        },
        "additionalProperties": false,
    });
    // Every body is required: without one the server has nothing to act on.
    if let Some(Value::Object(paths)) = document.get_mut("paths") {
        for item in paths.values_mut() {
            for operation in item
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
            {
                if let Some(body) = operation.get_mut("requestBody") {
                    body["required"] = Value::Bool(true);
                }
            }
        }
    }
    let schemas = &mut document["components"]["schemas"];
    // Any u64: not int64's range.
    schemas["CreateRun"]["properties"]["seed"] = serde_json::json!({
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": u64::MAX,
        "description": "The same prompt, files and seed make the same video (default 1).",
    });
    schemas["ReviseRun"]["anyOf"] = at_least_one(&[
        "instruction",
        "formats",
        "duration",
        "category",
        "mood",
        "pace",
        "style",
    ]);
    document
}

/// "At least one of `fields` is there and not null".
fn at_least_one(fields: &[&str]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|field| {
                serde_json::json!({
                    "required": [field],
                    "properties": { *field: { "not": { "type": "null" } } },
                })
            })
            .collect(),
    )
}

/// `text` with the characters a regular expression gives meaning to escaped.
fn regex_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The run's model choice as the patterns this server's `offered` models make: a text
/// chain of up to four of them, one for the critic.
pub fn offer_models(document: &mut Value, offered: &[&str]) {
    let one = offered
        .iter()
        .map(|entry| regex_literal(entry))
        .collect::<Vec<_>>()
        .join("|");
    let choice = &mut document["components"]["schemas"]["ModelChoice"]["properties"];
    if choice.is_object() {
        choice["text"]["pattern"] = Value::String(format!("^ *({one}) *(, *({one}) *){{0,3}}$"));
        choice["vision"]["pattern"] = Value::String(format!("^ *({one}) *$"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_from_other_crates_list_every_value() {
        let moods = values_of::<montage_models::Mood>();
        assert!(moods.contains(&Value::from("melancholic")), "{moods:?}");
        assert_eq!(values_of::<montage_models::Pace>().len(), 3);
        let categories = values_of::<montage_models::Category>();
        assert!(categories.contains(&Value::from("music_video")));
        for name in format_names() {
            assert!(montage_models::Format::parse(name.as_str().unwrap()).is_some());
        }
    }

    #[test]
    fn a_model_choice_matches_only_what_the_server_offers() {
        let mut document = serde_json::json!({ "components": { "schemas": { "ModelChoice": {
            "properties": { "text": { "type": ["string", "null"] }, "vision": { "type": ["string", "null"] } },
        } } } });
        offer_models(
            &mut document,
            &[
                "local",
                "openai:gpt-4.1-mini",
                "anthropic:claude-sonnet-4-5",
            ],
        );
        let text =
            document["components"]["schemas"]["ModelChoice"]["properties"]["text"]["pattern"]
                .as_str()
                .unwrap();
        assert_eq!(
            text,
            r"^ *(local|openai:gpt-4\.1-mini|anthropic:claude-sonnet-4-5) *(, *(local|openai:gpt-4\.1-mini|anthropic:claude-sonnet-4-5) *){0,3}$"
        );
    }
}
