pub mod instances;
pub mod scp;
