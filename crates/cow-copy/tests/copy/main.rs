//! The integration tests of cow-copy, as one test binary (`copy`): each
//! module is one suite, named as its file (`tree::...`, `fault_matrix::...`).
//! A module without a `#[cfg]` here selects its platforms with its own
//! `#![cfg(...)]`. `tests/windows_interrupt.rs` is a binary of its own: its
//! one test closes the temporaries' list for the whole process.

mod behaviour;
#[cfg(target_os = "linux")]
mod behaviour_meta;
mod cancel;
#[cfg(any(target_os = "linux", windows))]
mod common;
mod concurrent;
mod dedupe_btrfs_tree;
mod dedupe_cold;
mod dedupe_extents;
mod dedupe_pairs;
mod dedupe_tree;
mod dedupe_walk;
mod durable;
mod enospc;
mod fault_matrix;
mod live_source;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(any(target_os = "macos", windows))]
mod native;
mod observe;
mod permissions;
mod proptest_copy;
mod sizes;
mod tree;
mod tree_races;
mod tree_symlinks;
mod trust_mtime;
mod update;
mod update_reads;
mod update_snapshot;
mod update_unshared;
#[cfg(windows)]
mod windows_live_source;

#[test]
fn every_suite_is_in_this_binary() {
    cow_test_support::assert_every_test_is_built(env!("CARGO_MANIFEST_DIR"));
}
