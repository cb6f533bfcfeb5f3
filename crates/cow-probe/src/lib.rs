//! cow-probe (placeholder)
