//! DICOM tag updater and PS3.15 de-identification.
//!
//! Not built yet: see the tagutil issue.
