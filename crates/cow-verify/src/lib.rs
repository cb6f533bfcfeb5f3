//! cow-verify (placeholder)
