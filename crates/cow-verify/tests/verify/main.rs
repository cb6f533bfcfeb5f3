//! The integration tests of cow-verify, as one test binary (`verify`):
//! each module is one suite, named as its file (`real::...`, `windows::...`).

mod real;
#[cfg(windows)]
mod windows;

#[test]
fn every_suite_is_in_this_binary() {
    cow_test_support::assert_every_test_is_built(env!("CARGO_MANIFEST_DIR"));
}
