//! A schema as an endpoint will take it. Strict structured output (OpenAI's `strict: true`)
//! wants every property required and no other properties; some endpoints refuse limits such
//! as `maxLength`. The schema sent is reshaped for them, and the answer is always checked
//! against the whole schema by Montage, so nothing a reshaped schema dropped goes unchecked.

use serde_json::{Map, Value};

/// Keywords that limit a value rather than shape it: what endpoints refuse most often, and
/// what Montage checks itself anyway.
const LIMITS: &[&str] = &[
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// Whether an endpoint's refusal is about the schema it was given (not, say, the length of
/// the conversation or an image's format).
pub(super) fn refuses_schema(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["schema", "response_format"]
        .iter()
        .any(|word| message.contains(word))
}

/// `schema` without its limits.
pub(super) fn without_limits(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                // A property of that name is an object, and stays.
                .filter(|(key, value)| !LIMITS.contains(&key.as_str()) || value.is_object())
                .map(|(key, value)| (key.clone(), without_limits(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_limits).collect()),
        other => other.clone(),
    }
}

/// `schema` in the form strict mode takes: every object closed, every property required,
/// and a property that was optional allowed to be `null` (which [`drop_optional_nulls`]
/// takes out of the answer again).
pub(super) fn strict(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out: Map<String, Value> = map
        .iter()
        // Which draft a schema is written in is no constraint, and strict mode takes no
        // keyword it does not know.
        .filter(|(key, _)| *key != "$schema")
        .map(|(key, value)| {
            let value = match key.as_str() {
                "properties" | "$defs" | "definitions" => match value {
                    Value::Object(children) => Value::Object(
                        children
                            .iter()
                            .map(|(name, child)| (name.clone(), strict(child)))
                            .collect(),
                    ),
                    other => other.clone(),
                },
                "items" | "additionalProperties" => strict(value),
                "anyOf" | "oneOf" | "allOf" => match value {
                    Value::Array(options) => Value::Array(options.iter().map(strict).collect()),
                    other => other.clone(),
                },
                _ => value.clone(),
            };
            // Strict mode takes `anyOf` only; Montage's variants never overlap, so `oneOf`
            // says no more.
            let key = match key.as_str() {
                "oneOf" => "anyOf".to_owned(),
                _ => key.clone(),
            };
            (key, value)
        })
        .collect();
    if let Some(Value::Object(properties)) = out.get("properties").cloned() {
        let required = required(map);
        let mut all = Vec::new();
        let mut reshaped = Map::new();
        for (name, property) in properties {
            all.push(Value::String(name.clone()));
            let property = if required.contains(&name.as_str()) || allows_null(&property) {
                property
            } else {
                serde_json::json!({ "anyOf": [property, { "type": "null" }] })
            };
            reshaped.insert(name, property);
        }
        // In one order whatever order the properties came in.
        all.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        out.insert("properties".into(), Value::Object(reshaped));
        out.insert("required".into(), Value::Array(all));
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

fn required(map: &Map<String, Value>) -> Vec<&str> {
    map.get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn allows_null(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(kind) => kind == "null",
        Value::Array(kinds) => kinds.iter().any(|k| k == "null"),
        _ => ["anyOf", "oneOf"].iter().any(|key| {
            schema[key]
                .as_array()
                .is_some_and(|options| options.iter().any(allows_null))
        }),
    }
}

/// `answer` without the `null`s strict mode made it write for properties `schema` (the
/// whole one) leaves optional, so it reads as if the model had left them out.
pub(super) fn drop_optional_nulls(answer: &mut Value, schema: &Value) {
    drop_nulls(answer, schema, schema, 0);
}

fn drop_nulls(answer: &mut Value, schema: &Value, root: &Value, depth: usize) {
    // `$ref`s can refer to themselves; answers are not that deep.
    if depth > 32 {
        return;
    }
    let schema = resolve(schema, root);
    // An optional object (`anyOf: [{$ref}, {type: null}]`) or a variant: the branch with
    // properties is the one an object answers.
    if answer.is_object() && schema.get("properties").is_none() {
        let branch = ["anyOf", "oneOf"]
            .iter()
            .filter_map(|key| schema.get(*key).and_then(Value::as_array))
            .flatten()
            .map(|option| resolve(option, root))
            .find(|option| option.get("properties").is_some());
        if let Some(branch) = branch {
            return drop_nulls(answer, branch, root, depth + 1);
        }
    }
    match answer {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let required = schema.as_object().map(required).unwrap_or_default();
            fields.retain(|name, value| {
                !(value.is_null()
                    && !required.contains(&name.as_str())
                    && properties.is_some_and(|p| p.get(name).is_some_and(|s| !allows_null(s))))
            });
            if let Some(properties) = properties {
                for (name, value) in fields.iter_mut() {
                    if let Some(child) = properties.get(name) {
                        drop_nulls(value, child, root, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for value in items {
                    drop_nulls(value, item, root, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// The schema a local `$ref` (`#/$defs/Name`) points at, or `schema` itself.
fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(schema),
        None => schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "subject": { "type": "string", "maxLength": 80 },
                "mood": { "$ref": "#/$defs/Mood" },
                "seconds": { "type": "number", "minimum": 3, "maximum": 600 },
                "scenes": { "type": "array", "maxItems": 4, "items": { "$ref": "#/$defs/Scene" } },
                "note": { "type": ["string", "null"] },
            },
            "required": ["subject"],
            "$defs": {
                "Mood": { "type": "string", "enum": ["calm", "dark"] },
                "Scene": {
                    "type": "object",
                    "properties": { "action": { "type": "string" }, "text": { "type": "string" } },
                    "required": ["action"],
                },
            },
        })
    }

    #[test]
    fn strict_form_closes_every_object_and_requires_every_property() {
        let strict = strict(&schema());
        assert_eq!(strict["additionalProperties"], false);
        assert_eq!(
            strict["required"],
            json!(["mood", "note", "scenes", "seconds", "subject"])
        );
        assert_eq!(strict["properties"]["subject"]["type"], "string");
        assert_eq!(
            strict["properties"]["mood"]["anyOf"][1],
            json!({ "type": "null" })
        );
        assert_eq!(
            strict["properties"]["note"]["type"],
            json!(["string", "null"])
        );
        let scene = &strict["$defs"]["Scene"];
        assert_eq!(scene["additionalProperties"], false);
        assert_eq!(scene["required"], json!(["action", "text"]));
        assert!(strict.get("$schema").is_none());
    }

    #[test]
    fn limits_go_and_shapes_stay() {
        let loose = without_limits(&schema());
        assert!(loose["properties"]["subject"].get("maxLength").is_none());
        assert!(loose["properties"]["seconds"].get("minimum").is_none());
        assert!(loose["properties"]["scenes"].get("maxItems").is_none());
        assert_eq!(loose["$defs"]["Mood"]["enum"], json!(["calm", "dark"]));
        assert_eq!(loose["required"], json!(["subject"]));
    }

    #[test]
    fn the_nulls_strict_mode_forced_are_taken_out_again() {
        let mut answer = json!({
            "subject": "a lake",
            "mood": null,
            "seconds": null,
            "note": null,
            "scenes": [{ "action": "the sun rises", "text": null }],
        });
        drop_optional_nulls(&mut answer, &schema());
        assert_eq!(
            answer,
            json!({
                "subject": "a lake",
                "note": null,
                "scenes": [{ "action": "the sun rises" }],
            })
        );
    }

    #[test]
    fn refusals_about_the_schema_are_told_apart() {
        assert!(refuses_schema(
            "Invalid schema for response_format 'intent': 'maxLength' is not permitted."
        ));
        assert!(!refuses_schema("The model `gpt-9` does not exist"));
        assert!(!refuses_schema(
            "This model's maximum context length is 8192 tokens."
        ));
        assert!(!refuses_schema("unsupported image format"));
    }

    #[test]
    fn variants_become_any_of_and_nulls_inside_optional_objects_go() {
        let schema = json!({
            "type": "object",
            "properties": {
                "fix": { "oneOf": [
                    { "type": "object", "properties": { "action": { "const": "keep" } }, "required": ["action"] },
                    { "type": "object", "properties": { "action": { "const": "regenerate" }, "instruction": { "type": "string" } }, "required": ["action"] },
                ] },
                "shot": { "anyOf": [{ "$ref": "#/$defs/Shot" }, { "type": "null" }] },
            },
            "required": ["fix"],
            "$defs": { "Shot": { "type": "object", "properties": { "lens": { "type": "string" }, "light": { "type": "string" } }, "required": ["lens"] } },
        });
        let strict_form = strict(&schema);
        assert!(strict_form["properties"]["fix"].get("oneOf").is_none());
        assert_eq!(
            strict_form["properties"]["fix"]["anyOf"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let mut answer =
            json!({ "fix": { "action": "keep" }, "shot": { "lens": "35mm", "light": null } });
        drop_optional_nulls(&mut answer, &schema);
        assert_eq!(answer["shot"], json!({ "lens": "35mm" }));
    }
}
