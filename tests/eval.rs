//! `montage eval` as a prompt engineer uses it: a template made worse fails the gate against
//! the shipped baseline and names what regressed; the same template unchanged passes.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn montage() -> Command {
    let mut command = Command::cargo_bin("montage").unwrap();
    command.current_dir(root()).env("RUST_LOG", "warn");
    for (key, _) in std::env::vars() {
        if key.starts_with("MONTAGE_") {
            command.env_remove(key);
        }
    }
    command
}

/// A template folder holding the scene template, changed by `edit`.
fn templates(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(root().join("prompts/scene/image.j2")).unwrap();
    std::fs::create_dir_all(dir.path().join("scene")).unwrap();
    std::fs::write(dir.path().join("scene/image.j2"), edit(&original)).unwrap();
    dir
}

/// `montage eval` of the prompts suite on `prompts`, against the shipped baseline.
fn gate(prompts: &Path, results: &Path) -> (bool, String, String) {
    let output = montage()
        .args([
            "eval",
            "evals/prompts.toml",
            "--compare",
            "evals/baseline.json",
        ])
        .arg("--prompts")
        .arg(prompts)
        .arg("--out")
        .arg(results)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_worse_scene_template_fails_the_gate_naming_cases_and_assertions_and_a_revert_passes() {
    let scratch = tempfile::tempdir().unwrap();
    let results = scratch.path().join("results.json");

    let without_subject = templates(|t| t.replace("{{ subject }}", "a scene"));
    let (passed, stdout, stderr) = gate(without_subject.path(), &results);
    assert!(!passed, "{stdout}");
    assert!(
        stdout.contains("REGRESSED [local + ")
            && stdout
                .contains("prompts/a lighthouse in every scene: icontains scenes.*.prompt.prompt"),
        "{stdout}"
    );
    assert!(stderr.contains("held in the baseline fail now"), "{stderr}");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let lighthouse = written["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case"] == "a lighthouse in every scene")
        .unwrap();
    assert_eq!(lighthouse["pass"], false);
    assert!(
        lighthouse["verdicts"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("does not contain \"lighthouse\""),
        "{lighthouse}"
    );

    let with_tempo = templates(|t| format!("{}\n, 128 BPM", t.trim_end()));
    let (passed, stdout, _) = gate(with_tempo.path(), &results);
    assert!(!passed, "{stdout}");
    assert!(
        stdout.contains("hygiene scenes.*.prompt.prompt") && stdout.contains("names a tempo"),
        "{stdout}"
    );
    let regressions = stdout
        .lines()
        .filter(|l| l.starts_with("REGRESSED"))
        .count();
    assert!(regressions >= 5, "every clean case regressed: {stdout}");

    let reverted = templates(str::to_owned);
    let (passed, stdout, stderr) = gate(reverted.path(), &results);
    assert!(passed, "{stdout}\n{stderr}");
    assert!(stdout.contains("0 regressed, 0 improved"), "{stdout}");
}

#[test]
fn a_broken_suite_or_template_is_refused_with_its_file_and_reason() {
    let scratch = tempfile::tempdir().unwrap();
    let suite = scratch.path().join("broken.toml");
    let refusal = |args: &[&str]| {
        let output = montage().args(args).output().unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    std::fs::write(
        &suite,
        "description = \"x\"\n[[tests]]\ndescription = \"a\"\nvars.prompt = \"a lake\"\nassert = [{ type = \"looks-nice\" }]\n",
    )
    .unwrap();
    let said = refusal(&["eval", suite.to_str().unwrap()]);
    assert!(
        said.contains("broken.toml") && said.contains("looks-nice"),
        "{said}"
    );

    std::fs::write(
        &suite,
        "description = \"x\"\n[[tests]]\ndescription = \"a\"\nvars.prompt = \"a lake\"\nvars.audio = \"gone.mp3\"\nassert = [{ type = \"cost\", max = 0 }]\n",
    )
    .unwrap();
    let said = refusal(&["eval", suite.to_str().unwrap()]);
    assert!(
        said.contains("gone.mp3") && said.contains("not there"),
        "{said}"
    );

    std::fs::write(
        &suite,
        "description = \"x\"\n[[tests]]\ndescription = \"a\"\nvars.prompt = \"a lake\"\nassert = []\n",
    )
    .unwrap();
    let said = refusal(&["eval", suite.to_str().unwrap()]);
    assert!(said.contains("asserts nothing"), "{said}");

    let said = refusal(&["eval", "evals/intent.toml", "--only", "no such case"]);
    assert!(said.contains("no case matches"), "{said}");

    let bad = templates(|_| "{% if %}".to_owned());
    let said = refusal(&[
        "eval",
        "evals/intent.toml",
        "--prompts",
        bad.path().to_str().unwrap(),
    ]);
    assert!(
        said.contains("scene/image.j2") && said.contains("does not parse"),
        "{said}"
    );
}

#[test]
fn two_template_sets_are_shown_side_by_side() {
    let tempo = templates(|t| format!("{}\n, 128 BPM", t.trim_end()));
    let report = tempo.path().join("report.html");
    let output = montage()
        .args([
            "eval",
            "evals/prompts.toml",
            "--only",
            "lighthouse",
            "--prompts",
            "prompts",
        ])
        .arg("--prompts")
        .arg(tempo.path())
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let header = stdout.lines().next().unwrap();
    assert!(
        header.contains("local + prompts") && header.contains(&tempo.path().display().to_string()),
        "{stdout}"
    );
    let row = stdout.lines().find(|l| l.starts_with("prompts")).unwrap();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert!(cells[1].starts_with("1/1 cases"), "{row}");
    assert!(cells[2].starts_with("0/1 cases"), "{row}");

    // The report: the case's two cells side by side, each with the prompts it wrote.
    let page = std::fs::read_to_string(&report).unwrap();
    let row = &page[page
        .find("<td>a lighthouse in every scene</td>")
        .expect(&page)..];
    let row = &row[..row.find("</tr>").unwrap()];
    let pass = row.find("class=\"pass\"").expect(row);
    let fail = row.find("class=\"fail\"").expect(row);
    assert!(pass < fail, "the shipped templates first: {row}");
    assert!(row[fail..].contains("names a tempo"), "{row}");
    let prompts = |cell: &str| cell.matches("<li>").count();
    assert!(prompts(&row[pass..fail]) >= 2 && prompts(&row[fail..]) == prompts(&row[pass..fail]));
    assert!(row[fail..].contains(", 128 BPM</li>") && !row[pass..fail].contains("BPM</li>"));
}

/// The same cases on the real model server `scripts/test` starts (llama.cpp's, serving
/// SmolLM2) and on the local models, in one table and one results file.
#[test]
fn a_suite_runs_on_a_real_model_server_beside_the_local_models() {
    let url = std::env::var("MONTAGE_TEST_LLAMA_URL").expect(
        "MONTAGE_TEST_LLAMA_URL is not set: run the tests with scripts/test, which starts llama.cpp's server",
    );
    let scratch = tempfile::tempdir().unwrap();
    let served = scratch.path().join("served.toml");
    std::fs::write(
        &served,
        format!(
            "[models]\ntext = \"openai\"\n\n[models.openai]\nbase_url = \"{url}\"\nstructured_output = \"json_object\"\n"
        ),
    )
    .unwrap();
    let local = scratch.path().join("local.toml");
    std::fs::write(&local, "[models]\ntext = \"local\"\n").unwrap();
    let results = scratch.path().join("results.json");
    let output = montage()
        .env_remove("OPENAI_API_KEY")
        .args([
            "eval",
            "evals/intent.toml",
            "--only",
            "seconds in digits",
            "--config",
        ])
        .arg(&served)
        .arg("--config")
        .arg(&local)
        .arg("--out")
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let header = stdout.lines().next().unwrap();
    assert!(
        header.contains("served.toml") && header.contains("local.toml"),
        "{stdout}"
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let models: Vec<(&str, &str)> = written["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["variant"].as_str().unwrap(),
                c["text_model"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(models.len(), 2, "{written}");
    assert!(
        models[0].0.ends_with("served.toml") && models[0].1 == "openai/smollm2",
        "{models:?}"
    );
    assert!(
        models[1].0.ends_with("local.toml") && models[1].1.starts_with("local/"),
        "{models:?}"
    );
    assert_eq!(written["variants"][0]["text_model"], "openai");
    assert!(written["cases"][0]["seconds"].as_f64().unwrap() > 0.0);
}

/// An agent case puts one message to the text model with the agent's own rules and tools:
/// the calls it makes are judged, and a call other than the one expected fails the case
/// with what was found.
#[test]
fn agent_cases_judge_the_tool_calls_a_message_gets() {
    let scratch = tempfile::tempdir().unwrap();
    let suite = scratch.path().join("chat.toml");
    std::fs::write(
        &suite,
        r#"description = "agent"
reach = "agent"

[[tests]]
description = "ordinals"
vars.prompt = "redo the second and fourth scenes, darker"
vars.run = { status = "completed", scenes = 5, question = false, formats = ["9:16"] }
assert = [
  { type = "equals", path = "calls.0.tool", value = "regenerate_scene" },
  { type = "equals", path = "calls.0.arguments.scenes", value = [1, 3] },
]

[[tests]]
description = "expects a deletion to start a video"
vars.prompt = "delete every video on the server"
vars.run = { status = "completed", scenes = 5, question = false }
assert = [{ type = "equals", path = "calls.0.tool", value = "create_video" }]
"#,
    )
    .unwrap();
    let results = scratch.path().join("results.json");
    let output = montage()
        .arg("eval")
        .arg(&suite)
        .arg("--out")
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1/2 cases"), "{stdout}");
    assert!(
        stdout.contains("expects a deletion to start a video")
            && stdout.contains("nothing at \"calls.0.tool\""),
        "{stdout}"
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let cases = written["cases"].as_array().unwrap();
    assert_eq!(cases[0]["reach"], "agent");
    assert_eq!(cases[0]["pass"], true, "{written}");
    assert_eq!(cases[1]["pass"], false, "{written}");
}
