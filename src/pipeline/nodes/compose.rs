//! The compose node: the timeline rendered to the preview, every format, captions.

use super::critic::actionable;
use super::{NodeResult, Services, intent_of};
use crate::pipeline::PipelineError;
use crate::pipeline::events::PipelineEvent;
use crate::pipeline::state::{FeedbackAnswer, Outputs, RenderedVideo, RunState, Update};
use crate::pipeline::timeline;
use montage_compositor::{CancelToken, Compositor, RenderTarget};
use montage_graph::{Command, NodeContext, NodeError};
use montage_models::Issue;
use std::sync::Arc;

/// compose: the timeline → the 480p preview, then every format, captions and the contact sheet.
pub async fn compose(
    state: Arc<RunState>,
    ctx: NodeContext,
    services: Arc<Services>,
) -> NodeResult {
    let intent = intent_of(&state)?;
    let timeline = timeline::build(&state, &services.objects).map_err(NodeError::permanent)?;
    tracing::debug!(timeline = %serde_json::to_string(&timeline).unwrap_or_default(), "composing");
    std::fs::create_dir_all(&services.scratch).map_err(NodeError::transient)?;
    let scratch = tempfile::tempdir_in(&services.scratch).map_err(NodeError::transient)?;
    let target = RenderTarget::new(scratch.path(), "video");
    let compositor = Compositor::new().with_cache_dir(&services.segments);
    let cancel = CancelToken::new();
    let watcher = {
        let ctx = ctx.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            ctx.cancelled().await;
            cancel.cancel();
        })
    };
    let compositor_error = |e: montage_compositor::CompositorError| match e {
        montage_compositor::CompositorError::Cancelled => NodeError::cancelled(),
        other => NodeError::permanent(format!("rendering: {other}")),
    };
    let rendered = async {
        // The preview is stored and announced before the final encode starts, so a person
        // can watch it while the final videos render.
        let preview = {
            let (ctx, compositor, timeline, target, cancel) = (
                ctx.clone(),
                compositor.clone(),
                timeline.clone(),
                target.clone(),
                cancel.clone(),
            );
            tokio::task::spawn_blocking(move || {
                compositor.render_preview(
                    &timeline,
                    &target,
                    &|p| ctx.progress((p.percent / 100.0 * 0.2) as f32, "preview"),
                    &cancel,
                )
            })
            .await
            .map_err(|e| NodeError::permanent(format!("the compositor stopped: {e}")))?
            .map_err(compositor_error)?
        };
        let preview = services
            .objects
            .put_file("videos", "video/mp4", &preview.path)
            .await?;
        PipelineEvent::PreviewReady {
            object: preview.clone(),
        }
        .emit(&ctx);
        let report = {
            let ctx = ctx.clone();
            tokio::task::spawn_blocking(move || {
                compositor.render(
                    &timeline,
                    &target,
                    &|p| ctx.progress((0.2 + p.percent / 100.0 * 0.8) as f32, "final video"),
                    &cancel,
                )
            })
            .await
            .map_err(|e| NodeError::permanent(format!("the compositor stopped: {e}")))?
            .map_err(compositor_error)?
        };
        Ok::<_, NodeError>((preview, report))
    }
    .await;
    watcher.abort();
    let (preview, report) = rendered?;
    let objects = &services.objects;
    let mut videos = Vec::new();
    for (format, output) in intent.formats.iter().zip(&report.outputs) {
        let object = objects
            .put_file("videos", "video/mp4", &output.path)
            .await?;
        videos.push(RenderedVideo {
            format: *format,
            object,
        });
    }
    let sidecar = |extension: &str| {
        report
            .sidecars
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == extension))
            .cloned()
    };
    let srt = sidecar("srt")
        .ok_or_else(|| NodeError::permanent("the compositor wrote no SRT captions"))?;
    let vtt = sidecar("vtt")
        .ok_or_else(|| NodeError::permanent("the compositor wrote no WebVTT captions"))?;
    let srt = objects
        .put_file("captions", "application/x-subrip", &srt)
        .await?;
    let vtt = objects.put_file("captions", "text/vtt", &vtt).await?;
    let review = state
        .reviews
        .last()
        .ok_or(PipelineError::Missing("critic report"))?;
    let open: Vec<Issue> = review
        .issues
        .iter()
        .filter(|i| actionable(i))
        .cloned()
        .collect();
    let mut notices = Vec::new();
    if !open.is_empty() && !matches!(state.answers.last(), Some(FeedbackAnswer::Skip {})) {
        notices.push(format!(
            "finished after {} round{} of fixes with {} issue{} still open",
            state.round.saturating_sub(1),
            if state.round == 2 { "" } else { "s" },
            open.len(),
            if open.len() == 1 { "" } else { "s" }
        ));
    }
    let outputs = Outputs {
        preview,
        videos,
        srt,
        vtt,
        contact_sheet: review.contact_sheet.clone(),
    };
    PipelineEvent::FinalReady {
        outputs: outputs.clone(),
    }
    .emit(&ctx);
    Ok(Command::update(Update {
        outputs: Some(outputs),
        open_issues: Some(open),
        notices,
        ..Update::default()
    }))
}
