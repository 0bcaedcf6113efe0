//! ElevenLabs speech: `POST /v1/text-to-speech/{voice}/with-timestamps` with the key in
//! `xi-api-key`, asked for 16-bit PCM at 24 kHz (every plan has it), which comes back base64
//! in JSON beside each character's times and is kept as WAV. ElevenLabs answers an exhausted
//! quota with a 401 like a bad key; its body tells them apart.

use super::jobs::{Repeat, transport, unrepeated_failure, words_of};
use super::openai::client;
use super::policy::{Caller, Failure, Policy, PolicyConfig, explain};
use crate::error::ModelError;
use crate::traits::SpeechModel;
use crate::types::{ModelId, Speech, SpeechRequest, SpokenWord};
use async_trait::async_trait;
use serde_json::{Value, json};

/// The sample rate asked for.
const SAMPLE_RATE: u32 = 24_000;

/// How to reach ElevenLabs.
#[derive(Clone)]
pub struct ElevenLabsConfig {
    /// The API's base (`https://api.elevenlabs.io`).
    pub base_url: String,
    /// The environment variable holding the key.
    pub key_variable: String,
    /// The key, when the variable is set.
    pub key: Option<String>,
    /// The model (`eleven_multilingual_v2`, …).
    pub model: String,
    /// The voice's id, when a request names none.
    pub voice: String,
    /// US dollars per million characters spoken, for the ledger and estimates.
    pub per_million_characters: f64,
    /// Limits, timeouts, retries and breaker.
    pub policy: PolicyConfig,
}

impl std::fmt::Debug for ElevenLabsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevenLabsConfig")
            .field("base_url", &self.base_url)
            .field("key_variable", &self.key_variable)
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("model", &self.model)
            .field("voice", &self.voice)
            .finish()
    }
}

/// An ElevenLabs voice.
pub struct ElevenLabsSpeech {
    config: ElevenLabsConfig,
    http: reqwest::Client,
    policy: Policy,
}

impl ElevenLabsSpeech {
    /// The voice `config` names. Fails without a key.
    pub fn connect(config: ElevenLabsConfig) -> Result<ElevenLabsSpeech, ModelError> {
        if config.key.is_none() {
            return Err(ModelError::Rejected(format!(
                "elevenlabs needs a key, and {} is not set",
                config.key_variable
            )));
        }
        Ok(ElevenLabsSpeech {
            http: client(&config.policy)?,
            policy: Policy::new(config.policy.clone()),
            config,
        })
    }

    fn explain(&self, error: super::policy::CallError) -> ModelError {
        explain(
            &Caller {
                provider: "elevenlabs",
                key_variable: &self.config.key_variable,
                base_url: &self.config.base_url,
                model: &self.config.model,
                timeout: self.config.policy.timeout,
            },
            error,
        )
    }
}

/// A failure in ElevenLabs' words: an exhausted quota is a want of payment, not a bad key.
fn failure(status: u16, body: &str, retry_after: Option<std::time::Duration>) -> Failure {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let status = match value["detail"]["status"].as_str() {
        Some("quota_exceeded") => 402,
        _ => status,
    };
    Failure::Status {
        status,
        message: words_of(body),
        retry_after,
    }
}

/// 16-bit little-endian mono PCM as a WAV file, and its length in seconds.
fn wav_of_pcm(pcm: &[u8]) -> Result<(Vec<u8>, f64), String> {
    if pcm.len() < 2 {
        return Err("it is silent".into());
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = std::io::Cursor::new(Vec::with_capacity(pcm.len() + 44));
    let mut writer = hound::WavWriter::new(&mut wav, spec).map_err(|e| e.to_string())?;
    for sample in pcm.chunks_exact(2) {
        writer
            .write_sample(i16::from_le_bytes([sample[0], sample[1]]))
            .map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    let seconds = (pcm.len() / 2) as f64 / f64::from(SAMPLE_RATE);
    Ok((wav.into_inner(), seconds))
}

#[async_trait]
impl SpeechModel for ElevenLabsSpeech {
    fn id(&self) -> ModelId {
        ModelId::new("elevenlabs", &self.config.model)
    }

    fn price(&self, text: &str) -> f64 {
        text.chars().count() as f64 * self.config.per_million_characters / 1e6
    }

    async fn speak(&self, request: SpeechRequest) -> Result<Speech, ModelError> {
        if request.text.trim().is_empty() {
            return Err(ModelError::InvalidRequest("there is nothing to say".into()));
        }
        let voice = match request.voice.trim() {
            "" => self.config.voice.clone(),
            chosen => chosen.to_owned(),
        };
        if !voice.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ModelError::InvalidRequest(format!(
                "{voice:?} is not an ElevenLabs voice id"
            )));
        }
        let url = format!(
            "{}/v1/text-to-speech/{voice}/with-timestamps?output_format=pcm_{SAMPLE_RATE}",
            self.config.base_url.trim_end_matches('/')
        );
        let body = json!({
            "text": request.text,
            "model_id": self.config.model,
            "voice_settings": { "speed": request.rate.clamp(0.7, 1.2) },
        });
        let key = self.config.key.clone().unwrap_or_default();
        let answer: Value = self
            .policy
            .call_unrepeated(|| async {
                let response = self
                    .http
                    .post(&url)
                    .header("xi-api-key", &key)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| transport(e, Repeat::Never))?;
                let status = response.status();
                let after = super::policy::retry_after(response.headers());
                let text = response
                    .text()
                    .await
                    .map_err(|e| transport(e, Repeat::Never))?;
                if !status.is_success() {
                    return Err(failure(status.as_u16(), &text, after));
                }
                serde_json::from_str(&text).map_err(|e| Failure::Garbled(e.to_string()))
            })
            .await
            .map_err(|error| unrepeated_failure(error, |e| self.explain(e)))?;
        let unusable = |why: String| {
            ModelError::InvalidOutput(format!("{} spoke no usable audio: {why}", self.id()))
        };
        let encoded = answer["audio_base64"]
            .as_str()
            .ok_or_else(|| unusable("there is no audio in the answer".into()))?;
        let pcm = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| unusable(format!("it is not base64 ({e})")))?
        };
        let (wav, seconds) = wav_of_pcm(&pcm).map_err(unusable)?;
        // The character times say how long the words take: audio far shorter than they
        // say is cut off.
        let spoken_for = answer["alignment"]["character_end_times_seconds"]
            .as_array()
            .and_then(|ends| ends.last())
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        if seconds + 0.25 < spoken_for {
            return Err(unusable(format!(
                "{seconds:.2} s of audio for words that take {spoken_for:.2} s"
            )));
        }
        Ok(Speech {
            model: self.id(),
            wav,
            seconds,
            cost_usd: self.price(&request.text),
            words: spoken_words(&answer["alignment"]),
        })
    }
}

/// The words of ElevenLabs' character alignment, each from its first character's start to
/// its last one's end; none when the alignment is missing or its lists disagree in length.
fn spoken_words(alignment: &Value) -> Vec<SpokenWord> {
    let list = |key: &str| alignment[key].as_array().cloned().unwrap_or_default();
    let (characters, starts, ends) = (
        list("characters"),
        list("character_start_times_seconds"),
        list("character_end_times_seconds"),
    );
    if characters.len() != starts.len() || characters.len() != ends.len() {
        return Vec::new();
    }
    let mut words: Vec<SpokenWord> = Vec::new();
    let mut current: Option<SpokenWord> = None;
    for ((character, start), end) in characters.iter().zip(&starts).zip(&ends) {
        let (Some(character), Some(start), Some(end)) =
            (character.as_str(), start.as_f64(), end.as_f64())
        else {
            return Vec::new();
        };
        if character.trim().is_empty() {
            words.extend(current.take());
            continue;
        }
        match &mut current {
            Some(word) => {
                word.text.push_str(character);
                word.end = end;
            }
            None => {
                current = Some(SpokenWord {
                    text: character.to_owned(),
                    start,
                    end,
                })
            }
        }
    }
    words.extend(current);
    words
}
