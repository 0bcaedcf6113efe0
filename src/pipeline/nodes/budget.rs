//! What a round of pictures, clips and narration is expected to cost, and what a run's
//! budget lets the paid models make. Decided once, before the scenes are made in parallel
//! (they cannot see each other's spending), so that no call whose expected price would
//! overrun the budget is made. Every scene's paid still comes before any scene's clip: a
//! budget too small for both keeps stills with camera motion. Narration is counted, not
//! cut; the music bed and the critic are paid as they come.

use super::Services;
use super::assets::{image_request, shown_seconds, speech_request};
use super::cache::request_hash;
use crate::pipeline::state::{
    Allocation, Estimate, EstimateItem, MonthlyBudget, RunState, ScenePrompt, SceneSource,
};
use montage_graph::NodeError;
use montage_models::{ImageModel, ModelId, clip_length};
use std::collections::{BTreeMap, BTreeSet};

/// What one scene of the round would cost.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneCost {
    /// The scene.
    pub scene: usize,
    /// Its picture: what each model of the run's image chain would cost, starting there
    /// (a chain is priced at the dearest model from that one on), first choice first;
    /// empty when it is free (the cache has it, or the model is local).
    pub image: Vec<(ModelId, f64)>,
    /// Its clip, by the run's clip model.
    pub clip_usd: f64,
    /// Its narration, by the run's speech model.
    pub speech_usd: f64,
}

/// The models a round's clips and narration would be paid to.
#[derive(Debug, Clone, Copy)]
pub struct Payees<'a> {
    /// Clips, when the run makes them.
    pub clip: Option<&'a ModelId>,
    /// Narration, when the run has it.
    pub speech: Option<&'a ModelId>,
}

/// The limits a round is held to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// The run's own budget.
    pub run: Option<f64>,
    /// The owner's monthly budget.
    pub monthly: Option<MonthlyBudget>,
}

impl Limits {
    /// The most the run may spend in all: the tighter of the two.
    pub fn effective(&self) -> Option<f64> {
        let left = self.monthly.map(|m| m.left());
        match (self.run, left) {
            (Some(run), Some(left)) => Some(run.min(left)),
            (one, other) => one.or(other),
        }
    }
}

/// The round's estimate and what the budget leaves out, given what the run has `spent`.
pub fn allocate(
    scenes: &[SceneCost],
    payees: Payees<'_>,
    spent: f64,
    limits: Limits,
) -> Allocation {
    let budget = limits.effective();
    let mut items = Vec::new();
    let mut local_stills = BTreeSet::new();
    let mut stills_only = BTreeSet::new();
    let mut committed = spent;
    let fits =
        |committed: f64, usd: f64| budget.is_none_or(|limit| committed + usd <= limit + 1e-9);
    let item = |scene: usize, capability: &str, model: &ModelId, usd: f64| EstimateItem {
        scene: Some(scene),
        capability: capability.into(),
        model: model.clone(),
        usd,
    };
    let mut image_tiers = BTreeMap::new();
    for scene in scenes {
        if !scene.image.is_empty() {
            // The first model of the chain the budget has room for; none: the local renderer.
            match scene
                .image
                .iter()
                .position(|(_, usd)| fits(committed, *usd))
            {
                Some(tier) => {
                    let (model, usd) = &scene.image[tier];
                    if *usd > 0.0 {
                        committed += usd;
                        items.push(item(scene.scene, "image", model, *usd));
                    }
                    if tier > 0 {
                        image_tiers.insert(scene.scene, (tier, model.clone()));
                    }
                }
                None => {
                    local_stills.insert(scene.scene);
                }
            }
        }
        if scene.speech_usd > 0.0
            && let Some(model) = payees.speech
        {
            // Narration is small beside pictures; it is counted, not cut.
            committed += scene.speech_usd;
            items.push(item(scene.scene, "speech", model, scene.speech_usd));
        }
    }
    if let Some(model) = payees.clip {
        for scene in scenes.iter().filter(|s| s.clip_usd > 0.0) {
            // A clip starts from the paid still; a scene drawn locally keeps its drawing.
            if !local_stills.contains(&scene.scene) && fits(committed, scene.clip_usd) {
                committed += scene.clip_usd;
                items.push(item(scene.scene, "clip", model, scene.clip_usd));
            } else {
                stills_only.insert(scene.scene);
            }
        }
    }
    items.sort_by_key(|i| i.scene);
    let usd = items.iter().map(|i| i.usd).sum();
    Allocation {
        estimate: Estimate {
            usd,
            spent_before: spent,
            budget,
            monthly: limits.monthly,
            items,
        },
        local_stills,
        stills_only,
        image_tiers,
        notices: Vec::new(),
    }
}

/// The allocation of the round whose scenes get `prompts`, given what the run has spent
/// and `spending` (the calling node's own calls, not yet in the state). Requests the
/// generation cache already answered cost nothing and are left out.
pub async fn round(
    state: &RunState,
    services: &Services,
    prompts: &BTreeMap<usize, ScenePrompt>,
    spending: f64,
    run: &str,
) -> Result<Allocation, NodeError> {
    let providers = services.models.configured();
    let image = &providers.image;
    let clip = providers.clip.as_ref();
    let speech = providers.speech.as_ref();
    let (Some(intent), Some(plan)) = (state.intent.as_ref(), state.plan.as_ref()) else {
        return Err(NodeError::permanent(
            "the estimate needs the intent and the plan",
        ));
    };
    let owner = state.owner.as_deref();
    let cached = |hash: String| async move {
        services
            .database
            .cache_get(&hash)
            .await
            .map(|hit| hit.is_some())
            .map_err(NodeError::from)
    };
    let mut scenes = Vec::new();
    for (&scene, prompt) in prompts {
        let request = image_request(intent, prompt);
        let image_usd = match image.price() > 0.0
            && !cached(request_hash(owner, "image", &image.id(), &request)).await?
        {
            true => chain_prices(image.as_ref()),
            false => Vec::new(),
        };
        // Whether a clip was made before depends on the still it starts from, which is not
        // made yet: a clip is counted at its price unless the scene already has it.
        let clip_usd = match (clip, plan.scenes.get(scene)) {
            (Some(clip), Some(planned)) if planned.source == SceneSource::Generated => {
                clip_length(&clip.lengths(), shown_seconds(plan, scene))
                    .map_or(0.0, |seconds| clip.price(seconds))
            }
            _ => 0.0,
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
            image: image_usd,
            clip_usd,
            speech_usd,
        });
    }
    let spent = state.cost.iter().map(|c| c.usd).sum::<f64>() + spending;
    let limits = Limits {
        run: state.config.pipeline.budget_usd,
        monthly: monthly(state, services, run).await?,
    };
    let (clip_id, speech_id) = (clip.map(|c| c.id()), speech.map(|s| s.id()));
    Ok(allocate(
        &scenes,
        Payees {
            clip: clip_id.as_ref(),
            speech: speech_id.as_ref(),
        },
        spent,
        limits,
    ))
}

/// The round's allocation (as [`round`]) with what the person should be told, held
/// against the owner's monthly budget until the run ends and says what it spent.
pub async fn reckon(
    state: &RunState,
    services: &Services,
    ctx: &montage_graph::NodeContext,
    prompts: &BTreeMap<usize, ScenePrompt>,
    spending: f64,
) -> Result<Allocation, NodeError> {
    let run = ctx.thread().as_str();
    let mut allocation = round(state, services, prompts, spending, run).await?;
    let committed =
        state.cost.iter().map(|c| c.usd).sum::<f64>() + spending + allocation.estimate.usd;
    services.database.commit_spending(run, committed).await?;
    allocation.notices = notices(&allocation, &services.models.configured().image.id());
    Ok(allocation)
}

/// What a picture costs starting at each model of `image`'s chain: the dearest from that
/// model on, since any of them may be the one paid.
fn chain_prices(image: &dyn ImageModel) -> Vec<(ModelId, f64)> {
    let Some(chain) = image.stand_ins() else {
        return vec![(image.id(), image.price())];
    };
    (0..chain.len())
        .map(|tier| {
            let dearest = chain[tier..].iter().map(|m| m.price()).fold(0.0, f64::max);
            (chain[tier].id(), dearest)
        })
        .collect()
}

/// The run owner's monthly budget and what their other runs this month committed, when
/// they have one (their own, or the server's for everyone).
async fn monthly(
    state: &RunState,
    services: &Services,
    run: &str,
) -> Result<Option<MonthlyBudget>, NodeError> {
    let Some(owner) = state.owner.as_deref() else {
        return Ok(None);
    };
    let own = services.database.monthly_budget(owner).await?;
    let Some(limit) = own.or(state.config.pipeline.monthly_budget_usd) else {
        return Ok(None);
    };
    let since = crate::store::spending::month_start_ms(crate::store::runs::now_ms());
    let committed_elsewhere = services.database.committed_since(owner, since, run).await?;
    Ok(Some(MonthlyBudget {
        limit,
        committed_elsewhere,
    }))
}

/// What the person should be told about the budget, if anything: scenes it left to the
/// local renderer or without a clip, or a round that brings the run to 80 % of it or more.
pub fn notices(allocation: &Allocation, image_model: &ModelId) -> Vec<String> {
    let estimate = &allocation.estimate;
    let Some(limit) = estimate.budget else {
        return Vec::new();
    };
    let whose = match estimate.monthly {
        Some(monthly) if monthly.left() <= limit + 1e-9 => format!(
            "your monthly budget of ${:.2} (${:.2} left this month)",
            monthly.limit,
            monthly.left()
        ),
        _ => format!("the run's budget of ${limit:.2}"),
    };
    let listed = |scenes: &BTreeSet<usize>| {
        let numbers: Vec<String> = scenes.iter().map(|k| (k + 1).to_string()).collect();
        let plural = if scenes.len() == 1 { "" } else { "s" };
        format!("scene{plural} {}", numbers.join(", "))
    };
    let mut said = Vec::new();
    let over = &allocation.local_stills;
    if !over.is_empty() {
        said.push(format!(
            "{whose} leaves no room for {image_model} to make {}; {} drawn locally instead",
            listed(over),
            if over.len() == 1 { "it is" } else { "they are" },
        ));
    }
    let mut stepped: BTreeMap<&ModelId, BTreeSet<usize>> = BTreeMap::new();
    for (scene, (_, model)) in &allocation.image_tiers {
        stepped.entry(model).or_default().insert(*scene);
    }
    for (model, scenes) in stepped {
        said.push(format!(
            "{whose} leaves no room for {image_model} to make {}; {model} makes {} instead",
            listed(&scenes),
            if scenes.len() == 1 { "it" } else { "them" },
        ));
    }
    let still = &allocation.stills_only;
    if !still.is_empty() {
        said.push(format!(
            "{whose} leaves no room for a clip of {}; {} its still with camera motion",
            listed(still),
            if still.len() == 1 {
                "it keeps"
            } else {
                "they keep"
            },
        ));
    }
    let total = estimate.spent_before + estimate.usd;
    match estimate.monthly {
        Some(monthly) if monthly.limit > 0.0 => {
            let month = monthly.committed_elsewhere + total;
            if month >= 0.8 * monthly.limit {
                said.push(format!(
                    "with this run, ${month:.2} of your ${:.2} monthly budget is spent or committed ({:.0} %)",
                    monthly.limit,
                    100.0 * month / monthly.limit
                ));
            }
        }
        _ => {}
    }
    if let Some(run_limit) = allocation_run_limit(estimate)
        && run_limit > 0.0
        && total >= 0.8 * run_limit
    {
        said.push(format!(
            "this run is expected to spend ${total:.2} of its ${run_limit:.2} budget ({:.0} %)",
            100.0 * total / run_limit
        ));
    }
    said
}

/// The run's own limit as the estimate has it: its budget, unless the monthly one binds.
fn allocation_run_limit(estimate: &Estimate) -> Option<f64> {
    match estimate.monthly {
        Some(monthly) => estimate.budget.filter(|&b| b < monthly.left() - 1e-9),
        None => estimate.budget,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flux() -> ModelId {
        ModelId::new("replicate", "black-forest-labs/flux-schnell")
    }

    fn scenes(n: usize, image: f64, clip: f64) -> Vec<SceneCost> {
        (0..n)
            .map(|scene| SceneCost {
                scene,
                image: match image > 0.0 {
                    true => vec![(flux(), image)],
                    false => Vec::new(),
                },
                clip_usd: clip,
                speech_usd: 0.0,
            })
            .collect()
    }

    fn run_limit(usd: f64) -> Limits {
        Limits {
            run: Some(usd),
            monthly: None,
        }
    }

    /// Each stepped-down scene and its place in the chain.
    fn tiers(allocation: &Allocation) -> Vec<(usize, usize)> {
        allocation
            .image_tiers
            .iter()
            .map(|(k, (tier, _))| (*k, *tier))
            .collect()
    }

    fn stills() -> Payees<'static> {
        Payees {
            clip: None,
            speech: None,
        }
    }

    #[test]
    fn the_budget_pays_for_the_scenes_it_can_and_no_more() {
        let flux = ModelId::new("replicate", "black-forest-labs/flux-schnell");
        let allocation = allocate(&scenes(5, 0.003, 0.0), stills(), 0.001, run_limit(0.010));
        let estimate = &allocation.estimate;
        assert_eq!(estimate.items.len(), 3, "0.001 + 3 x 0.003 fits in 0.010");
        assert!((estimate.usd - 0.009).abs() < 1e-12);
        assert_eq!(allocation.local_stills, BTreeSet::from([3, 4]));
        let said = notices(&allocation, &flux);
        assert!(
            said[0].contains("scenes 4, 5; they are drawn locally"),
            "{said:?}"
        );
        assert!(
            said[1].contains("$0.01 of its $0.01 budget (100 %)"),
            "{said:?}"
        );

        let free = allocate(&scenes(5, 0.003, 0.0), stills(), 0.0, Limits::default());
        assert!(free.local_stills.is_empty() && (free.estimate.usd - 0.015).abs() < 1e-12);
        assert!(notices(&free, &flux).is_empty());
        let local = allocate(&scenes(5, 0.0, 0.0), stills(), 0.0, run_limit(0.0));
        assert!(local.estimate.items.is_empty() && local.estimate.usd == 0.0);
    }

    #[test]
    fn a_monthly_budget_leaves_a_run_what_the_other_runs_left() {
        let flux = ModelId::new("replicate", "black-forest-labs/flux-schnell");
        let monthly = |committed_elsewhere| Limits {
            run: Some(1.0),
            monthly: Some(MonthlyBudget {
                limit: 0.010,
                committed_elsewhere,
            }),
        };
        let allocation = allocate(&scenes(3, 0.003, 0.0), stills(), 0.0, monthly(0.004));
        assert_eq!(allocation.estimate.budget, Some(0.006));
        assert_eq!(allocation.local_stills, BTreeSet::from([2]));
        let said = notices(&allocation, &flux);
        assert!(
            said[0]
                .starts_with("your monthly budget of $0.01 ($0.01 left this month) leaves no room"),
            "{said:?}"
        );
        assert!(
            said[1].contains("$0.01 of your $0.01 monthly budget is spent or committed (100 %)"),
            "{said:?}"
        );
        assert_eq!(
            said.len(),
            2,
            "the run's own budget does not bind: {said:?}"
        );
        let spent = allocate(&scenes(3, 0.003, 0.0), stills(), 0.0, monthly(0.012));
        assert_eq!(
            spent.estimate.budget,
            Some(0.0),
            "over the month: nothing is paid"
        );
        assert_eq!(spent.local_stills, BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn a_budget_steps_down_the_image_chain_before_drawing_locally() {
        let pro = ModelId::new("replicate", "black-forest-labs/flux-1.1-pro");
        let local = ModelId::new("local", "procedural-1");
        let chain = vec![(pro.clone(), 0.05), (flux(), 0.003), (local.clone(), 0.0)];
        let scenes: Vec<SceneCost> = (0..4)
            .map(|scene| SceneCost {
                scene,
                image: chain.clone(),
                clip_usd: 0.0,
                speech_usd: 0.0,
            })
            .collect();
        let roomy = allocate(&scenes, stills(), 0.0, run_limit(0.06));
        assert_eq!(
            tiers(&roomy),
            [(1, 1), (2, 1), (3, 1)],
            "the first pro, then schnell"
        );
        assert!(roomy.local_stills.is_empty());
        assert!((roomy.estimate.usd - 0.059).abs() < 1e-9);
        let said = notices(&roomy, &pro);
        assert!(
            said[0].contains("no room for replicate/black-forest-labs/flux-1.1-pro to make scenes 2, 3, 4; replicate/black-forest-labs/flux-schnell makes them instead"),
            "{said:?}"
        );
        let tight = allocate(&scenes, stills(), 0.0, run_limit(0.052));
        assert_eq!(
            tiers(&tight),
            [(1, 2), (2, 2), (3, 2)],
            "then the chain's own local renderer"
        );
        assert!(notices(&tight, &pro)[0].contains("local/procedural-1 makes them instead"));
    }

    #[test]
    fn every_paid_still_comes_before_any_clip() {
        let flux = ModelId::new("replicate", "black-forest-labs/flux-schnell");
        let kling = ModelId::new("replicate", "kwaivgi/kling-v2.1");
        let payees = Payees {
            clip: Some(&kling),
            speech: None,
        };
        // Three stills (0.009) and two clips of 5 s (0.50) fit in 0.60; a third clip does not.
        let allocation = allocate(&scenes(3, 0.003, 0.25), payees, 0.0, run_limit(0.60));
        let clips: Vec<usize> = allocation
            .estimate
            .items
            .iter()
            .filter(|i| i.capability == "clip")
            .filter_map(|i| i.scene)
            .collect();
        assert_eq!(clips, [0, 1]);
        assert!(allocation.local_stills.is_empty());
        assert_eq!(allocation.stills_only, BTreeSet::from([2]));
        let said = notices(&allocation, &flux);
        assert!(
            said[0].contains("no room for a clip of scene 3; it keeps its still"),
            "{said:?}"
        );
        // Too little for every still: the scenes drawn locally get no clip either.
        let tight = allocate(&scenes(3, 0.003, 0.25), payees, 0.0, run_limit(0.005));
        assert_eq!(tight.local_stills, BTreeSet::from([1, 2]));
        assert_eq!(tight.stills_only, BTreeSet::from([0, 1, 2]));
        let unlimited = allocate(&scenes(3, 0.003, 0.25), payees, 0.0, Limits::default());
        assert!((unlimited.estimate.usd - 0.759).abs() < 1e-9);
    }
}
