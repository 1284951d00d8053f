//! C-STORE client and load engine.
//!
//! Not built yet: see the sender and metrics issue.
