//! What the fake providers of the tests answer with: Replicate's prediction objects, and
//! real pictures and clips for their outputs.

use serde_json::{Value, json};
use std::path::Path;

/// A prediction of `model` in Replicate's shape, served from `base`.
pub fn prediction(base: &str, id: &str, model: &str, status: &str, output: Value) -> Value {
    json!({
        "id": id,
        "model": model,
        "version": "hidden",
        "input": {},
        "logs": "",
        "output": output,
        "data_removed": false,
        "error": null,
        "status": status,
        "created_at": "2026-12-02T07:40:00.000Z",
        "urls": {
            "cancel": format!("{base}/v1/predictions/{id}/cancel"),
            "get": format!("{base}/v1/predictions/{id}"),
            "web": format!("https://replicate.com/p/{id}"),
        },
        "metrics": if status == "succeeded" { json!({ "predict_time": 0.62, "total_time": 1.4 }) } else { json!({}) },
    })
}

/// A still of `width` x `height` whose blue is 120 everywhere, as a PNG.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    let pixels: Vec<u8> = (0..width * height)
        .flat_map(|i| [(i % 251) as u8, (i / width % 241) as u8, 120])
        .collect();
    writer.write_image_data(&pixels).unwrap();
    drop(writer);
    bytes
}

/// An H.264 MP4 of FFmpeg's lavfi `source` (`testsrc=s=1280x720:r=24`, …) lasting
/// `seconds`, its index at the end as FFmpeg writes it (cut short, it cannot be opened).
pub fn mp4(dir: &Path, source: &str, seconds: u32) -> Vec<u8> {
    let path = dir.join(format!("clip-{}.mp4", uuid::Uuid::new_v4().simple()));
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("{source}:d={seconds}"))
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}
