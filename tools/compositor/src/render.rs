//! The render itself: a timeline checked and loaded, cut into segments, encoded in parallel
//! (or taken from the segment cache), the soundtrack mixed, all joined into each output.

use crate::captions::{to_srt, to_vtt};
use crate::compose::{SegmentComposer, StillCache};
use crate::encode::{self, PlacedSegment, SegmentEncoder, VideoSettings};
use crate::error::{CompositorError, Context, Item};
use crate::media;
use crate::mix;
use crate::picture::{Frame, Yuv};
use crate::plan::{self, Plan, Segment};
use crate::prepare::{self, Assets};
use crate::timeline::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// A unit of parallel work: one output's soundtrack or one of its video segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Soundtrack { output: usize },
    Segment { output: usize, segment: usize },
}

/// Asks a running render to stop; clones share the request.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token nobody has cancelled yet.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Stops the render at its next frame; it returns [`CompositorError::Cancelled`].
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) has been called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How far a render has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 0 to 100, never decreasing during one render.
    pub percent: f64,
}

/// Where a render writes: `<directory>/<stem>-<output name>.mp4`, and `<stem>.srt` / `.vtt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderTarget {
    /// The folder the files go to; created when missing.
    pub directory: PathBuf,
    /// The files' common name.
    pub stem: String,
}

impl RenderTarget {
    /// Writes into `directory` with file names starting with `stem`.
    pub fn new(directory: impl Into<PathBuf>, stem: impl Into<String>) -> RenderTarget {
        RenderTarget {
            directory: directory.into(),
            stem: stem.into(),
        }
    }
}

/// What a render produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderReport {
    /// One entry per rendered format, in the timeline's order.
    pub outputs: Vec<RenderedOutput>,
    /// The SRT and WebVTT sidecars, when the timeline has captions.
    pub sidecars: Vec<PathBuf>,
}

/// One rendered MP4.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedOutput {
    /// The output's name.
    pub name: String,
    /// The MP4 file.
    pub path: PathBuf,
    /// Frame count.
    pub frames: u64,
    /// Every segment, in order.
    pub segments: Vec<SegmentReport>,
}

impl RenderedOutput {
    /// How many segments were encoded in this render rather than taken from the cache.
    pub fn encoded(&self) -> usize {
        self.segments
            .iter()
            .filter(|segment| segment.encoded)
            .count()
    }
}

/// One segment of a rendered output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// First frame.
    pub start: u64,
    /// One past the last frame.
    pub end: u64,
    /// The scenes whose pictures it shows (none for black gaps; two for a transition).
    pub scenes: Vec<usize>,
    /// Whether this render encoded it (false: reused from the cache).
    pub encoded: bool,
}

/// Renders timelines; holds the segment cache location and the degree of parallelism.
#[derive(Debug, Clone)]
pub struct Compositor {
    cache_dir: Option<PathBuf>,
    workers: usize,
}

impl Default for Compositor {
    fn default() -> Self {
        Compositor::new()
    }
}

impl Compositor {
    /// A compositor without a cache, using every core.
    pub fn new() -> Compositor {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Compositor {
            cache_dir: None,
            workers: cores,
        }
    }

    /// Keeps encoded segments in `directory`, so later renders reuse unchanged ones.
    pub fn with_cache_dir(mut self, directory: impl Into<PathBuf>) -> Compositor {
        self.cache_dir = Some(directory.into());
        self
    }

    /// Encodes this many segments at once (at least one).
    pub fn with_workers(mut self, workers: usize) -> Compositor {
        self.workers = workers.max(1);
        self
    }

    /// Checks a timeline and every file it names, without encoding anything.
    pub fn validate(&self, timeline: &Timeline) -> Result<(), CompositorError> {
        prepare::check_structure(timeline)?;
        load_and_plan(timeline).map(|_| ())
    }

    /// Renders every output format of the timeline.
    pub fn render(
        &self,
        timeline: &Timeline,
        target: &RenderTarget,
        progress: &(dyn Fn(Progress) + Sync),
        cancel: &CancelToken,
    ) -> Result<RenderReport, CompositorError> {
        self.render_outputs(timeline, target, progress, cancel, false)
    }

    /// Renders a fast 480p preview of the timeline's first format to `<stem>-preview.mp4`.
    pub fn render_preview(
        &self,
        timeline: &Timeline,
        target: &RenderTarget,
        progress: &(dyn Fn(Progress) + Sync),
        cancel: &CancelToken,
    ) -> Result<RenderedOutput, CompositorError> {
        let report = self.render_outputs(timeline, target, progress, cancel, true)?;
        Ok(report
            .outputs
            .into_iter()
            .next()
            .expect("a preview renders one output"))
    }

    fn render_outputs(
        &self,
        timeline: &Timeline,
        target: &RenderTarget,
        progress: &(dyn Fn(Progress) + Sync),
        cancel: &CancelToken,
        preview: bool,
    ) -> Result<RenderReport, CompositorError> {
        media::init();
        let stem_ok = !target.stem.is_empty()
            && !target.stem.starts_with('.')
            && !target.stem.contains(['/', '\\', '\0']);
        if !stem_ok {
            return Err(CompositorError::invalid(
                Item::Target,
                format!("{:?} is not a file name stem", target.stem),
            ));
        }
        prepare::check_structure(timeline)?;
        let preview_timeline;
        let timeline = if preview {
            preview_timeline = Timeline {
                outputs: vec![preview_format(&timeline.outputs[0])],
                ..timeline.clone()
            };
            &preview_timeline
        } else {
            timeline
        };
        let (assets, plans) = load_and_plan(timeline)?;
        std::fs::create_dir_all(&target.directory)
            .context(|| format!("creating {}", target.directory.display()))?;
        let scratch_cache;
        let cache_dir = match &self.cache_dir {
            Some(directory) => {
                std::fs::create_dir_all(directory)
                    .context(|| format!("creating the cache {}", directory.display()))?;
                directory.clone()
            }
            None => {
                scratch_cache = tempfile::tempdir_in(&target.directory)
                    .context(|| "creating a scratch folder for segments".into())?;
                scratch_cache.path().to_path_buf()
            }
        };

        let settings: Vec<VideoSettings> = timeline
            .outputs
            .iter()
            .zip(&plans)
            .map(|(output, plan)| {
                let (width, height) = output.size.dimensions();
                VideoSettings {
                    width,
                    height,
                    fps: plan.fps,
                    quality: output.quality,
                    threads: self.encoder_threads(),
                }
            })
            .collect();
        // Soundtracks first: each is one long job, so it overlaps the segments instead of
        // trailing them.
        let mut jobs = Vec::new();
        for (output_index, plan) in plans.iter().enumerate() {
            let shared = plans[..output_index]
                .iter()
                .any(|other| other.soundtrack_key == plan.soundtrack_key);
            if !shared && !encode::segment_is_complete(&soundtrack_path(&cache_dir, plan)) {
                jobs.push(Job::Soundtrack {
                    output: output_index,
                });
            }
        }
        for (output_index, plan) in plans.iter().enumerate() {
            for (segment_index, segment) in plan.segments.iter().enumerate() {
                if !encode::segment_is_complete(&segment_path(&cache_dir, segment)) {
                    jobs.push(Job::Segment {
                        output: output_index,
                        segment: segment_index,
                    });
                }
            }
        }
        let work = |job: &Job| match *job {
            Job::Soundtrack { output } => plans[output].frames / 20,
            Job::Segment { output, segment } => plans[output].segments[segment].frames(),
        };
        // Joining costs little next to encoding; it gets a token share of the bar.
        let encode_work: u64 = jobs.iter().map(work).sum();
        let join_work: u64 = plans.iter().map(|plan| plan.frames / 20).sum();
        let meter = Meter::new(progress, encode_work + join_work);
        let encoding = std::time::Instant::now();
        self.run_jobs(
            timeline, &assets, &plans, &settings, &jobs, &cache_dir, &meter, cancel,
        )?;
        tracing::info!(
            jobs = jobs.len(),
            elapsed_ms = encoding.elapsed().as_millis() as u64,
            "encoded what the cache lacked"
        );

        let mut outputs = Vec::new();
        for (output_index, (output, plan)) in timeline.outputs.iter().zip(&plans).enumerate() {
            let name = if preview {
                "preview".to_string()
            } else {
                output.label()
            };
            let path = target.directory.join(format!("{}-{name}.mp4", target.stem));
            let joining = std::time::Instant::now();
            self.join(plan, &settings[output_index], &cache_dir, &path, cancel)?;
            tracing::info!(
                output = %path.display(),
                elapsed_ms = joining.elapsed().as_millis() as u64,
                "joined the segments and the soundtrack"
            );
            meter.advance(plan.frames / 20);
            let segments = plan
                .segments
                .iter()
                .enumerate()
                .map(|(segment_index, segment)| SegmentReport {
                    start: segment.start,
                    end: segment.end,
                    scenes: segment.kind.scenes(),
                    encoded: jobs.contains(&Job::Segment {
                        output: output_index,
                        segment: segment_index,
                    }),
                })
                .collect();
            outputs.push(RenderedOutput {
                name,
                path,
                frames: plan.frames,
                segments,
            });
        }
        let mut sidecars = Vec::new();
        if let Some(captions) = timeline.captions.as_ref().filter(|_| !preview) {
            for (extension, text) in [
                ("srt", to_srt(&captions.cues)),
                ("vtt", to_vtt(&captions.cues)),
            ] {
                let path = target
                    .directory
                    .join(format!("{}.{extension}", target.stem));
                write_atomically(&path, text.as_bytes())?;
                sidecars.push(path);
            }
        }
        meter.finish();
        Ok(RenderReport { outputs, sidecars })
    }

    /// x264 threads per encoder: the cores shared among the segments encoding at once.
    fn encoder_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        (cores / self.workers).max(1)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_jobs(
        &self,
        timeline: &Timeline,
        assets: &Assets,
        plans: &[Plan],
        settings: &[VideoSettings],
        jobs: &[Job],
        cache_dir: &Path,
        meter: &Meter<'_>,
        cancel: &CancelToken,
    ) -> Result<(), CompositorError> {
        let mut users = std::collections::HashMap::new();
        for job in jobs {
            if let Job::Segment { output, segment } = *job {
                for scene in plans[output].segments[segment].kind.scenes() {
                    if matches!(timeline.scenes[scene].source, Source::Image { .. }) {
                        *users.entry((output, scene)).or_insert(0) += 1;
                    }
                }
            }
        }
        let stills = StillCache::new(users);
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_error: Mutex<Option<CompositorError>> = Mutex::new(None);
        let stop = || cancel.is_cancelled() || failed.load(Ordering::SeqCst);
        std::thread::scope(|scope| {
            for _ in 0..self.workers.min(jobs.len()) {
                scope.spawn(|| {
                    while let Some(job) = jobs.get(next.fetch_add(1, Ordering::SeqCst)) {
                        if stop() {
                            break;
                        }
                        let result = match *job {
                            Job::Soundtrack { output } => {
                                encode_soundtrack(timeline, assets, &plans[output], cache_dir)
                                    .inspect(|_| meter.advance(plans[output].frames / 20))
                            }
                            Job::Segment { output, segment } => encode_segment(
                                timeline,
                                assets,
                                &stills,
                                output,
                                plans[output].fps,
                                &settings[output],
                                &plans[output].segments[segment],
                                cache_dir,
                                meter,
                                &stop,
                            ),
                        };
                        if let Err(error) = result {
                            failed.store(true, Ordering::SeqCst);
                            let mut slot = first_error
                                .lock()
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                            if slot.is_none()
                                || matches!(slot.as_ref(), Some(CompositorError::Cancelled))
                            {
                                *slot = Some(error);
                            }
                            break;
                        }
                    }
                });
            }
        });
        if cancel.is_cancelled() {
            return Err(CompositorError::Cancelled);
        }
        match first_error
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn join(
        &self,
        plan: &Plan,
        settings: &VideoSettings,
        cache_dir: &Path,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<(), CompositorError> {
        let damaged = |what: String| CompositorError::Io {
            context: format!("reading {what} from the cache"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "missing or damaged"),
        };
        let mut placed = Vec::with_capacity(plan.segments.len());
        for segment in &plan.segments {
            let packets = encode::read_segment(&segment_path(cache_dir, segment))
                .ok_or_else(|| damaged(format!("segment {}", segment.key)))?;
            placed.push(PlacedSegment {
                start: segment.start,
                packets,
            });
        }
        let audio = encode::read_segment(&soundtrack_path(cache_dir, plan))
            .ok_or_else(|| damaged("the soundtrack".into()))?;
        let directory = path.parent().unwrap_or(Path::new("."));
        let temporary = tempfile::Builder::new()
            .prefix(".montage-")
            .suffix(".mp4.partial")
            .permissions(published_permissions())
            .tempfile_in(directory)
            .context(|| format!("creating a temporary file in {}", directory.display()))?;
        encode::mux(temporary.path(), settings, &placed, &audio, &|| {
            cancel.is_cancelled()
        })?;
        temporary
            .persist(path)
            .map_err(|error| error.error)
            .context(|| format!("moving the render to {}", path.display()))?;
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn encode_segment(
    timeline: &Timeline,
    assets: &Assets,
    stills: &StillCache,
    output: usize,
    fps: plan::Fps,
    settings: &VideoSettings,
    segment: &Segment,
    cache_dir: &Path,
    meter: &Meter<'_>,
    stop: &dyn Fn() -> bool,
) -> Result<(), CompositorError> {
    let (width, height) = (settings.width as usize, settings.height as usize);
    let mut composer = SegmentComposer::new(
        timeline, assets, stills, output, width, height, fps, segment,
    )?;
    let mut encoder = SegmentEncoder::new(settings)?;
    let mut frame = Frame::new(width, height, Yuv::BLACK);
    for index in segment.start..segment.end {
        if stop() {
            return Err(CompositorError::Cancelled);
        }
        composer.draw(index, &mut frame)?;
        encoder.push(&frame)?;
        meter.advance(1);
    }
    let packets = encoder.finish()?;
    encode::write_segment(&segment_path(cache_dir, segment), &packets)
}

/// Opens every file the timeline names and cuts each output into segments: all the checks that
/// need more than the timeline's own numbers.
fn load_and_plan(timeline: &Timeline) -> Result<(Assets, Vec<Plan>), CompositorError> {
    let started = std::time::Instant::now();
    let assets = prepare::load(timeline)?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded and checked the timeline's media"
    );
    let plans = timeline
        .outputs
        .iter()
        .enumerate()
        .map(|(index, output)| plan::plan(timeline, index, output, &assets))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((assets, plans))
}

/// Mixes and encodes an output's soundtrack into the cache.
fn encode_soundtrack(
    timeline: &Timeline,
    assets: &Assets,
    plan: &Plan,
    cache_dir: &Path,
) -> Result<(), CompositorError> {
    let tracks: Vec<mix::PreparedTrack<'_>> = timeline
        .audio
        .tracks
        .iter()
        .zip(&assets.audio)
        .map(|(spec, audio)| mix::PreparedTrack { spec, audio })
        .collect();
    let samples = mix::mix(&tracks, timeline.audio.ducking, plan.samples);
    let packets = encode::encode_audio(&samples, plan.fast_audio)?;
    encode::write_segment(&soundtrack_path(cache_dir, plan), &packets)
}

fn soundtrack_path(cache_dir: &Path, plan: &Plan) -> PathBuf {
    cache_dir.join(format!("{}.aac.seg", plan.soundtrack_key))
}

fn segment_path(cache_dir: &Path, segment: &Segment) -> PathBuf {
    cache_dir.join(format!("{}.seg", segment.key))
}

/// The preview's format: the first output at 480 lines on its short side (or its own size when
/// smaller), encoded fast.
fn preview_format(output: &OutputFormat) -> OutputFormat {
    let (width, height) = output.size.dimensions();
    // Never larger than the output itself.
    let scale = (480.0 / width.min(height) as f64).min(1.0);
    let even = |value: f64| (((value * scale) / 2.0).round() as u32 * 2).max(2);
    OutputFormat {
        name: Some("preview".into()),
        size: FrameSize::Custom {
            width: even(width as f64),
            height: even(height as f64),
        },
        fps: output.fps,
        quality: Quality {
            crf: 28,
            preset: Preset::Superfast,
        },
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CompositorError> {
    let context = || format!("writing {}", path.display());
    let directory = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(".montage-")
        .permissions(published_permissions())
        .tempfile_in(directory)
        .context(context)?;
    std::io::Write::write_all(&mut temporary, bytes).context(context)?;
    temporary
        .persist(path)
        .map_err(|error| error.error)
        .context(context)?;
    Ok(())
}

/// Finished files are readable by all, like any file the user writes (temporary files start
/// private).
fn published_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o644)
}

/// Turns units of work done into monotonic percentages for the progress callback.
struct Meter<'a> {
    callback: &'a (dyn Fn(Progress) + Sync),
    total: u64,
    done: AtomicU64,
    reported: Mutex<f64>,
}

impl<'a> Meter<'a> {
    fn new(callback: &'a (dyn Fn(Progress) + Sync), total: u64) -> Meter<'a> {
        let meter = Meter {
            callback,
            total: total.max(1),
            done: AtomicU64::new(0),
            reported: Mutex::new(-1.0),
        };
        meter.report(0.0);
        meter
    }

    fn advance(&self, units: u64) {
        let done = self.done.fetch_add(units, Ordering::SeqCst) + units;
        // Whole-percent steps keep the callback cheap; 100 is kept for `finish`.
        let percent = ((done as f64 / self.total as f64) * 100.0)
            .floor()
            .min(99.0);
        self.report(percent);
    }

    fn finish(&self) {
        self.report(100.0);
    }

    fn report(&self, percent: f64) {
        let mut reported = self
            .reported
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if percent > *reported {
            *reported = percent;
            (self.callback)(Progress { percent });
        }
    }
}
