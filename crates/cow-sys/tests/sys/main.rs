//! The integration tests of cow-sys, as one test binary (`sys`): one module
//! per platform's bindings, named as its file (`linux_ioctl::...`).

#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
mod common;
#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux_btrfs;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux_ioctl;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux_layout;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux_xfs;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(windows)]
mod windows;

#[test]
fn every_suite_is_in_this_binary() {
    cow_test_support::assert_every_test_is_built(env!("CARGO_MANIFEST_DIR"));
}
