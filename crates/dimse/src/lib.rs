//! The DIMSE message layer that dicom-ul lacks: command sets, status classes and
//! message framing over P-DATA, shared by the SCU side (`sender`, `cfind`) and the SCP
//! side (`simulator`).
//!
//! Not built yet: see the simulator and sender issues.
