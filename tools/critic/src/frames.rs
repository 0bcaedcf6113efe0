//! Pictures to critique: the part of a still a frame shows, and a contact sheet of scenes.

use image::{RgbImage, imageops};

/// Width of the frames the critic sees and of contact-sheet thumbnails.
pub const THUMB_WIDTH: u32 = 320;

/// A region of a picture as fractions of its width and height: `[x, y, w, h]`.
pub type Region = [f64; 4];

/// What a frame of shape `(width, height)` shows of `region` of `picture`: the region cropped
/// to the frame's shape around its centre (as a cover fit does), [`THUMB_WIDTH`] wide.
pub fn framed(picture: &RgbImage, region: Region, frame: (u32, u32)) -> RgbImage {
    let (pw, ph) = (f64::from(picture.width()), f64::from(picture.height()));
    let [x, y, w, h] = region;
    let (rx, ry, rw, rh) = (x * pw, y * ph, (w * pw).max(1.0), (h * ph).max(1.0));
    let aspect = f64::from(frame.0.max(1)) / f64::from(frame.1.max(1));
    let (cw, ch) = if rw / rh > aspect {
        (rh * aspect, rh)
    } else {
        (rw, rw / aspect)
    };
    let (cx, cy) = (rx + (rw - cw) / 2.0, ry + (rh - ch) / 2.0);
    let crop = imageops::crop_imm(
        picture,
        cx.max(0.0) as u32,
        cy.max(0.0) as u32,
        (cw as u32).clamp(1, picture.width().max(1)),
        (ch as u32).clamp(1, picture.height().max(1)),
    )
    .to_image();
    let height = ((f64::from(THUMB_WIDTH) / aspect).round() as u32).max(1);
    imageops::resize(&crop, THUMB_WIDTH, height, imageops::FilterType::Triangle)
}

/// A still's first and last frame in the shape `frame`, for a camera moving from region
/// `from` to region `to`. The still is shrunk once, coarsely and fast, before framing.
pub fn first_and_last(
    encoded: &[u8],
    from: Region,
    to: Region,
    frame: (u32, u32),
) -> Result<(RgbImage, RgbImage), image::ImageError> {
    // About twice the thumbnails' size is detail enough: keep every n-th pixel (the
    // framing's own filter smooths what that skips), which costs only the output's size.
    const WORKING_SIDE: u32 = 2 * THUMB_WIDTH * 16 / 9;
    let picture = image::load_from_memory(encoded)?.to_rgb8();
    let (w, h) = picture.dimensions();
    let step = (w.max(h) / WORKING_SIDE).max(1);
    let picture = if step > 1 {
        RgbImage::from_fn(w / step, h / step, |x, y| {
            *picture.get_pixel(x * step + step / 2, y * step + step / 2)
        })
    } else {
        picture
    };
    Ok((framed(&picture, from, frame), framed(&picture, to, frame)))
}

/// Thumbnails in rows of up to six, on a dark ground.
pub fn contact_sheet(thumbs: &[RgbImage]) -> RgbImage {
    const GAP: u32 = 8;
    let columns = thumbs.len().clamp(1, 6) as u32;
    let rows = (thumbs.len() as u32).div_ceil(columns).max(1);
    let (tw, th) = thumbs
        .first()
        .map_or((THUMB_WIDTH, 180), |t| t.dimensions());
    let mut sheet = RgbImage::from_pixel(
        columns * (tw + GAP) + GAP,
        rows * (th + GAP) + GAP,
        image::Rgb([18, 18, 22]),
    );
    for (i, thumb) in thumbs.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        imageops::overlay(
            &mut sheet,
            thumb,
            i64::from(GAP + col * (tw + GAP)),
            i64::from(GAP + row * (th + GAP)),
        );
    }
    sheet
}

/// Encodes a picture as PNG.
pub fn png(picture: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut bytes, image::ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portrait_frame_of_a_landscape_picture_is_its_centre() {
        // Left third red, middle blue, right third green.
        let picture = RgbImage::from_fn(300, 100, |x, _| match x / 100 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 0, 255]),
            _ => image::Rgb([0, 255, 0]),
        });
        let frame = framed(&picture, [0.0, 0.0, 1.0, 1.0], (9, 16));
        assert_eq!(frame.width(), THUMB_WIDTH);
        let centre = frame.get_pixel(THUMB_WIDTH / 2, frame.height() / 2);
        assert_eq!(centre.0, [0, 0, 255]);
        let left = framed(&picture, [0.0, 0.0, 0.3, 1.0], (9, 16));
        assert_eq!(left.get_pixel(THUMB_WIDTH / 2, 10).0, [255, 0, 0]);
        let sheet = contact_sheet(&[frame.clone(), frame.clone(), frame]);
        assert_eq!(sheet.width(), 3 * (THUMB_WIDTH + 8) + 8);
    }
}
