//! C-FIND query client and delivery verification.
//!
//! Not built yet: see the cfind issue.
