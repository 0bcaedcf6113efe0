//! story: what happens in each planned scene, and the script (captions, narration) that
//! follows from it. The plan has fixed how many scenes there are and how long each is; a
//! text model writes the rest when one is configured. Offline, and whenever the model's
//! answer cannot be used, the templates write the same structure (and the run says why).

use super::{NodeResult, Services, run_models};
use super::{intent_of, plan_of};
use crate::pipeline::state::{
    CostEntry, Plan, RunState, ScriptLine, Story, StoryScene, TemplateRef, Update,
};
use crate::pipeline::templates::Templates;
use minijinja::context;
use montage_graph::{Command, NodeError};
use montage_models::{Format, Intent, JsonSchemaFormat, Message, ModelId, TextRequest};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// Words a narrator speaks per second, unhurried.
const WORDS_PER_SECOND: f64 = 2.5;

/// The spoken words a scene of `seconds` has room for.
pub fn word_budget(seconds: f64) -> usize {
    ((seconds * WORDS_PER_SECOND).floor() as usize).max(2)
}

/// What the model is asked for: `""` stands for none, so that endpoints which want every
/// field present (OpenAI's strict mode, small models under a grammar) can answer it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Written {
    /// The video's title, at most 8 words.
    #[schemars(length(min = 1, max = 80))]
    title: String,
    /// One or two sentences for the post.
    #[schemars(length(max = 300))]
    description: String,
    /// 3 to 6 hashtags, each starting with #.
    #[schemars(length(max = 6))]
    hashtags: Vec<String>,
    /// One sentence on the look every scene shares.
    #[schemars(length(max = 300))]
    style_sheet: String,
    /// One entry per scene, in order.
    scenes: Vec<WrittenScene>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WrittenScene {
    /// What the camera sees, in plain visual words.
    #[schemars(length(min = 1, max = 300))]
    action: String,
    /// A few words shown on screen, or "".
    #[schemars(length(max = 60))]
    on_screen_text: String,
    /// The spoken line, or "".
    #[schemars(length(max = 240))]
    narration: String,
    /// Whether this scene carries on the shot before it: the same place, the same moment.
    #[serde(default)]
    continues: bool,
}

/// The schema of the answer for a plan of `scenes` scenes.
fn answer_format(scenes: usize) -> JsonSchemaFormat {
    let mut format = JsonSchemaFormat::of::<Written>("story");
    if let Some(list) = format.schema.pointer_mut("/properties/scenes") {
        list["minItems"] = scenes.into();
        list["maxItems"] = scenes.into();
    }
    format
}

/// story: the story of the planned scenes, then the script from it.
pub async fn story(state: Arc<RunState>, services: Arc<Services>) -> NodeResult {
    let intent = intent_of(&state)?;
    let plan = plan_of(&state)?;
    let (offline, mut templates) = by_templates(intent, plan, &services.templates)?;
    let mut notices = Vec::new();
    let mut cost = Vec::new();
    let text_model = run_models(&services, &state).await?.text;
    let story = if text_model.id().provider == "local" {
        offline
    } else {
        match by_model(
            intent,
            plan,
            &state.request.prompt,
            state.request.seed,
            &services,
            text_model.as_ref(),
        )
        .await
        {
            Ok(written) => {
                templates.push(written.template);
                cost.extend(CostEntry::wasted("story", "text", &written.wasted));
                cost.push(CostEntry {
                    node: "story".into(),
                    scene: None,
                    capability: "text".into(),
                    model: written.story.model.clone(),
                    usd: written.cost_usd,
                    tokens: written.tokens,
                    cached: false,
                });
                notices.extend(written.notices);
                keep_spoken_lines_short(written.story, &offline, plan, &mut notices)
            }
            Err(error) => {
                tracing::warn!(%error, "the story model failed; the templates write the story");
                cost.extend(CostEntry::wasted("story", "text", error.wasted()));
                notices.push(format!(
                    "the story could not come from the text model ({error}); the templates wrote it"
                ));
                offline
            }
        }
    };
    let script = script(plan, &story);
    Ok(Command::update(Update {
        templates,
        story: Some(story),
        script: Some(script),
        cost,
        notices,
        ..Update::default()
    }))
}

/// A story the model wrote, with what writing it took.
struct ByModel {
    story: Story,
    template: TemplateRef,
    cost_usd: f64,
    tokens: montage_models::Usage,
    notices: Vec<String>,
    wasted: Vec<montage_models::Wasted>,
}

fn energy_word(energy: f64) -> &'static str {
    match energy {
        e if e > 0.7 => "loud",
        e if e < 0.35 => "quiet",
        _ => "steady",
    }
}

/// Where people will post a video of `formats`.
fn platforms(formats: &[Format]) -> Vec<&'static str> {
    let mut names = Vec::new();
    for format in formats {
        names.extend_from_slice(match format {
            Format::Landscape => &["YouTube"][..],
            Format::Portrait => &["TikTok", "Instagram Reels", "YouTube Shorts"][..],
            Format::Square => &["Instagram"][..],
        });
    }
    names.dedup();
    names
}

async fn by_model(
    intent: &Intent,
    plan: &Plan,
    words: &str,
    seed: u64,
    services: &Services,
    text_model: &dyn montage_models::TextModel,
) -> Result<ByModel, montage_models::ModelError> {
    let scenes: Vec<_> = plan
        .scenes
        .iter()
        .map(|scene| {
            let seconds = scene.end - scene.start;
            context! {
                seconds => format!("{seconds:.1}"),
                new_part => scene.section_start,
                energy => energy_word(scene.energy),
                words => word_budget(seconds),
            }
        })
        .collect();
    let (system, template) = services
        .templates
        .render(
            "story.system",
            context! {
                category => category_words(intent),
                subject => intent.subject.clone(),
                mood => intent.mood.word(),
                style => intent.style.clone(),
                narration => intent.narration,
                platforms => platforms(&intent.formats),
                scenes => scenes.len(),
                plan => scenes,
            },
        )
        .map_err(|e| montage_models::ModelError::InvalidRequest(e.to_string()))?;
    let request = TextRequest {
        messages: vec![Message::system(system), Message::user(words)],
        seed: Some(seed),
        temperature: Some(0.7),
        ..TextRequest::default()
    };
    let count = plan.scenes.len();
    let (written, response) = montage_models::structured_as::<Written>(
        text_model,
        answer_format(count),
        request,
        |written| {
            if written.scenes.len() == count {
                Ok(())
            } else {
                Err(format!(
                    "there are {count} scenes and the answer has {}",
                    written.scenes.len()
                ))
            }
        },
    )
    .await?;
    Ok(ByModel {
        story: story_of(written, response.model.clone(), intent.narration),
        template,
        cost_usd: response.cost_usd,
        tokens: response.usage,
        notices: response.notices,
        wasted: response.wasted,
    })
}

fn some_text(text: String) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The model's answer as a story: blanks as none, hashtags as `#word`, narration only for
/// a narrated video.
fn story_of(written: Written, model: ModelId, narrated: bool) -> Story {
    let mut hashtags: Vec<String> = Vec::new();
    for tag in written.hashtags {
        let word: String = tag
            .trim_start_matches('#')
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let tag = format!("#{word}");
        if !word.is_empty() && !hashtags.contains(&tag) {
            hashtags.push(tag);
        }
    }
    Story {
        model,
        title: written.title.trim().to_owned(),
        description: written.description.trim().to_owned(),
        hashtags,
        style_sheet: written.style_sheet.trim().to_owned(),
        scenes: written
            .scenes
            .into_iter()
            .enumerate()
            .map(|(k, scene)| StoryScene {
                action: scene.action.trim().to_owned(),
                on_screen_text: some_text(scene.on_screen_text),
                narration: some_text(scene.narration).filter(|_| narrated),
                // The first scene has nothing before it to carry on.
                continues: scene.continues && k > 0,
            })
            .collect(),
    }
}

/// A spoken line longer than its scene would run into the next one: the templates' line
/// (or none) takes its place, and the run is told.
fn keep_spoken_lines_short(
    mut story: Story,
    offline: &Story,
    plan: &Plan,
    notices: &mut Vec<String>,
) -> Story {
    let mut replaced = Vec::new();
    for (k, scene) in story.scenes.iter_mut().enumerate() {
        let seconds = plan.scenes[k].end - plan.scenes[k].start;
        if let Some(line) = &scene.narration
            && line.split_whitespace().count() > word_budget(seconds)
        {
            scene.narration = offline.scenes[k].narration.clone();
            replaced.push((k + 1).to_string());
        }
    }
    if !replaced.is_empty() {
        notices.push(format!(
            "the narration written for scene {} was too long to speak in its scene; the template's line is used",
            replaced.join(", ")
        ));
    }
    story
}

/// The offline story: each scene is its shot of the subject, a line where each section
/// starts and at least every few bars, the title from the subject.
pub fn by_templates(
    intent: &Intent,
    plan: &Plan,
    templates: &Templates,
) -> Result<(Story, Vec<TemplateRef>), NodeError> {
    let line_gap = (4.0 * 4.0 * 60.0 / plan.bpm).max(4.0);
    let mut last_start = f64::NEG_INFINITY;
    let starts: Vec<usize> = plan
        .scenes
        .iter()
        .enumerate()
        .filter(|(k, s)| {
            let take = *k == 0 || s.section_start || s.start - last_start >= line_gap;
            if take {
                last_start = s.start;
            }
            take
        })
        .map(|(k, _)| k)
        .collect();
    let mut scenes: Vec<StoryScene> = plan
        .scenes
        .iter()
        .enumerate()
        .map(|(k, scene)| StoryScene {
            action: intent.subject.clone(),
            on_screen_text: None,
            narration: None,
            // Without a writer, a scene melting into the one before within a part of the
            // song carries it on.
            continues: k > 0
                && !scene.section_start
                && plan.scenes[k - 1].cut_after == crate::pipeline::state::Cut::Crossfade,
        })
        .collect();
    let mut used = Vec::new();
    for (n, &k) in starts.iter().enumerate() {
        let (text, reference) = templates.render_line(
            "narration.line",
            context! {
                index => n,
                last => n + 1 == starts.len() && n > 0,
                section => plan.scenes[k].section.clone(),
                subject => intent.subject.clone(),
                mood => intent.mood.word(),
            },
        )?;
        used = vec![reference];
        if intent.narration {
            scenes[k].narration = Some(text);
        } else {
            scenes[k].on_screen_text = Some(text);
        }
    }
    let subject = capitalised(&intent.subject);
    let colours = montage_models::local::palette::colour_names(&intent.palette);
    let mut look = vec![format!("{} mood", intent.mood.word())];
    look.extend(intent.style.iter().map(|s| format!("{s} style")));
    if !colours.is_empty() {
        look.push(format!("colours {}", colours.join(", ")));
    }
    Ok((
        Story {
            model: ModelId::new("local", "templates"),
            title: subject.clone(),
            description: format!("{subject}, cut to the beat."),
            hashtags: hashtags_of(&intent.subject, &category_words(intent)),
            style_sheet: look.join(", "),
            scenes,
        },
        used,
    ))
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The kind of video in words (`music video`).
fn category_words(intent: &Intent) -> String {
    serde_json::to_value(intent.category)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

/// The subject's telling words as hashtags, and the kind of video.
fn hashtags_of(subject: &str, category: &str) -> Vec<String> {
    const FILLER: &[&str] = &[
        "a", "an", "the", "of", "at", "in", "on", "and", "with", "for", "to", "by",
    ];
    let mut tags: Vec<String> = Vec::new();
    for word in subject.split(|c: char| !c.is_alphanumeric()) {
        let word = word.to_lowercase();
        let tag = format!("#{word}");
        if word.len() > 1 && !FILLER.contains(&word.as_str()) && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.truncate(5);
    let kind: String = category.split_whitespace().collect();
    if !kind.is_empty() {
        tags.push(format!("#{kind}"));
    }
    tags
}

/// The script: each scene with something to say or show starts a line, which runs until the
/// next such scene starts (or the video ends).
pub fn script(plan: &Plan, story: &Story) -> Vec<ScriptLine> {
    let lines: Vec<(usize, String)> = story
        .scenes
        .iter()
        .enumerate()
        .filter_map(|(k, scene)| {
            let text = scene
                .narration
                .clone()
                .or_else(|| scene.on_screen_text.clone())?;
            Some((k, text))
        })
        .filter(|(k, _)| *k < plan.scenes.len())
        .collect();
    lines
        .iter()
        .enumerate()
        .map(|(n, (k, text))| ScriptLine {
            scene: *k,
            start: plan.scenes[*k].start,
            end: lines
                .get(n + 1)
                .map_or(plan.duration, |(next, _)| plan.scenes[*next].start),
            text: text.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::state::{CameraMove, Cut, PlannedScene, SceneSource, Shot};

    fn plan(lengths: &[f64]) -> Plan {
        let mut start = 0.0;
        let scenes = lengths
            .iter()
            .map(|&seconds| {
                let scene = PlannedScene {
                    start,
                    end: start + seconds,
                    beats: 4,
                    downbeats: 1,
                    section_start: false,
                    section: "verse".into(),
                    energy: 0.5,
                    shot: Shot::Wide,
                    camera: CameraMove::Still,
                    camera_speed: 0.5,
                    cut_after: Cut::Hard,
                    source: SceneSource::Generated,
                };
                start += seconds;
                scene
            })
            .collect();
        Plan {
            duration: start,
            bpm: 120.0,
            scenes,
        }
    }

    fn written(narration: [&str; 3]) -> Written {
        Written {
            title: " Night drive ".into(),
            description: "A city after dark.".into(),
            hashtags: vec![
                "night drive".into(),
                "#City".into(),
                "#city".into(),
                "##".into(),
            ],
            style_sheet: "neon light".into(),
            scenes: narration
                .iter()
                .map(|line| WrittenScene {
                    action: "a car passes".into(),
                    on_screen_text: String::new(),
                    narration: (*line).into(),
                    continues: true,
                })
                .collect(),
        }
    }

    #[test]
    fn the_answer_becomes_a_story_with_tidy_hashtags_and_narration_only_when_narrated() {
        let model = ModelId::new("openai", "m");
        let story = story_of(written(["One.", "", "Three."]), model.clone(), true);
        assert_eq!(story.title, "Night drive");
        assert_eq!(story.hashtags, ["#nightdrive", "#City", "#city"]);
        assert_eq!(story.scenes[1].narration, None);
        assert_eq!(story.scenes[2].narration.as_deref(), Some("Three."));
        let carried: Vec<bool> = story.scenes.iter().map(|s| s.continues).collect();
        assert_eq!(
            carried,
            [false, true, true],
            "the first scene carries nothing on"
        );
        let silent = story_of(written(["One.", "", "Three."]), model, false);
        assert!(silent.scenes.iter().all(|s| s.narration.is_none()));
    }

    #[test]
    fn a_line_too_long_for_its_scene_gives_way_to_the_templates_and_the_script_follows() {
        let plan = plan(&[2.0, 4.0, 2.0]);
        let model = ModelId::new("openai", "m");
        let long = "far too many words to say in two seconds of video";
        let story = story_of(written(["Go.", long, ""]), model.clone(), true);
        let mut offline = story_of(written(["", "", ""]), model, true);
        offline.scenes[1].narration = Some("Closer now.".into());
        let mut notices = Vec::new();
        let story = keep_spoken_lines_short(story, &offline, &plan, &mut notices);
        assert_eq!(word_budget(4.0), 10);
        assert_eq!(story.scenes[1].narration.as_deref(), Some("Closer now."));
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0].contains("scene 2"), "{notices:?}");
        let lines = script(&plan, &story);
        let spans: Vec<(usize, f64, f64)> =
            lines.iter().map(|l| (l.scene, l.start, l.end)).collect();
        assert_eq!(spans, [(0, 0.0, 2.0), (1, 2.0, 8.0)]);
    }
}
