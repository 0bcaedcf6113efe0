//! prompts: a prompt per pending scene. The templates draft each one from the plan and the
//! story; a text model, when one is configured, rewrites the drafts in the words the image and
//! clip models respond to, each knowing its neighbours and the style sheet of the whole video.
//! A prompt describes what is seen: never a tempo, a colour code or a section of the song,
//! which image models cannot use ([`hygiene`]).

use super::cache::scene_seed;
use super::{NodeResult, Services, run_models};
use super::{intent_of, plan_of};
use crate::pipeline::events::PipelineEvent;
use crate::pipeline::state::{
    CameraMove, CostEntry, Plan, RunState, ScenePrompt, SceneSource, Shot, Story, TemplateRef,
    Update,
};
use minijinja::context;
use montage_graph::Command;
use montage_models::local::palette::colour_names;
use montage_models::{Intent, JsonSchemaFormat, Message, ModelError, TextRequest};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Words that name a part of a song rather than anything a camera sees.
const SECTION_WORDS: &[&str] = &[
    "intro",
    "outro",
    "verse",
    "chorus",
    "pre-chorus",
    "breakdown",
    "build-up",
    "buildup",
];

/// Phrases that name the drop of a song (a drop of rain is fine).
const DROP_PHRASES: &[&str] = &["the drop", "beat drop", "bass drop", "drop hits"];

/// Why `prompt` would mislead an image model, if it would: a tempo, a colour code, or a
/// section of the song.
pub fn hygiene(prompt: &str) -> Result<(), String> {
    let lower = prompt.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '#' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    if words.contains(&"bpm") || lower.contains("beats per minute") {
        return Err("it names a tempo (BPM), which an image model cannot use".into());
    }
    let hex = |w: &str| w.chars().all(|c| c.is_ascii_hexdigit());
    if let Some(code) = words.iter().find(|w| match w.strip_prefix('#') {
        Some(code) => matches!(code.len(), 3 | 6) && hex(code),
        // A bare code (`ff1fb4`): six hex digits, letters and numbers mixed.
        None => {
            w.len() == 6
                && hex(w)
                && w.chars().any(|c| c.is_ascii_digit())
                && w.chars().any(|c| c.is_ascii_alphabetic())
        }
    }) {
        return Err(format!(
            "it gives a colour as the code {code}; name the colour instead"
        ));
    }
    let drop = DROP_PHRASES.iter().find(|p| lower.contains(**p));
    if let Some(word) = words
        .iter()
        .copied()
        .find(|w| SECTION_WORDS.contains(w))
        .or(drop.copied())
    {
        return Err(format!(
            "it names a part of the song ({word:?}), which is not something a camera sees"
        ));
    }
    Ok(())
}

fn shot_words(shot: Shot) -> &'static str {
    match shot {
        Shot::Wide => "wide establishing shot",
        Shot::Medium => "medium shot",
        Shot::CloseUp => "close-up",
        Shot::Detail => "detail macro shot",
        Shot::Aerial => "aerial view",
    }
}

fn camera_words(camera: CameraMove) -> &'static str {
    match camera {
        CameraMove::PushIn => "pushing in",
        CameraMove::PullOut => "pulling out",
        CameraMove::PanLeft => "panning left",
        CameraMove::PanRight => "panning right",
        CameraMove::Still => "holding still",
    }
}

/// What happens in scene `k`, by the story: the subject when there is no story (runs from
/// before there was one) or when the story's words would mislead an image model.
fn action<'a>(story: Option<&'a Story>, intent: &'a Intent, k: usize) -> &'a str {
    story
        .and_then(|s| s.scenes.get(k))
        .map(|s| s.action.as_str())
        .filter(|action| hygiene(action).is_ok())
        .unwrap_or(intent.subject.as_str())
}

/// The template's prompts for one scene: the still, what to avoid, and the clip.
struct Draft {
    image: String,
    negative: String,
    seconds: f64,
    energy: f64,
    strong_moves: u32,
    bar_seconds: f64,
}

fn draft(
    state: &RunState,
    intent: &Intent,
    plan: &Plan,
    k: usize,
    services: &Services,
    used: &mut BTreeMap<String, TemplateRef>,
) -> Result<Draft, montage_graph::NodeError> {
    let scene = &plan.scenes[k];
    let previous = k.checked_sub(1).and_then(|p| plan.scenes.get(p));
    let speed = match scene.camera_speed {
        s if s < 0.35 => "slow",
        s if s < 0.7 => "moderate",
        _ => "fast",
    };
    let (image, image_ref) = services.templates.render_line(
        "scene.image",
        context! {
            shot => shot_words(scene.shot),
            subject => intent.subject.clone(),
            action => action(state.story.as_ref(), intent, k),
            style => intent.style.clone(),
            mood => intent.mood.word(),
            energy => scene.energy,
            section_start => scene.section_start && k > 0,
            camera => camera_words(scene.camera),
            camera_speed_word => speed,
            colours => colour_names(&intent.palette),
            previous_shot => previous.map(|p| shot_words(p.shot)),
            instructions => state.instructions.get(&k).cloned().unwrap_or_default(),
        },
    )?;
    let (negative, negative_ref) = services.templates.render_line(
        "scene.negative",
        context! { constraints => intent.constraints.clone() },
    )?;
    for reference in [image_ref, negative_ref] {
        used.insert(reference.id.clone(), reference);
    }
    let beat = 60.0 / plan.bpm.max(1.0);
    Ok(Draft {
        image,
        negative,
        seconds: scene.end - scene.start,
        energy: scene.energy,
        strong_moves: scene.downbeats,
        bar_seconds: 4.0 * beat,
    })
}

fn clip_prompt(
    services: &Services,
    draft: &Draft,
    image: &str,
    motion: &str,
    used: &mut BTreeMap<String, TemplateRef>,
) -> Result<String, montage_graph::NodeError> {
    let (clip, reference) = services.templates.render_line(
        "scene.clip",
        context! {
            image_prompt => image,
            motion => motion,
            seconds => format!("{:.1}", draft.seconds),
            strong_moves => draft.strong_moves,
            bar_seconds => format!("{:.1}", draft.bar_seconds),
            energy => draft.energy,
        },
    )?;
    used.insert(reference.id.clone(), reference);
    Ok(clip)
}

/// prompts: drafts from the templates, rewritten by the text model when there is one.
pub async fn prompts(
    state: Arc<RunState>,
    ctx: montage_graph::NodeContext,
    services: Arc<Services>,
) -> NodeResult {
    let intent = intent_of(&state)?;
    let plan = plan_of(&state)?;
    let mut used = BTreeMap::new();
    let mut drafts = BTreeMap::new();
    // A storyboard revision rewrites the scenes it names; the others keep their prompts.
    let writing = match state.rewrite.is_empty() {
        true => &state.pending,
        false => &state.rewrite,
    };
    for &k in writing {
        let Some(scene) = plan.scenes.get(k) else {
            continue;
        };
        if scene.source != SceneSource::Generated {
            continue;
        }
        drafts.insert(k, draft(&state, intent, plan, k, &services, &mut used)?);
    }
    let mut notices = Vec::new();
    let mut cost = Vec::new();
    let mut written: BTreeMap<usize, WrittenPrompt> = BTreeMap::new();
    let text_model = run_models(&services, &state).await?.text;
    if !drafts.is_empty() && text_model.id().provider != "local" {
        match rewrite(
            &state,
            intent,
            plan,
            &drafts,
            &services,
            text_model.as_ref(),
            &mut used,
        )
        .await
        {
            Ok((by_model, mut entries, mut said)) => {
                written = by_model;
                cost.append(&mut entries);
                notices.append(&mut said);
            }
            Err(error) => {
                tracing::warn!(%error, "the prompt writer failed; the templates' prompts stand");
                cost.extend(CostEntry::wasted("prompts", "text", error.wasted()));
                notices.push(format!(
                    "the scene prompts could not come from the text model ({error}); the templates wrote them"
                ));
            }
        }
    }
    let mut prompts = BTreeMap::new();
    for (k, draft) in &drafts {
        let (image, motion) = match written.remove(k) {
            Some(w) => (w.image, w.motion),
            None => (draft.image.clone(), String::new()),
        };
        let clip = clip_prompt(&services, draft, &image, &motion, &mut used)?;
        let take = state.takes.get(k).copied().unwrap_or(0);
        prompts.insert(
            *k,
            ScenePrompt {
                prompt: image,
                negative: draft.negative.clone(),
                clip_prompt: clip,
                seed: scene_seed(state.request.seed, *k, take),
                instructions: state.instructions.get(k).cloned().unwrap_or_default(),
            },
        );
    }
    let spending = cost.iter().map(|c| c.usd).sum();
    let mut round_prompts = prompts.clone();
    for k in &state.pending {
        if let Some(kept) = state.prompts.get(k).filter(|_| !prompts.contains_key(k)) {
            round_prompts.insert(*k, kept.clone());
        }
    }
    let allocation =
        super::budget::reckon(&state, &services, &ctx, &round_prompts, spending).await?;
    let estimate = &allocation.estimate;
    if estimate.usd > 0.0 {
        PipelineEvent::EstimateReady {
            round: state.round,
            usd: estimate.usd,
            budget: estimate.budget,
            items: estimate.items.clone(),
        }
        .emit(&ctx);
    }
    Ok(Command::update(Update {
        templates: used.into_values().collect(),
        prompts,
        // Prompts rewritten for a storyboard under review are still that round's.
        round_done: !super::storyboard::under_review(&state),
        rewrite: Some(Vec::new()),
        cost,
        estimate: Some(allocation),
        notices,
        ..Update::default()
    }))
}

/// The model's prompts, in the order of the brief.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Written {
    /// One per scene of the brief, in its order.
    prompts: Vec<WrittenPrompt>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WrittenPrompt {
    /// What is seen, in one sentence.
    #[schemars(length(min = 1, max = 600))]
    image: String,
    /// How the camera and the subject move.
    #[schemars(length(max = 200))]
    motion: String,
}

async fn rewrite(
    state: &RunState,
    intent: &Intent,
    plan: &Plan,
    drafts: &BTreeMap<usize, Draft>,
    services: &Services,
    text_model: &dyn montage_models::TextModel,
    used: &mut BTreeMap<String, TemplateRef>,
) -> Result<(BTreeMap<usize, WrittenPrompt>, Vec<CostEntry>, Vec<String>), ModelError> {
    let story = state.story.as_ref();
    let scenes = plan.scenes.len();
    let brief: Vec<_> = drafts
        .iter()
        .map(|(&k, draft)| {
            context! {
                number => k + 1,
                draft => draft.image.clone(),
                action => action(story, intent, k),
                before => k.checked_sub(1).map(|p| action(story, intent, p)),
                after => (k + 1 < scenes).then(|| action(story, intent, k + 1)),
                instructions => state.instructions.get(&k).cloned().unwrap_or_default(),
            }
        })
        .collect();
    let render = |id: &str, context| {
        services
            .templates
            .render(id, context)
            .map_err(|e| ModelError::InvalidRequest(e.to_string()))
    };
    let (system, writer_ref) = render(
        "scene.writer",
        context! {
            image_model => state.models.image.to_string(),
            clip_model => state.models.clip.as_ref().map(|m| m.to_string()),
        },
    )?;
    let (user, brief_ref) = render(
        "scene.brief",
        context! {
            style_sheet => story.map(|s| s.style_sheet.clone()),
            scenes => scenes,
            brief => brief,
        },
    )?;
    for reference in [writer_ref, brief_ref] {
        used.insert(reference.id.clone(), reference);
    }
    let count = drafts.len();
    let mut format = JsonSchemaFormat::of::<Written>("scene_prompts");
    if let Some(list) = format.schema.pointer_mut("/properties/prompts") {
        list["minItems"] = count.into();
        list["maxItems"] = count.into();
    }
    let request = TextRequest {
        messages: vec![Message::system(system), Message::user(user)],
        seed: Some(state.request.seed),
        temperature: Some(0.3),
        ..TextRequest::default()
    };
    let (written, response) =
        montage_models::structured_as::<Written>(text_model, format, request, |written| {
            if written.prompts.len() != count {
                return Err(format!(
                    "the brief has {count} scenes and the answer {}",
                    written.prompts.len()
                ));
            }
            for (n, prompt) in written.prompts.iter().enumerate() {
                hygiene(&prompt.image).map_err(|why| format!("prompt {}: {why}", n + 1))?;
            }
            Ok(())
        })
        .await?;
    let mut entries: Vec<CostEntry> =
        CostEntry::wasted("prompts", "text", &response.wasted).collect();
    entries.push(CostEntry {
        node: "prompts".into(),
        scene: None,
        capability: "text".into(),
        model: response.model.clone(),
        usd: response.cost_usd,
        tokens: response.usage,
        cached: false,
    });
    let by_scene = drafts.keys().copied().zip(written.prompts).collect();
    Ok((by_scene, entries, response.notices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_that_would_mislead_an_image_model_are_named() {
        assert!(hygiene("close-up of a neon street at 128 BPM").is_err());
        assert!(hygiene("palette #ff1fb4 and #1fe0ff").is_err());
        assert!(hygiene("glow in f69d51").is_err());
        assert!(hygiene("a decade of faded photos, 35 mm").is_ok());
        assert!(hygiene("the chorus hits, wide shot").is_err());
        assert!(hygiene("lights flare as the drop hits").is_err());
        assert!(hygiene("a rain drop on glass, macro").is_ok());
        assert!(
            hygiene("wide shot of a city at night, magenta and cyan light, 35 mm lens").is_ok()
        );
        assert!(hygiene("hashtag-free #1 fan at a concert").is_ok());
    }
}
