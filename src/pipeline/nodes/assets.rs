//! The assets node: each pending scene's picture, its clip when the run makes clips, and
//! the narration lines that start in it, from the generation cache when the same request
//! was made before, else from the run's models (the local renderer for scenes the budget
//! leaves no room for), with every call in the ledger. A clip that fails or is unusable
//! leaves the scene its still, and the run says so.

use super::cache::{Made, cache_hit, entry, generate_cached, remember, request_hash, wasted_on};
use super::{Services, StopOnCancel, intent_of, plan_of};
use crate::objects::ObjectRef;
use crate::pipeline::PipelineError;
use crate::pipeline::events::PipelineEvent;
use crate::pipeline::state::{
    Plan, RunState, SceneAsset, SceneClip, ScenePrompt, SceneSource, SpokenLine, Update,
};
use montage_graph::{NodeContext, NodeError};
use montage_models::{
    ClipModel, ClipRequest, ImageModel, ImageRequest, Intent, ModelId, SpeechRequest, clip_length,
};
use std::sync::Arc;

/// The still request the assets node makes for a scene with `prompt`.
pub(super) fn image_request(intent: &Intent, prompt: &ScenePrompt) -> ImageRequest {
    let (width, height) = canvas(intent);
    ImageRequest {
        prompt: prompt.prompt.clone(),
        negative_prompt: prompt.negative.clone(),
        width,
        height,
        seed: prompt.seed,
        job_key: None,
    }
}

/// The speech request the assets node makes for a narration line.
pub(super) fn speech_request(text: &str) -> SpeechRequest {
    SpeechRequest {
        text: text.to_owned(),
        voice: String::new(),
        rate: 1.0,
    }
}

/// How long scene `k` is on screen, seconds: its span, and half the crossfade after it, over
/// which it stays in view. A clip must play that long, or it would freeze.
pub(super) fn shown_seconds(plan: &Plan, k: usize) -> f64 {
    let scene = &plan.scenes[k];
    let fading = match scene.cut_after == crate::pipeline::state::Cut::Crossfade
        && k + 1 < plan.scenes.len()
    {
        true => crate::pipeline::timeline::crossfade_seconds(plan, k) / 2.0,
        false => 0.0,
    };
    scene.end - scene.start + fading
}

/// The canvas a generated picture is drawn at: large enough for every format's frame.
fn canvas(intent: &Intent) -> (u32, u32) {
    intent
        .formats
        .iter()
        .map(|f| f.dimensions())
        .fold((0, 0), |(w, h), (fw, fh)| (w.max(fw), h.max(fh)))
}

/// assets, one item: a pending scene's picture (from the cache when the same request was
/// made before) and the narration lines that start in it.
pub async fn asset(
    state: Arc<RunState>,
    k: usize,
    ctx: NodeContext,
    services: Arc<Services>,
) -> Result<Update, NodeError> {
    let intent = intent_of(&state)?;
    let plan = plan_of(&state)?;
    let scene = plan
        .scenes
        .get(k)
        .ok_or_else(|| NodeError::permanent(format!("no scene {}", k + 1)))?;
    let mut update = Update::default();
    let asset = match &scene.source {
        SceneSource::Upload { index } => {
            let upload = state
                .request
                .images
                .get(*index)
                .ok_or(PipelineError::Missing("uploaded image"))?;
            SceneAsset {
                object: upload.object.clone(),
                request_hash: None,
                model: None,
                round: state.round,
                clip: None,
            }
        }
        SceneSource::Generated => {
            let prompt = state
                .prompts
                .get(&k)
                .ok_or(PipelineError::Missing("prompt"))?;
            let mut request = image_request(intent, prompt);
            // The budget may have left this scene to a model further down the chain, or to
            // the local renderer (decided before the round).
            let local: Arc<dyn ImageModel> = Arc::new(montage_models::local::LocalImage);
            let configured = &services.models.configured().image;
            let stepped_down = state.image_tiers.get(&k).and_then(|&tier| {
                let chain = configured.stand_ins()?.get(tier..)?.to_vec();
                let model: Arc<dyn ImageModel> = match chain.len() {
                    1 => chain.into_iter().next()?,
                    _ => Arc::new(montage_models::remote::media::FallbackImage::new(chain).ok()?),
                };
                Some(model)
            });
            let image = match (state.over_budget.contains(&k), &stepped_down) {
                (true, _) => &local,
                (false, Some(stepped)) => stepped,
                (false, None) => configured,
            };
            let model = image.id();
            let hash = request_hash(state.owner.as_deref(), "image", &model, &request);
            // A paid job for this request is submitted once, whatever happens to the run,
            // and stopped at the provider if the run is cancelled.
            request.job_key = Some(hash.clone());
            let _stop = StopOnCancel::new(&ctx, Arc::clone(image), &hash, |model, key| {
                model.cancel(key)
            });
            let stored = generate_cached(
                &services,
                &mut update,
                k,
                "image",
                model.clone(),
                &hash,
                &prompt.prompt,
                || async {
                    let made = image
                        .generate(request)
                        .await
                        .map_err(|e| PipelineError::model(format!("scene {}", k + 1), e))?;
                    Ok(Made {
                        kind: "images",
                        media_type: made.media_type,
                        bytes: made.bytes,
                        model: made.model,
                        seconds: None,
                        words: Vec::new(),
                        usd: made.cost_usd,
                        notices: made.notices,
                        wasted: made.wasted,
                    })
                },
            )
            .await?;
            let clip = match &services.models.configured().clip {
                Some(clip)
                    if !state.over_budget.contains(&k)
                        && !state.stills_only.contains(&k)
                        && !carried_on(&state, k) =>
                {
                    let made = Clipping {
                        services: &services,
                        state: &state,
                        ctx: &ctx,
                        scene: k,
                        model: clip,
                    };
                    made.clip(prompt, &stored.object, &mut update).await?
                }
                _ => None,
            };
            SceneAsset {
                object: stored.object,
                request_hash: Some(hash),
                model: Some(stored.model),
                round: state.round,
                clip,
            }
        }
    };
    if intent.narration
        && let Some(speech) = &services.models.configured().speech
    {
        for (index, line) in state.script.iter().enumerate() {
            if line.scene != k || state.speech.contains_key(&index) {
                continue;
            }
            let request = speech_request(&line.text);
            let model = speech.id();
            let hash = request_hash(state.owner.as_deref(), "speech", &model, &request);
            let stored = generate_cached(
                &services,
                &mut update,
                k,
                "speech",
                model,
                &hash,
                &line.text,
                || async {
                    let said = speech
                        .speak(request)
                        .await
                        .map_err(|e| PipelineError::model("narration", e))?;
                    Ok(Made {
                        kind: "speech",
                        media_type: "audio/wav".into(),
                        bytes: said.wav,
                        model: said.model,
                        seconds: Some(said.seconds),
                        words: said.words,
                        usd: said.cost_usd,
                        notices: Vec::new(),
                        wasted: Vec::new(),
                    })
                },
            )
            .await?;
            if stored.words.is_empty() {
                update.notices.push(format!(
                    "captions are timed by line: {} does not say when each word is spoken",
                    stored.model
                ));
            }
            update.speech.insert(
                index,
                SpokenLine {
                    line: index,
                    object: stored.object,
                    seconds: stored.seconds.unwrap_or(0.0),
                    words: stored.words,
                },
            );
        }
    }
    announce(&ctx, k, &asset);
    update.assets.insert(k, asset);
    Ok(update)
}

/// Tells the run's watchers that scene `k`'s picture (and clip, when it has one) exists.
pub(super) fn announce(ctx: &NodeContext, k: usize, asset: &SceneAsset) {
    PipelineEvent::AssetReady {
        scene: k,
        round: asset.round,
        object: asset.object.clone(),
        clip: asset.clip.as_ref().map(|clip| clip.object.clone()),
    }
    .emit(ctx);
}

/// Whether scene `k`'s clip carries on the one before it (the story says it continues the
/// shot, and both scenes are generated): it is made after the others, from the last frame
/// of the clip before, by the continuity node.
pub(super) fn carried_on(state: &RunState, k: usize) -> bool {
    let (Some(plan), Some(story)) = (&state.plan, &state.story) else {
        return false;
    };
    let generated = |k: usize| {
        plan.scenes
            .get(k)
            .is_some_and(|s| s.source == SceneSource::Generated)
    };
    state.config.pipeline.clip_continuation
        && k > 0
        && story.scenes.get(k).is_some_and(|s| s.continues)
        && generated(k)
        && generated(k - 1)
}

/// What makes one scene's clip.
pub(super) struct Clipping<'a> {
    pub services: &'a Services,
    pub state: &'a RunState,
    pub ctx: &'a NodeContext,
    pub scene: usize,
    pub model: &'a Arc<dyn ClipModel>,
}

impl Clipping<'_> {
    /// The clip of the scene that starts from the picture `still` (its own still, or the
    /// last frame of the clip before), from the cache or the clip model, or none (the scene
    /// keeps its still, and the run is told why).
    pub async fn clip(
        &self,
        prompt: &ScenePrompt,
        still: &ObjectRef,
        update: &mut Update,
    ) -> Result<Option<SceneClip>, NodeError> {
        let (plan, intent) = (plan_of(self.state)?, intent_of(self.state)?);
        let k = self.scene;
        let shown = shown_seconds(plan, k);
        let model = self.model.id();
        let Some(length) = clip_length(&self.model.lengths(), shown) else {
            let longest = self.model.lengths().last().copied().unwrap_or(0.0);
            update.notices.push(format!(
                "scene {} is on screen {shown:.1} s, longer than {model}'s longest clip ({longest:.0} s); it keeps its still",
                k + 1
            ));
            return Ok(None);
        };
        let (width, height) = canvas(intent);
        let mut request = ClipRequest {
            prompt: prompt.clip_prompt.clone(),
            negative_prompt: prompt.negative.clone(),
            seconds: shown,
            width,
            height,
            seed: prompt.seed,
            start_frame_id: still.sha256.clone(),
            start_frame: Vec::new(),
            job_key: None,
        };
        let hash = request_hash(self.state.owner.as_deref(), "clip", &model, &request);
        if let Some(hit) = cache_hit(self.services, &hash, model.clone()).await? {
            self.ledger(update, &hit.model, 0.0, true);
            return Ok(Some(SceneClip {
                object: hit.object,
                model: hit.model,
                seconds: hit.seconds.unwrap_or(length),
            }));
        }
        request.job_key = Some(hash.clone());
        request.start_frame = self.services.objects.get(still).await?;
        let _stop = StopOnCancel::new(self.ctx, Arc::clone(self.model), &hash, |model, key| {
            model.cancel(key)
        });
        let made = match self.model.generate(request).await {
            Ok(made) => made,
            Err(error) => {
                update.cost.extend(wasted_on(k, "clip", error.wasted()));
                return Ok(self.keeps_still(update, &format!("{model} made no clip: {error}")));
            }
        };
        update.notices.extend(made.notices);
        let (bytes, checked) = tokio::task::spawn_blocking(move || {
            let checked = check_clip(&made.bytes, shown, (width, height));
            (made.bytes, checked)
        })
        .await
        .map_err(|_| NodeError::transient("checking a clip stopped"))?;
        // Paid for either way.
        self.ledger(update, &made.model, made.cost_usd, false);
        if let Err(why) = checked {
            return Ok(
                self.keeps_still(update, &format!("{}'s clip is unusable: {why}", made.model))
            );
        }
        let object = remember(
            self.services,
            update,
            k,
            &hash,
            &prompt.clip_prompt,
            Made {
                kind: "clips",
                media_type: "video/mp4".into(),
                bytes,
                model: made.model.clone(),
                seconds: Some(made.seconds),
                words: Vec::new(),
                usd: made.cost_usd,
                notices: Vec::new(),
                wasted: Vec::new(),
            },
            &model,
        )
        .await?;
        Ok(Some(SceneClip {
            object,
            model: made.model,
            seconds: made.seconds,
        }))
    }

    fn ledger(&self, update: &mut Update, model: &ModelId, usd: f64, cached: bool) {
        update
            .cost
            .push(entry(self.scene, "clip", model, usd, cached));
    }

    /// No clip, and why: the scene shows its still with camera motion.
    fn keeps_still(&self, update: &mut Update, why: &str) -> Option<SceneClip> {
        tracing::warn!(scene = self.scene + 1, why, "a scene keeps its still");
        update.notices.push(format!(
            "scene {} keeps its still with camera motion ({why})",
            self.scene + 1
        ));
        None
    }
}

/// Whether `bytes` are a clip that plays `shown` seconds in the orientation of `canvas`:
/// decoded through to its last picture.
fn check_clip(bytes: &[u8], shown: f64, canvas: (u32, u32)) -> Result<(), String> {
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| e.to_string())?;
    let probe = montage_compositor::probe_clip(file.path())
        .map_err(|why| format!("it does not decode ({why})"))?;
    // Its last picture shows for a frame: one frame short of the scene is no freeze.
    if probe.last_picture + 0.1 < shown {
        return Err(format!(
            "it plays {:.1} s, and the scene is on screen {shown:.1} s",
            probe.last_picture
        ));
    }
    let wide = |(w, h): (f64, f64)| w / h.max(1.0);
    let (asked, got) = (
        wide((f64::from(canvas.0), f64::from(canvas.1))),
        wide((probe.width as f64, probe.height as f64)),
    );
    if (asked > 1.1 && got < 0.9) || (asked < 0.9 && got > 1.1) {
        return Err(format!(
            "it is {}x{} for a {}x{} scene",
            probe.width, probe.height, canvas.0, canvas.1
        ));
    }
    Ok(())
}
