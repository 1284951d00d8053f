//! The configuration turned into each library's options: one function per library
//! type, so a variable's meaning is decided in one place.

pub mod cfind;
pub mod commitment;
pub mod retrieve;
pub mod security;
pub mod sender;

pub use security::security;
