//! What a round of pictures and narration is expected to cost, and which scenes a run's
//! budget lets the paid image models make. Decided once, before the scenes are made in
//! parallel (they cannot see each other's spending), so that no picture whose expected
//! price would overrun the budget is asked for. Narration is counted, not cut; the music
//! bed and the critic are paid as they come.

use super::assets::{image_request, speech_request};
use super::nodes::{Services, request_hash};
use super::state::{Estimate, EstimateItem, RunState, ScenePrompt};
use montage_graph::NodeError;
use montage_models::ModelId;
use std::collections::{BTreeMap, BTreeSet};

/// What one scene of the round would cost.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneCost {
    /// The scene.
    pub scene: usize,
    /// Its picture, by the run's image model.
    pub image_usd: f64,
    /// Its narration, by the run's speech model.
    pub speech_usd: f64,
}

/// The round's estimate, and the scenes whose pictures the budget does not leave room for
/// (drawn locally instead), given what the run has `spent` so far.
pub fn allocate(
    scenes: &[SceneCost],
    image_model: &ModelId,
    speech_model: Option<&ModelId>,
    spent: f64,
    budget: Option<f64>,
) -> (Estimate, BTreeSet<usize>) {
    let mut items = Vec::new();
    let mut over = BTreeSet::new();
    let mut committed = spent;
    for scene in scenes {
        let fits = |usd: f64| budget.is_none_or(|limit| committed + usd <= limit + 1e-9);
        if scene.image_usd > 0.0 {
            if fits(scene.image_usd) {
                committed += scene.image_usd;
                items.push(EstimateItem {
                    scene: Some(scene.scene),
                    capability: "image".into(),
                    model: image_model.clone(),
                    usd: scene.image_usd,
                });
            } else {
                over.insert(scene.scene);
            }
        }
        if scene.speech_usd > 0.0
            && let Some(model) = speech_model
        {
            // Narration is small beside pictures; it is counted, not cut.
            committed += scene.speech_usd;
            items.push(EstimateItem {
                scene: Some(scene.scene),
                capability: "speech".into(),
                model: model.clone(),
                usd: scene.speech_usd,
            });
        }
    }
    let usd = items.iter().map(|i| i.usd).sum();
    (
        Estimate {
            usd,
            spent_before: spent,
            budget,
            items,
        },
        over,
    )
}

/// The estimate of the round whose scenes get `prompts`, and the scenes the run's budget
/// leaves to the local renderer, given what the run has spent and `spending` (the calling
/// node's own calls, not yet in the state). Requests the generation cache already answered
/// cost nothing and are left out.
pub async fn round(
    state: &RunState,
    services: &Services,
    prompts: &BTreeMap<usize, ScenePrompt>,
    spending: f64,
) -> Result<(Estimate, BTreeSet<usize>), NodeError> {
    let providers = services.models.configured();
    let image = &providers.image;
    let speech = providers.speech.as_ref();
    let Some(intent) = state.intent.as_ref() else {
        return Err(NodeError::permanent("the estimate needs the intent"));
    };
    let owner = state.owner.as_deref();
    let cached = |hash: String| async move {
        services
            .database
            .cache_get(&hash)
            .await
            .map(|hit| hit.is_some())
            .map_err(NodeError::transient)
    };
    let mut scenes = Vec::new();
    for (&scene, prompt) in prompts {
        let request = image_request(intent, prompt);
        let image_usd = match image.price() > 0.0
            && !cached(request_hash(owner, "image", &image.id(), &request)).await?
        {
            true => image.price(),
            false => 0.0,
        };
        let mut speech_usd = 0.0;
        if let Some(speech) = speech.filter(|_| intent.narration) {
            for (line, spoken) in state.script.iter().enumerate() {
                if spoken.scene != scene || state.speech.contains_key(&line) {
                    continue;
                }
                let request = speech_request(&spoken.text);
                let price = speech.price(&spoken.text);
                if price > 0.0
                    && !cached(request_hash(owner, "speech", &speech.id(), &request)).await?
                {
                    speech_usd += price;
                }
            }
        }
        scenes.push(SceneCost {
            scene,
            image_usd,
            speech_usd,
        });
    }
    let spent = state.cost.iter().map(|c| c.usd).sum::<f64>() + spending;
    let speech_model = speech.map(|s| s.id());
    Ok(allocate(
        &scenes,
        &image.id(),
        speech_model.as_ref(),
        spent,
        state.config.pipeline.budget_usd,
    ))
}

/// What the person should be told about the budget, if anything: scenes it left to the
/// local renderer, or a round that brings the run to 80 % of it or more.
pub fn notices(estimate: &Estimate, over: &BTreeSet<usize>, image_model: &ModelId) -> Vec<String> {
    let Some(limit) = estimate.budget else {
        return Vec::new();
    };
    let mut said = Vec::new();
    if !over.is_empty() {
        let scenes: Vec<String> = over.iter().map(|k| (k + 1).to_string()).collect();
        said.push(format!(
            "the run's budget of ${limit:.2} leaves no room for {image_model} to make scene{} {}; {} drawn locally instead",
            if over.len() == 1 { "" } else { "s" },
            scenes.join(", "),
            if over.len() == 1 { "it is" } else { "they are" },
        ));
    }
    let total = estimate.spent_before + estimate.usd;
    if limit > 0.0 && total >= 0.8 * limit {
        said.push(format!(
            "this run is expected to spend ${total:.2} of its ${limit:.2} budget ({:.0} %)",
            100.0 * total / limit
        ));
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenes(n: usize, image: f64) -> Vec<SceneCost> {
        (0..n)
            .map(|scene| SceneCost {
                scene,
                image_usd: image,
                speech_usd: 0.0,
            })
            .collect()
    }

    #[test]
    fn the_budget_pays_for_the_scenes_it_can_and_no_more() {
        let flux = ModelId::new("replicate", "black-forest-labs/flux-schnell");
        let (estimate, over) = allocate(&scenes(5, 0.003), &flux, None, 0.001, Some(0.010));
        assert_eq!(estimate.items.len(), 3, "0.001 + 3 x 0.003 fits in 0.010");
        assert!((estimate.usd - 0.009).abs() < 1e-12);
        assert_eq!(over, BTreeSet::from([3, 4]));
        let said = notices(&estimate, &over, &flux);
        assert!(
            said[0].contains("scenes 4, 5; they are drawn locally"),
            "{said:?}"
        );
        assert!(
            said[1].contains("$0.01 of its $0.01 budget (100 %)"),
            "{said:?}"
        );

        let (free, none_over) = allocate(&scenes(5, 0.003), &flux, None, 0.0, None);
        assert!(none_over.is_empty() && (free.usd - 0.015).abs() < 1e-12);
        assert!(notices(&free, &none_over, &flux).is_empty());
        let (local, _) = allocate(
            &scenes(5, 0.0),
            &ModelId::new("local", "procedural-1"),
            None,
            0.0,
            Some(0.0),
        );
        assert!(local.items.is_empty() && local.usd == 0.0);
    }
}
