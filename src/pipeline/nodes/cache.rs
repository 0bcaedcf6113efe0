//! The generation cache: what a request is keyed by, and the objects made for requests
//! made before, found again instead of paid for twice. Each call, made or found, goes into
//! the ledger under the model that made its object.

use super::Services;
use crate::objects::ObjectRef;
use crate::pipeline::state::{CostEntry, Update};
use crate::store::CacheEntry;
use montage_graph::NodeError;
use montage_models::{EmbeddingModel, ModelId, SpokenWord};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::future::Future;

/// Seed of one scene's take: changes with the scene and each new take, so regenerating
/// makes a new picture and an unchanged scene makes the same one.
pub fn scene_seed(seed: u64, scene: usize, take: u32) -> u64 {
    let digest = Sha256::digest(format!("{seed}/{scene}/{take}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The generation cache's key for a request of `owner`'s (none: a run nobody owns).
pub(super) fn request_hash(
    owner: Option<&str>,
    capability: &str,
    model: &ModelId,
    request: &impl Serialize,
) -> String {
    let mut key = json!({ "capability": capability, "model": model, "request": request });
    if let Some(owner) = owner {
        key["owner"] = json!(owner);
    }
    hex::encode(Sha256::digest(key.to_string().as_bytes()))
}

/// The ledger's entry for a call the assets node made for `scene`.
pub(super) fn entry(
    scene: usize,
    capability: &str,
    model: &ModelId,
    usd: f64,
    cached: bool,
) -> CostEntry {
    CostEntry {
        node: "assets".into(),
        scene: Some(scene),
        capability: capability.into(),
        model: model.clone(),
        usd,
        tokens: Default::default(),
        cached,
    }
}

/// The ledger's entries for paid calls for `scene` that came to nothing.
pub(super) fn wasted_on<'a>(
    scene: usize,
    capability: &'a str,
    wasted: &'a [montage_models::Wasted],
) -> impl Iterator<Item = CostEntry> + 'a {
    CostEntry::wasted("assets", capability, wasted).map(move |mut entry| {
        entry.scene = Some(scene);
        entry
    })
}

/// What one model call made, ready to be stored.
pub(super) struct Made {
    /// The object-store folder it goes to.
    pub(super) kind: &'static str,
    pub(super) media_type: String,
    pub(super) bytes: Vec<u8>,
    pub(super) model: ModelId,
    /// Its length, for audio.
    pub(super) seconds: Option<f64>,
    /// When each word is spoken, for speech whose model says.
    pub(super) words: Vec<SpokenWord>,
    pub(super) usd: f64,
    /// What the person should know about how it was made.
    pub(super) notices: Vec<String>,
    /// Paid calls before it that came to nothing.
    pub(super) wasted: Vec<montage_models::Wasted>,
}

/// An object made for a request, or found in the generation cache.
pub(super) struct Hit {
    pub(super) object: ObjectRef,
    /// Its length, for audio.
    pub(super) seconds: Option<f64>,
    /// When each word is spoken, for speech whose model says.
    pub(super) words: Vec<SpokenWord>,
    /// The model that made it (the request's, or one recorded with it).
    pub(super) model: ModelId,
}

/// The cache's answer to the request hashed as `hash`, made by `model`.
pub(super) async fn cache_hit(
    services: &Services,
    hash: &str,
    model: ModelId,
) -> Result<Option<Hit>, NodeError> {
    let hit = services.database.cache_get(hash).await?;
    Ok(hit.map(|hit| Hit {
        model: match hit.model.split_once('/') {
            Some((provider, name)) => ModelId::new(provider, name),
            None => model,
        },
        object: hit.object,
        seconds: hit.seconds,
        words: hit.words,
    }))
}

/// `made` stored, and remembered under `hash` with the embedding of `text` when the model
/// asked for (`model`) made it: what a stand-in made is no answer to the request as the
/// first model would make it.
pub(super) async fn remember(
    services: &Services,
    update: &mut Update,
    scene: usize,
    hash: &str,
    text: &str,
    made: Made,
    model: &ModelId,
) -> Result<ObjectRef, NodeError> {
    let object = services
        .objects
        .put(made.kind, &made.media_type, made.bytes)
        .await?;
    if made.model == *model {
        let (embedding, embedding_model) = embed(services, update, scene, text).await;
        let entry = CacheEntry {
            request_hash: hash.to_owned(),
            object: object.clone(),
            model: made.model.to_string(),
            seconds: made.seconds,
            words: made.words,
            embedding,
            embedding_model,
        };
        services.database.cache_put(&entry).await?;
    }
    Ok(object)
}

/// The object the request hashed as `hash` makes: from the generation cache when the same
/// request was made before, else made by `generate`, stored, and remembered with the
/// embedding of `text`. Either way the call goes into the ledger, under the model that made
/// the object (in a chain, perhaps not the first), which the answer names.
#[allow(clippy::too_many_arguments)]
pub(super) async fn generate_cached<F, Fut>(
    services: &Services,
    update: &mut Update,
    scene: usize,
    capability: &str,
    model: ModelId,
    hash: &str,
    text: &str,
    generate: F,
) -> Result<Hit, NodeError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Made, NodeError>>,
{
    let (stored, cached, usd) = match cache_hit(services, hash, model.clone()).await? {
        Some(hit) => (hit, true, 0.0),
        None => {
            let mut made = generate().await?;
            update.notices.append(&mut made.notices);
            update
                .cost
                .extend(wasted_on(scene, capability, &made.wasted));
            let (seconds, words, usd) = (made.seconds, made.words.clone(), made.usd);
            let made_by = made.model.clone();
            let object = remember(services, update, scene, hash, text, made, &model).await?;
            let stored = Hit {
                object,
                seconds,
                words,
                model: made_by,
            };
            (stored, false, usd)
        }
    };
    update
        .cost
        .push(entry(scene, capability, &stored.model, usd, cached));
    Ok(stored)
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
