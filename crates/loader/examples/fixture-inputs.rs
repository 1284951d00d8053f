//! Writes the uncompressed inputs from which `fixtures/make.sh` made the committed JPEG Lossless
//! and JPEG 2000 fixtures (dicom-rs has no encoder for either). The seeds and geometries here
//! are the ones `tests` use to regenerate the reference pixels.
//!
//! `cargo run -p loader --example fixture-inputs -- OUT_DIR`

use loader::synth::{ImageGeometry, InstanceBuilder, Modality};

fn main() -> anyhow::Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&out)?;
    InstanceBuilder::new(Modality::Ct)
        .geometry(ImageGeometry::mono16(64, 64, 12))
        .seed(1001)
        .write_to(out.join("ct_mono16_seed1001.dcm"))?;
    InstanceBuilder::new(Modality::Op)
        .geometry(ImageGeometry::rgb8(48, 64))
        .seed(1002)
        .write_to(out.join("op_rgb8_seed1002.dcm"))?;
    let mr = ImageGeometry::mono16(64, 64, 12);
    std::fs::write(
        out.join("mr_mono16_seed1003.rawl"),
        loader::synth::reference_pixels(&mr, 1003),
    )?;
    Ok(())
}
