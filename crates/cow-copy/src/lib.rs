//! cow-copy (placeholder)
