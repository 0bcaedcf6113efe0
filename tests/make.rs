//! `montage make` as a user runs it, checked on the videos it writes: decoded with ffprobe
//! and ffmpeg, cuts found in the pictures and compared with the beats montage-audio hears.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn montage(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("montage").unwrap();
    command.current_dir(dir).env("RUST_LOG", "warn");
    for (key, _) in std::env::vars() {
        if key.starts_with("MONTAGE_") {
            command.env_remove(key);
        }
    }
    command
}

fn probe(video: &Path) -> Value {
    let output = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(video)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn number(value: &Value) -> f64 {
    value
        .as_str()
        .map_or_else(|| value.as_f64().unwrap(), |s| s.parse().unwrap())
}

/// What ffmpeg writes to stdout decoding `video` with `before` options ahead of the input
/// and `after` options behind it.
fn decode(video: &Path, before: &[&str], after: &[&str]) -> Vec<u8> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(before)
        .arg("-i")
        .arg(video)
        .args(after)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Times of the frames where the picture changes abruptly: the cuts.
fn cuts(video: &Path, fps: f64) -> Vec<f64> {
    const SIDE: usize = 48;
    let scale = format!("scale={SIDE}:{SIDE},format=gray");
    let pixels = decode(video, &[], &["-vf", &scale, "-f", "rawvideo"]);
    let frames: Vec<&[u8]> = pixels.chunks_exact(SIDE * SIDE).collect();
    let diffs: Vec<f64> = frames
        .windows(2)
        .map(|pair| {
            pair[0]
                .iter()
                .zip(pair[1])
                .map(|(a, b)| f64::from(a.abs_diff(*b)))
                .sum::<f64>()
                / (SIDE * SIDE) as f64
        })
        .collect();
    let mut sorted = diffs.clone();
    sorted.sort_by(f64::total_cmp);
    let typical = sorted[sorted.len() / 2];
    diffs
        .iter()
        .enumerate()
        .filter(|(_, d)| **d > (6.0 * typical).max(6.0))
        .map(|(i, _)| (i + 1) as f64 / fps)
        .collect()
}

/// Runs `montage make` with `args` in `dir`, insists it succeeds, and returns its run.json
/// (written to `dir/out`).
fn make_ok(dir: &Path, args: &[&str]) -> Value {
    make_with(montage(dir), dir, args)
}

/// [`make_ok`] with a prepared command (extra environment).
fn make_with(mut command: Command, dir: &Path, args: &[&str]) -> Value {
    let out = command
        .arg("make")
        .args(args)
        .args(["--out", "out"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_json(&dir.join("out"))
}

fn run_json(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

fn assert_cuts_on_beats(video: &Path, beats: &[f64], fps: f64) -> usize {
    let found = cuts(video, fps);
    for cut in &found {
        let nearest = beats
            .iter()
            .map(|b| (b - cut).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest <= 1.0 / fps + 1e-3,
            "a cut at {cut:.3} s is {nearest:.3} s from the nearest beat"
        );
    }
    found.len()
}

#[test]
fn the_readme_command_makes_a_vertical_twenty_second_video_cut_on_its_beats() {
    let dir = tempfile::tempdir().unwrap();
    let record = make_ok(
        dir.path(),
        &["a 20 second upbeat neon city music video, vertical"],
    );
    let folder = dir.path().join("out");
    let video = folder.join("video-9x16.mp4");
    let info = probe(&video);
    let streams = info["streams"].as_array().unwrap();
    let picture = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let sound = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(picture["codec_name"], "h264");
    assert_eq!(
        (picture["width"].as_u64(), picture["height"].as_u64()),
        (Some(1080), Some(1920))
    );
    assert_eq!(sound["codec_name"], "aac");
    let beat = 60.0 / record["plan"]["bpm"].as_f64().unwrap();
    let duration = number(&info["format"]["duration"]);
    assert!((duration - 20.0).abs() <= beat, "{duration} s");

    // The cuts land on the beats montage-audio finds in the music the run made.
    let music = dir
        .path()
        .join("montage-data/objects")
        .join(record["music"]["object"]["key"].as_str().unwrap());
    let grid = montage_audio::analyze_file(&music).unwrap();
    let scenes = record["plan"]["scenes"].as_array().unwrap().len();
    let found = assert_cuts_on_beats(&video, &grid.beats, 30.0);
    assert_eq!(found, scenes - 1, "every cut is seen in the picture");

    for file in ["captions.srt", "captions.vtt", "contact-sheet.png"] {
        assert!(
            std::fs::metadata(folder.join(file)).unwrap().len() > 0,
            "{file}"
        );
    }
    let sheet = image::open(folder.join("contact-sheet.png")).unwrap();
    assert!(sheet.width() > 320 && sheet.height() > 320);
    assert!(
        std::fs::read_to_string(folder.join("captions.vtt"))
            .unwrap()
            .starts_with("WEBVTT")
    );
    for key in [
        "intent",
        "beat_grid",
        "plan",
        "scenes",
        "reviews",
        "answers",
        "cost",
        "timings",
        "config",
        "models",
    ] {
        assert!(!record[key].is_null(), "run.json has {key}");
    }
    let templates: Vec<&str> = record["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    for id in [
        "intent.system",
        "scene.image",
        "scene.negative",
        "scene.clip",
        "critic.instruction",
    ] {
        assert!(templates.contains(&id), "{templates:?}");
    }
    assert!(
        record["templates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["version"].as_u64() >= Some(1))
    );
    for scene in record["scenes"].as_array().unwrap() {
        if let Some(prompt) = scene["prompt"]["prompt"].as_str() {
            montage::pipeline::hygiene(prompt).unwrap_or_else(|why| panic!("{prompt}: {why}"));
        }
    }
    let prompt = record["scenes"][1]["prompt"]["prompt"].as_str().unwrap();
    assert!(prompt.contains("colours magenta"), "{prompt}");
    let story = &record["story"];
    assert_eq!(story["model"]["model"], "templates");
    assert_eq!(
        story["scenes"].as_array().unwrap().len(),
        record["plan"]["scenes"].as_array().unwrap().len()
    );
    assert!(
        story["hashtags"][0].as_str().unwrap().starts_with('#'),
        "{story}"
    );
    assert_eq!(record["cost"]["total_usd"].as_f64(), Some(0.0));
    assert!(
        record["cost"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["capability"] == "image")
    );
    let timed: Vec<&str> = record["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["node"].as_str().unwrap())
        .collect();
    for node in [
        "intent", "analyze", "plan", "story", "prompts", "assets", "critic", "compose",
    ] {
        assert!(timed.contains(&node), "{timed:?}");
    }
    // Every step was checkpointed in the embedded database, ending completed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (statuses, run_status, events): (Vec<String>, String, i64) = runtime.block_on(async {
        let database = dir.path().join("montage-data/montage.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display()))
            .await
            .unwrap();
        let statuses = sqlx::query_as::<_, (String,)>(
            "SELECT json_extract(meta, '$.status') FROM checkpoints ORDER BY step",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(status,)| status)
        .collect();
        let one = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_as::<_, (String,)>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .0
            }
        };
        let run_status = one("SELECT status FROM runs").await;
        let count = |sql| async move { one(sql).await.parse::<i64>().unwrap() };
        let events = count("SELECT CAST(COUNT(*) AS TEXT) FROM events").await;
        let scenes = count("SELECT CAST(COUNT(*) AS TEXT) FROM assets WHERE kind = 'scene'").await;
        let videos = count("SELECT CAST(COUNT(*) AS TEXT) FROM assets WHERE kind = 'video'").await;
        let calls = count("SELECT CAST(COUNT(*) AS TEXT) FROM cost_ledger").await;
        assert_eq!(videos, 1);
        assert!(scenes >= 4, "{scenes} scene pictures kept");
        assert!(calls > scenes, "{calls} model calls in the ledger");
        (statuses, run_status, events)
    });
    assert!(statuses.len() >= 8, "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("completed"));
    assert_eq!(run_status, "completed");
    assert!(events > 20, "{events} events kept");
    let milestone = |name: &str| record["milestones"][name].as_f64().unwrap();
    assert!(milestone("preview") < milestone("final"));
    assert!(milestone("final") <= milestone("completed"));
}

#[test]
fn with_the_persons_music_every_cut_lies_within_a_frame_of_a_beat_heard_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = montage_audio::synth::TrackSpec::steady(104.0, 16.0);
    spec.sample_rate = 44_100;
    spec.syncopation = true;
    spec.seed = 4;
    let song = dir.path().join("song.wav");
    montage_audio::synth::render(&spec)
        .write_wav(&song)
        .unwrap();
    let record = make_ok(
        dir.path(),
        &[
            "fast cuts, energetic",
            "--audio",
            "song.wav",
            "--format",
            "1:1",
            "--duration",
            "12",
        ],
    );
    assert_eq!(record["music"]["source"]["source"], "uploaded");
    let grid = montage_audio::analyze_file(&song).unwrap();
    let found = assert_cuts_on_beats(&dir.path().join("out/video-1x1.mp4"), &grid.beats, 30.0);
    assert_eq!(
        found,
        record["plan"]["scenes"].as_array().unwrap().len() - 1
    );
    assert!(found >= 4, "fast cuts make many scenes, got {found}");
}

fn frame_hashes(video: &Path) -> String {
    String::from_utf8(decode(video, &[], &["-map", "0:v", "-f", "framemd5"])).unwrap()
}

/// Makes the narrated beach clip with `seed`. `perturb` fills glibc's fresh and freed memory
/// with that byte, so anything that reads memory it never wrote shows up as a difference.
fn make_in(dir: &Path, seed: &str, perturb: u8) -> (Value, PathBuf) {
    let mut command = montage(dir);
    command.env("MALLOC_PERTURB_", perturb.to_string());
    let mut record = make_with(
        command,
        dir,
        &[
            "a narrated 6 second calm beach clip, square",
            "--seed",
            seed,
        ],
    );
    let object = record.as_object_mut().unwrap();
    object.remove("timings");
    object.remove("node_totals");
    object.remove("milestones");
    (record, dir.join("out/video-1x1.mp4"))
}

#[test]
fn the_same_prompt_and_seed_give_the_same_record_and_frames() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (first, first_video) = make_in(a.path(), "7", 0x11);
    let (second, second_video) = make_in(b.path(), "7", 0xa5);
    assert_eq!(first, second);
    assert_eq!(frame_hashes(&first_video), frame_hashes(&second_video));
    let (other, other_video) = make_in(c.path(), "8", 0x11);
    assert_ne!(first["scenes"], other["scenes"]);
    assert_ne!(frame_hashes(&first_video), frame_hashes(&other_video));
    // The narration is spoken when espeak-ng is installed (the test script installs it).
    let spoken = first["cost"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["capability"] == "speech");
    let installed = std::process::Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_ok();
    assert_eq!(spoken, installed, "{:?}", first["notices"]);
}

#[test]
fn bad_input_is_refused_before_any_work_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("noise.mp3"),
        (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.png"), "not an image at all").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["make", "a clip", "--audio", "noise.mp3"], "noise.mp3"),
        (&["make", "a clip", "--audio", "missing.wav"], "missing.wav"),
        (
            &["make", "a clip", "--image", "notes.png"],
            "not a PNG or JPEG",
        ),
        (&["make", "a clip", "--duration", "0"], "outside"),
        (&["make", "a clip", "--duration", "7200"], "outside"),
        (&["make", "a clip", "--format", "4:5"], "unknown format"),
        (&["make", "   "], "prompt is empty"),
    ];
    for (args, expected) in cases {
        let out = montage(dir.path())
            .args(*args)
            .args(["--out", "out"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.path().join("out").exists(), "{args:?} wrote output");
        let stored = walk(&dir.path().join("montage-data"));
        assert!(stored.is_empty(), "{args:?} stored {stored:?}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}

/// Mean RGB of the frame at `seconds`.
fn colour_at(video: &Path, seconds: f64) -> [f64; 3] {
    let at = format!("{seconds:.3}");
    let pixels = decode(
        video,
        &["-ss", &at],
        &[
            "-frames:v",
            "1",
            "-vf",
            "scale=32:32",
            "-pix_fmt",
            "rgb24",
            "-f",
            "rawvideo",
        ],
    );
    let mut sum = [0.0; 3];
    for px in pixels.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += f64::from(px[c]);
        }
    }
    sum.map(|s| s / (pixels.len() / 3) as f64)
}

#[test]
fn uploaded_images_become_scenes_of_the_video() {
    let dir = tempfile::tempdir().unwrap();
    for (name, colour) in [("red.png", [220u8, 30, 30]), ("green.jpg", [30, 200, 60])] {
        image::RgbImage::from_fn(640, 360, |x, y| {
            image::Rgb(colour.map(|c| c.saturating_sub(((x + y) % 40) as u8)))
        })
        .save(dir.path().join(name))
        .unwrap();
    }
    let record = make_ok(
        dir.path(),
        &[
            "a calm 10 second slideshow",
            "--image",
            "red.png",
            "--image",
            "green.jpg",
            "--format",
            "16:9",
        ],
    );
    let scenes = record["plan"]["scenes"].as_array().unwrap();
    let video = dir.path().join("out/video-16x9.mp4");
    let mut seen = Vec::new();
    for scene in scenes {
        if scene["source"]["type"] == "upload" {
            let middle = (scene["start"].as_f64().unwrap() + scene["end"].as_f64().unwrap()) / 2.0;
            let [r, g, _] = colour_at(&video, middle);
            let index = scene["source"]["index"].as_u64().unwrap();
            seen.push(index);
            if index == 0 {
                assert!(r > g + 80.0, "the red image shows at {middle} s: {r} {g}");
            } else {
                assert!(g > r + 80.0, "the green image shows at {middle} s: {r} {g}");
            }
        }
    }
    assert_eq!(seen, [0, 1]);
    assert!(scenes.len() > 2, "generated scenes fill the rest");
}

/// `--text-model openai` pointed at a real OpenAI-compatible server (llama.cpp's, which
/// `scripts/test` starts) is all it takes: that model reads the words, writes the story and
/// the prompts, the run record names it and the chain it heads, and its calls are in the
/// ledger. A 135M model reads poorly; the options given on the command line hold whatever
/// it reads.
#[test]
fn a_real_model_server_reads_the_request() {
    let url = std::env::var("MONTAGE_TEST_LLAMA_URL").expect(
        "MONTAGE_TEST_LLAMA_URL is not set: run the tests with scripts/test, which starts llama.cpp's server",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut command = montage(dir.path());
    command
        .env("OPENAI_BASE_URL", &url)
        .env("MONTAGE_MODELS__OPENAI__STRUCTURED_OUTPUT", "json_object")
        // What is tested is that the server's answers are used: a loaded machine may make
        // a request slower than the default limit, and the run would stand in locally.
        .env("MONTAGE_MODELS__OPENAI__TIMEOUT_SECS", "600")
        .env("MONTAGE_MODELS__EMBEDDINGS", "openai")
        .env(
            "MONTAGE_MODELS__OPENAI__EMBEDDINGS_BASE_URL",
            std::env::var("MONTAGE_TEST_LLAMA_EMBEDDINGS_URL").expect(
                "MONTAGE_TEST_LLAMA_EMBEDDINGS_URL is not set: run the tests with scripts/test",
            ),
        )
        .env("MONTAGE_MODELS__OPENAI__TOKEN_VECTORS", "mean")
        .env_remove("OPENAI_API_KEY");
    let record = make_with(
        command,
        dir.path(),
        &[
            "a calm lake at dawn",
            "--format",
            "1:1",
            "--duration",
            "6",
            "--max-iterations",
            "0",
            "--text-model",
            "openai",
        ],
    );
    assert_eq!(
        record["models"]["text"],
        serde_json::json!({ "provider": "openai", "model": "smollm2" })
    );
    assert_eq!(
        record["models"]["text_chain"],
        serde_json::json!([
            { "provider": "openai", "model": "smollm2" },
            { "provider": "local", "model": "heuristic-1" },
        ])
    );
    let ledger = record["cost"]["entries"].as_array().expect("the ledger");
    let intent = ledger
        .iter()
        .find(|entry| entry["node"] == "intent")
        .expect("the intent call is in the ledger");
    assert_eq!(intent["model"]["provider"], "openai", "{intent}");
    assert!(
        intent["tokens"]["input_tokens"].as_u64() > Some(0),
        "{intent}"
    );
    assert_eq!(record["intent"]["formats"], serde_json::json!(["1:1"]));
    // The story and the prompts came from the model too: one call each, in the ledger with
    // the tokens they took; the story has a scene for each planned one, and no prompt carries
    // what an image model cannot use.
    for node in ["story", "prompts"] {
        let call = ledger
            .iter()
            .find(|entry| entry["node"] == node)
            .unwrap_or_else(|| {
                panic!(
                    "no {node} call in {ledger:?}; notices {}",
                    record["notices"]
                )
            });
        assert_eq!(call["model"]["provider"], "openai", "{call}");
        assert!(call["tokens"]["output_tokens"].as_u64() > Some(0), "{call}");
    }
    assert_eq!(record["story"]["model"]["provider"], "openai");
    assert_eq!(
        record["story"]["scenes"].as_array().unwrap().len(),
        record["plan"]["scenes"].as_array().unwrap().len()
    );
    for scene in record["scenes"].as_array().unwrap() {
        let prompt = scene["prompt"]["prompt"].as_str().unwrap();
        montage::pipeline::hygiene(prompt).unwrap_or_else(|why| panic!("{prompt}: {why}"));
    }
    assert!(record["cost"]["input_tokens"].as_u64() > Some(0));
    // What each picture and spoken line was made from was embedded by the model server,
    // for the cache.
    let count = |capabilities: &[&str]| {
        ledger
            .iter()
            .filter(|e| capabilities.contains(&e["capability"].as_str().unwrap_or("")))
            .filter(|e| e["cached"] == false)
            .count()
    };
    let made = count(&["image", "speech"]);
    assert!(made > 0 && count(&["embeddings"]) == made, "{ledger:?}");
    assert!(
        ledger
            .iter()
            .filter(|entry| entry["capability"] == "embeddings")
            .all(|entry| entry["model"]["provider"] == "openai")
    );
    let video = dir.path().join("out").join("video-1x1.mp4");
    let probed = probe(&video);
    assert_eq!(probed["streams"][0]["width"], 1080);
}

fn cassette(path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A model whose story comes back in prose and whose prompts carry a tempo and a colour
/// code: each is asked once more with what was wrong, then the templates write that part,
/// the run says so, and the video is still made (recorded OpenAI answers; the prompts'
/// answer has one prompt for each of the 6 scenes this request plans).
#[tokio::test(flavor = "multi_thread")]
async fn answers_a_node_cannot_use_are_asked_again_then_the_templates_stand_in() {
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let answer = |name: &str| ResponseTemplate::new(200).set_body_json(cassette(name));
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(r#""name":"intent""#))
        .respond_with(answer("tools/models/tests/cassettes/openai/intent.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(r#""name":"story""#))
        .respond_with(answer("tests/cassettes/openai/story_in_prose.json"))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(r#""name":"scene_prompts""#))
        .and(body_string_contains("That answer does not fit"))
        .respond_with(answer(
            "tests/cassettes/openai/scene_prompts_with_tempo.json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(r#""name":"scene_prompts""#))
        .respond_with(answer(
            "tests/cassettes/openai/scene_prompts_with_tempo.json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = montage(dir.path());
    command
        .env("MONTAGE_MODELS__TEXT", "openai:gpt-4.1-mini")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.uri()))
        .env("OPENAI_API_KEY", "sk-test-not-a-real-key");
    let folder = dir.path().to_owned();
    let record = tokio::task::spawn_blocking(move || {
        make_with(
            command,
            &folder,
            &["neon city", "--duration", "6", "--max-iterations", "0"],
        )
    })
    .await
    .unwrap();
    let notices: Vec<&str> = record["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let told = |part: &str, why: &str| {
        notices
            .iter()
            .any(|n| n.contains(part) && n.contains(why) && n.contains("the templates wrote"))
    };
    assert!(told("the story", "not JSON"), "{notices:?}");
    assert!(told("the scene prompts", "tempo"), "{notices:?}");
    assert_eq!(record["story"]["model"]["model"], "templates");
    assert_eq!(record["intent"]["subject"], "neon city at night");
    for scene in record["scenes"].as_array().unwrap() {
        let prompt = scene["prompt"]["prompt"].as_str().unwrap();
        montage::pipeline::hygiene(prompt).unwrap_or_else(|why| panic!("{prompt}: {why}"));
    }
    assert!(dir.path().join("out").join("video-9x16.mp4").exists());
}
