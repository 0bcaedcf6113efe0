//! Renders a timeline file: `render <timeline.json> <out dir> [--cache <dir>] [--preview]`.
//! Prints the wall time and each output's segments; the bench script drives it.

use std::time::Instant;

use montage_compositor::{CancelToken, Compositor, RenderTarget, Timeline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [timeline_path, out_dir, ..] = args.as_slice() else {
        return Err(
            "usage: render <timeline.json> <out dir> [--cache <dir>] [--preview] [--workers N]"
                .into(),
        );
    };
    let option = |name: &str| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1))
    };
    let timeline: Timeline = serde_json::from_str(&std::fs::read_to_string(timeline_path)?)?;
    let mut compositor = Compositor::new();
    if let Some(cache) = option("--cache") {
        compositor = compositor.with_cache_dir(cache);
    }
    if let Some(workers) = option("--workers") {
        compositor = compositor.with_workers(workers.parse()?);
    }
    let target = RenderTarget::new(out_dir, "render");
    let started = Instant::now();
    let quiet = |_| {};
    let outputs = if args.iter().any(|arg| arg == "--preview") {
        vec![compositor.render_preview(&timeline, &target, &quiet, &CancelToken::new())?]
    } else {
        compositor
            .render(&timeline, &target, &quiet, &CancelToken::new())?
            .outputs
    };
    let seconds = started.elapsed().as_secs_f64();
    for output in &outputs {
        eprintln!(
            "{}: {} frames, {} of {} segments encoded",
            output.path.display(),
            output.frames,
            output.encoded(),
            output.segments.len()
        );
    }
    eprintln!("wall {seconds:.2} s");
    Ok(())
}
