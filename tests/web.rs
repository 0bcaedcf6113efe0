//! The web UI end to end in a real browser: `tests/web/e2e.mjs` drives Debian's Chromium
//! through playwright-core against the real `montage serve` (scripts/test installs both).

mod common;

use common::picture;
use std::path::Path;
use std::process::Command;

#[test]
fn a_person_makes_a_video_in_the_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = root.join("tests/web");
    assert!(
        suite.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need playwright-core and Chromium: scripts/test installs them \
         (npm ci --prefix tests/web; apt-get install chromium)"
    );
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    let data = dir.path().join("server");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(fixtures.join("night.png"), picture([8, 8, 10])).unwrap();
    std::fs::write(fixtures.join("notes.txt"), "shopping: milk, eggs\n").unwrap();
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();

    let status = Command::new("node")
        .arg(suite.join("e2e.mjs"))
        .env("MONTAGE_BIN", env!("CARGO_BIN_EXE_montage"))
        .env("MONTAGE_E2E_DIR", &data)
        .env("MONTAGE_FIXTURES", &fixtures)
        .env("MONTAGE_SCREENSHOTS", &screenshots)
        .status()
        .expect("node runs");
    assert!(status.success(), "the browser test failed: {status}");
    for shot in ["making.png", "feedback.png", "result.png", "phone.png"] {
        assert!(screenshots.join(shot).is_file(), "{shot} was taken");
    }
}
