//! Text and watermark sprites, and where they sit in each platform's safe area.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};

use crate::picture::Sprite;
use crate::timeline::{Position, TextStyle};

/// The font used when a text style names none (Debian's fonts-dejavu-core).
pub(crate) const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// Loads a TrueType or OpenType font.
pub(crate) fn load_font(bytes: Vec<u8>) -> Result<FontVec, String> {
    FontVec::try_from_vec(bytes).map_err(|_| "not a TrueType or OpenType font".to_string())
}

/// The part of a frame text and logos stay inside, as (left, top, right, bottom) in pixels.
///
/// Tall frames keep clear of the caption, button and profile columns vertical-video apps draw
/// over the picture; other shapes keep the broadcast title-safe margin of 5%.
pub(crate) fn safe_area(width: usize, height: usize) -> (f64, f64, f64, f64) {
    let (w, h) = (width as f64, height as f64);
    if h > w * 1.5 {
        (w * 0.06, h * 0.10, w * 0.88, h * 0.78)
    } else {
        (w * 0.05, h * 0.05, w * 0.95, h * 0.95)
    }
}

/// Where a sprite's top-left corner goes for a position in the safe area (even coordinates).
pub(crate) fn place(
    sprite: &Sprite,
    position: Position,
    frame_width: usize,
    frame_height: usize,
) -> (i64, i64) {
    let (left, top, right, bottom) = safe_area(frame_width, frame_height);
    let (horizontal, vertical) = position.alignment();
    let x = left + (right - left - sprite.width as f64) * horizontal;
    let y = top + (bottom - top - sprite.height as f64) * vertical;
    let even = |value: f64| (value.floor() as i64).div_euclid(2) * 2;
    (even(x), even(y))
}

/// Renders a block of text, wrapped to the safe area's width, into a sprite.
pub(crate) fn render_text(
    font: &FontVec,
    text: &str,
    style: &TextStyle,
    frame_width: usize,
    frame_height: usize,
) -> Sprite {
    let pixel_size = (style.size * frame_height as f64).max(4.0) as f32;
    let scaled = font.as_scaled(PxScale::from(pixel_size));
    let outline_px = style.outline.map_or(0.0, |outline| {
        (outline.width * pixel_size as f64).max(0.0) as f32
    });
    let (left, _, right, _) = safe_area(frame_width, frame_height);
    let max_width = ((right - left) as f32 - 2.0 * outline_px).max(pixel_size);
    let lines = wrap(&scaled, text, max_width);
    let line_height = scaled.height() + scaled.line_gap();
    let widths: Vec<f32> = lines.iter().map(|line| line_width(&scaled, line)).collect();
    let block_width = widths.iter().copied().fold(0.0, f32::max);
    let pad = outline_px.ceil() as usize + 2;
    let width = block_width.ceil() as usize + 2 * pad;
    let height = (line_height * lines.len() as f32).ceil() as usize + 2 * pad;
    let (horizontal, _) = style.position.alignment();

    let mut coverage = vec![0.0f32; width * height];
    for (index, line) in lines.iter().enumerate() {
        let mut x = pad as f32 + (block_width - widths[index]) * horizontal as f32;
        let baseline = pad as f32 + index as f32 * line_height + scaled.ascent();
        let mut previous = None;
        for character in line.chars() {
            let id = scaled.glyph_id(character);
            if let Some(previous) = previous {
                x += scaled.kern(previous, id);
            }
            let glyph = id.with_scale_and_position(pixel_size, point(x, baseline));
            x += scaled.h_advance(id);
            previous = Some(id);
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, value| {
                let px = bounds.min.x as i64 + gx as i64;
                let py = bounds.min.y as i64 + gy as i64;
                if px >= 0 && py >= 0 && (px as usize) < width && (py as usize) < height {
                    let cell = &mut coverage[py as usize * width + px as usize];
                    *cell = (*cell + value).min(1.0);
                }
            });
        }
    }

    let outline_coverage = match style.outline {
        Some(_) if outline_px > 0.0 => dilate(&coverage, width, height, outline_px),
        _ => vec![0.0; width * height],
    };
    let fill = style.color;
    let outline_color = style.outline.map_or(fill, |outline| outline.color);
    let mut rgba = Vec::with_capacity(width * height * 4);
    for (&fill_coverage, &edge_coverage) in coverage.iter().zip(&outline_coverage) {
        let fill_alpha = fill_coverage * fill.a as f32 / 255.0;
        let edge_alpha = edge_coverage * outline_color.a as f32 / 255.0 * (1.0 - fill_alpha);
        let alpha = fill_alpha + edge_alpha;
        let mix = |a: u8, b: u8| {
            if alpha <= 0.0 {
                0
            } else {
                ((a as f32 * fill_alpha + b as f32 * edge_alpha) / alpha).round() as u8
            }
        };
        rgba.extend_from_slice(&[
            mix(fill.r, outline_color.r),
            mix(fill.g, outline_color.g),
            mix(fill.b, outline_color.b),
            (alpha * 255.0).round() as u8,
        ]);
    }
    Sprite::from_rgba(width, height, &rgba)
}

fn line_width<F: Font, S: ScaleFont<F>>(scaled: &S, line: &str) -> f32 {
    let mut width = 0.0;
    let mut previous = None;
    for character in line.chars() {
        let id = scaled.glyph_id(character);
        if let Some(previous) = previous {
            width += scaled.kern(previous, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// Greedy word wrap; explicit newlines always break, a word longer than a line stands alone.
fn wrap<F: Font, S: ScaleFont<F>>(scaled: &S, text: &str, max_width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if line.is_empty() || line_width(scaled, &candidate) <= max_width {
                line = candidate;
            } else {
                lines.push(std::mem::replace(&mut line, word.to_string()));
            }
        }
        lines.push(line);
    }
    lines
}

/// Grows coverage by `radius` pixels with a round brush: the outline.
fn dilate(coverage: &[f32], width: usize, height: usize, radius: f32) -> Vec<f32> {
    let reach = radius.ceil() as i64;
    let offsets: Vec<(i64, i64, f32)> = (-reach..=reach)
        .flat_map(|dy| (-reach..=reach).map(move |dx| (dx, dy)))
        .filter_map(|(dx, dy)| {
            let distance = ((dx * dx + dy * dy) as f32).sqrt();
            let weight = (radius + 0.5 - distance).clamp(0.0, 1.0);
            (weight > 0.0).then_some((dx, dy, weight))
        })
        .collect();
    let mut out = vec![0.0; width * height];
    for y in 0..height as i64 {
        for x in 0..width as i64 {
            let mut best = 0.0f32;
            for &(dx, dy, weight) in &offsets {
                let (sx, sy) = (x + dx, y + dy);
                if sx >= 0 && sy >= 0 && sx < width as i64 && sy < height as i64 {
                    best = best.max(coverage[sy as usize * width + sx as usize] * weight);
                }
            }
            out[y as usize * width + x as usize] = best;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn font() -> FontVec {
        load_font(std::fs::read(DEFAULT_FONT).expect("fonts-dejavu-core is installed")).unwrap()
    }

    #[test]
    fn text_wraps_inside_the_safe_area() {
        let style = TextStyle::default();
        let long = "a caption long enough that it cannot possibly fit on one line of a vertical video frame";
        let sprite = render_text(&font(), long, &style, 1080, 1920);
        let (left, _, right, _) = safe_area(1080, 1920);
        assert!(
            sprite.width as f64 <= right - left + 16.0,
            "{} wide",
            sprite.width
        );
        assert!(
            sprite.height as f64 > 3.0 * style.size * 1920.0,
            "wrapped to several lines"
        );
        let (x, y) = place(&sprite, Position::BottomCenter, 1080, 1920);
        assert!(x >= left as i64 - 8 && y + sprite.height as i64 <= (1920.0 * 0.78) as i64 + 2);
    }

    #[test]
    fn glyphs_are_filled_and_outlined() {
        let sprite = render_text(&font(), "HI", &TextStyle::default(), 1920, 1080);
        let white = sprite
            .y
            .iter()
            .zip(&sprite.alpha)
            .filter(|&(&y, &a)| y > 200 && a == 255)
            .count();
        let dark = sprite
            .y
            .iter()
            .zip(&sprite.alpha)
            .filter(|&(&y, &a)| y < 40 && a > 200)
            .count();
        assert!(
            white > 100 && dark > 100,
            "{white} fill pixels, {dark} outline pixels"
        );
    }
}
