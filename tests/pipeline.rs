//! The critic loop on a real run: a scene planted dark among bright ones is flagged,
//! regenerated alone, and the loop stops at its bound.

use async_trait::async_trait;
use montage::config::Config;
use montage::objects::Objects;
use montage::pipeline::request::{self, Draft};
use montage::pipeline::state::SceneSource;
use montage::pipeline::templates::Templates;
use montage::pipeline::{Pipeline, RunState, Services, scene_seed};
use montage::providers::{Providers, Registry};
use montage_graph::{GraphError, RunConfig, RunOutcome, ThreadId};
use montage_models::local::LocalImage;
use montage_models::{GeneratedImage, ImageModel, ImageRequest, IssueKind, ModelError, ModelId};
use serde_json::json;
use std::path::Path;
use std::sync::{Arc, Mutex};

const SEED: u64 = 5;
const DARK_SCENE: usize = 2;

/// The local renderer, except that takes with the given seeds come out nearly black.
struct DarkTakes {
    seeds: Vec<u64>,
    calls: Mutex<Vec<ImageRequest>>,
}

#[async_trait]
impl ImageModel for DarkTakes {
    fn id(&self) -> ModelId {
        LocalImage.id()
    }

    async fn generate(&self, request: ImageRequest) -> Result<GeneratedImage, ModelError> {
        self.calls.lock().unwrap().push(request.clone());
        let dark = self.seeds.contains(&request.seed);
        let mut made = LocalImage.generate(request).await?;
        if dark {
            let mut picture = image::load_from_memory(&made.bytes).unwrap().to_rgb8();
            picture.pixels_mut().for_each(|p| p.0 = p.0.map(|c| c / 12));
            let mut bytes = std::io::Cursor::new(Vec::new());
            picture
                .write_to(&mut bytes, image::ImageFormat::Png)
                .unwrap();
            made.bytes = bytes.into_inner();
        }
        Ok(made)
    }
}

async fn start(
    dir: &Path,
    models: impl FnOnce(&mut Providers),
    max_iterations: u32,
) -> (Pipeline, ThreadId, RunOutcome<RunState>) {
    let mut config = Config::default();
    config.storage.data_dir = dir.to_owned();
    config.pipeline.max_iterations = max_iterations;
    let jobs = montage::providers::JobServices {
        journal: Arc::new(montage_models::remote::jobs::MemoryJournal::default()),
        wakeups: Default::default(),
    };
    let (mut providers, notices) = Providers::resolve(&config.models, &jobs).await.unwrap();
    models(&mut providers);
    let objects = Objects::local(&dir.join("objects")).unwrap();
    let draft = Draft {
        prompt: "an 8 second fast energetic city video, square".into(),
        seed: SEED,
        ..Draft::default()
    };
    let run_request = request::prepare(draft, &objects).await.unwrap();
    let models = providers.resolved();
    let services = Services {
        models: Arc::new(Registry::new(config.models.clone(), providers, jobs)),
        objects,
        database: montage::store::Database::open_default(dir).await.unwrap(),
        templates: Templates::embedded(),
        segments: dir.join("segments"),
        scratch: dir.join("renders"),
    };
    let pipeline = Pipeline::new(services, 4, 2).unwrap();
    let thread = ThreadId::random();
    let outcome = pipeline
        .start(
            &thread,
            RunState::new(run_request, config, models, notices),
            RunConfig::default(),
        )
        .await
        .unwrap();
    (pipeline, thread, outcome)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dark_scene_is_flagged_and_only_it_is_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    let images = Arc::new(DarkTakes {
        seeds: vec![scene_seed(SEED, DARK_SCENE, 0)],
        calls: Mutex::default(),
    });
    let (pipeline, thread, outcome) = start(dir.path(), |p| p.image = images.clone(), 3).await;
    let RunOutcome::Interrupted {
        question, state, ..
    } = outcome
    else {
        panic!("the critic should have asked about the dark scene");
    };
    let scenes = state.plan.as_ref().unwrap().scenes.len();
    assert!(scenes >= 4, "{scenes} scenes");
    assert!(
        state
            .plan
            .as_ref()
            .unwrap()
            .scenes
            .iter()
            .all(|s| s.source == SceneSource::Generated)
    );
    let flagged: Vec<u64> = question["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["scene"].as_u64().unwrap())
        .collect();
    assert!(
        !flagged.is_empty() && flagged.iter().all(|&s| s == DARK_SCENE as u64),
        "{question}"
    );
    assert!(
        question["text"].as_str().unwrap().contains("scene 3"),
        "{question}"
    );

    let done = pipeline
        .answer(&thread, json!({ "action": "accept" }), RunConfig::default())
        .await
        .unwrap();
    let RunOutcome::Completed(state) = done else {
        panic!("the run should finish: {done:?}")
    };
    let calls = images.calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        scenes + 1,
        "one extra picture, for the dark scene only"
    );
    let retake = calls.last().unwrap();
    assert_eq!(retake.seed, scene_seed(SEED, DARK_SCENE, 1));
    assert!(retake.prompt.contains("brighter"), "{}", retake.prompt);
    assert_eq!(state.reviews.len(), 2);
    assert!(
        state.reviews[1]
            .issues
            .iter()
            .all(|i| i.severity < montage_models::Severity::Medium),
        "{:?}",
        state.reviews[1].issues
    );
    assert!(state.open_issues.is_empty());
    for (scene, asset) in &state.assets {
        assert_eq!(
            asset.round,
            if *scene == DARK_SCENE { 2 } else { 1 },
            "scene {scene}"
        );
    }
    let image_entries: Vec<Option<usize>> = state
        .cost
        .iter()
        .filter(|c| c.capability == "image")
        .map(|c| c.scene)
        .collect();
    assert_eq!(
        image_entries
            .iter()
            .filter(|s| **s == Some(DARK_SCENE))
            .count(),
        2
    );
    assert_eq!(image_entries.len(), scenes + 1);
    let outputs = state.outputs.as_ref().unwrap();
    assert_eq!(outputs.videos.len(), 1);
    assert!(
        dir.path()
            .join("objects")
            .join(&outputs.videos[0].object.key)
            .is_file()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loop_stops_at_its_bound_and_records_what_is_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = (0..4)
        .map(|take| scene_seed(SEED, DARK_SCENE, take))
        .collect();
    let images = Arc::new(DarkTakes {
        seeds,
        calls: Mutex::default(),
    });
    let (pipeline, thread, outcome) = start(dir.path(), |p| p.image = images.clone(), 1).await;
    assert!(matches!(outcome, RunOutcome::Interrupted { .. }));

    // Answers that don't fit the question are refused and the run keeps waiting.
    for bad in [
        json!({ "action": "regenerate", "scenes": [40] }),
        json!({ "action": "dance" }),
        json!({ "action": "edit" }),
    ] {
        let refused = pipeline
            .answer(&thread, bad.clone(), RunConfig::default())
            .await;
        assert!(
            matches!(refused, Err(GraphError::InvalidAnswer(_))),
            "{bad}"
        );
    }
    let answer =
        json!({ "action": "regenerate", "scenes": [DARK_SCENE], "instruction": "much brighter" });
    let done = pipeline
        .answer(&thread, answer, RunConfig::default())
        .await
        .unwrap();
    let RunOutcome::Completed(state) = done else {
        panic!("at the bound the run finalizes instead of asking again")
    };
    assert_eq!(state.reviews.len(), 2);
    assert_eq!(state.answers.len(), 1);
    assert_eq!(state.instructions[&DARK_SCENE], ["much brighter"]);
    assert!(!state.open_issues.is_empty());
    assert!(state.open_issues.iter().all(
        |i| i.scene == DARK_SCENE && matches!(i.kind, IssueKind::Blank | IssueKind::Continuity)
    ));
    assert!(
        state.notices.iter().any(|n| n.contains("still open")),
        "{:?}",
        state.notices
    );
    assert!(state.outputs.is_some());
    assert_eq!(
        images.calls.lock().unwrap().len(),
        state.plan.as_ref().unwrap().scenes.len() + 1
    );
}

/// A paid text model that never answers in shape.
struct Rambler;

#[async_trait]
impl montage_models::TextModel for Rambler {
    fn id(&self) -> ModelId {
        ModelId::new("rambler", "r1")
    }

    async fn complete(
        &self,
        _: montage_models::TextRequest,
    ) -> Result<montage_models::TextResponse, ModelError> {
        Ok(montage_models::TextResponse {
            model: self.id(),
            content: Some("Sure! Here is a lovely video idea for you.".into()),
            tool_calls: Vec::new(),
            finish: montage_models::FinishReason::Stop,
            usage: montage_models::Usage {
                input_tokens: 500,
                output_tokens: 50,
            },
            cost_usd: 0.01,
            notices: Vec::new(),
            wasted: Vec::new(),
        })
    }
}

/// Answers outside the schema are asked for once more, then the next model (the local one,
/// or the templates) stands in and the run says so, and every paid answer is in the ledger.
#[tokio::test(flavor = "multi_thread")]
async fn answers_that_never_fit_give_way_down_the_chain_and_are_paid_for_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, outcome) = start(
        dir.path(),
        |p| {
            p.text = Arc::new(
                montage_models::remote::FallbackText::new(vec![
                    Arc::new(Rambler),
                    Arc::new(montage_models::local::LocalText),
                ])
                .unwrap(),
            )
        },
        0,
    )
    .await;
    let state = match outcome {
        RunOutcome::Completed(state) => state,
        RunOutcome::Interrupted { state, .. } => state,
        other => panic!("the run should go on: {other:?}"),
    };
    let intent = state
        .intent
        .as_ref()
        .expect("the local model read the words");
    assert_eq!(intent.duration, 8.0);
    for node in ["intent", "story", "prompts"] {
        let paid: Vec<_> = state
            .cost
            .iter()
            .filter(|e| e.node == node && e.model.provider == "rambler")
            .collect();
        assert_eq!(paid.len(), 1, "{node}: {:?}", state.cost);
        assert!(
            (paid[0].usd - 0.02).abs() < 1e-9,
            "two answers paid: {:?}",
            paid[0]
        );
        assert_eq!(paid[0].tokens.input_tokens, 1000);
    }
    assert!(
        state
            .notices
            .iter()
            .any(|n| n.contains("rambler/r1 failed") && n.contains("outside its schema twice")),
        "{:?}",
        state.notices
    );
    assert!(
        state
            .notices
            .iter()
            .any(|n| n.starts_with("the story could not come from the text model")),
        "{:?}",
        state.notices
    );
}
