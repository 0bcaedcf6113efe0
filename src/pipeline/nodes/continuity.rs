//! The continuity node: the clips of scenes the story marks as carrying on the shot before
//! them, made one after another once the other scenes' are, each starting from the last
//! frame of the clip before it (a scene whose neighbour has no clip starts from its own
//! still), so the motion runs on across the cut.

use super::assets::{Clipping, announce, carried_on};
use super::{NodeResult, Services};
use crate::objects::ObjectRef;
use crate::pipeline::PipelineError;
use crate::pipeline::state::{RunState, Update};
use montage_graph::{Command, NodeContext, NodeError};
use std::sync::Arc;

/// continuity: the carried-on scenes' clips, in order.
pub async fn continuity(
    state: Arc<RunState>,
    ctx: NodeContext,
    services: Arc<Services>,
) -> NodeResult {
    let mut update = Update::default();
    let Some(model) = &services.models.configured().clip else {
        return Ok(Command::update(update));
    };
    let mut pending = state.pending.clone();
    pending.sort_unstable();
    for k in pending {
        if !carried_on(&state, k)
            || state.over_budget.contains(&k)
            || state.stills_only.contains(&k)
        {
            continue;
        }
        let asset = state
            .assets
            .get(&k)
            .ok_or(PipelineError::Missing("picture"))?;
        if asset.clip.is_some() {
            continue;
        }
        let prompt = state
            .prompts
            .get(&k)
            .ok_or(PipelineError::Missing("prompt"))?;
        // The scene before may have been carried on itself, in this very pass.
        let before = update
            .assets
            .get(&(k - 1))
            .or_else(|| state.assets.get(&(k - 1)))
            .and_then(|a| a.clip.as_ref());
        let start = match before {
            Some(previous) => last_frame(&services, &previous.object).await?,
            None => asset.object.clone(),
        };
        let clipping = Clipping {
            services: &services,
            state: &state,
            ctx: &ctx,
            scene: k,
            model,
        };
        let clip = clipping.clip(prompt, &start, &mut update).await?;
        let mut carried = asset.clone();
        carried.clip = clip;
        if carried.clip.is_some() {
            announce(&ctx, k, &carried);
        }
        update.assets.insert(k, carried);
    }
    Ok(Command::update(update))
}

/// The last frame of the clip `clip`, stored as a PNG.
async fn last_frame(services: &Services, clip: &ObjectRef) -> Result<ObjectRef, NodeError> {
    let path = services.objects.local_path(clip);
    let png = tokio::task::spawn_blocking(move || {
        let last = montage_compositor::last_picture(&path)?;
        let picture = image::RgbaImage::from_raw(last.width, last.height, last.rgba)
            .ok_or("the last picture's size does not match its pixels")?;
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(picture)
            .to_rgb8()
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(png)
    })
    .await
    .map_err(|_| NodeError::transient("reading a clip's last frame stopped"))?
    .map_err(|why| NodeError::permanent(format!("the last frame of a clip: {why}")))?;
    services
        .objects
        .put("frames", "image/png", png)
        .await
        .map_err(NodeError::from)
}
