//! The integration tests of cow-probe, as one test binary (`probe`): each
//! module is one suite, named as its file (`real::...`, `cache::...`).

mod cache;
mod real;

#[test]
fn every_suite_is_in_this_binary() {
    cow_test_support::assert_every_test_is_built(env!("CARGO_MANIFEST_DIR"));
}
