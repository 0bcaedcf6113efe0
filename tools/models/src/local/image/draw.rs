//! The drawing: a composition per shot and subject, in the look's palette and mood, with its
//! textures; the seed varies the layout.

use super::MAX_SIDE;
use super::look::{Look, Shot, Subject};
use crate::types::ImageRequest;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tiny_skia::{
    Color, FillRule, GradientStop, LinearGradient, Paint, PathBuilder, Pixmap, Point,
    RadialGradient, Rect, Shader, SpreadMode, Stroke, Transform,
};

fn colour(rgb: [u8; 3], alpha: f32) -> Color {
    Color::from_rgba8(
        rgb[0],
        rgb[1],
        rgb[2],
        (alpha.clamp(0.0, 1.0) * 255.0) as u8,
    )
}

fn shade(rgb: [u8; 3], factor: f64) -> [u8; 3] {
    rgb.map(|c| (f64::from(c) * factor).clamp(0.0, 255.0) as u8)
}

fn luma(rgb: [u8; 3]) -> f64 {
    (0.2126 * f64::from(rgb[0]) + 0.7152 * f64::from(rgb[1]) + 0.0722 * f64::from(rgb[2])) / 255.0
}

/// Paint fading from `from` at height `y0` to `to` at height `y1` (solid `from` if the two
/// heights meet).
fn vertical(y0: f32, y1: f32, from: Color, to: Color) -> Paint<'static> {
    let shader = LinearGradient::new(
        Point::from_xy(0.0, y0),
        Point::from_xy(0.0, y1),
        vec![GradientStop::new(0.0, from), GradientStop::new(1.0, to)],
        SpreadMode::Pad,
        Transform::identity(),
    );
    Paint {
        shader: shader.unwrap_or(Shader::SolidColor(from)),
        ..Paint::default()
    }
}

fn solid(rgb: [u8; 3], alpha: f32) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(colour(rgb, alpha));
    paint.anti_alias = true;
    paint
}

/// Draws the picture a request describes.
pub fn render(request: &ImageRequest) -> Pixmap {
    let look = Look::from_prompt(&request.prompt, &request.negative_prompt);
    let (w, h) = (
        request.width.clamp(16, MAX_SIDE),
        request.height.clamp(16, MAX_SIDE),
    );
    let mut pixmap = Pixmap::new(w, h).expect("sides are within 16..=4096");
    let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
    let (wf, hf) = (w as f32, h as f32);
    let unit = wf.min(hf);

    // Darkest colour for the sky's top, the next for its horizon: the palette's mood.
    let mut by_luma = look.palette.clone();
    by_luma.sort_by(|a, b| luma(*a).total_cmp(&luma(*b)));
    let deep = by_luma[0];
    let light = by_luma[by_luma.len() - 1];
    let accents: Vec<[u8; 3]> = look
        .palette
        .iter()
        .copied()
        .filter(|c| *c != deep)
        .collect();
    let accent = |i: usize| accents[i % accents.len()];

    let horizon = match look.shot {
        Shot::Wide => 0.66,
        Shot::Medium => 0.55,
        Shot::CloseUp | Shot::Detail | Shot::Aerial => 1.0,
    } * hf;
    let paint = vertical(
        0.0,
        horizon.max(1.0),
        colour(shade(deep, 0.8), 1.0),
        colour(accent(1), 1.0),
    );
    pixmap.fill_rect(
        Rect::from_xywh(0.0, 0.0, wf, hf).expect("positive size"),
        &paint,
        Transform::identity(),
        None,
    );

    let busy = 0.5 + look.energy;
    match look.shot {
        Shot::Wide | Shot::Medium => {
            // A glowing disc in the sky: sun, moon or sign.
            let r = unit * if look.shot == Shot::Wide { 0.09 } else { 0.16 };
            let cx = wf * rng.random_range(0.2..0.8);
            let cy = horizon * rng.random_range(0.3..0.6);
            glow(&mut pixmap, cx, cy, r, accent(0), look.neon);
            let paint = vertical(
                horizon,
                hf,
                colour(shade(deep, 1.1), 1.0),
                colour(shade(deep, 0.5), 1.0),
            );
            if let Some(rect) = Rect::from_xywh(0.0, horizon, wf, hf - horizon) {
                pixmap.fill_rect(rect, &paint, Transform::identity(), None);
            }
            let scale = if look.shot == Shot::Wide { 0.6 } else { 1.2 };
            skyline(&mut pixmap, &mut rng, &look, horizon, scale, busy, &accent);
        }
        Shot::CloseUp => {
            // The subject stays whole inside the frame, wherever the seed puts it.
            let r = unit * rng.random_range(0.18..0.34);
            let cx = r + (wf - 2.0 * r) * rng.random_range(0.15..0.85);
            let cy = r + (hf - 2.0 * r) * rng.random_range(0.2..0.8);
            let rings = rng.random_range(2..=5);
            for ring in (1..=rings).rev() {
                let t = ring as f32 / rings as f32;
                if let Some(path) = PathBuilder::from_circle(cx, cy, r * (0.4 + 0.6 * t)) {
                    pixmap.fill_path(
                        &path,
                        &solid(accent(ring), 0.85),
                        FillRule::Winding,
                        Transform::identity(),
                        None,
                    );
                }
            }
            glow(&mut pixmap, cx, cy, r * 0.35, light, look.neon);
        }
        Shot::Detail => {
            let count = (40.0 * busy) as usize;
            for i in 0..count {
                let x = wf * rng.random_range(0.0..1.0);
                let y = hf * rng.random_range(0.0..1.0);
                let r = unit * rng.random_range(0.02..0.09);
                if let Some(path) = PathBuilder::from_circle(x, y, r) {
                    pixmap.fill_path(
                        &path,
                        &solid(accent(i), 0.7),
                        FillRule::Winding,
                        Transform::identity(),
                        None,
                    );
                }
            }
        }
        Shot::Aerial => {
            let cells = (6.0 + 6.0 * look.energy) as usize;
            let cw = wf / cells as f32;
            let ch = hf / cells as f32;
            for row in 0..cells {
                for col in 0..cells {
                    let pick = rng.random_range(0..accents.len() + 2);
                    let rgb = if pick >= accents.len() {
                        shade(deep, 1.3)
                    } else {
                        accent(pick)
                    };
                    let inset = cw.min(ch) * 0.12;
                    if let Some(rect) = Rect::from_xywh(
                        col as f32 * cw + inset,
                        row as f32 * ch + inset,
                        cw - 2.0 * inset,
                        ch - 2.0 * inset,
                    ) {
                        pixmap.fill_rect(rect, &solid(rgb, 0.9), Transform::identity(), None);
                    }
                }
            }
        }
    }

    if look.neon {
        // Light trails across the frame.
        for i in 0..(3.0 * busy) as usize {
            let y = hf * rng.random_range(0.15..0.95);
            let mut pb = PathBuilder::new();
            pb.move_to(0.0, y);
            pb.cubic_to(
                wf * 0.3,
                y - hf * 0.1,
                wf * 0.6,
                y + hf * 0.1,
                wf,
                y + hf * rng.random_range(-0.1..0.1),
            );
            if let Some(path) = pb.finish() {
                for (width, alpha) in [(unit * 0.03, 0.2), (unit * 0.008, 0.95)] {
                    let stroke = Stroke {
                        width,
                        ..Stroke::default()
                    };
                    pixmap.stroke_path(
                        &path,
                        &solid(accent(i), alpha),
                        &stroke,
                        Transform::identity(),
                        None,
                    );
                }
            }
        }
    }
    if look.rain {
        let stroke = Stroke {
            width: unit * 0.002,
            ..Stroke::default()
        };
        for _ in 0..(200.0 * busy) as usize {
            let x = wf * rng.random_range(0.0..1.0);
            let y = hf * rng.random_range(0.0..1.0);
            let mut pb = PathBuilder::new();
            pb.move_to(x, y);
            pb.line_to(x - unit * 0.01, y + unit * 0.05);
            if let Some(path) = pb.finish() {
                pixmap.stroke_path(
                    &path,
                    &solid(light, 0.35),
                    &stroke,
                    Transform::identity(),
                    None,
                );
            }
        }
    }
    if look.haze {
        let paint = vertical(hf, hf * 0.3, colour(light, 0.45), colour(light, 0.0));
        pixmap.fill_rect(
            Rect::from_xywh(0.0, 0.0, wf, hf).expect("positive size"),
            &paint,
            Transform::identity(),
            None,
        );
    }
    finish_tone(&mut pixmap, &look, &mut rng);
    pixmap
}

/// A disc with a soft halo.
fn glow(pixmap: &mut Pixmap, cx: f32, cy: f32, r: f32, rgb: [u8; 3], strong: bool) {
    let halo = RadialGradient::new(
        Point::from_xy(cx, cy),
        0.0,
        Point::from_xy(cx, cy),
        r * if strong { 3.0 } else { 2.0 },
        vec![
            GradientStop::new(0.0, colour(rgb, 0.6)),
            GradientStop::new(1.0, colour(rgb, 0.0)),
        ],
        SpreadMode::Pad,
        Transform::identity(),
    );
    if let Some(shader) = halo {
        let paint = Paint {
            shader,
            ..Paint::default()
        };
        if let Some(path) = PathBuilder::from_circle(cx, cy, r * 3.0) {
            pixmap.fill_path(
                &path,
                &paint,
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
    }
    if let Some(path) = PathBuilder::from_circle(cx, cy, r) {
        pixmap.fill_path(
            &path,
            &solid(rgb, 1.0),
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }
}

/// The subject's silhouette along the horizon.
fn skyline(
    pixmap: &mut Pixmap,
    rng: &mut ChaCha8Rng,
    look: &Look,
    horizon: f32,
    scale: f32,
    busy: f64,
    accent: &dyn Fn(usize) -> [u8; 3],
) {
    let (wf, hf) = (pixmap.width() as f32, pixmap.height() as f32);
    let unit = wf.min(hf);
    let dark = shade(
        look.palette
            .iter()
            .copied()
            .min_by(|a, b| luma(*a).total_cmp(&luma(*b)))
            .unwrap_or([20, 20, 30]),
        0.6,
    );
    match look.subject {
        Subject::City => {
            let mut x = -unit * 0.05;
            let mut i = 0;
            while x < wf {
                let bw = unit * scale * rng.random_range(0.06..0.14) as f32;
                let bh =
                    unit * scale * rng.random_range(0.15..0.55) as f32 * (0.7 + 0.3 * busy as f32);
                if let Some(rect) = Rect::from_xywh(x, horizon - bh, bw, bh + 1.0) {
                    pixmap.fill_rect(rect, &solid(dark, 1.0), Transform::identity(), None);
                    // Lit windows in the accent colours.
                    let win = bw / 6.0;
                    let mut wy = horizon - bh + win;
                    while wy < horizon - win {
                        for col in 0..2 {
                            if rng.random_bool(0.45)
                                && let Some(r) = Rect::from_xywh(
                                    x + win * (1.0 + 2.5 * col as f32),
                                    wy,
                                    win,
                                    win,
                                )
                            {
                                pixmap.fill_rect(
                                    r,
                                    &solid(accent(i + col), 0.9),
                                    Transform::identity(),
                                    None,
                                );
                            }
                        }
                        wy += win * 2.2;
                    }
                }
                x += bw * rng.random_range(1.0..1.3) as f32;
                i += 1;
            }
        }
        Subject::Water => {
            for band in 0..6 {
                let y0 = horizon + (hf - horizon) * band as f32 / 6.0;
                let amp = unit * 0.02 * scale * (1.0 + busy as f32);
                let mut pb = PathBuilder::new();
                pb.move_to(0.0, hf);
                pb.line_to(0.0, y0);
                let steps = 12;
                let phase = rng.random_range(0.0..std::f32::consts::TAU);
                for s in 1..=steps {
                    let x = wf * s as f32 / steps as f32;
                    pb.line_to(x, y0 + amp * (phase + s as f32 * 1.3).sin());
                }
                pb.line_to(wf, hf);
                pb.close();
                if let Some(path) = pb.finish() {
                    pixmap.fill_path(
                        &path,
                        &solid(accent(band), 0.35),
                        FillRule::Winding,
                        Transform::identity(),
                        None,
                    );
                }
            }
        }
        Subject::Trees => {
            let count = (14.0 * busy / f64::from(scale)) as usize + 3;
            for _ in 0..count {
                let x = wf * rng.random_range(0.0..1.0) as f32;
                let th = unit * scale * rng.random_range(0.2..0.45) as f32;
                let mut pb = PathBuilder::new();
                pb.move_to(x - th * 0.25, horizon);
                pb.line_to(x, horizon - th);
                pb.line_to(x + th * 0.25, horizon);
                pb.close();
                if let Some(path) = pb.finish() {
                    pixmap.fill_path(
                        &path,
                        &solid(dark, 1.0),
                        FillRule::Winding,
                        Transform::identity(),
                        None,
                    );
                }
            }
        }
        Subject::Peaks => {
            for layer in 0..3 {
                let mut pb = PathBuilder::new();
                pb.move_to(0.0, horizon);
                let mut x = 0.0;
                while x < wf {
                    let pw = unit * scale * rng.random_range(0.2..0.4) as f32;
                    let ph = unit
                        * scale
                        * rng.random_range(0.15..0.35) as f32
                        * (1.0 - layer as f32 * 0.25);
                    pb.line_to(x + pw / 2.0, horizon - ph);
                    pb.line_to(x + pw, horizon);
                    x += pw;
                }
                pb.close();
                if let Some(path) = pb.finish() {
                    pixmap.fill_path(
                        &path,
                        &solid(shade(accent(layer), 0.5 + 0.2 * layer as f64), 1.0),
                        FillRule::Winding,
                        Transform::identity(),
                        None,
                    );
                }
            }
        }
        Subject::Abstract => {
            for i in 0..(6.0 * busy) as usize {
                let cx = wf * rng.random_range(0.05..0.95) as f32;
                let cy = horizon - unit * scale * rng.random_range(0.0..0.3) as f32;
                let r = unit * scale * rng.random_range(0.05..0.15) as f32;
                if let Some(path) = PathBuilder::from_circle(cx, cy, r) {
                    pixmap.fill_path(
                        &path,
                        &solid(accent(i), 0.8),
                        FillRule::Winding,
                        Transform::identity(),
                        None,
                    );
                }
            }
        }
    }
}

/// Sets the picture's mean brightness and contrast to the look's, and adds grain: so every
/// scene of a video sits at the brightness its mood asks for.
fn finish_tone(pixmap: &mut Pixmap, look: &Look, rng: &mut ChaCha8Rng) {
    let data = pixmap.data_mut();
    let count = (data.len() / 4).max(1) as f64;
    // Integer BT.709 luma (weights sum to 1024), summed exactly.
    let (mut sum, mut sum_sq) = (0u64, 0u64);
    for px in data.chunks_exact(4) {
        let l = (218 * u64::from(px[0]) + 732 * u64::from(px[1]) + 74 * u64::from(px[2])) >> 10;
        sum += l;
        sum_sq += l * l;
    }
    let mean = sum as f64 / count / 255.0;
    let std = ((sum_sq as f64 / count / 65025.0) - mean * mean)
        .max(1e-6)
        .sqrt();
    let target_std = 0.08 + 0.2 * look.contrast;
    let gain = (target_std / std).clamp(0.5, 2.5);
    // The tone curve is the same for every channel value: a table of 256 entries.
    let curve: Vec<f64> = (0..=255u8)
        .map(|v| ((f64::from(v) / 255.0 - mean) * gain + look.brightness) * 255.0)
        .collect();
    let exact: Vec<u8> = curve
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let mut noise_seed: u32 = rng.random();
    for px in data.chunks_exact_mut(4) {
        if look.grain {
            noise_seed ^= noise_seed << 13;
            noise_seed ^= noise_seed >> 17;
            noise_seed ^= noise_seed << 5;
            let n = (f64::from(noise_seed % 1000) / 1000.0 - 0.5) * 18.0;
            for c in &mut px[..3] {
                *c = (curve[usize::from(*c)] + n).round().clamp(0.0, 255.0) as u8;
            }
        } else {
            for c in &mut px[..3] {
                *c = exact[usize::from(*c)];
            }
        }
        px[3] = 255;
    }
}
