//! Pixel data compared after decoding: exact samples for lossless syntaxes, PSNR when
//! they differ.
//!
//! Encoded bytes are compared first (identical bytes decode to identical pixels, and
//! most deliveries are byte-identical); only when they differ are both sides decoded.
//! Decoded colour samples are compared pixel-interleaved whatever the planar
//! configuration each side declares, since that is a property of the encoding.

use std::panic::{AssertUnwindSafe, catch_unwind};

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dicom_pixeldata::{PixelDecoder, PlanarConfiguration};
use serde::Serialize;

/// Decoded samples of one instance, pixel-interleaved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pixels {
    samples: Vec<u8>,
    geometry: Geometry,
}

/// What the pixel samples are: what must match before samples can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub columns: u32,
    /// Frames.
    pub frames: u32,
    /// Samples per pixel (1 grey, 3 colour).
    pub samples_per_pixel: u16,
    /// Bits allocated per sample.
    pub bits_allocated: u16,
    /// Bits stored per sample (what PSNR's peak is made of).
    pub bits_stored: u16,
}

impl std::fmt::Display for Geometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} frame(s) of {}x{}, {} sample(s) of {}/{} bits",
            self.frames,
            self.columns,
            self.rows,
            self.samples_per_pixel,
            self.bits_stored,
            self.bits_allocated
        )
    }
}

/// How the decoded pixel data of what arrived compares with what was sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PixelVerdict {
    /// The same samples.
    Same,
    /// Samples differ.
    Different {
        /// Peak signal-to-noise ratio in dB over all samples.
        psnr_db: f64,
        /// How many samples differ.
        differing_samples: u64,
        /// Where the first differing sample is: frame, row, column.
        first: (u32, u32, u32),
    },
    /// The image itself changed shape.
    Geometry { sent: Geometry, received: Geometry },
    /// One side could not be decoded, so the pixels could not be checked.
    NotDecodable { side: &'static str, error: String },
}

/// Whether the encoded pixel data of both sides is the same bytes (fragments compared
/// as a whole: the offset table and fragment boundaries are encoding).
pub(crate) fn same_encoded(sent: &InMemDicomObject, received: &InMemDicomObject) -> bool {
    let (Some(a), Some(b)) = (sent.get(tags::PIXEL_DATA), received.get(tags::PIXEL_DATA)) else {
        return false;
    };
    match (a.value(), b.value()) {
        (Value::Primitive(x), Value::Primitive(y)) => x.to_bytes() == y.to_bytes(),
        (Value::PixelSequence(x), Value::PixelSequence(y)) => {
            let total = |f: &[Vec<u8>]| f.iter().map(Vec::len).sum::<usize>();
            total(x.fragments()) == total(y.fragments())
                && x.fragments()
                    .iter()
                    .flatten()
                    .eq(y.fragments().iter().flatten())
        }
        _ => false,
    }
}

/// Decodes the pixel data of `object` (its meta group names the transfer syntax).
/// A codec that panics on a corrupt stream is caught and reported as an error.
pub(crate) fn decode(object: &DefaultDicomObject) -> Result<Pixels, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        object
            .decode_pixel_data()
            .map_err(|e| dimse::ErrorChain(&e).to_string())
            .map(|decoded| {
                let geometry = Geometry {
                    rows: decoded.rows(),
                    columns: decoded.columns(),
                    frames: decoded.number_of_frames(),
                    samples_per_pixel: decoded.samples_per_pixel(),
                    bits_allocated: decoded.bits_allocated(),
                    bits_stored: decoded.bits_stored(),
                };
                let planar = decoded.planar_configuration() == PlanarConfiguration::PixelFirst;
                let mut samples = decoded.into_data();
                if planar && geometry.samples_per_pixel > 1 {
                    samples = interleave(&samples, geometry);
                }
                Pixels { samples, geometry }
            })
    }));
    match outcome {
        Ok(result) => result,
        Err(panic) => Err(format!(
            "the decoder panicked: {}",
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        )),
    }
}

/// Planes (RRR...GGG...BBB per frame) to pixels (RGBRGB...).
fn interleave(samples: &[u8], g: Geometry) -> Vec<u8> {
    let bytes = usize::from(g.bits_allocated.div_ceil(8));
    let spp = usize::from(g.samples_per_pixel);
    let pixels = g.rows as usize * g.columns as usize;
    let frame_len = pixels * spp * bytes;
    if frame_len == 0 || samples.len() < frame_len {
        return samples.to_vec();
    }
    let mut out = vec![0u8; samples.len()];
    for (frame_in, frame_out) in samples
        .chunks_exact(frame_len)
        .zip(out.chunks_exact_mut(frame_len))
    {
        for plane in 0..spp {
            for pixel in 0..pixels {
                let from = (plane * pixels + pixel) * bytes;
                let to = (pixel * spp + plane) * bytes;
                frame_out[to..to + bytes].copy_from_slice(&frame_in[from..from + bytes]);
            }
        }
    }
    out
}

/// Compares what was sent with what arrived, both decoded.
pub(crate) fn compare(
    sent: &Result<Pixels, String>,
    received: &Result<Pixels, String>,
) -> PixelVerdict {
    let sent = match sent {
        Ok(p) => p,
        Err(error) => {
            return PixelVerdict::NotDecodable {
                side: "sent",
                error: error.clone(),
            };
        }
    };
    let received = match received {
        Ok(p) => p,
        Err(error) => {
            return PixelVerdict::NotDecodable {
                side: "received",
                error: error.clone(),
            };
        }
    };
    let (gs, gr) = (sent.geometry, received.geometry);
    if (
        gs.rows,
        gs.columns,
        gs.frames,
        gs.samples_per_pixel,
        gs.bits_allocated,
    ) != (
        gr.rows,
        gr.columns,
        gr.frames,
        gr.samples_per_pixel,
        gr.bits_allocated,
    ) || sent.samples.len() != received.samples.len()
    {
        return PixelVerdict::Geometry {
            sent: gs,
            received: gr,
        };
    }
    if sent.samples == received.samples {
        return PixelVerdict::Same;
    }
    let width = usize::from(gs.bits_allocated.div_ceil(8)).clamp(1, 4);
    let read = |bytes: &[u8]| -> f64 {
        let mut le = [0u8; 4];
        le[..bytes.len()].copy_from_slice(bytes);
        f64::from(u32::from_le_bytes(le))
    };
    let (mut squared, mut differing, mut first) = (0f64, 0u64, None);
    for (i, (a, b)) in sent
        .samples
        .chunks_exact(width)
        .zip(received.samples.chunks_exact(width))
        .enumerate()
    {
        if a != b {
            let d = read(a) - read(b);
            squared += d * d;
            differing += 1;
            first.get_or_insert(i);
        }
    }
    let count = (sent.samples.len() / width).max(1) as f64;
    let bits = gs.bits_stored.clamp(1, 32);
    let peak = ((1u64 << bits) - 1) as f64;
    let mse = squared / count;
    let psnr_db = 10.0 * (peak * peak / mse).log10();
    let index = first.unwrap_or(0);
    let per_pixel = usize::from(gs.samples_per_pixel.max(1));
    let pixel = index / per_pixel;
    let per_frame = (gs.rows as usize * gs.columns as usize).max(1);
    let (frame, in_frame) = (pixel / per_frame, pixel % per_frame);
    let columns = (gs.columns as usize).max(1);
    PixelVerdict::Different {
        psnr_db,
        differing_samples: differing,
        first: (
            frame as u32,
            (in_frame / columns) as u32,
            (in_frame % columns) as u32,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(samples: Vec<u8>, bits: u16) -> Result<Pixels, String> {
        Ok(Pixels {
            geometry: Geometry {
                rows: 2,
                columns: 2,
                frames: 1,
                samples_per_pixel: 1,
                bits_allocated: bits,
                bits_stored: bits,
            },
            samples,
        })
    }

    #[test]
    fn identical_samples_are_the_same() {
        assert_eq!(
            compare(&grey(vec![1, 2, 3, 4], 8), &grey(vec![1, 2, 3, 4], 8)),
            PixelVerdict::Same
        );
    }

    #[test]
    fn one_flipped_sample_is_found_with_its_place_and_psnr() {
        let verdict = compare(
            &grey(vec![10, 20, 30, 40], 8),
            &grey(vec![10, 20, 30, 41], 8),
        );
        let PixelVerdict::Different {
            psnr_db,
            differing_samples,
            first,
        } = verdict
        else {
            panic!("{verdict:?}")
        };
        assert_eq!(differing_samples, 1);
        assert_eq!(first, (0, 1, 1));
        // MSE 1/4 on an 8-bit peak: 10 log10(255² × 4) ≈ 54.2 dB.
        assert!((psnr_db - 54.15).abs() < 0.1, "{psnr_db}");
    }

    #[test]
    fn planes_are_interleaved_before_comparing() {
        let g = Geometry {
            rows: 1,
            columns: 2,
            frames: 1,
            samples_per_pixel: 3,
            bits_allocated: 8,
            bits_stored: 8,
        };
        assert_eq!(
            interleave(&[1, 2, 10, 20, 100, 200], g),
            vec![1, 10, 100, 2, 20, 200]
        );
    }

    #[test]
    fn a_different_image_shape_is_not_compared_sample_by_sample() {
        let mut other = grey(vec![0; 8], 16).unwrap();
        other.geometry.rows = 1;
        other.geometry.columns = 4;
        assert!(matches!(
            compare(&grey(vec![0; 8], 16), &Ok(other)),
            PixelVerdict::Geometry { .. }
        ));
    }
}
