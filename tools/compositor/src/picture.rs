//! Pictures in the encoder's colour space (BT.709, limited range) and the pixel work done on
//! them: region resampling, blending, wipes, sprites.
//!
//! Frames are composed straight in YUV 4:2:0, the encoder's own format, so no frame is ever
//! converted from RGB on its way to x264. Sources are 4:2:0 as well, so chroma is resampled at
//! chroma resolution: half the work, and no aliasing from skipping source samples.

use crate::timeline::Color;

/// A colour in BT.709 limited-range YUV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Yuv {
    pub y: u8,
    pub u: u8,
    pub v: u8,
}

impl Yuv {
    pub const BLACK: Yuv = Yuv {
        y: 16,
        u: 128,
        v: 128,
    };

    pub fn from_rgb(r: u8, g: u8, b: u8) -> Yuv {
        let (y, u, v) = rgb_to_yuv(r as f32, g as f32, b as f32);
        Yuv {
            y: to_u8(y),
            u: to_u8(u),
            v: to_u8(v),
        }
    }

    pub fn from_color(color: Color) -> Yuv {
        Yuv::from_rgb(color.r, color.g, color.b)
    }
}

/// BT.709 RGB (0..255) to limited-range YUV (Y 16..235, UV 16..240), unrounded.
pub(crate) fn rgb_to_yuv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let luma = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let y = 16.0 + luma * (219.0 / 255.0);
    let u = 128.0 + (b - luma) / 1.8556 * (224.0 / 255.0);
    let v = 128.0 + (r - luma) / 1.5748 * (224.0 / 255.0);
    (y, u, v)
}

/// The inverse of [`rgb_to_yuv`], RGB unclamped.
pub(crate) fn yuv_to_rgb(y: f32, u: f32, v: f32) -> (f32, f32, f32) {
    let luma = (y - 16.0) * (255.0 / 219.0);
    let cb = (u - 128.0) * (255.0 / 224.0);
    let cr = (v - 128.0) * (255.0 / 224.0);
    let r = luma + 1.5748 * cr;
    let b = luma + 1.8556 * cb;
    let g = (luma - 0.2126 * r - 0.0722 * b) / 0.7152;
    (r, g, b)
}

pub(crate) fn to_u8(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// A picture in planar YUV 4:2:0: an output frame (even sizes) or a source still or clip frame
/// (chroma planes round odd sizes up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Frame {
    pub fn new(width: usize, height: usize, color: Yuv) -> Frame {
        let chroma = width.div_ceil(2) * height.div_ceil(2);
        Frame {
            width,
            height,
            y: vec![color.y; width * height],
            u: vec![color.u; chroma],
            v: vec![color.v; chroma],
        }
    }

    pub fn fill(&mut self, color: Yuv) {
        self.y.fill(color.y);
        self.u.fill(color.u);
        self.v.fill(color.v);
    }

    /// Chroma plane width and height.
    pub fn chroma_size(&self) -> (usize, usize) {
        (self.width.div_ceil(2), self.height.div_ceil(2))
    }

    /// Draws `region` of `source` (in source pixels) scaled into `area` of this frame.
    pub fn draw(&mut self, source: &Frame, region: RegionF, area: Area) {
        let (sw, sh) = (source.width, source.height);
        resample_plane(&source.y, sw, sh, region, &mut self.y, self.width, area);
        let (cw, ch) = source.chroma_size();
        let chroma_region = region.halved();
        let chroma_area = area.halved();
        let stride = self.chroma_size().0;
        resample_plane(
            &source.u,
            cw,
            ch,
            chroma_region,
            &mut self.u,
            stride,
            chroma_area,
        );
        resample_plane(
            &source.v,
            cw,
            ch,
            chroma_region,
            &mut self.v,
            stride,
            chroma_area,
        );
    }

    /// Mixes `other` into this frame: `weight` 0 keeps this frame, 1 gives `other`.
    pub fn mix(&mut self, other: &Frame, weight: f64) {
        let w = (weight.clamp(0.0, 1.0) * 256.0).round() as u32;
        for (plane, other_plane) in [
            (&mut self.y, &other.y),
            (&mut self.u, &other.u),
            (&mut self.v, &other.v),
        ] {
            for (a, &b) in plane.iter_mut().zip(other_plane) {
                *a = ((*a as u32 * (256 - w) + b as u32 * w + 128) >> 8) as u8;
            }
        }
    }

    /// Fades this frame towards a flat colour: `weight` 0 keeps the frame, 1 gives the colour.
    pub fn fade_to(&mut self, color: Yuv, weight: f64) {
        let w = (weight.clamp(0.0, 1.0) * 256.0).round() as u32;
        for (plane, value) in [
            (&mut self.y, color.y),
            (&mut self.u, color.u),
            (&mut self.v, color.v),
        ] {
            for a in plane.iter_mut() {
                *a = ((*a as u32 * (256 - w) + value as u32 * w + 128) >> 8) as u8;
            }
        }
    }

    /// Replaces the part of this frame inside `area` with `other`'s.
    pub fn replace_area(&mut self, other: &Frame, area: Area) {
        copy_area(&mut self.y, &other.y, self.width, area);
        let chroma = area.halved();
        let stride = self.chroma_size().0;
        copy_area(&mut self.u, &other.u, stride, chroma);
        copy_area(&mut self.v, &other.v, stride, chroma);
    }

    /// Draws a sprite with its top-left corner at (`x`, `y`), both even, scaled in opacity.
    pub fn blend_sprite(&mut self, sprite: &Sprite, x: i64, y: i64, opacity: f64) {
        let opacity = (opacity.clamp(0.0, 1.0) * 256.0).round() as u32;
        if opacity == 0 {
            return;
        }
        blend_plane(
            &mut self.y,
            self.width,
            self.height,
            &sprite.y,
            &sprite.alpha,
            sprite.width,
            sprite.height,
            x,
            y,
            opacity,
        );
        let (cw, ch) = self.chroma_size();
        let (sw, sh) = (sprite.width / 2, sprite.height / 2);
        blend_plane(
            &mut self.u,
            cw,
            ch,
            &sprite.u,
            &sprite.chroma_alpha,
            sw,
            sh,
            x / 2,
            y / 2,
            opacity,
        );
        blend_plane(
            &mut self.v,
            cw,
            ch,
            &sprite.v,
            &sprite.chroma_alpha,
            sw,
            sh,
            x / 2,
            y / 2,
            opacity,
        );
    }
}

fn copy_area(plane: &mut [u8], other: &[u8], stride: usize, area: Area) {
    for row in area.y..area.y + area.height {
        let start = row * stride + area.x;
        plane[start..start + area.width].copy_from_slice(&other[start..start + area.width]);
    }
}

#[allow(clippy::too_many_arguments)]
fn blend_plane(
    plane: &mut [u8],
    width: usize,
    height: usize,
    sprite: &[u8],
    alpha: &[u8],
    sprite_width: usize,
    sprite_height: usize,
    x: i64,
    y: i64,
    opacity: u32,
) {
    for row in 0..sprite_height {
        let target_row = y + row as i64;
        if target_row < 0 || target_row >= height as i64 {
            continue;
        }
        for column in 0..sprite_width {
            let target_column = x + column as i64;
            if target_column < 0 || target_column >= width as i64 {
                continue;
            }
            let source = row * sprite_width + column;
            let a = alpha[source] as u32 * opacity / 256;
            if a == 0 {
                continue;
            }
            let target = &mut plane[target_row as usize * width + target_column as usize];
            *target = ((*target as u32 * (255 - a) + sprite[source] as u32 * a + 127) / 255) as u8;
        }
    }
}

/// A rectangle in integer pixels of a plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Area {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl Area {
    pub fn full(width: usize, height: usize) -> Area {
        Area {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    /// The chroma samples covering this area in a half-resolution chroma plane (an odd right
    /// or bottom edge takes the chroma column or row it shares).
    fn halved(self) -> Area {
        let (x, y) = (self.x / 2, self.y / 2);
        Area {
            x,
            y,
            width: (self.x + self.width).div_ceil(2) - x,
            height: (self.y + self.height).div_ceil(2) - y,
        }
    }
}

/// A rectangle in fractional source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RegionF {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl RegionF {
    /// The same region in a half-resolution chroma plane.
    fn halved(self) -> RegionF {
        RegionF {
            x: self.x / 2.0,
            y: self.y / 2.0,
            width: self.width / 2.0,
            height: self.height / 2.0,
        }
    }
}

impl Frame {
    /// Converts packed RGBA, compositing any transparency over black; chroma is the average of
    /// each 2×2 block.
    pub fn from_rgba(width: usize, height: usize, rgba: &[u8]) -> Frame {
        let opaque = |x: usize, y: usize| -> [f32; 3] {
            let pixel = &rgba[(y * width + x) * 4..][..4];
            let alpha = pixel[3] as f32 / 255.0;
            [
                pixel[0] as f32 * alpha,
                pixel[1] as f32 * alpha,
                pixel[2] as f32 * alpha,
            ]
        };
        let mut y = Vec::with_capacity(width * height);
        for row in 0..height {
            for column in 0..width {
                let [r, g, b] = opaque(column, row);
                y.push(to_u8(rgb_to_yuv(r, g, b).0));
            }
        }
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let (mut u, mut v) = (Vec::with_capacity(cw * ch), Vec::with_capacity(cw * ch));
        for row in 0..ch {
            for column in 0..cw {
                let mut sum = [0.0f32; 3];
                let mut count = 0.0;
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (x, y) = (2 * column + dx, 2 * row + dy);
                    if x < width && y < height {
                        let rgb = opaque(x, y);
                        (0..3).for_each(|c| sum[c] += rgb[c]);
                        count += 1.0;
                    }
                }
                let (_, pu, pv) = rgb_to_yuv(sum[0] / count, sum[1] / count, sum[2] / count);
                u.push(to_u8(pu));
                v.push(to_u8(pv));
            }
        }
        Frame {
            width,
            height,
            y,
            u,
            v,
        }
    }

    /// A heavily blurred copy at `width`×`height`: the fill behind contained
    /// sources.
    pub fn blurred(&self, region: RegionF, width: usize, height: usize) -> Frame {
        let mut small = Frame::new(width, height, Yuv::BLACK);
        small.draw(self, region, Area::full(width, height));
        let (cw, ch) = small.chroma_size();
        let radius = (width.max(height) / 24).max(1);
        for _ in 0..3 {
            box_blur(&mut small.y, width, height, radius);
            box_blur(&mut small.u, cw, ch, (radius / 2).max(1));
            box_blur(&mut small.v, cw, ch, (radius / 2).max(1));
        }
        small
    }
}

/// One pass of a separable box blur with edge clamping.
fn box_blur(plane: &mut [u8], width: usize, height: usize, radius: usize) {
    let mut line = Vec::new();
    let blur_line = |values: &mut Vec<u8>, out: &mut dyn FnMut(usize, u8)| {
        let n = values.len() as i64;
        let r = radius as i64;
        let at = |i: i64| values[i.clamp(0, n - 1) as usize] as u32;
        let mut sum: u32 = (-r..=r).map(at).sum();
        let window = (2 * r + 1) as u32;
        for i in 0..n {
            out(i as usize, ((sum + window / 2) / window) as u8);
            sum = sum + at(i + r + 1) - at(i - r);
        }
    };
    for row in 0..height {
        line.clear();
        line.extend_from_slice(&plane[row * width..(row + 1) * width]);
        blur_line(&mut line, &mut |i, value| plane[row * width + i] = value);
    }
    for column in 0..width {
        line.clear();
        line.extend((0..height).map(|row| plane[row * width + column]));
        blur_line(&mut line, &mut |i, value| plane[i * width + column] = value);
    }
}

/// An overlay bitmap in YUV with alpha, chroma already at half resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sprite {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub alpha: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    pub chroma_alpha: Vec<u8>,
}

impl Sprite {
    /// Builds a sprite from straight (not premultiplied) RGBA, padding odd sizes by a pixel.
    pub fn from_rgba(width: usize, height: usize, rgba: &[u8]) -> Sprite {
        let (even_width, even_height) = (width.next_multiple_of(2), height.next_multiple_of(2));
        let pixel = |x: usize, y: usize| -> [f32; 4] {
            if x >= width || y >= height {
                return [0.0; 4];
            }
            let p = &rgba[(y * width + x) * 4..][..4];
            [p[0] as f32, p[1] as f32, p[2] as f32, p[3] as f32]
        };
        let mut sprite = Sprite {
            width: even_width,
            height: even_height,
            y: Vec::with_capacity(even_width * even_height),
            alpha: Vec::with_capacity(even_width * even_height),
            u: Vec::new(),
            v: Vec::new(),
            chroma_alpha: Vec::new(),
        };
        for y in 0..even_height {
            for x in 0..even_width {
                let [r, g, b, a] = pixel(x, y);
                sprite.y.push(to_u8(rgb_to_yuv(r, g, b).0));
                sprite.alpha.push(a as u8);
            }
        }
        for y in (0..even_height).step_by(2) {
            for x in (0..even_width).step_by(2) {
                let block = [
                    pixel(x, y),
                    pixel(x + 1, y),
                    pixel(x, y + 1),
                    pixel(x + 1, y + 1),
                ];
                let alpha: f32 = block.iter().map(|p| p[3]).sum();
                let weighted =
                    |c: usize| block.iter().map(|p| p[c] * p[3]).sum::<f32>() / alpha.max(1.0);
                let (_, u, v) = rgb_to_yuv(weighted(0), weighted(1), weighted(2));
                sprite.u.push(to_u8(u));
                sprite.v.push(to_u8(v));
                sprite.chroma_alpha.push(to_u8(alpha / 4.0));
            }
        }
        sprite
    }
}

/// Resamples `region` of a source plane into `area` of a destination plane, bilinearly, with
/// 8-bit fixed-point weights and the source's edges clamped.
fn resample_plane(
    source: &[u8],
    source_width: usize,
    source_height: usize,
    region: RegionF,
    target: &mut [u8],
    target_stride: usize,
    area: Area,
) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let taps = |count: usize, start: f64, length: f64, limit: usize| -> Vec<(usize, usize, u32)> {
        let step = length / count as f64;
        (0..count)
            .map(|i| {
                let position =
                    (start + (i as f64 + 0.5) * step - 0.5).clamp(0.0, (limit - 1) as f64);
                let first = position.floor() as usize;
                let second = (first + 1).min(limit - 1);
                let weight = ((position - first as f64) * 256.0).round() as u32;
                (first, second, weight)
            })
            .collect()
    };
    let columns = taps(area.width, region.x, region.width, source_width);
    let rows = taps(area.height, region.y, region.height, source_height);
    // Separable: each source row is filtered horizontally once into 8.8 fixed point and kept
    // while neighbouring output rows need it; the vertical blend then runs over whole rows,
    // which the compiler vectorises.
    let mut filtered: [(usize, Vec<u16>); 2] = [
        (usize::MAX, vec![0; area.width]),
        (usize::MAX, vec![0; area.width]),
    ];
    let filter_row = |index: usize, out: &mut Vec<u16>| {
        let row = &source[index * source_width..(index + 1) * source_width];
        for (value, &(left, right, wx)) in out.iter_mut().zip(&columns) {
            *value = (row[left] as u32 * (256 - wx) + row[right] as u32 * wx) as u16;
        }
    };
    for (row_index, &(top, bottom, wy)) in rows.iter().enumerate() {
        for wanted in [top, bottom] {
            if filtered[0].0 != wanted && filtered[1].0 != wanted {
                let slot = usize::from(filtered[0].0 == top || filtered[0].0 == bottom);
                filter_row(wanted, &mut filtered[slot].1);
                filtered[slot].0 = wanted;
            }
        }
        let upper = if filtered[0].0 == top {
            &filtered[0].1
        } else {
            &filtered[1].1
        };
        let lower = if filtered[0].0 == bottom {
            &filtered[0].1
        } else {
            &filtered[1].1
        };
        let start = (area.y + row_index) * target_stride + area.x;
        let out = &mut target[start..start + area.width];
        for ((value, &a), &b) in out.iter_mut().zip(upper).zip(lower) {
            *value = ((a as u32 * (256 - wy) + b as u32 * wy + 32768) >> 16) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_conversion_round_trips() {
        for (r, g, b) in [(0, 0, 0), (255, 255, 255), (255, 0, 0), (12, 200, 90)] {
            let (y, u, v) = rgb_to_yuv(r as f32, g as f32, b as f32);
            let (r2, g2, b2) = yuv_to_rgb(y, u, v);
            assert!(
                (r as f32 - r2).abs() < 0.01
                    && (g as f32 - g2).abs() < 0.01
                    && (b as f32 - b2).abs() < 0.01
            );
        }
        assert_eq!(Yuv::from_rgb(0, 0, 0), Yuv::BLACK);
        assert_eq!(
            Yuv::from_rgb(255, 255, 255),
            Yuv {
                y: 235,
                u: 128,
                v: 128
            }
        );
    }

    #[test]
    fn resampling_an_identity_region_copies_the_plane() {
        let source: Vec<u8> = (0..64).map(|i| (i * 3) as u8).collect();
        let mut target = vec![0; 64];
        let region = RegionF {
            x: 0.0,
            y: 0.0,
            width: 8.0,
            height: 8.0,
        };
        resample_plane(&source, 8, 8, region, &mut target, 8, Area::full(8, 8));
        assert_eq!(source, target);
    }

    #[test]
    fn mixing_halfway_averages() {
        let mut a = Frame::new(
            4,
            4,
            Yuv {
                y: 20,
                u: 100,
                v: 100,
            },
        );
        let b = Frame::new(
            4,
            4,
            Yuv {
                y: 220,
                u: 200,
                v: 50,
            },
        );
        a.mix(&b, 0.5);
        assert_eq!((a.y[0], a.u[0], a.v[0]), (120, 150, 75));
    }

    #[test]
    fn opaque_sprites_replace_and_clear_ones_keep() {
        let mut frame = Frame::new(8, 8, Yuv::BLACK);
        let mut rgba = vec![255; 4 * 4 * 4];
        for pixel in rgba.chunks_exact_mut(4).skip(8) {
            pixel[3] = 0;
        }
        let sprite = Sprite::from_rgba(4, 4, &rgba);
        frame.blend_sprite(&sprite, 2, 2, 1.0);
        assert_eq!(frame.y[2 * 8 + 2], 235);
        assert_eq!(frame.y[4 * 8 + 2], 16);
        assert_eq!(frame.y[0], 16);
    }
}
