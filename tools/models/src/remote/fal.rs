//! fal.ai's queue API: `POST {queue}/{model}` takes a request and names it (`request_id`);
//! `GET {queue}/{app}/requests/{id}/status` says where it stands (`IN_QUEUE`, `IN_PROGRESS`,
//! `COMPLETED`) and `GET {queue}/{app}/requests/{id}` hands over the result. `app` is the
//! model's first two path segments: `fal-ai/flux/schnell` is polled under `fal-ai/flux`.

use super::jobs::{JobApi, JobState, Repeat, json_answer};
use super::policy::{CallError, Failure, Policy};
use async_trait::async_trait;
use serde_json::Value;

/// fal's queue, as one key reaches it.
pub(crate) struct Fal {
    pub base_url: String,
    pub key: Option<String>,
    pub http: reqwest::Client,
    pub policy: Policy,
}

/// The app a model belongs to: its first two path segments.
fn app(model: &str) -> &str {
    match model.match_indices('/').nth(1) {
        Some((second_slash, _)) => &model[..second_slash],
        None => model,
    }
}

impl Fal {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url.trim_end_matches('/'))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.header(reqwest::header::AUTHORIZATION, format!("Key {key}")),
            None => request,
        }
    }

    /// The finished request's result; a request that failed answers with an error status.
    async fn result(&self, model: &str, job: &str) -> Result<JobState, Failure> {
        let url = self.url(&format!("{}/requests/{job}", app(model)));
        match json_answer(self.authorized(self.http.get(&url)), Repeat::Safe).await {
            Ok(result) => Ok(JobState::Succeeded {
                billed_seconds: result["timings"]["inference"].as_f64(),
                output: result,
            }),
            Err(Failure::Status {
                status, message, ..
            }) if (400..500).contains(&status) && status != 429 => Ok(JobState::Failed(message)),
            Err(other) => Err(other),
        }
    }
}

#[async_trait]
impl JobApi for Fal {
    async fn submit(&self, model: &str, input: &Value) -> Result<(String, JobState), CallError> {
        let url = self.url(model);
        let submitted = self
            .policy
            .call_unrepeated(|| {
                json_answer(
                    self.authorized(self.http.post(&url)).json(input),
                    Repeat::Never,
                )
            })
            .await?;
        let id = submitted["request_id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| CallError::Failed {
                failure: Failure::Garbled("a queued request without a request_id".into()),
                attempts: 1,
            })?;
        Ok((id.to_owned(), JobState::Waiting))
    }

    /// A request already finished answers 400 `ALREADY_COMPLETED`: nothing left to stop.
    async fn cancel(&self, model: &str, job: &str) -> Result<(), CallError> {
        let url = self.url(&format!("{}/requests/{job}/cancel", app(model)));
        self.policy
            .call(|| async {
                match json_answer(self.authorized(self.http.put(&url)), Repeat::Safe).await {
                    Ok(_) => Ok(()),
                    Err(Failure::Status { status: 400, .. }) => Ok(()),
                    Err(other) => Err(other),
                }
            })
            .await
    }

    async fn poll(&self, model: &str, job: &str) -> Result<JobState, CallError> {
        let url = self.url(&format!("{}/requests/{job}/status", app(model)));
        self.policy
            .call(|| async {
                let status =
                    json_answer(self.authorized(self.http.get(&url)), Repeat::Safe).await?;
                match status["status"].as_str() {
                    Some("IN_QUEUE" | "IN_PROGRESS") => Ok(JobState::Waiting),
                    Some("COMPLETED") => match status["error"].as_str() {
                        Some(error) => Ok(JobState::Failed(error.chars().take(300).collect())),
                        None => self.result(model, job).await,
                    },
                    other => Err(Failure::Garbled(format!(
                        "a queued request with status {other:?}"
                    ))),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_polled_under_the_models_app() {
        assert_eq!(app("fal-ai/flux/schnell"), "fal-ai/flux");
        assert_eq!(app("fal-ai/flux-pro/v1.1-ultra"), "fal-ai/flux-pro");
        assert_eq!(app("fal-ai/fast-sdxl"), "fal-ai/fast-sdxl");
    }
}
