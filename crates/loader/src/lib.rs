//! DICOM file discovery, cheap per-file metadata, and dataset loading/decoding.
