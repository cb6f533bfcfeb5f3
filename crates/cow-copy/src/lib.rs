//! cow-copy (being built).

pub mod tree;
