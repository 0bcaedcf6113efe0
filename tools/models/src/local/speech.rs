//! The local speech model: espeak-ng, when it is installed.

use crate::error::ModelError;
use crate::traits::SpeechModel;
use crate::types::{ModelId, Speech, SpeechRequest};
use async_trait::async_trait;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The longest text spoken in one call.
const MAX_CHARS: usize = 4_000;
/// espeak-ng's normal rate, words per minute.
const NORMAL_WPM: f64 = 165.0;

/// Speech through the `espeak-ng` program. Deterministic for a text, voice and rate.
#[derive(Debug, Clone)]
pub struct LocalSpeech {
    program: String,
    timeout: Duration,
}

impl LocalSpeech {
    /// espeak-ng if it runs on this machine, else `None`.
    pub async fn detect() -> Option<LocalSpeech> {
        let status = tokio::process::Command::new("espeak-ng")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .ok()?;
        status.success().then(|| LocalSpeech {
            program: "espeak-ng".into(),
            timeout: Duration::from_secs(30),
        })
    }
}

#[async_trait]
impl SpeechModel for LocalSpeech {
    fn id(&self) -> ModelId {
        ModelId::new("local", "espeak-ng")
    }

    async fn speak(&self, request: SpeechRequest) -> Result<Speech, ModelError> {
        let text = request.text.trim();
        if text.is_empty() || text.len() > MAX_CHARS {
            return Err(ModelError::InvalidRequest(format!(
                "speech needs 1 to {MAX_CHARS} characters, got {}",
                text.len()
            )));
        }
        let voice = if request.voice.is_empty() {
            "en-us"
        } else {
            request.voice.as_str()
        };
        if !voice.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !voice
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '+')
        {
            return Err(ModelError::InvalidRequest(format!(
                "{voice:?} is not a voice name"
            )));
        }
        let wpm = (NORMAL_WPM * request.rate.clamp(0.5, 2.0)).round();
        let out = tempfile::Builder::new().suffix(".wav").tempfile()?;
        // The text goes in on stdin, never as an argument: it is the person's words, not options.
        let mut child = tokio::process::Command::new(&self.program)
            .args(["-v", voice, "-s", &wpm.to_string(), "-w"])
            .arg(out.path())
            .arg("--stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ModelError::Unavailable(format!("espeak-ng: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes()).await?;
        }
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| ModelError::Timeout {
                seconds: self.timeout.as_secs_f64(),
            })??;
        if !output.status.success() {
            return Err(ModelError::Unavailable(format!(
                "espeak-ng failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let wav = std::fs::read(out.path())?;
        let reader = hound::WavReader::new(std::io::Cursor::new(&wav))
            .map_err(|e| ModelError::InvalidOutput(format!("espeak-ng wrote no WAV: {e}")))?;
        let spec = reader.spec();
        let seconds = f64::from(reader.duration()) / f64::from(spec.sample_rate.max(1));
        Ok(Speech {
            model: self.id(),
            wav,
            seconds,
            cost_usd: 0.0,
            words: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn speaks_when_espeak_is_installed() {
        let Some(speech) = LocalSpeech::detect().await else {
            // The test script installs espeak-ng; this branch is for machines without it.
            return;
        };
        let say = |text: &str, rate: f64| {
            speech.speak(SpeechRequest {
                text: text.into(),
                voice: String::new(),
                rate,
            })
        };
        let said = say("The city wakes up.", 1.0).await.unwrap();
        assert!(said.seconds > 0.5 && said.seconds < 5.0, "{}", said.seconds);
        let faster = say("The city wakes up.", 1.6).await.unwrap();
        assert!(faster.seconds < said.seconds);
        let again = say("The city wakes up.", 1.0).await.unwrap();
        assert_eq!(again.wav, said.wav);
        let empty = say("  ", 1.0).await;
        assert!(matches!(empty, Err(ModelError::InvalidRequest(_))));
        let bad = speech
            .speak(SpeechRequest {
                text: "x".into(),
                voice: "--help".into(),
                rate: 1.0,
            })
            .await;
        assert!(matches!(bad, Err(ModelError::InvalidRequest(_))));
    }
}
