//! The analyze node: the person's music, or a bed made to the mood, read into a [`BeatGrid`].

use super::cache::request_hash;
use super::{NodeResult, Services, StopOnCancel, intent_of};
use crate::objects::{ObjectRef, Objects};
use crate::pipeline::PipelineError;
use crate::pipeline::events::{MusicOrigin, PipelineEvent};
use crate::pipeline::state::{CostEntry, Music, MusicSource, RunState, Update};
use montage_audio::{BeatGrid, EnergyCurve, Section, SectionKind};
use montage_graph::{Command, NodeContext, NodeError};
use montage_models::MusicRequest;
use std::sync::Arc;

/// A steady grid at `bpm` over `seconds`, for audio without a beat to cut on.
fn steady_grid(bpm: f64, seconds: f64) -> BeatGrid {
    let period = 60.0 / bpm;
    let beats: Vec<f64> = (0..)
        .map(|i| f64::from(i) * period)
        .take_while(|&t| t < seconds)
        .collect();
    BeatGrid {
        duration: seconds,
        bpm,
        tempo_confidence: 0.0,
        tempo_curve: Vec::new(),
        meter: 4,
        downbeats: beats.iter().step_by(4).copied().collect(),
        beat_energy: vec![0.6; beats.len()],
        beats,
        onsets: Vec::new(),
        energy: EnergyCurve {
            rate: montage_audio::ENERGY_RATE,
            values: Vec::new(),
        },
        sections: vec![Section {
            start: 0.0,
            end: seconds,
            kind: SectionKind::Main,
            energy: 0.6,
        }],
    }
}

async fn analyze_object(objects: &Objects, object: &ObjectRef) -> Result<BeatGrid, NodeError> {
    let path = objects.local_path(object);
    tokio::task::spawn_blocking(move || montage_audio::analyze_file(&path))
        .await
        .map_err(|e| NodeError::permanent(format!("the analysis stopped: {e}")))?
        .map_err(|e| NodeError::permanent(format!("analysing the music: {e}")))
}

/// analyze: the person's music, or a bed made to the mood → [`BeatGrid`].
pub async fn analyze(
    state: Arc<RunState>,
    ctx: NodeContext,
    services: Arc<Services>,
) -> NodeResult {
    let intent = intent_of(&state)?;
    let mut notices = Vec::new();
    let mut cost = Vec::new();
    let (music, mut grid) = match &state.request.audio {
        Some(upload) => {
            let grid = analyze_object(&services.objects, &upload.object).await?;
            let music = Music {
                object: upload.object.clone(),
                source: MusicSource::Uploaded {
                    name: upload.name.clone(),
                },
            };
            (music, grid)
        }
        None => {
            let bpm = intent.mood.tempo();
            let mut request = MusicRequest {
                prompt: format!("{} {}", intent.mood.word(), intent.style.join(" ")),
                bpm,
                meter: 4,
                seconds: intent.duration + 4.0 * 60.0 / bpm,
                seed: state.request.seed,
                job_key: None,
            };
            let composer = &services.models.configured().music;
            // A paid bed for this request is submitted once, whatever happens to the run.
            request.job_key = Some(request_hash(
                state.owner.as_deref(),
                "music",
                &composer.id(),
                &request,
            ));
            let _stop = request.job_key.as_deref().map(|key| {
                StopOnCancel::new(&ctx, Arc::clone(composer), key, |model, key| {
                    model.cancel(key)
                })
            });
            let made = composer
                .compose(request)
                .await
                .map_err(|e| PipelineError::model("making music", e))?;
            cost.push(CostEntry {
                node: "analyze".into(),
                scene: None,
                capability: "music".into(),
                model: made.model.clone(),
                usd: made.cost_usd,
                tokens: Default::default(),
                cached: false,
            });
            let object = services.objects.put("music", "audio/wav", made.wav).await?;
            let grid = analyze_object(&services.objects, &object).await?;
            let music = Music {
                object,
                source: MusicSource::Generated {
                    model: made.model,
                    bpm,
                },
            };
            (music, grid)
        }
    };
    if grid.beats.len() < 4 {
        let bpm = intent.mood.tempo();
        notices.push(format!(
            "no steady beat was found in the music; cuts follow a steady {bpm:.0} BPM grid"
        ));
        grid = steady_grid(bpm, grid.duration);
    }
    // Announced so the music can be played while the run goes on.
    PipelineEvent::MusicReady {
        object: music.object.clone(),
        source: match music.source {
            MusicSource::Uploaded { .. } => MusicOrigin::Uploaded,
            MusicSource::Generated { .. } => MusicOrigin::Generated,
        },
        bpm: grid.bpm,
    }
    .emit(&ctx);
    Ok(Command::update(Update {
        music: Some(music),
        grid: Some(grid),
        cost,
        notices,
        ..Update::default()
    }))
}
