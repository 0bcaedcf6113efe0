//! The intent node: the person's words read into an [`Intent`], the request's own options on top.

use super::{NodeResult, Services, run_models};
use crate::pipeline::PipelineError;
use crate::pipeline::state::{CostEntry, RunState, Update};
use minijinja::context;
use montage_graph::Command;
use montage_models::local::{INTENT_SCHEMA, palette};
use montage_models::{DURATION_RANGE, Intent, Message, TextRequest};
use std::sync::Arc;

/// intent: the person's words → [`Intent`], then the request's own options on top.
pub async fn intent(state: Arc<RunState>, services: Arc<Services>) -> NodeResult {
    let request = &state.request;
    let uploads: Vec<String> = request
        .audio
        .iter()
        .chain(&request.images)
        .map(|u| u.name.clone())
        .collect();
    let (system, template) = services.templates.render(
        "intent.system",
        context! {
            default_duration => montage_models::DEFAULT_DURATION,
            min_duration => DURATION_RANGE.start(),
            max_duration => DURATION_RANGE.end(),
            uploads => uploads,
        },
    )?;
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
            .map_err(|e| PipelineError::model("reading the request", e))?;
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
