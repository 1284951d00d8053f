//! Loading a whole DICOM object, optionally with its pixel data decompressed.

use std::path::Path;

use dicom_core::header::Header as _;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use crate::LoadError;
use crate::magic::{Head, read_head};

/// How [`load_dataset`] treats the file it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    decompress: bool,
}

impl LoadOptions {
    /// Load the object as stored (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// When `true`, objects with compressed (encapsulated) pixel data are decoded and returned in
    /// Explicit VR Little Endian with native pixel data. Objects already in a native transfer
    /// syntax (Implicit/Explicit VR Little Endian, Deflated...) are returned unchanged.
    ///
    /// This build decodes JPEG Baseline, Extended and Lossless (pure Rust), RLE Lossless (pure
    /// Rust) and JPEG 2000 (OpenJPEG). JPEG-LS, JPEG XL, HTJ2K and video fail with
    /// [`LoadError::UnsupportedTransferSyntax`]. Only with the `codecs` feature.
    #[cfg(feature = "codecs")]
    pub fn decompress(mut self, decompress: bool) -> Self {
        self.decompress = decompress;
        self
    }

    /// Whether compressed pixel data will be decoded.
    pub fn decompresses(&self) -> bool {
        self.decompress
    }
}

/// Read a whole DICOM file, meta group, data set and pixel data, into memory.
///
/// With [`LoadOptions::decompress`], compressed pixel data is decoded to native samples in
/// Explicit VR Little Endian (photometric interpretation becomes RGB for colour, as
/// dicom-pixeldata mandates, and 8-bit samples are stored as OW).
///
/// Never panics on bad input: truncated, corrupt and non-DICOM files give a [`LoadError`] naming
/// the path. A decoder that panics on a corrupt stream (dicom-rs 0.10.1's RLE reader indexes
/// past short segments) is caught and reported as [`LoadError::Decode`].
///
/// dicom-rs 0.10 treats a file that ends inside an element header as a complete data set, so a
/// truncation is only caught when it cuts an element's value or leaves an image without Pixel
/// Data or with fewer fragments than frames ([`LoadError::IncompletePixelData`]); a cut between
/// two non-pixel elements, or between two fragments of a multi-fragment frame, goes unnoticed.
///
/// # Errors
/// [`LoadError::Io`], [`LoadError::TooShort`], [`LoadError::NotDicom`], [`LoadError::Parse`],
/// [`LoadError::IncompletePixelData`], and with decompression [`LoadError::UnsupportedTransferSyntax`] or [`LoadError::Decode`].
pub fn load_dataset(
    path: impl AsRef<Path>,
    options: &LoadOptions,
) -> Result<DefaultDicomObject, LoadError> {
    let path = path.as_ref();
    ensure_dicom_magic(path)?;
    let object = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| LoadError::parse(path.to_path_buf(), e))?;
    check_pixel_data_complete(path, &object)?;
    #[cfg(feature = "codecs")]
    if options.decompress {
        let mut object = object;
        decompress_file(path, &mut object)?;
        return Ok(object);
    }
    // Without codecs nothing can set `decompress`: the object is returned as stored.
    #[cfg(not(feature = "codecs"))]
    let _ = options;
    Ok(object)
}

/// The loader's view of a failed decompression: the same verdict, naming the file.
#[cfg(feature = "codecs")]
fn decompress_file(path: &Path, object: &mut DefaultDicomObject) -> Result<(), LoadError> {
    use crate::decompress::{DecompressError, decompress_in_place};
    decompress_in_place(object).map_err(|error| match error {
        DecompressError::Unsupported { transfer_syntax } => LoadError::UnsupportedTransferSyntax {
            path: path.to_path_buf(),
            transfer_syntax,
        },
        DecompressError::Decode {
            transfer_syntax,
            detail,
        } => LoadError::Decode {
            path: path.to_path_buf(),
            transfer_syntax,
            detail,
        },
    })
}

/// dicom-rs ends a data set quietly when the file stops at or inside an element header, so a
/// file cut just before its pixels, or between two fragments, parses "fine". An image without
/// Pixel Data, or with fewer fragments than frames, is the cut we can always recognise; sending
/// it would lose data silently.
fn check_pixel_data_complete(path: &Path, object: &DefaultDicomObject) -> Result<(), LoadError> {
    let incomplete = |detail: String| LoadError::IncompletePixelData {
        path: path.to_path_buf(),
        detail,
    };
    let pixel_data = [
        tags::PIXEL_DATA,
        tags::FLOAT_PIXEL_DATA,
        tags::DOUBLE_FLOAT_PIXEL_DATA,
    ]
    .iter()
    .find_map(|tag| object.get(*tag));
    let Some(pixel_data) = pixel_data else {
        return match object.get(tags::ROWS) {
            Some(_) => Err(incomplete("image (Rows present) without Pixel Data".into())),
            None => Ok(()),
        };
    };
    if let Some(fragments) = pixel_data.value().fragments() {
        let frames: u32 = object
            .get(tags::NUMBER_OF_FRAMES)
            .and_then(|e| e.to_int().ok())
            .unwrap_or(1);
        if (fragments.len() as u64) < u64::from(frames.max(1)) {
            return Err(incomplete(format!(
                "encapsulated Pixel Data has {} fragment(s) for {} frame(s)",
                fragments.len(),
                frames
            )));
        }
        // dicom-rs also accepts a last fragment shorter than its item header says. Encapsulated
        // Pixel Data must end with a Sequence Delimitation Item, and when Pixel Data is the last
        // element (as it nearly always is) that item is the last 8 bytes of the file.
        let pixel_data_is_last = object.iter().last().map(|e| e.tag()) == Some(pixel_data.tag());
        let io_error = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        if pixel_data_is_last && !ends_with_sequence_delimiter(path).map_err(io_error)? {
            return Err(incomplete(
                "encapsulated Pixel Data does not end with a Sequence Delimitation Item".into(),
            ));
        }
    }
    Ok(())
}

/// The Sequence Delimitation Item (FFFE,E0DD) with zero length, little endian: the last 8 bytes
/// of a file whose last element is encapsulated Pixel Data.
pub const SEQUENCE_DELIMITER: [u8; 8] = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];

/// Whether the file's last 8 bytes are the [`SEQUENCE_DELIMITER`]. dicom-rs accepts a file cut
/// inside its encapsulated pixel data (it keeps the short fragment), so a reader that must not
/// use a cut image checks this when Pixel Data is the last element (and the file is not
/// deflated, whose tail is compressed).
///
/// # Errors
/// The I/O error from reading the file (a file under 8 bytes fails to seek).
pub fn ends_with_sequence_delimiter(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::End(-8))?;
    file.read_exact(&mut tail)?;
    Ok(tail == SEQUENCE_DELIMITER)
}

/// The reader's version of the scan's magic check: same verdicts, as errors naming the file.
pub(crate) fn ensure_dicom_magic(path: &Path) -> Result<(), LoadError> {
    let path_buf = || path.to_path_buf();
    match read_head(path) {
        Ok(Head::Dicom) => Ok(()),
        Ok(Head::TooShort { len }) => Err(LoadError::TooShort {
            path: path_buf(),
            len,
        }),
        Ok(Head::NotDicom) => Err(LoadError::NotDicom { path: path_buf() }),
        Err(source) => Err(LoadError::Io {
            path: path_buf(),
            source,
        }),
    }
}

#[cfg(all(test, feature = "codecs"))]
mod tests {
    use super::*;
    use crate::synth::{Encoding, ImageGeometry, InstanceBuilder, Modality};
    use dicom_core::value::PixelFragmentSequence;
    use dicom_core::{DataElement, Length, VR};
    use dicom_dictionary_std::uids;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    }

    fn decompressed_pixels(path: &Path) -> Vec<u8> {
        let object = load_dataset(path, &LoadOptions::new().decompress(true)).unwrap();
        assert_eq!(
            object.meta().transfer_syntax(),
            uids::EXPLICIT_VR_LITTLE_ENDIAN
        );
        object
            .element(tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap()
            .into_owned()
    }

    /// Writes `builder`'s instance and returns its path and its reference pixels.
    fn written(dir: &Path, name: &str, builder: InstanceBuilder) -> (PathBuf, Vec<u8>) {
        let path = dir.join(name);
        builder.write_to(&path).unwrap();
        (path, builder.reference_pixels().unwrap())
    }

    #[test]
    fn rle_lossless_decodes_to_the_reference_pixels_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (Modality::Mr, ImageGeometry::mono16(64, 48, 12)),
            (Modality::Op, ImageGeometry::rgb8(40, 56)),
            (Modality::Us, ImageGeometry::mono8(30, 50)),
            (Modality::Opt, ImageGeometry::mono8(32, 64).with_frames(3)),
        ];
        for (i, (modality, geometry)) in cases.into_iter().enumerate() {
            let (path, reference) = written(
                dir.path(),
                &format!("rle{i}"),
                InstanceBuilder::new(modality)
                    .geometry(geometry)
                    .encoding(Encoding::RleLossless)
                    .seed(100 + i as u64),
            );
            let stored = load_dataset(&path, &LoadOptions::new()).unwrap();
            assert_eq!(stored.meta().transfer_syntax(), uids::RLE_LOSSLESS);
            assert_eq!(
                decompressed_pixels(&path),
                reference,
                "{modality} {geometry:?}"
            );
        }
    }

    /// JPEG Baseline is lossy: the decoded image must be close to the reference, not equal.
    fn assert_close(decoded: &[u8], reference: &[u8], what: &str) {
        assert_eq!(decoded.len(), reference.len(), "{what}: length");
        let squared: f64 = decoded
            .iter()
            .zip(reference)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum();
        let mse = squared / reference.len() as f64;
        let psnr = 10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10();
        // Quality 85 on these images gives about 36-40 dB; a colour-conversion or
        // planar-configuration mistake gives under 15 dB.
        assert!(psnr > 30.0, "{what}: PSNR {psnr:.1} dB");
    }

    #[test]
    fn jpeg_baseline_decodes_close_to_the_reference_pixels() {
        let dir = tempfile::tempdir().unwrap();
        for (i, (modality, geometry)) in [
            (Modality::Es, ImageGeometry::rgb8(96, 128)),
            (Modality::Us, ImageGeometry::mono8(96, 128)),
        ]
        .into_iter()
        .enumerate()
        {
            let (path, reference) = written(
                dir.path(),
                &format!("jpeg{i}"),
                InstanceBuilder::new(modality)
                    .geometry(geometry)
                    .encoding(Encoding::JpegBaseline)
                    .seed(200 + i as u64),
            );
            assert_close(&decompressed_pixels(&path), &reference, modality.code());
        }
    }

    #[test]
    fn jpeg_lossless_sv1_fixture_decodes_to_the_reference_pixels_exactly() {
        let path = fixture("ct_mono16_seed1001_jpeg_lossless_sv1.dcm");
        let stored = load_dataset(&path, &LoadOptions::new()).unwrap();
        assert_eq!(stored.meta().transfer_syntax(), uids::JPEG_LOSSLESS_SV1);
        let reference = crate::synth::reference_pixels(&ImageGeometry::mono16(64, 64, 12), 1001);
        assert_eq!(decompressed_pixels(&path), reference);
    }

    #[test]
    fn jpeg_lossless_process_14_rgb_fixture_decodes_to_the_reference_pixels_exactly() {
        let path = fixture("op_rgb8_seed1002_jpeg_lossless_sv6.dcm");
        let stored = load_dataset(&path, &LoadOptions::new()).unwrap();
        assert_eq!(stored.meta().transfer_syntax(), uids::JPEG_LOSSLESS);
        let reference = crate::synth::reference_pixels(&ImageGeometry::rgb8(48, 64), 1002);
        assert_eq!(decompressed_pixels(&path), reference);
    }

    #[test]
    fn jpeg_2000_lossless_fixture_decodes_to_the_reference_pixels_exactly() {
        let geometry = ImageGeometry::mono16(64, 64, 12);
        let codestream = std::fs::read(fixture("mr_mono16_seed1003.j2k")).unwrap();
        let mut object = InstanceBuilder::new(Modality::Mr)
            .geometry(geometry)
            .seed(1003)
            .build()
            .unwrap();
        object.put(DataElement::new_with_len(
            tags::PIXEL_DATA,
            VR::OB,
            Length::UNDEFINED,
            PixelFragmentSequence::new(vec![0], vec![codestream]),
        ));
        object.meta_mut().set_transfer_syntax(
            &dicom_transfer_syntax_registry::entries::JPEG_2000_IMAGE_COMPRESSION_LOSSLESS_ONLY,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j2k.dcm");
        object.write_to_file(&path).unwrap();
        let reference = crate::synth::reference_pixels(&geometry, 1003);
        assert_eq!(decompressed_pixels(&path), reference);
    }

    #[test]
    fn native_files_are_returned_unchanged_when_decompression_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (path, reference) = written(
            dir.path(),
            "implicit",
            InstanceBuilder::new(Modality::Ct)
                .geometry(ImageGeometry::mono16(16, 16, 12))
                .encoding(Encoding::ImplicitVrLittleEndian)
                .seed(7),
        );
        let object = load_dataset(&path, &LoadOptions::new().decompress(true)).unwrap();
        assert_eq!(
            object.meta().transfer_syntax(),
            uids::IMPLICIT_VR_LITTLE_ENDIAN
        );
        let pixels = object
            .element(tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap();
        assert_eq!(pixels.as_ref(), reference.as_slice());
    }

    #[test]
    fn a_transfer_syntax_without_a_decoder_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jpegls.dcm");
        let mut object = InstanceBuilder::new(Modality::Ct)
            .geometry(ImageGeometry::mono16(8, 8, 12))
            .encoding(Encoding::RleLossless)
            .seed(8)
            .build()
            .unwrap();
        // Relabel as JPEG-LS: this build has no CharLS, so it must refuse, not guess.
        object.meta_mut().set_transfer_syntax(
            &dicom_transfer_syntax_registry::entries::JPEG_LS_LOSSLESS_IMAGE_COMPRESSION,
        );
        object.write_to_file(&path).unwrap();
        let error = load_dataset(&path, &LoadOptions::new().decompress(true)).unwrap_err();
        assert!(
            matches!(&error, LoadError::UnsupportedTransferSyntax { path: p, transfer_syntax }
                if p == &path && transfer_syntax == uids::JPEGLS_LOSSLESS),
            "{error}"
        );
        assert!(
            load_dataset(&path, &LoadOptions::new()).is_ok(),
            "still readable as stored"
        );
    }

    #[test]
    fn a_corrupt_rle_stream_is_a_decode_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corrupt-rle.dcm");
        let mut object = InstanceBuilder::new(Modality::Mr)
            .geometry(ImageGeometry::mono16(32, 32, 12))
            .encoding(Encoding::RleLossless)
            .seed(9)
            .build()
            .unwrap();
        // A header announcing 2 segments whose data is far too short for 32x32 samples.
        let mut fragment = vec![0u8; 64];
        fragment[0] = 2;
        fragment[4] = 64;
        fragment[8] = 66;
        fragment.extend_from_slice(&[0x00, 0x01, 0x00, 0x02]);
        object.put(DataElement::new_with_len(
            tags::PIXEL_DATA,
            VR::OB,
            Length::UNDEFINED,
            PixelFragmentSequence::new(vec![0], vec![fragment]),
        ));
        object.write_to_file(&path).unwrap();
        let error = load_dataset(&path, &LoadOptions::new().decompress(true)).unwrap_err();
        assert!(
            matches!(&error, LoadError::Decode { path: p, .. } if p == &path),
            "{error}"
        );
    }

    #[test]
    fn non_dicom_and_missing_files_are_typed_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, vec![b'a'; 300]).unwrap();
        let error = load_dataset(&text, &LoadOptions::new()).unwrap_err();
        assert!(matches!(&error, LoadError::NotDicom { path } if path == &text));
        assert!(error.to_string().contains("notes.txt"));
        let missing = dir.path().join("missing.dcm");
        let error = load_dataset(&missing, &LoadOptions::new()).unwrap_err();
        assert!(matches!(&error, LoadError::Io { path, .. } if path == &missing));
    }

    /// Every prefix of a file must load or fail cleanly; inside Pixel Data it must fail.
    fn assert_truncations_fail_cleanly(path: &Path, step: usize) {
        let bytes = std::fs::read(path).unwrap();
        // Pixel Data is the last element; its tag starts the last (7FE0,0010) in the file. Files
        // without pixels (OPV) only have to fail cleanly.
        let pixel_tag = bytes
            .windows(4)
            .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00])
            .unwrap_or(bytes.len());
        let cut = path.with_extension("cut");
        let mut cut_offsets: Vec<usize> = (0..bytes.len()).step_by(step).collect();
        cut_offsets.extend([pixel_tag, pixel_tag + 2, pixel_tag + 13, bytes.len() - 1]);
        cut_offsets.retain(|o| *o < bytes.len());
        for offset in cut_offsets {
            std::fs::write(&cut, &bytes[..offset]).unwrap();
            for options in [LoadOptions::new(), LoadOptions::new().decompress(true)] {
                match load_dataset(&cut, &options) {
                    Err(error) => assert_eq!(error.path(), cut, "offset {offset}: {error}"),
                    Ok(_) => assert!(
                        offset < pixel_tag,
                        "{}: cut at {offset}, at or inside Pixel Data (starts {pixel_tag}), loaded",
                        path.display()
                    ),
                }
            }
        }
    }

    #[test]
    fn truncated_files_give_errors_naming_the_path_and_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        for (name, builder) in [
            (
                "explicit.dcm",
                InstanceBuilder::new(Modality::Ct)
                    .geometry(ImageGeometry::mono16(12, 12, 12))
                    .seed(10),
            ),
            (
                "implicit.dcm",
                InstanceBuilder::new(Modality::Opv)
                    .encoding(Encoding::ImplicitVrLittleEndian)
                    .seed(11),
            ),
            (
                "rle.dcm",
                InstanceBuilder::new(Modality::Op)
                    .geometry(ImageGeometry::rgb8(10, 12))
                    .encoding(Encoding::RleLossless)
                    .seed(12),
            ),
            (
                "jpeg.dcm",
                InstanceBuilder::new(Modality::Es)
                    .geometry(ImageGeometry::rgb8(16, 16))
                    .encoding(Encoding::JpegBaseline)
                    .seed(13),
            ),
        ] {
            let path = dir.path().join(name);
            builder.write_to(&path).unwrap();
            assert_truncations_fail_cleanly(&path, 7);
        }
    }
}
