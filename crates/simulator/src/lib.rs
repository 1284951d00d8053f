//! An embedded DICOM router that stands in for Laurel Bridge Compass.
//!
//! Not built yet: see the simulator issue.
