//! What a case asserts about its run record (`run.json`'s shape), named as promptfoo names
//! its assertions where one fits (`equals`, `icontains`, `regex`, `is-json`…), with Montage's
//! own for what promptfoo cannot see: prompt hygiene and cuts on beats.
//!
//! A path walks the record (`intent.mood`, `plan.scenes.0.start`); `*` takes every element,
//! and the assertion must then hold for each.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One assertion.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Assertion {
    /// The value equals `value` (numbers within a millionth).
    Equals {
        /// Where.
        path: String,
        /// What.
        value: Value,
    },
    /// The value is not `value`.
    NotEquals {
        /// Where.
        path: String,
        /// What it must not be.
        value: Value,
    },
    /// The value is one of `values`.
    OneOf {
        /// Where.
        path: String,
        /// The values it may have.
        values: Vec<Value>,
    },
    /// A text holds `value`, or a list has an element equal to it.
    Contains {
        /// Where.
        path: String,
        /// What.
        value: Value,
    },
    /// A text holds `value`, letter case aside; a list of texts holds it in one of them.
    Icontains {
        /// Where.
        path: String,
        /// What.
        value: String,
    },
    /// The opposite of [`Assertion::Contains`].
    NotContains {
        /// Where.
        path: String,
        /// What.
        value: Value,
    },
    /// The opposite of [`Assertion::Icontains`].
    NotIcontains {
        /// Where.
        path: String,
        /// What.
        value: String,
    },
    /// A text matches the regular expression `value`.
    Regex {
        /// Where.
        path: String,
        /// The expression.
        value: String,
    },
    /// A number within `[min, max]`.
    Range {
        /// Where.
        path: String,
        /// The least it may be.
        min: Option<f64>,
        /// The most it may be.
        max: Option<f64>,
    },
    /// A list or a text whose length is within `[min, max]`.
    Length {
        /// Where.
        path: String,
        /// The fewest.
        min: Option<usize>,
        /// The most.
        max: Option<usize>,
    },
    /// A list with the same elements as `value`, in any order.
    SetEquals {
        /// Where.
        path: String,
        /// The elements.
        value: Vec<Value>,
    },
    /// The value is valid against the JSON Schema `value`.
    IsJson {
        /// Where (the whole record when empty).
        #[serde(default)]
        path: String,
        /// The schema.
        value: Value,
    },
    /// Each text is a prompt an image model can use: no tempo, colour code or song section
    /// ([`crate::pipeline::hygiene`]).
    Hygiene {
        /// Where (`scenes.*.prompt.prompt`).
        path: String,
    },
    /// Every cut of the plan lands within `tolerance_ms` of a beat of the analysed music.
    CutsOnBeats {
        /// How far a cut may be from its beat, milliseconds.
        #[serde(default = "default_tolerance_ms")]
        tolerance_ms: f64,
    },
    /// In every finished video (`videos`, measured by decoding it), each cut a viewer sees
    /// lands within `tolerance_ms` of a beat (default: one frame), and as many cuts are seen
    /// as the plan made hard cuts (a crossfade shows no single cut frame).
    DecodedCutsOnBeats {
        /// How far a seen cut may be from its beat, milliseconds.
        tolerance_ms: Option<f64>,
    },
    /// The run spent at most `max` US dollars on models.
    Cost {
        /// The most.
        max: f64,
    },
}

fn default_tolerance_ms() -> f64 {
    1.0
}

/// How one assertion fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The assertion, as the suite wrote it.
    pub assertion: Assertion,
    /// Whether it held.
    pub pass: bool,
    /// 1 when it held, else the share of the selected values it held for.
    pub score: f64,
    /// Why it failed, or what it found.
    pub reason: String,
}

impl Assertion {
    /// A short label for tables: its type and path (`equals intent.mood`).
    pub fn label(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let kind = value["type"].as_str().unwrap_or("assertion");
        match value["path"].as_str() {
            Some(path) if !path.is_empty() => format!("{kind} {path}"),
            _ => kind.to_owned(),
        }
    }

    /// How it fares on `record`.
    pub fn judge(&self, record: &Value) -> Verdict {
        let verdict = |pass: bool, score: f64, reason: String| Verdict {
            assertion: self.clone(),
            pass,
            score,
            reason,
        };
        match self {
            Assertion::CutsOnBeats { tolerance_ms } => {
                let (pass, reason) = cuts_on_beats(record, *tolerance_ms);
                verdict(pass, f64::from(u8::from(pass)), reason)
            }
            Assertion::DecodedCutsOnBeats { tolerance_ms } => {
                let (pass, reason) = decoded_cuts_on_beats(record, *tolerance_ms);
                verdict(pass, f64::from(u8::from(pass)), reason)
            }
            Assertion::Cost { max } => {
                let spent = record["cost"]["total_usd"].as_f64().unwrap_or(0.0);
                let pass = spent <= *max + 1e-12;
                verdict(
                    pass,
                    f64::from(u8::from(pass)),
                    format!("${spent:.4} spent"),
                )
            }
            _ => {
                let path = self.path();
                let selected = select(record, path);
                if selected.is_empty() {
                    return verdict(false, 0.0, format!("the record has nothing at {path:?}"));
                }
                let mut failures = Vec::new();
                for (at, value) in &selected {
                    if let Err(why) = self.holds(value) {
                        failures.push(format!("{at}: {why}"));
                    }
                }
                let held = selected.len() - failures.len();
                let score = held as f64 / selected.len() as f64;
                match failures.is_empty() {
                    true => verdict(true, 1.0, format!("held for {held} value(s)")),
                    false => {
                        let mut reason = failures.iter().take(3).cloned().collect::<Vec<_>>();
                        if failures.len() > 3 {
                            reason.push(format!("and {} more", failures.len() - 3));
                        }
                        verdict(false, score, reason.join("; "))
                    }
                }
            }
        }
    }

    fn path(&self) -> &str {
        match self {
            Assertion::Equals { path, .. }
            | Assertion::NotEquals { path, .. }
            | Assertion::OneOf { path, .. }
            | Assertion::Contains { path, .. }
            | Assertion::Icontains { path, .. }
            | Assertion::NotContains { path, .. }
            | Assertion::NotIcontains { path, .. }
            | Assertion::Regex { path, .. }
            | Assertion::Range { path, .. }
            | Assertion::Length { path, .. }
            | Assertion::SetEquals { path, .. }
            | Assertion::IsJson { path, .. }
            | Assertion::Hygiene { path } => path,
            Assertion::CutsOnBeats { .. }
            | Assertion::DecodedCutsOnBeats { .. }
            | Assertion::Cost { .. } => "",
        }
    }

    /// Whether it holds for one selected value: `Err` says why not.
    fn holds(&self, value: &Value) -> Result<(), String> {
        let shown = |v: &Value| {
            let text = v.to_string();
            match text.chars().count() > 120 {
                true => format!("{}…", text.chars().take(120).collect::<String>()),
                false => text,
            }
        };
        let check = |ok: bool, why: String| if ok { Ok(()) } else { Err(why) };
        match self {
            Assertion::Equals { value: want, .. } => check(
                same(value, want),
                format!("{} is not {}", shown(value), shown(want)),
            ),
            Assertion::NotEquals {
                value: unwanted, ..
            } => check(!same(value, unwanted), format!("it is {}", shown(value))),
            Assertion::OneOf { values, .. } => check(
                values.iter().any(|v| same(value, v)),
                format!(
                    "{} is none of {}",
                    shown(value),
                    shown(&Value::from(values.clone()))
                ),
            ),
            Assertion::Contains { value: want, .. } => check(
                contains(value, want, false),
                format!("{} does not contain {}", shown(value), shown(want)),
            ),
            Assertion::Icontains { value: want, .. } => check(
                contains(value, &Value::from(want.as_str()), true),
                format!("{} does not contain {want:?}", shown(value)),
            ),
            Assertion::NotContains {
                value: unwanted, ..
            } => check(
                !contains(value, unwanted, false),
                format!("{} contains {}", shown(value), shown(unwanted)),
            ),
            Assertion::NotIcontains {
                value: unwanted, ..
            } => check(
                !contains(value, &Value::from(unwanted.as_str()), true),
                format!("{} contains {unwanted:?}", shown(value)),
            ),
            Assertion::Regex { value: pattern, .. } => {
                let expression = regex::Regex::new(pattern)
                    .map_err(|e| format!("{pattern:?} is no regular expression: {e}"))?;
                let text = value
                    .as_str()
                    .ok_or_else(|| format!("{} is no text", shown(value)))?;
                check(
                    expression.is_match(text),
                    format!("{} does not match {pattern:?}", shown(value)),
                )
            }
            Assertion::Range { min, max, .. } => {
                let number = value
                    .as_f64()
                    .ok_or_else(|| format!("{} is no number", shown(value)))?;
                check(
                    min.is_none_or(|m| number >= m - 1e-9)
                        && max.is_none_or(|m| number <= m + 1e-9),
                    format!("{number} is outside {}", bounds(min, max)),
                )
            }
            Assertion::Length { min, max, .. } => {
                let length = match value {
                    Value::Array(items) => items.len(),
                    Value::String(text) => text.chars().count(),
                    other => return Err(format!("{} has no length", shown(other))),
                };
                check(
                    min.is_none_or(|m| length >= m) && max.is_none_or(|m| length <= m),
                    format!(
                        "its length {length} is outside {}",
                        bounds(&min.map(|m| m as f64), &max.map(|m| m as f64))
                    ),
                )
            }
            Assertion::SetEquals { value: want, .. } => {
                let items = value
                    .as_array()
                    .ok_or_else(|| format!("{} is no list", shown(value)))?;
                let covers =
                    |a: &[Value], b: &[Value]| a.iter().all(|x| b.iter().any(|y| same(x, y)));
                check(
                    covers(items, want) && covers(want, items),
                    format!(
                        "{} is not the set {}",
                        shown(value),
                        shown(&Value::from(want.clone()))
                    ),
                )
            }
            Assertion::IsJson { value: schema, .. } => {
                let validator = jsonschema::validator_for(schema)
                    .map_err(|e| format!("the assertion's schema is not one: {e}"))?;
                let errors: Vec<String> = validator
                    .iter_errors(value)
                    .take(3)
                    .map(|e| e.to_string())
                    .collect();
                check(errors.is_empty(), errors.join("; "))
            }
            Assertion::Hygiene { .. } => {
                let text = value
                    .as_str()
                    .ok_or_else(|| format!("{} is no text", shown(value)))?;
                crate::pipeline::hygiene(text).map_err(|why| format!("{why}: {}", shown(value)))
            }
            Assertion::CutsOnBeats { .. }
            | Assertion::DecodedCutsOnBeats { .. }
            | Assertion::Cost { .. } => Ok(()),
        }
    }
}

fn bounds(min: &Option<f64>, max: &Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("[{a}, {b}]"),
        (Some(a), None) => format!("[{a}, …)"),
        (None, Some(b)) => format!("(…, {b}]"),
        (None, None) => "anything".into(),
    }
}

/// Equal, numbers within a millionth (a duration of 30 is the 30.0 the record holds).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-6,
        _ => a == b,
    }
}

fn contains(haystack: &Value, needle: &Value, ignore_case: bool) -> bool {
    let fold = |s: &str| match ignore_case {
        true => s.to_lowercase(),
        false => s.to_owned(),
    };
    match (haystack, needle) {
        (Value::String(text), Value::String(part)) => fold(text).contains(&fold(part)),
        (Value::Array(items), _) => items.iter().any(|item| match (item, needle) {
            (Value::String(a), Value::String(b)) if ignore_case => fold(a).contains(&fold(b)),
            (Value::String(a), Value::String(b)) => a == b,
            _ => same(item, needle),
        }),
        _ => false,
    }
}

/// The values at `path` in `record`, each with its concrete path.
pub fn select<'a>(record: &'a Value, path: &str) -> Vec<(String, &'a Value)> {
    let mut found = vec![(String::new(), record)];
    for step in path.split('.').filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for (at, value) in found {
            let join = |key: &str| match at.is_empty() {
                true => key.to_owned(),
                false => format!("{at}.{key}"),
            };
            match (step, value) {
                ("*", Value::Array(items)) => next.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(k, item)| (join(&k.to_string()), item)),
                ),
                ("*", Value::Object(fields)) => {
                    next.extend(fields.iter().map(|(key, item)| (join(key), item)))
                }
                (index, Value::Array(items)) => {
                    if let Some(item) = index.parse::<usize>().ok().and_then(|k| items.get(k)) {
                        next.push((join(index), item));
                    }
                }
                (key, Value::Object(fields)) => {
                    if let Some(item) = fields.get(key) {
                        next.push((join(key), item));
                    }
                }
                _ => {}
            }
        }
        found = next;
    }
    found
}

/// Whether each cut of the record's plan lies within `tolerance_ms` of one of its beats.
fn cuts_on_beats(record: &Value, tolerance_ms: f64) -> (bool, String) {
    let numbers = |v: &Value| -> Vec<f64> {
        v.as_array()
            .map(|items| items.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let beats = numbers(&record["beat_grid"]["beats"]);
    let Some(scenes) = record["plan"]["scenes"].as_array() else {
        return (false, "the record has no plan".into());
    };
    if beats.is_empty() {
        return (false, "the record has no beats".into());
    }
    let cuts: Vec<f64> = scenes
        .iter()
        .skip(1)
        .filter_map(|s| s["start"].as_f64())
        .collect();
    let off: Vec<String> = cuts
        .iter()
        .filter_map(|&cut| {
            let nearest = beats
                .iter()
                .map(|b| (b - cut).abs() * 1000.0)
                .fold(f64::INFINITY, f64::min);
            (nearest > tolerance_ms).then(|| format!("{cut:.3} s is {nearest:.0} ms from a beat"))
        })
        .collect();
    match off.is_empty() {
        true => (true, format!("{} cuts on beats", cuts.len())),
        false => (
            false,
            off.into_iter().take(3).collect::<Vec<_>>().join("; "),
        ),
    }
}

/// Whether every cut decoded from each of the record's `videos` lies near a beat, and each
/// video shows as many cuts as its plan has.
fn decoded_cuts_on_beats(record: &Value, tolerance_ms: Option<f64>) -> (bool, String) {
    let numbers = |v: &Value| -> Vec<f64> {
        v.as_array()
            .map(|items| items.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let beats = numbers(&record["beat_grid"]["beats"]);
    // A crossfade has no frame where most pixels change at once: only hard cuts are seen.
    let planned = record["plan"]["scenes"].as_array().map_or(0, |scenes| {
        let into_next = scenes.len().saturating_sub(1);
        scenes[..into_next]
            .iter()
            .filter(|s| s["cut_after"] == "hard")
            .count()
    });
    let Some(videos) = record["videos"].as_array().filter(|v| !v.is_empty()) else {
        return (false, "the record has no finished videos".into());
    };
    if beats.is_empty() {
        return (false, "the record has no beats".into());
    }
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for video in videos {
        let format = video["format"].as_str().unwrap_or("?");
        let fps = video["fps"].as_f64().unwrap_or(30.0);
        let tolerance = tolerance_ms.unwrap_or(1000.0 / fps);
        let cuts = numbers(&video["cuts"]);
        for cut in &cuts {
            let nearest = beats
                .iter()
                .map(|b| (b - cut).abs() * 1000.0)
                .fold(f64::INFINITY, f64::min);
            if nearest > tolerance {
                problems.push(format!(
                    "{format}: a cut at {cut:.3} s is {nearest:.0} ms from a beat"
                ));
            }
        }
        if cuts.len() != planned {
            problems.push(format!(
                "{format}: {} cuts seen, {planned} hard cuts planned",
                cuts.len()
            ));
        }
        seen.push(format!("{format}: {} cuts", cuts.len()));
    }
    match problems.is_empty() {
        true => (true, format!("{} on beats", seen.join(", "))),
        false => (
            false,
            problems.into_iter().take(3).collect::<Vec<_>>().join("; "),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn judge(assertion: Value, record: &Value) -> Verdict {
        serde_json::from_value::<Assertion>(assertion)
            .unwrap()
            .judge(record)
    }

    #[test]
    fn a_star_holds_the_assertion_to_every_element() {
        let record = json!({ "scenes": [
            { "prompt": { "prompt": "a lighthouse at dusk" } },
            { "prompt": { "prompt": "a lighthouse, 128 BPM" } },
        ] });
        let hygiene = json!({ "type": "hygiene", "path": "scenes.*.prompt.prompt" });
        let verdict = judge(hygiene, &record);
        assert!(!verdict.pass);
        assert_eq!(verdict.score, 0.5);
        assert!(
            verdict.reason.starts_with("scenes.1.prompt.prompt"),
            "{}",
            verdict.reason
        );
        let subject =
            json!({ "type": "icontains", "path": "scenes.*.prompt.prompt", "value": "LIGHTHOUSE" });
        assert!(judge(subject, &record).pass);
    }

    #[test]
    fn numbers_sets_and_missing_paths() {
        let record = json!({ "intent": { "duration": 30.0, "formats": ["9:16", "1:1"] } });
        assert!(
            judge(
                json!({ "type": "equals", "path": "intent.duration", "value": 30 }),
                &record
            )
            .pass
        );
        assert!(
            !judge(
                json!({ "type": "range", "path": "intent.duration", "max": 20 }),
                &record
            )
            .pass
        );
        let set =
            json!({ "type": "set-equals", "path": "intent.formats", "value": ["1:1", "9:16"] });
        assert!(judge(set, &record).pass);
        let missing = judge(
            json!({ "type": "equals", "path": "intent.mood", "value": "calm" }),
            &record,
        );
        assert!(
            !missing.pass && missing.reason.contains("nothing at"),
            "{}",
            missing.reason
        );
    }

    #[test]
    fn cuts_are_measured_against_the_beats() {
        let record = json!({
            "beat_grid": { "beats": [0.0, 0.5, 1.0, 1.5, 2.0] },
            "plan": { "scenes": [{ "start": 0.0 }, { "start": 1.0 }, { "start": 1.52 }] },
        });
        let loose = judge(
            json!({ "type": "cuts-on-beats", "tolerance_ms": 25 }),
            &record,
        );
        assert!(loose.pass, "{}", loose.reason);
        let tight = judge(json!({ "type": "cuts-on-beats" }), &record);
        assert!(
            !tight.pass && tight.reason.contains("20 ms"),
            "{}",
            tight.reason
        );
    }
}
