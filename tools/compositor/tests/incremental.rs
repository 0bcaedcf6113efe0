//! Segment caching, progress and cancellation.

mod common;

use std::sync::Mutex;

use common::*;
use montage_compositor::{CancelToken, Compositor, CompositorError, RenderTarget, Timeline};
use serde_json::json;

/// 16 stills with Ken Burns motion and crossfades at irregular (beat-like) times.
fn sixteen_scenes(dir: &std::path::Path, edited: Option<usize>) -> Timeline {
    let hues = [
        "red", "green", "blue", "yellow", "cyan", "magenta", "orange", "purple",
    ];
    let mut cut = 0.0;
    let mut scenes = Vec::new();
    for index in 0..16 {
        let colour = if Some(index) == edited {
            "white"
        } else {
            hues[index % hues.len()]
        };
        let name = format!("scene{index}-{colour}.png");
        let path = dir.join(&name);
        if !path.exists() {
            still(
                dir,
                &name,
                &format!("color=c={colour}:s=480x270,drawgrid=w=40:h=40:t=2:c=black"),
            );
        }
        let length = [0.42, 0.55, 0.48, 0.61][index % 4];
        let end: f64 = cut + length;
        scenes.push(json!({
            "id": format!("s{index}"),
            "start": cut, "end": end,
            "source": {"type": "image", "path": path},
            "motion": {"from": {"x": 0, "y": 0, "w": 1, "h": 1}, "to": {"x": 0.1, "y": 0.05, "w": 0.8, "h": 0.8}},
            "transition": if index < 15 { json!({"kind": "crossfade", "duration": 0.2}) } else { json!({"kind": "cut"}) }
        }));
        cut = end;
    }
    timeline(json!({
        "outputs": [{"size": {"width": 320, "height": 180}, "quality": {"preset": "ultrafast"}}],
        "scenes": scenes,
    }))
}

#[test]
fn editing_one_scene_re_encodes_only_its_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let compositor = Compositor::new().with_cache_dir(&cache);
    let original = sixteen_scenes(dir.path(), None);
    let first = compositor
        .render(
            &original,
            &RenderTarget::new(dir.path().join("v1"), "video"),
            &|_| {},
            &CancelToken::new(),
        )
        .unwrap();
    let first = &first.outputs[0];
    assert_eq!(
        first.encoded(),
        first.segments.len(),
        "a cold cache encodes everything"
    );
    assert_eq!(
        first
            .segments
            .iter()
            .filter(|s| s.scenes.len() == 2)
            .count(),
        15,
        "15 transition regions"
    );

    let edited_scene = 7;
    let edited = sixteen_scenes(dir.path(), Some(edited_scene));
    let second = compositor
        .render(
            &edited,
            &RenderTarget::new(dir.path().join("v2"), "video"),
            &|_| {},
            &CancelToken::new(),
        )
        .unwrap();
    let second = &second.outputs[0];
    for segment in &second.segments {
        let touches = segment.scenes.contains(&edited_scene);
        assert_eq!(
            segment.encoded, touches,
            "segment {segment:?}: encoded only if it shows the edited scene"
        );
    }
    assert_eq!(
        second.encoded(),
        3,
        "the scene's body and the two transitions touching it"
    );

    let (before, after) = (frame_hashes(&first.path), frame_hashes(&second.path));
    assert_eq!(before.len(), after.len());
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    let touched = second
        .segments
        .iter()
        .filter(|s| s.encoded)
        .fold((u64::MAX, 0), |(lo, hi), s| {
            (lo.min(s.start), hi.max(s.end))
        });
    assert!(!changed.is_empty(), "the edit shows");
    assert!(
        changed
            .iter()
            .all(|&i| (touched.0..touched.1).contains(&(i as u64))),
        "frames outside the edited segments {touched:?} decode identically; changed: {changed:?}"
    );

    let third = compositor
        .render(
            &edited,
            &RenderTarget::new(dir.path().join("v3"), "video"),
            &|_| {},
            &CancelToken::new(),
        )
        .unwrap();
    assert_eq!(
        third.outputs[0].encoded(),
        0,
        "an unchanged timeline re-encodes nothing"
    );
    assert_eq!(frame_hashes(&third.outputs[0].path), after);
}

#[test]
fn progress_climbs_to_one_hundred() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = sixteen_scenes(dir.path(), None);
    let seen = Mutex::new(Vec::new());
    Compositor::new()
        .render(
            &timeline,
            &RenderTarget::new(dir.path().join("out"), "video"),
            &|p| seen.lock().unwrap().push(p.percent),
            &CancelToken::new(),
        )
        .unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first(), Some(&0.0));
    assert_eq!(seen.last(), Some(&100.0));
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "never goes back: {seen:?}"
    );
    assert!(seen.len() > 20, "reports along the way: {seen:?}");
}

#[test]
fn cancelling_mid_render_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = sixteen_scenes(dir.path(), None);
    let out = dir.path().join("out");
    let cancel = CancelToken::new();
    let reached = Mutex::new(0.0);
    let result = Compositor::new().render(
        &timeline,
        &RenderTarget::new(&out, "video"),
        &|p| {
            *reached.lock().unwrap() = p.percent;
            if p.percent >= 30.0 {
                cancel.cancel();
            }
        },
        &cancel,
    );
    assert!(
        matches!(result, Err(CompositorError::Cancelled)),
        "{result:?}"
    );
    let reached = *reached.lock().unwrap();
    assert!(
        (30.0..90.0).contains(&reached),
        "stopped soon after the request, at {reached}%"
    );
    assert_eq!(
        files_in(&out),
        Vec::<String>::new(),
        "no output, partial file or scratch folder"
    );
}
