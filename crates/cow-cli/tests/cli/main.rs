//! The integration tests of the `cow` command, as one test binary (`cli`):
//! each module is one suite, named as its file (`cp::...`, `security::...`).
//! A module without a `#[cfg]` here selects its platforms with its own
//! `#![cfg(...)]`.

mod clean;
mod cp;
mod dedupe;
mod dedupe_tree;
mod generate;
mod gnu_options;
mod live_source;
mod native;
mod output;
mod reliability_kill;
mod reliability_permissions;
mod security;
mod trust_mtime;
mod verify_probe;

#[test]
fn every_suite_is_in_this_binary() {
    cow_test_support::assert_every_test_is_built(env!("CARGO_MANIFEST_DIR"));
}
