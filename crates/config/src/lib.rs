//! Typed configuration for dicom-auto, read from environment variables and `.env`.
