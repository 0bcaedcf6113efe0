//! montage-critic: the local critic's eyes. It measures the first and last frame of every
//! scene — brightness, contrast, colour against the intended palette, a perceptual hash — and
//! turns what stands out into issues per scene, each with a severity and a suggested fix:
//!
//! - a **continuity** jump in brightness or contrast across a hard cut, blamed on the scene
//!   that strays from the video's median;
//! - **palette drift**: colours far from the palette asked for;
//! - **near-duplicates**: two scenes whose pictures hash alike;
//! - **blank** frames: black, or flat with nothing in them.
//!
//! [`frames`] makes the pictures it looks at: a frame's view of a still, a contact sheet.
//!
//! A person's own images cannot be regenerated, so their issues suggest a crossfade or keeping
//! them rather than a new picture.

pub mod frames;

use image::RgbImage;
use image_hasher::{HashAlg, HasherConfig, ImageHash};
use serde::{Deserialize, Serialize};

/// The frames of one scene, with what the critic must know about it.
#[derive(Debug, Clone)]
pub struct SceneFrames {
    /// The scene's first frame.
    pub first: RgbImage,
    /// The scene's last frame.
    pub last: RgbImage,
    /// Whether Montage generated the picture (so it can be generated again).
    pub generated: bool,
    /// Whether the cut into the next scene is softened by a transition.
    pub soft_cut_after: bool,
}

/// What is measured of one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameMetrics {
    /// Mean luma (BT.709), 0–1.
    pub luma: f64,
    /// Standard deviation of luma: the contrast, 0–0.5.
    pub contrast: f64,
    /// Mean chromatic distance of the frame's colourful pixels from the nearest palette
    /// colour, 0–1 (none without a palette or colourful pixels).
    pub palette_distance: Option<f64>,
    /// Perceptual (double-gradient) hash, base64.
    pub hash: String,
}

/// What is measured of one scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneMetrics {
    /// Its first frame.
    pub first: FrameMetrics,
    /// Its last frame.
    pub last: FrameMetrics,
}

/// What kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A jump in brightness or contrast across a cut.
    Continuity,
    /// Colours far from the palette.
    PaletteDrift,
    /// Nearly the same picture as another scene.
    Duplicate,
    /// A black or flat frame.
    Blank,
}

/// How much an issue matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Low,
    /// Worth fixing.
    Medium,
    /// Must be fixed.
    High,
}

/// What to do about an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Fix {
    /// Generate the scene again with this added to its prompt.
    Regenerate {
        /// The instruction.
        instruction: String,
    },
    /// Crossfade into the next scene.
    Crossfade,
    /// Leave it.
    Keep,
}

/// One problem with one scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// The scene, 0-based.
    pub scene: usize,
    /// What kind.
    pub kind: IssueKind,
    /// How much it matters.
    pub severity: Severity,
    /// What is wrong, for a person.
    pub message: String,
    /// What to do.
    pub fix: Fix,
}

/// The critic's findings: measurements per scene and the issues they raise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// One entry per scene.
    pub scenes: Vec<SceneMetrics>,
    /// The problems, by scene.
    pub issues: Vec<Issue>,
}

/// Where measurements become issues.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// A luma jump across a hard cut above this is worth fixing; 1.5 times it must be fixed.
    pub luma_jump: f64,
    /// A contrast jump across a hard cut above this is worth fixing.
    pub contrast_jump: f64,
    /// Palette distance above this is worth knowing; above `palette_drift * 1.6`, fixing.
    pub palette_drift: f64,
    /// Hashes this close (differing bits of the 16×16 double-gradient hash) are near-duplicates.
    pub duplicate_bits: u32,
    /// Mean luma below this is black.
    pub black_luma: f64,
    /// Contrast below this is flat.
    pub flat_contrast: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            luma_jump: 0.2,
            contrast_jump: 0.15,
            palette_drift: 0.12,
            duplicate_bits: 12,
            black_luma: 0.08,
            flat_contrast: 0.015,
        }
    }
}

/// Frames are measured at this size on their long side.
const MEASURE_SIDE: u32 = 128;

fn small(frame: &RgbImage) -> RgbImage {
    let (w, h) = frame.dimensions();
    if w.max(h) <= MEASURE_SIDE || w == 0 || h == 0 {
        return frame.clone();
    }
    let scale = f64::from(MEASURE_SIDE) / f64::from(w.max(h));
    let (sw, sh) = (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    );
    image::imageops::resize(frame, sw, sh, image::imageops::FilterType::Triangle)
}

fn luma(px: &image::Rgb<u8>) -> f64 {
    (0.2126 * f64::from(px[0]) + 0.7152 * f64::from(px[1]) + 0.0722 * f64::from(px[2])) / 255.0
}

/// Red and green shares of a colour: its hue and saturation without its brightness.
fn chroma(rgb: [f64; 3]) -> Option<[f64; 2]> {
    let sum = rgb[0] + rgb[1] + rgb[2];
    (sum > 0.15).then(|| [rgb[0] / sum, rgb[1] / sum])
}

fn hasher() -> image_hasher::Hasher {
    HasherConfig::new()
        .hash_size(16, 16)
        .hash_alg(HashAlg::DoubleGradient)
        .to_hasher()
}

/// Measures one frame against a palette of `#rrggbb` channels.
pub fn measure(frame: &RgbImage, palette: &[[u8; 3]]) -> FrameMetrics {
    let frame = small(frame);
    let count = (frame.width() * frame.height()).max(1) as f64;
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for px in frame.pixels() {
        let l = luma(px);
        sum += l;
        sum_sq += l * l;
    }
    let mean = sum / count;
    let contrast = (sum_sq / count - mean * mean).max(0.0).sqrt();
    let targets: Vec<[f64; 2]> = palette
        .iter()
        .filter_map(|c| chroma(c.map(|v| f64::from(v) / 255.0)))
        .collect();
    let palette_distance = (!targets.is_empty())
        .then(|| {
            let mut total = 0.0;
            let mut colourful = 0usize;
            for px in frame.pixels() {
                let rgb = [px[0], px[1], px[2]].map(|v| f64::from(v) / 255.0);
                let Some(c) = chroma(rgb) else { continue };
                let nearest = targets
                    .iter()
                    .map(|t| ((c[0] - t[0]).powi(2) + (c[1] - t[1]).powi(2)).sqrt())
                    .fold(f64::INFINITY, f64::min);
                total += nearest;
                colourful += 1;
            }
            (colourful > 0).then(|| total / colourful as f64)
        })
        .flatten();
    FrameMetrics {
        luma: mean,
        contrast,
        palette_distance,
        hash: hasher().hash_image(&frame).to_base64(),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Reviews a video's scenes, in order, against the palette it was meant to have.
pub fn review(scenes: &[SceneFrames], palette: &[[u8; 3]], thresholds: &Thresholds) -> Review {
    let metrics: Vec<SceneMetrics> = scenes
        .iter()
        .map(|s| SceneMetrics {
            first: measure(&s.first, palette),
            last: measure(&s.last, palette),
        })
        .collect();
    let mut issues: Vec<Issue> = Vec::new();
    let mut raise = |issue: Issue| {
        // One issue per scene and kind: the most severe.
        match issues
            .iter_mut()
            .find(|i| i.scene == issue.scene && i.kind == issue.kind)
        {
            Some(existing) if existing.severity >= issue.severity => {}
            Some(existing) => *existing = issue,
            None => issues.push(issue),
        }
    };
    let regenerate = |instruction: &str| Fix::Regenerate {
        instruction: instruction.to_owned(),
    };

    for (i, (scene, m)) in scenes.iter().zip(&metrics).enumerate() {
        let darkest = m.first.luma.min(m.last.luma);
        let flattest = m.first.contrast.min(m.last.contrast);
        // A person's own black or empty frame may be meant; a generated one is a failure.
        let blank = |message: String, instruction: &str| Issue {
            scene: i,
            kind: IssueKind::Blank,
            severity: if scene.generated {
                Severity::High
            } else {
                Severity::Low
            },
            message,
            fix: if scene.generated {
                regenerate(instruction)
            } else {
                Fix::Keep
            },
        };
        if darkest < thresholds.black_luma {
            raise(blank(
                format!(
                    "scene {} is almost black (mean brightness {:.0} %)",
                    i + 1,
                    darkest * 100.0
                ),
                "brighter",
            ));
        } else if flattest < thresholds.flat_contrast {
            raise(blank(
                format!("scene {} is flat: almost nothing to see", i + 1),
                "more detail and contrast",
            ));
        }
        if scene.generated
            && let Some(distance) = m.first.palette_distance
            && distance > thresholds.palette_drift
        {
            raise(Issue {
                scene: i,
                kind: IssueKind::PaletteDrift,
                severity: if distance > thresholds.palette_drift * 1.6 {
                    Severity::Medium
                } else {
                    Severity::Low
                },
                message: format!("scene {}'s colours stray from the palette", i + 1),
                fix: regenerate("closer to the palette"),
            });
        }
    }

    let mut lumas: Vec<f64> = metrics
        .iter()
        .map(|m| (m.first.luma + m.last.luma) / 2.0)
        .collect();
    let mut contrasts: Vec<f64> = metrics
        .iter()
        .map(|m| (m.first.contrast + m.last.contrast) / 2.0)
        .collect();
    let luma_median = median(&mut lumas.clone());
    let contrast_median = median(&mut contrasts);
    lumas.iter_mut().for_each(|l| *l -= luma_median);
    for i in 0..scenes.len().saturating_sub(1) {
        if scenes[i].soft_cut_after {
            continue;
        }
        let (before, after) = (&metrics[i].last, &metrics[i + 1].first);
        let luma_jump = (before.luma - after.luma).abs();
        let contrast_jump = (before.contrast - after.contrast).abs();
        let (blamed, what, severity) = if luma_jump > thresholds.luma_jump {
            let blamed = if lumas[i].abs() >= lumas[i + 1].abs() {
                i
            } else {
                i + 1
            };
            let severity = if luma_jump > thresholds.luma_jump * 1.5 {
                Severity::High
            } else {
                Severity::Medium
            };
            (blamed, "brightness", severity)
        } else if contrast_jump > thresholds.contrast_jump {
            let spread = |j: usize| {
                ((metrics[j].first.contrast + metrics[j].last.contrast) / 2.0 - contrast_median)
                    .abs()
            };
            let blamed = if spread(i) >= spread(i + 1) { i } else { i + 1 };
            (blamed, "contrast", Severity::Medium)
        } else {
            continue;
        };
        let other = if blamed == i { i + 1 } else { i };
        let (fix, message) = if scenes[blamed].generated {
            let instruction = match what {
                "brightness" if lumas[blamed] < 0.0 => "brighter, matching the scenes around it",
                "brightness" => "darker, matching the scenes around it",
                _ if contrast_jump > 0.0 && metrics[blamed].first.contrast > contrast_median => {
                    "softer contrast"
                }
                _ => "more contrast",
            };
            (
                regenerate(instruction),
                format!(
                    "scene {}'s {what} jumps against scene {}",
                    blamed + 1,
                    other + 1
                ),
            )
        } else {
            (
                Fix::Crossfade,
                format!("the {what} jumps between scenes {} and {}", i + 1, i + 2),
            )
        };
        raise(Issue {
            scene: blamed,
            kind: IssueKind::Continuity,
            severity,
            message,
            fix,
        });
    }

    let hashes: Vec<Option<ImageHash>> = metrics
        .iter()
        .map(|m| ImageHash::from_base64(&m.first.hash).ok())
        .collect();
    for j in 1..scenes.len() {
        if !scenes[j].generated {
            continue;
        }
        let Some(b) = &hashes[j] else { continue };
        // The nearest earlier scene that hashes alike: a repeat right after itself reads as a
        // stutter; one far away is only worth knowing.
        let twin = (0..j).rev().find(|&i| {
            hashes[i]
                .as_ref()
                .is_some_and(|a| a.dist(b) <= thresholds.duplicate_bits)
        });
        if let Some(i) = twin {
            raise(Issue {
                scene: j,
                kind: IssueKind::Duplicate,
                severity: if j - i <= 2 {
                    Severity::Medium
                } else {
                    Severity::Low
                },
                message: format!("scene {} looks almost the same as scene {}", j + 1, i + 1),
                fix: regenerate("a different composition"),
            });
        }
    }
    issues.sort_by_key(|i| (i.scene, i.kind as u8));
    Review {
        scenes: metrics,
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame with bands of `colours`, shaded to about `brightness`, varied by `seed`.
    fn frame(colours: &[[u8; 3]], brightness: f64, seed: u32) -> RgbImage {
        // A disc placed by the seed on a palette background: distinct seeds, distinct pictures.
        let (cx, cy) = (
            f64::from(20 + (seed * 53) % 120),
            f64::from(15 + (seed * 29) % 60),
        );
        let n = colours.len();
        RgbImage::from_fn(160, 90, |x, y| {
            let inside = (f64::from(x) - cx).hypot(f64::from(y) - cy) < 28.0;
            let (c, shade) = if inside {
                (colours[1 % n], 1.3)
            } else {
                (colours[0], 0.8)
            };
            let scale = brightness / 0.5 * shade;
            image::Rgb(c.map(|v| (f64::from(v) * scale).clamp(0.0, 255.0) as u8))
        })
    }

    const NEON: [[u8; 3]; 3] = [[255, 31, 180], [31, 224, 255], [138, 63, 252]];

    fn scene(image: RgbImage) -> SceneFrames {
        SceneFrames {
            first: image.clone(),
            last: image,
            generated: true,
            soft_cut_after: false,
        }
    }

    #[test]
    fn consistent_scenes_raise_nothing() {
        let scenes: Vec<SceneFrames> = (0..6).map(|s| scene(frame(&NEON, 0.5, s))).collect();
        let review = review(&scenes, &NEON, &Thresholds::default());
        assert!(review.issues.is_empty(), "{:?}", review.issues);
        assert_eq!(review.scenes.len(), 6);
    }

    #[test]
    fn a_dark_scene_among_bright_ones_is_blamed_alone() {
        let mut scenes: Vec<SceneFrames> = (0..6).map(|s| scene(frame(&NEON, 0.5, s))).collect();
        scenes[3] = scene(frame(&NEON, 0.06, 3));
        let review = review(&scenes, &NEON, &Thresholds::default());
        assert!(!review.issues.is_empty());
        assert!(
            review.issues.iter().all(|i| i.scene == 3),
            "{:?}",
            review.issues
        );
        let continuity = review
            .issues
            .iter()
            .find(|i| i.kind == IssueKind::Continuity)
            .unwrap();
        assert_eq!(continuity.severity, Severity::High);
        assert!(
            matches!(&continuity.fix, Fix::Regenerate { instruction } if instruction.starts_with("brighter"))
        );
        assert!(review.issues.iter().any(|i| i.kind == IssueKind::Blank));
    }

    #[test]
    fn a_soft_cut_tolerates_a_jump_and_uploads_get_a_crossfade() {
        let mut scenes: Vec<SceneFrames> = (0..4).map(|s| scene(frame(&NEON, 0.3, s))).collect();
        scenes[2] = scene(frame(&NEON, 1.0, 2));
        scenes[1].soft_cut_after = true;
        scenes[2].soft_cut_after = true;
        assert!(
            review(&scenes, &NEON, &Thresholds::default())
                .issues
                .is_empty()
        );
        scenes[2].soft_cut_after = false;
        scenes[2].generated = false;
        let issues = review(&scenes, &NEON, &Thresholds::default()).issues;
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].fix, Fix::Crossfade);
    }

    #[test]
    fn off_palette_colours_drift() {
        let earth = [[122, 74, 38], [181, 81, 42], [232, 185, 35]];
        let scenes = vec![
            scene(frame(&NEON, 0.5, 0)),
            scene(frame(&earth, 0.5, 1)),
            scene(frame(&NEON, 0.5, 2)),
        ];
        let issues = review(&scenes, &NEON, &Thresholds::default()).issues;
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(
            (issues[0].scene, issues[0].kind),
            (1, IssueKind::PaletteDrift)
        );
    }

    #[test]
    fn near_duplicates_and_flat_frames_are_found() {
        let a = frame(&NEON, 0.5, 1);
        let mut b = a.clone();
        b.put_pixel(5, 5, image::Rgb([0, 0, 0]));
        let flat = RgbImage::from_pixel(160, 90, image::Rgb([120, 60, 140]));
        let scenes = vec![scene(a), scene(frame(&NEON, 0.5, 4)), scene(b), scene(flat)];
        let issues = review(&scenes, &NEON, &Thresholds::default()).issues;
        assert!(
            issues
                .iter()
                .any(|i| i.scene == 2 && i.kind == IssueKind::Duplicate),
            "{issues:?}"
        );
        assert!(
            issues
                .iter()
                .any(|i| i.scene == 3 && i.kind == IssueKind::Blank),
            "{issues:?}"
        );
        assert!(issues.iter().all(|i| i.scene >= 2));
    }
}
