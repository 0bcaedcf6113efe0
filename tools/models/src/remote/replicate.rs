//! Replicate's predictions API: official models (`owner/name`, `POST /models/{owner}/{name}/
//! predictions`) and versions (`owner/name:version`, `POST /predictions`), polled at
//! `GET /predictions/{id}`, with `Prefer: wait` so short jobs answer in one request.

use super::jobs::{JobApi, JobState, Repeat, json_answer};
use super::policy::{CallError, Failure, Policy};
use async_trait::async_trait;
use serde_json::{Value, json};

/// Replicate, as one account reaches it.
pub(crate) struct Replicate {
    pub base_url: String,
    pub key: Option<String>,
    pub http: reqwest::Client,
    pub policy: Policy,
    /// Seconds a submission may wait for its prediction to finish (`Prefer: wait`; 0: not).
    pub wait_seconds: u32,
    /// Where Replicate is asked to say a prediction finished.
    pub webhook: Option<String>,
}

impl Replicate {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.trim_end_matches('/'))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }
}

/// Where a prediction stands, from its status.
fn state(prediction: &Value) -> Result<JobState, Failure> {
    Ok(match prediction["status"].as_str() {
        Some("starting" | "processing") => JobState::Waiting,
        Some("succeeded") => JobState::Succeeded {
            output: prediction["output"].clone(),
            billed_seconds: prediction["metrics"]["predict_time"].as_f64(),
        },
        Some("failed") => JobState::Failed(
            prediction["error"]
                .as_str()
                .unwrap_or("no reason given")
                .chars()
                .take(300)
                .collect(),
        ),
        Some("canceled" | "aborted") => JobState::Canceled,
        other => {
            return Err(Failure::Garbled(format!(
                "a prediction with status {other:?}"
            )));
        }
    })
}

#[async_trait]
impl JobApi for Replicate {
    async fn submit(&self, model: &str, input: &Value) -> Result<(String, JobState), CallError> {
        let (url, body) = match model.split_once(':') {
            Some((_, version)) => (
                self.url("/predictions"),
                json!({ "version": version, "input": input }),
            ),
            None => (
                self.url(&format!("/models/{model}/predictions")),
                json!({ "input": input }),
            ),
        };
        let mut body = body;
        if let Some(url) = &self.webhook {
            body["webhook"] = json!(url);
            body["webhook_events_filter"] = json!(["completed"]);
        }
        let prediction = self
            .policy
            .call_unrepeated(|| {
                let mut request = self.authorized(self.http.post(&url)).json(&body);
                if self.wait_seconds > 0 {
                    request = request.header("Prefer", format!("wait={}", self.wait_seconds));
                }
                json_answer(request, Repeat::Never)
            })
            .await?;
        let id = prediction["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| CallError::Failed {
                failure: Failure::Garbled("a prediction without an id".into()),
                attempts: 1,
            })?
            .to_owned();
        let state = state(&prediction).map_err(|failure| CallError::Failed {
            failure,
            attempts: 1,
        })?;
        Ok((id, state))
    }

    async fn cancel(&self, _: &str, job: &str) -> Result<(), CallError> {
        let url = self.url(&format!("/predictions/{job}/cancel"));
        self.policy
            .call(|| async {
                json_answer(self.authorized(self.http.post(&url)), Repeat::Safe)
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// Uploaded to Replicate's file store (`POST /files`), whose URL predictions take: a
    /// picture is too large for the data URIs Replicate accepts.
    async fn file_input(&self, bytes: Vec<u8>, media_type: &str) -> Result<String, CallError> {
        let url = self.url("/files");
        let extension = media_type.rsplit('/').next().unwrap_or("bin");
        let uploaded = self
            .policy
            .call(|| async {
                let part = reqwest::multipart::Part::bytes(bytes.clone())
                    .file_name(format!("start-frame.{extension}"))
                    .mime_str(media_type)
                    .map_err(|e| Failure::Garbled(e.to_string()))?;
                let form = reqwest::multipart::Form::new().part("content", part);
                json_answer(
                    self.authorized(self.http.post(&url)).multipart(form),
                    Repeat::Safe,
                )
                .await
            })
            .await?;
        uploaded["urls"]["get"]
            .as_str()
            .filter(|url| url.starts_with("http"))
            .map(str::to_owned)
            .ok_or_else(|| CallError::Failed {
                failure: Failure::Garbled("an uploaded file without a URL".into()),
                attempts: 1,
            })
    }

    async fn poll(&self, _: &str, job: &str) -> Result<JobState, CallError> {
        let url = self.url(&format!("/predictions/{job}"));
        self.policy
            .call(|| async {
                let prediction =
                    json_answer(self.authorized(self.http.get(&url)), Repeat::Safe).await?;
                state(&prediction)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_reads_as_where_the_job_stands() {
        let done = json!({ "status": "succeeded", "output": ["https://replicate.delivery/x/out-0.png"], "metrics": { "predict_time": 0.61 } });
        assert_eq!(
            state(&done).unwrap(),
            JobState::Succeeded {
                output: json!(["https://replicate.delivery/x/out-0.png"]),
                billed_seconds: Some(0.61)
            }
        );
        assert_eq!(
            state(&json!({ "status": "processing" })).unwrap(),
            JobState::Waiting
        );
        assert_eq!(
            state(&json!({ "status": "failed", "error": "NSFW content detected" })).unwrap(),
            JobState::Failed("NSFW content detected".into())
        );
        assert_eq!(
            state(&json!({ "status": "canceled" })).unwrap(),
            JobState::Canceled
        );
        assert_eq!(
            state(&json!({ "status": "aborted" })).unwrap(),
            JobState::Canceled
        );
        assert!(state(&json!({ "status": "exploded" })).is_err());
    }
}
