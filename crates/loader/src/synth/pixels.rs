//! Synthetic pixel content: a body phantom for greyscale modalities, a fundus-like disk for
//! colour ones, plus seeded noise so that compression ratios look like real images.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Size and sample format of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageGeometry {
    /// Rows (0028,0010).
    pub rows: u16,
    /// Columns (0028,0011).
    pub columns: u16,
    /// Number of frames (1 for single-frame images).
    pub frames: u32,
    /// Samples per pixel: 1 (MONOCHROME2) or 3 (RGB, pixel-interleaved).
    pub samples_per_pixel: u16,
    /// Bits allocated: 8 or 16.
    pub bits_allocated: u16,
    /// Bits stored, at most `bits_allocated`; pixel values stay below `1 << bits_stored`.
    pub bits_stored: u16,
}

impl ImageGeometry {
    /// Greyscale, 16 bits allocated, `bits_stored` used (12 for CT, 14 for DX...).
    pub fn mono16(rows: u16, columns: u16, bits_stored: u16) -> Self {
        Self {
            rows,
            columns,
            frames: 1,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored,
        }
    }

    /// Greyscale, 8 bits.
    pub fn mono8(rows: u16, columns: u16) -> Self {
        Self {
            rows,
            columns,
            frames: 1,
            samples_per_pixel: 1,
            bits_allocated: 8,
            bits_stored: 8,
        }
    }

    /// Colour, RGB 8 bits per sample.
    pub fn rgb8(rows: u16, columns: u16) -> Self {
        Self {
            rows,
            columns,
            frames: 1,
            samples_per_pixel: 3,
            bits_allocated: 8,
            bits_stored: 8,
        }
    }

    /// The same geometry with `frames` frames.
    pub fn with_frames(mut self, frames: u32) -> Self {
        self.frames = frames;
        self
    }

    /// Bytes of one native frame.
    pub fn frame_len(&self) -> usize {
        usize::from(self.rows)
            * usize::from(self.columns)
            * usize::from(self.samples_per_pixel)
            * usize::from(self.bits_allocated / 8)
    }

    /// Bytes of all native frames.
    pub fn pixel_data_len(&self) -> u64 {
        self.frame_len() as u64 * u64::from(self.frames)
    }

    /// `Err(reason)` when the generator cannot make this geometry.
    pub fn validate(&self) -> Result<(), String> {
        if self.rows == 0 || self.columns == 0 || self.frames == 0 {
            return Err(format!(
                "rows, columns and frames must be at least 1 (got {}x{}x{})",
                self.rows, self.columns, self.frames
            ));
        }
        if !matches!(self.samples_per_pixel, 1 | 3) {
            return Err(format!(
                "samples per pixel must be 1 or 3 (got {})",
                self.samples_per_pixel
            ));
        }
        if !matches!(self.bits_allocated, 8 | 16) {
            return Err(format!(
                "bits allocated must be 8 or 16 (got {})",
                self.bits_allocated
            ));
        }
        if self.bits_stored == 0 || self.bits_stored > self.bits_allocated {
            return Err(format!(
                "bits stored must be 1..={} (got {})",
                self.bits_allocated, self.bits_stored
            ));
        }
        // Pixel Data with a defined length is limited to 2^32 - 2 bytes.
        if self.pixel_data_len() >= u64::from(u32::MAX) {
            return Err(format!(
                "pixel data of {} bytes does not fit a 32-bit length",
                self.pixel_data_len()
            ));
        }
        Ok(())
    }
}

/// The native pixel data (little endian, pixel-interleaved) of an image made with `seed`.
///
/// Instances built by [`InstanceBuilder`](super::InstanceBuilder) use exactly these bytes before
/// encoding, so tests compare decoded pixels with this function's output: a reference that does
/// not come from any decoder.
pub fn reference_pixels(geometry: &ImageGeometry, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5049_5845_4c53); // "PIXELS": apart from UID streams
    let mut out = Vec::with_capacity(geometry.pixel_data_len() as usize);
    let max = (1u32 << geometry.bits_stored) - 1;
    for frame in 0..geometry.frames {
        for y in 0..i64::from(geometry.rows) {
            for x in 0..i64::from(geometry.columns) {
                if geometry.samples_per_pixel == 3 {
                    let [r, g, b] = colour_disk(geometry, frame, x, y);
                    for sample in [r, g, b] {
                        let noisy = (i32::from(sample) + rng.random_range(-3..=3)).clamp(0, 255);
                        out.push(noisy as u8);
                    }
                } else {
                    let level = body_phantom(geometry, frame, x, y, max);
                    let amplitude = (max / 128).max(2);
                    let noisy = (level + rng.random_range(0..amplitude)).min(max);
                    if geometry.bits_allocated == 16 {
                        out.extend_from_slice(&(noisy as u16).to_le_bytes());
                    } else {
                        out.push(noisy as u8);
                    }
                }
            }
        }
    }
    out
}

/// Whether (x, y) lies inside the ellipse centred on (cx, cy) with semi-axes (a, b); integer
/// arithmetic so every platform agrees.
fn inside(x: i64, y: i64, cx: i64, cy: i64, a: i64, b: i64) -> bool {
    let (dx, dy) = (x - cx, y - cy);
    let (a, b) = (a.max(1), b.max(1));
    dx * dx * b * b + dy * dy * a * a <= a * a * b * b
}

/// A cross-section: body ellipse, two darker lungs, a bright spine; organs drift with the frame.
fn body_phantom(g: &ImageGeometry, frame: u32, x: i64, y: i64, max: u32) -> u32 {
    let (w, h) = (i64::from(g.columns), i64::from(g.rows));
    let (cx, cy) = (w / 2, h / 2);
    let drift = i64::from(frame % 16) * (w / 64).max(1);
    let max = i64::from(max);
    let level = if !inside(x, y, cx, cy, w * 42 / 100, h * 36 / 100) {
        max / 64
    } else if inside(x, y, cx, cy + h / 5, w / 14, h / 14) {
        max * 85 / 100
    } else if inside(x, y, cx - w / 6 + drift, cy - h / 20, w / 9, h / 5)
        || inside(x, y, cx + w / 6 - drift, cy - h / 20, w / 9, h / 5)
    {
        max / 12
    } else {
        // Soft tissue with a vertical gradient, like beam hardening on a real scan.
        max * 30 / 100 + (y * max / 10) / h.max(1)
    };
    level as u32
}

/// A fundus/endoscopy-like picture: an orange disk fading to the rim, darker vessels, black
/// corners.
fn colour_disk(g: &ImageGeometry, frame: u32, x: i64, y: i64) -> [u8; 3] {
    let (w, h) = (i64::from(g.columns), i64::from(g.rows));
    let (cx, cy) = (w / 2, h / 2);
    let radius = w.min(h) * 45 / 100;
    let d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
    if d2 > radius * radius {
        return [0, 0, 0];
    }
    // Fraction of the radius squared, 0..=255, brighter at the centre.
    let fade = 255 - (d2 * 255 / (radius * radius).max(1));
    let vessel =
        (x + 3 * y + i64::from(frame) * 5).rem_euclid(53) < 3 || (3 * x - y).rem_euclid(71) < 2;
    let dim = if vessel { 2 } else { 1 };
    let r = (120 + fade * 120 / 255) / dim;
    let g = (40 + fade * 90 / 255) / dim;
    let b = (20 + fade * 40 / 255) / dim;
    [r as u8, g as u8, b as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_pixels_have_the_native_length_and_respect_bits_stored() {
        let geometry = ImageGeometry::mono16(40, 30, 12).with_frames(2);
        let pixels = reference_pixels(&geometry, 1);
        assert_eq!(pixels.len() as u64, geometry.pixel_data_len());
        let max = pixels
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .max()
            .unwrap();
        assert!(max < 4096, "12-bit image has value {max}");
    }

    #[test]
    fn same_seed_gives_same_pixels_and_another_seed_differs() {
        let geometry = ImageGeometry::rgb8(32, 48);
        assert_eq!(
            reference_pixels(&geometry, 5),
            reference_pixels(&geometry, 5)
        );
        assert_ne!(
            reference_pixels(&geometry, 5),
            reference_pixels(&geometry, 6)
        );
    }
}
