//! Narration from ElevenLabs (a fake speaking its with-timestamps API: PCM audio and the
//! time of every character) over the whole server: the captions of the finished video
//! follow the spoken words, a few at a time, as the voice says them.

use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[macro_use]
mod common;

use common::server::*;

const KEY: &str = "sk_voice-key-PLANTED0123456789abcdef";
/// How long the fake voice takes over each character.
const PER_CHARACTER: f64 = 0.05;

/// ElevenLabs' answer for `text`: a tone as 24 kHz PCM, each character `PER_CHARACTER` long.
fn spoken(text: &str) -> Value {
    use base64::Engine;
    let characters: Vec<String> = text.chars().map(String::from).collect();
    let starts: Vec<f64> = (0..characters.len())
        .map(|k| k as f64 * PER_CHARACTER)
        .collect();
    let ends: Vec<f64> = starts.iter().map(|s| s + PER_CHARACTER).collect();
    let seconds = characters.len() as f64 * PER_CHARACTER + 0.1;
    let pcm: Vec<u8> = (0..(seconds * 24_000.0) as u32)
        .flat_map(|n| (((n as f64 * 0.05).sin() * 4_000.0) as i16).to_le_bytes())
        .collect();
    json!({
        "audio_base64": base64::engine::general_purpose::STANDARD.encode(pcm),
        "alignment": {
            "characters": characters,
            "character_start_times_seconds": starts,
            "character_end_times_seconds": ends,
        },
        "normalized_alignment": null,
    })
}

/// The cues of an SRT file: (start, end, text).
fn cues(srt: &str) -> Vec<(f64, f64, String)> {
    let time = |t: &str| {
        let (clock, millis) = t.trim().split_once(',').unwrap();
        let parts: Vec<f64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2] + millis.parse::<f64>().unwrap() / 1000.0
    };
    srt.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| block.contains("-->"))
        .map(|block| {
            let mut lines = block.lines().skip(1);
            let (from, to) = lines.next().unwrap().split_once("-->").unwrap();
            (time(from), time(to), lines.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn captions_follow_the_words_as_the_voice_speaks_them() {
    let dir = tempfile::tempdir().unwrap();
    let voice = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/v1/text-to-speech/[A-Za-z0-9]+/with-timestamps$",
        ))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            ResponseTemplate::new(200).set_body_json(spoken(body["text"].as_str().unwrap()))
        })
        .mount(&voice)
        .await;
    let settings = [
        ("MONTAGE_MODELS__SPEECH", "elevenlabs".to_owned()),
        ("ELEVENLABS_BASE_URL", voice.uri()),
        ("ELEVENLABS_API_KEY", KEY.to_owned()),
        ("MONTAGE_PIPELINE__FEEDBACK", "accept".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(dir.path(), &Backend::Sqlite, &pairs).await;
    let run = server
        .create(json!({
            "prompt": "a narrated travel video about the old harbour of Lisbon at sunset",
            "formats": ["16:9"],
            "duration": 12,
            "max_iterations": 0,
        }))
        .await;
    let view = server.wait_status(&run, &["completed"]).await;
    let srt = String::from_utf8(
        server
            .download(view["outputs"]["srt"]["url"].as_str().unwrap())
            .await,
    )
    .unwrap();
    let cues = cues(&srt);
    assert!(cues.len() >= 3, "{srt}");
    for (start, end, text) in &cues {
        assert!(end > start, "{srt}");
        assert!(
            text.split_whitespace().count() <= 4,
            "a few words at a time: {text:?}"
        );
    }
    // The first caption starts as the voice does: just after the first line's scene starts,
    // and it lasts while its words are said.
    let (start, end, text) = &cues[0];
    let spoken_for = (text.chars().count() as f64) * PER_CHARACTER;
    assert!(*start < 1.0, "{srt}");
    assert!(
        (end - start - spoken_for).abs() < 0.15,
        "{text:?} {start} {end}"
    );
    let notices = view["notices"].to_string();
    assert!(!notices.contains("captions are timed by line"), "{notices}");
    assert!(!serde_json::to_string(&view).unwrap().contains(KEY));
}
