pub mod archive;
pub mod instances;
