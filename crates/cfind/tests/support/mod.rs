pub mod scp;
