//! The agent's tools: the only way it acts. Each is offered to the model with a JSON Schema
//! and carried out for the chat's owner on the chat's run; each returns a JSON result whose
//! `summary` says, for people, what happened.

use super::AgentError;
use super::arguments::{
    AnswerFeedback, CreateVideo, Export, RegenerateScene, Revise, Status, parameters_schema,
    parse_arguments,
};
use crate::config::FeedbackPolicy;
use crate::pipeline::state::Upload;
use crate::pipeline::state::{FeedbackAnswer, RunState, SceneSource};
use crate::pipeline::{PipelineEvent, request};
use crate::store::{Chat, RunStatus, User};
use crate::worker::{Changes, QuestionKind, Workers};
use montage_graph::ThreadState;
use montage_models::ToolSpec;
use serde_json::{Value, json};

/// The tools, as offered to the model.
pub fn specs() -> Vec<ToolSpec> {
    fn spec<T: schemars::JsonSchema>(name: &str, description: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: description.into(),
            parameters: parameters_schema::<T>(),
        }
    }
    vec![
        spec::<CreateVideo>(
            "create_video",
            "Start a new video from the person's description, with the files they attached.",
        ),
        spec::<Revise>(
            "revise",
            "Make a new version of the current video with changed words, formats, length or music.",
        ),
        spec::<RegenerateScene>(
            "regenerate_scene",
            "Make some scenes of the current video again (scenes counted from 0; leave scenes out for every generated scene), with an instruction such as \"brighter\".",
        ),
        spec::<AnswerFeedback>(
            "answer_feedback",
            "Answer the open question on the current video: the critic's (accept its fixes, regenerate scenes, edit, skip to the final video) or the storyboard's (accept it, regenerate: rewrite chosen scenes' prompts, edit, budget: hold the run to usd dollars); cancel stops the video.",
        ),
        spec::<Status>(
            "status",
            "Say where the current video stands, or the person's video with this run id.",
        ),
        spec::<Export>(
            "export",
            "Give the download links of the current video, rendering a format it lacks.",
        ),
    ]
}

/// What a tool did: its result for the model, and the run it started, if any.
pub struct Outcome {
    /// The result, with a `summary`.
    pub result: Value,
    /// A run the chat now follows.
    pub run: Option<String>,
}

fn done(summary: String) -> Outcome {
    Outcome {
        result: json!({ "summary": summary }),
        run: None,
    }
}

fn started(summary: String, run: &str) -> Outcome {
    Outcome {
        result: json!({ "summary": summary, "run_id": run }),
        run: Some(run.to_owned()),
    }
}

/// Carries out one tool call for `user` in `chat`, with `uploads` attached to the message.
pub async fn call(
    workers: &Workers,
    user: &User,
    chat: &Chat,
    uploads: &[Upload],
    choices: &super::Choices,
    name: &str,
    arguments: &Value,
) -> Result<Outcome, AgentError> {
    let owner = user.id.as_str();
    let current = || {
        chat.run.clone().ok_or_else(|| {
            AgentError::Refused("there is no video in this chat yet: describe one first".into())
        })
    };
    match name {
        "create_video" => {
            let call: CreateVideo = parse_arguments(name, arguments)?;
            let duration = choices.duration.or(call.duration);
            let prompt = request::check_prompt(&call.prompt, duration)
                .map_err(|e| AgentError::Refused(e.to_string()))?;
            let app = workers.app();
            let request = crate::pipeline::RunRequest {
                prompt,
                audio: uploads
                    .iter()
                    .rev()
                    .find(|u| u.object.media_type.starts_with("audio/"))
                    .cloned(),
                images: uploads
                    .iter()
                    .filter(|u| u.object.media_type.starts_with("image/"))
                    .cloned()
                    .collect(),
                formats: match &choices.formats {
                    Some(chosen) => Some(chosen.clone()),
                    None => call.formats,
                },
                duration,
                seed: 1,
                overrides: choices.overrides.clone(),
            };
            let state = app
                .new_state(request, app.config.clone())
                .await
                .map_err(|e| AgentError::Refused(e.to_string()))?;
            let asks = state.config.pipeline.feedback == FeedbackPolicy::Ask;
            let run = workers.submit(owner, state).await?;
            let critic = match asks {
                true => "and I'll ask you if the critic finds something",
                false => {
                    "and the critic's fixes are made without asking (this server is set to accept them)"
                }
            };
            Ok(started(
                format!(
                    "I've started your video. The scenes will appear as they are made, {critic}."
                ),
                &run.id,
            ))
        }
        "revise" => {
            let call: Revise = parse_arguments(name, arguments)?;
            let run = current()?;
            let audio = match &call.audio {
                Some(id) => Some(workers.upload(owner, id, Some("audio")).await?),
                None => None,
            };
            let changes = Changes {
                instruction: call.instruction,
                formats: call.formats,
                duration: call.duration,
                audio,
                ..Changes::default()
            };
            let revised = workers.revise(owner, &run, changes).await?;
            Ok(started(
                format!(
                    "I'm making version {} with that change; only what changed is made again.",
                    revised.version
                ),
                &revised.id,
            ))
        }
        "regenerate_scene" => {
            let call: RegenerateScene = parse_arguments(name, arguments)?;
            let run = current()?;
            let named = call.scenes.unwrap_or_default();
            let every = named.is_empty();
            let scenes = match every {
                true => generated_scenes(workers, &run).await?,
                false => named,
            };
            if scenes.is_empty() {
                return Err(AgentError::Refused(
                    "every scene of this video is your own picture: there is nothing to draw again"
                        .into(),
                ));
            }
            let instruction = call.instruction.as_deref().unwrap_or_default();
            let revised = workers
                .regenerate(owner, &run, &scenes, instruction)
                .await?;
            let how = match instruction.trim() {
                "" => String::new(),
                said => format!(" ({said})"),
            };
            let which = match every {
                true => "every generated scene".to_owned(),
                false => {
                    let numbers: Vec<String> = scenes.iter().map(|k| (k + 1).to_string()).collect();
                    let plural = if scenes.len() == 1 { "" } else { "s" };
                    format!("scene{plural} {}", numbers.join(", "))
                }
            };
            let rest = match every {
                true => "",
                false => "; the other scenes stay as they are",
            };
            Ok(started(
                format!(
                    "I'm making {which} again{how} as version {}{rest}.",
                    revised.version
                ),
                &revised.id,
            ))
        }
        "answer_feedback" => {
            let call: AnswerFeedback = parse_arguments(name, arguments)?;
            let answer = call.into_answer()?;
            let run = current()?;
            let storyboard =
                workers.question_kind(owner, &run).await? == Some(QuestionKind::Storyboard);
            let value = serde_json::to_value(&answer)
                .map_err(|e| AgentError::Refused(format!("the answer cannot be written: {e}")))?;
            workers.answer(owner, &run, value).await?;
            let what = match (answer, storyboard) {
                (FeedbackAnswer::Cancel {}, _) => {
                    return Ok(done(
                        "I've cancelled the video; nothing more is made or paid for.".to_owned(),
                    ));
                }
                (FeedbackAnswer::Accept {}, true) => {
                    "The storyboard is approved and the pictures are being made"
                }
                (FeedbackAnswer::Accept {}, false) => "I've taken the critic's fixes",
                (FeedbackAnswer::Skip {}, _) => "I'm finishing the video as it is",
                (FeedbackAnswer::Regenerate { .. }, true) => {
                    "I'm rewriting those scenes' prompts; the storyboard comes back to you"
                }
                (FeedbackAnswer::Regenerate { .. }, false) => "I'm making those scenes again",
                (FeedbackAnswer::Budget { .. }, _) => {
                    "I've changed the run's budget; the storyboard comes back to you with what it pays for"
                }
                (FeedbackAnswer::Edit { .. }, _) => "I've changed the plan",
            };
            Ok(done(format!("{what}; the run goes on.")))
        }
        "status" => {
            let call: Status = parse_arguments(name, arguments)?;
            let id = match call.run_id {
                Some(id) => id,
                None => current()?,
            };
            // Only the person's own runs: another's is "not found", like the API's.
            let run = workers.run(owner, &id).await?;
            // As the person sees it in the run's view.
            let status = workers.status(&run).await;
            let summary = match status {
                RunStatus::Queued => "Your video is waiting for a free worker.".to_owned(),
                RunStatus::Running => match workers.thread(&run.id).await {
                    Ok(thread) => {
                        let events = workers.app().database.events_since(&run.id, 0).await?;
                        let drawn = pictures_drawn(&events, thread.state.round);
                        format!("Your video is being made: {}.", progress(&thread, drawn))
                    }
                    Err(_) => "Your video is being made right now.".to_owned(),
                },
                RunStatus::Waiting => match workers.question_kind(owner, &run.id).await? {
                    Some(QuestionKind::Storyboard) => "The storyboard is waiting for your approval: say \"looks good\" to make the pictures, name scenes whose prompts to rewrite (with how), or \"cancel\".".to_owned(),
                    _ => "The critic has a question: say \"looks good\" to take its fixes, \"skip\" to finish as it is, or name scenes to make again.".to_owned(),
                },
                RunStatus::Completed => format!("Version {} is finished and ready to download.", run.version),
                RunStatus::Failed => "That run stopped on an error; ask me to try again or change it.".to_owned(),
                RunStatus::Cancelled => "That run was cancelled.".to_owned(),
            };
            Ok(Outcome {
                result: json!({ "summary": summary, "status": status.as_str(), "version": run.version }),
                run: None,
            })
        }
        "export" => {
            let call: Export = parse_arguments(name, arguments)?;
            let run_id = current()?;
            let run = workers.run(owner, &run_id).await?;
            if workers.status(&run).await != RunStatus::Completed {
                return Ok(done(
                    "The video isn't finished yet; I'll have the downloads when it is.".into(),
                ));
            }
            let state = workers
                .thread(&run_id)
                .await
                .map_err(crate::worker::WorkerError::from)?
                .state;
            let videos = state.outputs.map(|o| o.videos).unwrap_or_default();
            let wanted = call.format;
            let links: Vec<Value> = videos
                .iter()
                .filter(|v| wanted.is_none_or(|w| v.format == w))
                .map(|v| json!({ "format": v.format.ratio(), "url": crate::server::protocol::asset_url(&v.object.sha256) }))
                .collect();
            if !links.is_empty() {
                let listed: Vec<String> = links
                    .iter()
                    .map(|l| {
                        format!(
                            "{} {}",
                            l["format"].as_str().unwrap_or(""),
                            l["url"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                return Ok(Outcome {
                    result: json!({ "summary": format!("Here it is: {}", listed.join(", ")), "videos": links }),
                    run: None,
                });
            }
            let Some(format) = wanted else {
                return Ok(done("This version has no videos to download.".into()));
            };
            let mut formats: Vec<montage_models::Format> =
                videos.iter().map(|v| v.format).collect();
            formats.push(format);
            let revised = workers
                .revise(
                    owner,
                    &run_id,
                    Changes {
                        formats: Some(formats),
                        ..Changes::default()
                    },
                )
                .await?;
            Ok(started(
                format!(
                    "This version has no {} video; I'm rendering it as version {} with the same scenes.",
                    format.ratio(),
                    revised.version
                ),
                &revised.id,
            ))
        }
        other => Err(AgentError::Refused(format!("there is no tool {other:?}"))),
    }
}

/// The scenes of `run`'s plan that are drawn by a model (not the person's own pictures).
async fn generated_scenes(workers: &Workers, run: &str) -> Result<Vec<usize>, AgentError> {
    let thread = workers
        .thread(run)
        .await
        .map_err(crate::worker::WorkerError::from)?;
    Ok(thread
        .state
        .plan
        .map(|plan| {
            plan.scenes
                .iter()
                .enumerate()
                .filter(|(_, scene)| scene.source == SceneSource::Generated)
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default())
}

/// The scenes whose pictures of generation `round` were announced: the graph merges a
/// fan-out's pictures into the state only once all are made, its events say each one.
fn pictures_drawn(events: &[montage_graph::Event], round: u32) -> usize {
    let scenes: std::collections::BTreeSet<usize> = events
        .iter()
        .filter_map(|event| match PipelineEvent::of(event)? {
            PipelineEvent::AssetReady {
                scene, round: r, ..
            } if r == round => Some(scene),
            _ => None,
        })
        .collect();
    scenes.len()
}

/// How far a running video has come, in the steps the person sees ("making the pictures:
/// 3 of 8 done"), `drawn` pictures of this round being made.
fn progress(thread: &ThreadState<RunState>, drawn: usize) -> String {
    let state = &thread.state;
    let scenes = state.plan.as_ref().map_or(0, |p| p.scenes.len());
    let next = thread.next.first().map(String::as_str).unwrap_or("");
    match next {
        "" | "intent" if state.intent.is_none() => "reading your request".to_owned(),
        "analyze" | "plan" | "intent" => "finding the beats and planning the cuts".to_owned(),
        "story" | "prompts" | "storyboard" => {
            format!("writing what each of the {scenes} scenes shows")
        }
        "assets" => {
            let wanted = state.pending.len();
            let drawn = drawn.min(wanted);
            match state.round {
                0 => format!("making the pictures: {drawn} of {wanted} done"),
                _ => format!("making {wanted} scenes again: {drawn} done"),
            }
        }
        "continuity" | "critic" | "feedback" => {
            format!("the critic is looking at the {scenes} pictures")
        }
        "compose" => "rendering the final video".to_owned(),
        _ => format!("{scenes} scenes planned"),
    }
}
