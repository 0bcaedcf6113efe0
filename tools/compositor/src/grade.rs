//! Colour grading in the frame's own YUV: a 3D LUT (.cube) or brightness/contrast/saturation.

use crate::picture::{Frame, rgb_to_yuv, to_u8, yuv_to_rgb};

/// Grid points per axis of the YUV-domain table the LUT is resampled into.
const GRID: usize = 33;

/// A grade ready to apply to frames.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FrameGrade {
    /// Per-value tables for luma and chroma.
    Eq {
        luma: Box<[u8; 256]>,
        chroma: Box<[u8; 256]>,
    },
    /// The LUT resampled onto a YUV grid, so frames never leave YUV.
    Lut { table: Vec<[f32; 3]> },
}

impl FrameGrade {
    /// FFmpeg eq's definitions: brightness is added to luma, contrast scales luma around
    /// mid-grey, saturation scales chroma around neutral.
    pub fn eq(brightness: f64, contrast: f64, saturation: f64) -> FrameGrade {
        let mut luma = [0; 256];
        let mut chroma = [0; 256];
        for value in 0..256 {
            let level = value as f64;
            luma[value] = to_u8(((level - 128.0) * contrast + 128.0 + brightness * 255.0) as f32);
            chroma[value] = to_u8(((level - 128.0) * saturation + 128.0) as f32);
        }
        FrameGrade::Eq {
            luma: Box::new(luma),
            chroma: Box::new(chroma),
        }
    }

    /// Resamples a parsed .cube LUT onto the YUV grid.
    pub fn lut(cube: &CubeLut) -> FrameGrade {
        let mut table = Vec::with_capacity(GRID * GRID * GRID);
        let step = 255.0 / (GRID - 1) as f32;
        for yi in 0..GRID {
            for ui in 0..GRID {
                for vi in 0..GRID {
                    let (r, g, b) =
                        yuv_to_rgb(yi as f32 * step, ui as f32 * step, vi as f32 * step);
                    let [r, g, b] = cube.apply([r / 255.0, g / 255.0, b / 255.0]);
                    let (y, u, v) = rgb_to_yuv(r * 255.0, g * 255.0, b * 255.0);
                    table.push([y, u, v]);
                }
            }
        }
        FrameGrade::Lut { table }
    }

    /// Grades a frame in place.
    pub fn apply(&self, frame: &mut Frame) {
        match self {
            FrameGrade::Eq { luma, chroma } => {
                frame
                    .y
                    .iter_mut()
                    .for_each(|value| *value = luma[*value as usize]);
                frame
                    .u
                    .iter_mut()
                    .for_each(|value| *value = chroma[*value as usize]);
                frame
                    .v
                    .iter_mut()
                    .for_each(|value| *value = chroma[*value as usize]);
            }
            FrameGrade::Lut { table } => apply_yuv_table(table, frame),
        }
    }
}

fn apply_yuv_table(table: &[[f32; 3]], frame: &mut Frame) {
    let width = frame.width;
    let chroma_width = width / 2;
    for cy in 0..frame.height / 2 {
        for cx in 0..chroma_width {
            let chroma_index = cy * chroma_width + cx;
            let (u, v) = (frame.u[chroma_index] as f32, frame.v[chroma_index] as f32);
            let mut luma_sum = 0.0;
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let index = (2 * cy + dy) * width + 2 * cx + dx;
                let y = frame.y[index] as f32;
                luma_sum += y;
                frame.y[index] = to_u8(lookup(table, y, u, v)[0]);
            }
            let [_, u2, v2] = lookup(table, luma_sum / 4.0, u, v);
            frame.u[chroma_index] = to_u8(u2);
            frame.v[chroma_index] = to_u8(v2);
        }
    }
}

/// Trilinear interpolation in a GRID³ table indexed by values 0..255.
fn lookup(table: &[[f32; 3]], y: f32, u: f32, v: f32) -> [f32; 3] {
    let scale = (GRID - 1) as f32 / 255.0;
    let split = |value: f32| {
        let position = (value * scale).clamp(0.0, (GRID - 1) as f32);
        let low = (position.floor() as usize).min(GRID - 2);
        (low, position - low as f32)
    };
    let ((y0, fy), (u0, fu), (v0, fv)) = (split(y), split(u), split(v));
    let at = |a: usize, b: usize, c: usize| table[(a * GRID + b) * GRID + c];
    let mut out = [0.0; 3];
    for (channel, value) in out.iter_mut().enumerate() {
        let c = |a, b, c| at(a, b, c)[channel];
        let lerp = |p: f32, q: f32, t: f32| p + (q - p) * t;
        let low = lerp(
            lerp(c(y0, u0, v0), c(y0, u0, v0 + 1), fv),
            lerp(c(y0, u0 + 1, v0), c(y0, u0 + 1, v0 + 1), fv),
            fu,
        );
        let high = lerp(
            lerp(c(y0 + 1, u0, v0), c(y0 + 1, u0, v0 + 1), fv),
            lerp(c(y0 + 1, u0 + 1, v0), c(y0 + 1, u0 + 1, v0 + 1), fv),
            fu,
        );
        *value = lerp(low, high, fy);
    }
    out
}

/// A 3D LUT read from an Adobe/Resolve .cube file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CubeLut {
    size: usize,
    domain_min: [f32; 3],
    domain_max: [f32; 3],
    /// Entries with red changing fastest, as the format stores them.
    entries: Vec<[f32; 3]>,
}

impl CubeLut {
    /// Parses the text of a .cube file.
    pub fn parse(text: &str) -> Result<CubeLut, String> {
        let mut size = None;
        let mut domain_min = [0.0; 3];
        let mut domain_max = [1.0; 3];
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let keyword = words.next().unwrap_or_default();
            let triple = |words: std::str::SplitWhitespace| -> Result<[f32; 3], String> {
                let values: Vec<f32> = words
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("line {}: not a number", number + 1))?;
                <[f32; 3]>::try_from(values)
                    .map_err(|_| format!("line {}: expected three numbers", number + 1))
            };
            match keyword {
                "TITLE" => {}
                "LUT_1D_SIZE" => return Err("1D LUTs are not supported; use a 3D .cube".into()),
                "LUT_3D_SIZE" => {
                    let value: usize =
                        words
                            .next()
                            .and_then(|word| word.parse().ok())
                            .ok_or_else(|| {
                                format!("line {}: LUT_3D_SIZE needs a number", number + 1)
                            })?;
                    if !(2..=256).contains(&value) {
                        return Err(format!("LUT_3D_SIZE {value} is outside 2..256"));
                    }
                    size = Some(value);
                }
                "DOMAIN_MIN" => domain_min = triple(words)?,
                "DOMAIN_MAX" => domain_max = triple(words)?,
                _ if keyword.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') => {
                    entries.push(triple(line.split_whitespace())?);
                }
                _ => {}
            }
        }
        let size = size.ok_or("no LUT_3D_SIZE line")?;
        if entries.len() != size * size * size {
            return Err(format!(
                "LUT_3D_SIZE {size} needs {} entries, found {}",
                size * size * size,
                entries.len()
            ));
        }
        if (0..3).any(|c| domain_max[c] <= domain_min[c]) {
            return Err("DOMAIN_MAX must exceed DOMAIN_MIN".into());
        }
        Ok(CubeLut {
            size,
            domain_min,
            domain_max,
            entries,
        })
    }

    /// Maps an RGB triple (0..1) through the LUT, trilinearly; out-of-domain input is clamped.
    pub fn apply(&self, rgb: [f32; 3]) -> [f32; 3] {
        let n = self.size;
        let mut low = [0; 3];
        let mut fraction = [0.0; 3];
        for c in 0..3 {
            let normalised = ((rgb[c] - self.domain_min[c])
                / (self.domain_max[c] - self.domain_min[c]))
                .clamp(0.0, 1.0);
            let position = normalised * (n - 1) as f32;
            low[c] = (position.floor() as usize).min(n - 2);
            fraction[c] = position - low[c] as f32;
        }
        let at = |r: usize, g: usize, b: usize| self.entries[(b * n + g) * n + r];
        let mut out = [0.0; 3];
        for (channel, value) in out.iter_mut().enumerate() {
            let c = |dr: usize, dg: usize, db: usize| {
                at(low[0] + dr, low[1] + dg, low[2] + db)[channel]
            };
            let lerp = |p: f32, q: f32, t: f32| p + (q - p) * t;
            let g0 = lerp(
                lerp(c(0, 0, 0), c(1, 0, 0), fraction[0]),
                lerp(c(0, 1, 0), c(1, 1, 0), fraction[0]),
                fraction[1],
            );
            let g1 = lerp(
                lerp(c(0, 0, 1), c(1, 0, 1), fraction[0]),
                lerp(c(0, 1, 1), c(1, 1, 1), fraction[0]),
                fraction[1],
            );
            *value = lerp(g0, g1, fraction[2]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::Yuv;

    fn identity_cube(size: usize) -> String {
        let mut text = format!("TITLE \"identity\"\nLUT_3D_SIZE {size}\n");
        for b in 0..size {
            for g in 0..size {
                for r in 0..size {
                    let s = (size - 1) as f32;
                    text.push_str(&format!(
                        "{} {} {}\n",
                        r as f32 / s,
                        g as f32 / s,
                        b as f32 / s
                    ));
                }
            }
        }
        text
    }

    #[test]
    fn an_identity_lut_keeps_the_frame() {
        let grade = FrameGrade::lut(&CubeLut::parse(&identity_cube(17)).unwrap());
        let colour = Yuv::from_rgb(200, 90, 40);
        let mut frame = Frame::new(4, 4, colour);
        grade.apply(&mut frame);
        assert!((frame.y[0] as i32 - colour.y as i32).abs() <= 1);
        assert!((frame.u[0] as i32 - colour.u as i32).abs() <= 1);
        assert!((frame.v[0] as i32 - colour.v as i32).abs() <= 1);
    }

    #[test]
    fn an_inverting_lut_inverts() {
        let cube = CubeLut::parse(
            "LUT_3D_SIZE 2\n1 1 1\n0 1 1\n1 0 1\n0 0 1\n1 1 0\n0 1 0\n1 0 0\n0 0 0\n",
        )
        .unwrap();
        let [r, g, b] = cube.apply([0.2, 0.5, 0.9]);
        assert!((r - 0.8).abs() < 1e-5 && (g - 0.5).abs() < 1e-5 && (b - 0.1).abs() < 1e-5);
    }

    #[test]
    fn bad_cubes_are_refused_with_a_reason() {
        assert!(
            CubeLut::parse("LUT_3D_SIZE 2\n0 0 0\n")
                .unwrap_err()
                .contains("needs 8 entries")
        );
        assert!(
            CubeLut::parse("LUT_1D_SIZE 4\n")
                .unwrap_err()
                .contains("1D")
        );
        assert!(CubeLut::parse("hello").unwrap_err().contains("LUT_3D_SIZE"));
        assert!(
            CubeLut::parse("LUT_3D_SIZE 2\n0 0 x\n")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn eq_saturation_zero_makes_grey() {
        let mut frame = Frame::new(4, 4, Yuv::from_rgb(200, 30, 30));
        FrameGrade::eq(0.0, 1.0, 0.0).apply(&mut frame);
        assert_eq!((frame.u[0], frame.v[0]), (128, 128));
    }
}
