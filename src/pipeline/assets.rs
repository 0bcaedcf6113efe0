//! The assets node: each pending scene's picture and the narration lines that start in it,
//! from the generation cache when the same request was made before, else from the run's
//! models (the local renderer for scenes the budget leaves no room for), with every call in
//! the ledger.

use super::nodes::{Services, database_error, missing, model_error, request_hash, store_error};
use super::state::{CostEntry, RunState, SceneAsset, ScenePrompt, SceneSource, SpokenLine, Update};
use crate::objects::ObjectRef;
use crate::store::CacheEntry;
use montage_graph::{NodeContext, NodeError};
use montage_models::{EmbeddingModel, ImageModel, ImageRequest, Intent, ModelId, SpeechRequest};
use serde_json::json;
use std::future::Future;
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
    let intent = state.intent.as_ref().ok_or_else(|| missing("intent"))?;
    let plan = state.plan.as_ref().ok_or_else(|| missing("plan"))?;
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
                .ok_or_else(|| missing("uploaded image"))?;
            SceneAsset {
                object: upload.object.clone(),
                request_hash: None,
                model: None,
                round: state.round,
            }
        }
        SceneSource::Generated => {
            let prompt = state.prompts.get(&k).ok_or_else(|| missing("prompt"))?;
            let mut request = image_request(intent, prompt);
            // The budget left this scene to the local renderer (decided before the round).
            let local: Arc<dyn ImageModel> = Arc::new(montage_models::local::LocalImage);
            let image = match state.over_budget.contains(&k) {
                true => &local,
                false => &services.models.configured().image,
            };
            let model = image.id();
            let hash = request_hash(state.owner.as_deref(), "image", &model, &request);
            // A paid job for this request is submitted once, whatever happens to the run.
            request.job_key = Some(hash.clone());
            let (object, _, made_by) = generate_cached(
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
                        .map_err(|e| model_error(&format!("scene {}", k + 1), e))?;
                    Ok(Made {
                        kind: "images",
                        media_type: made.media_type,
                        bytes: made.bytes,
                        model: made.model,
                        seconds: None,
                        usd: made.cost_usd,
                        notices: made.notices,
                        wasted: made.wasted,
                    })
                },
            )
            .await?;
            SceneAsset {
                object,
                request_hash: Some(hash),
                model: Some(made_by),
                round: state.round,
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
            let (object, seconds, _) = generate_cached(
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
                        .map_err(|e| model_error("narration", e))?;
                    Ok(Made {
                        kind: "speech",
                        media_type: "audio/wav".into(),
                        bytes: said.wav,
                        model: said.model,
                        seconds: Some(said.seconds),
                        usd: said.cost_usd,
                        notices: Vec::new(),
                        wasted: Vec::new(),
                    })
                },
            )
            .await?;
            let seconds = seconds.unwrap_or(0.0);
            update.speech.insert(
                index,
                SpokenLine {
                    line: index,
                    object,
                    seconds,
                },
            );
        }
    }
    ctx.emit(
        "asset.ready",
        json!({ "scene": k, "round": asset.round, "object": asset.object }),
    );
    update.assets.insert(k, asset);
    Ok(update)
}

/// What one model call made, ready to be stored.
struct Made {
    /// The object-store folder it goes to.
    kind: &'static str,
    media_type: String,
    bytes: Vec<u8>,
    model: ModelId,
    /// Its length, for audio.
    seconds: Option<f64>,
    usd: f64,
    /// What the person should know about how it was made.
    notices: Vec<String>,
    /// Paid calls before it that came to nothing.
    wasted: Vec<montage_models::Wasted>,
}

/// The object the request hashed as `hash` makes: from the generation cache when the same
/// request was made before, else made by `generate`, stored, and remembered with the
/// embedding of `text`. Either way the call goes into the ledger, under the model that made
/// the object (in a chain, perhaps not the first). Returns the object, for audio its length,
/// and that model.
#[allow(clippy::too_many_arguments)]
async fn generate_cached<F, Fut>(
    services: &Services,
    update: &mut Update,
    scene: usize,
    capability: &str,
    model: ModelId,
    hash: &str,
    text: &str,
    generate: F,
) -> Result<(ObjectRef, Option<f64>, ModelId), NodeError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Made, NodeError>>,
{
    let (object, seconds, cached, usd, model) = match services
        .database
        .cache_get(hash)
        .await
        .map_err(database_error)?
    {
        Some(hit) => {
            let made_by = match hit.model.split_once('/') {
                Some((provider, name)) => ModelId::new(provider, name),
                None => model,
            };
            (hit.object, hit.seconds, true, 0.0, made_by)
        }
        None => {
            let made = generate().await?;
            update.notices.extend(made.notices);
            update
                .cost
                .extend(
                    CostEntry::wasted("assets", capability, &made.wasted).map(|mut entry| {
                        entry.scene = Some(scene);
                        entry
                    }),
                );
            let object = services
                .objects
                .put(made.kind, &made.media_type, made.bytes)
                .await
                .map_err(store_error)?;
            // What a stand-in made is no answer to the request as the first model would
            // make it: it is not remembered under that request.
            if made.model == model {
                let (embedding, embedding_model) = embed(services, update, scene, text).await;
                let entry = CacheEntry {
                    request_hash: hash.to_owned(),
                    object: object.clone(),
                    model: made.model.to_string(),
                    seconds: made.seconds,
                    embedding,
                    embedding_model,
                };
                services
                    .database
                    .cache_put(&entry)
                    .await
                    .map_err(database_error)?;
            }
            (object, made.seconds, false, made.usd, made.model)
        }
    };
    update.cost.push(CostEntry {
        node: "assets".into(),
        scene: Some(scene),
        capability: capability.into(),
        model: model.clone(),
        usd,
        tokens: Default::default(),
        cached,
    });
    Ok((object, seconds, model))
}

/// The embedding of `text` for the cache, and the model that made it. A remote embedder that
/// fails is stood in for by the local one (its vectors are kept apart by their model, so the
/// two never meet) and the run is told; its calls go into the ledger.
async fn embed(
    services: &Services,
    update: &mut Update,
    scene: usize,
    text: &str,
) -> (Vec<f32>, String) {
    let embedder = &services.models.configured().embeddings;
    let local = || {
        let vector = montage_models::local::embed_text(text);
        (
            vector,
            EmbeddingModel::id(&montage_models::local::HashingEmbedder).to_string(),
        )
    };
    if embedder.id().provider == "local" {
        return local();
    }
    let why = match embedder.embed(&[text.to_owned()]).await {
        Ok(mut made) if made.vectors.len() == 1 => {
            update.cost.push(CostEntry {
                node: "assets".into(),
                scene: Some(scene),
                capability: "embeddings".into(),
                model: made.model.clone(),
                usd: made.cost_usd,
                tokens: Default::default(),
                cached: false,
            });
            let vector = made.vectors.pop().unwrap_or_default();
            return (vector, made.model.to_string());
        }
        Ok(made) => format!("it answered {} vectors for one text", made.vectors.len()),
        Err(error) => error.to_string(),
    };
    tracing::warn!(model = %embedder.id(), why, "the embedding model failed; the local one stands in");
    update.notices.push(format!(
        "{} could not embed the prompts ({why}); the local embedder indexed them instead",
        embedder.id()
    ));
    local()
}
