//! FreeBSD's `copy_file_range` on the temp directory's file system.
#![cfg(target_os = "freebsd")]

use std::fs::File;
use std::os::fd::AsFd;

use cow_sys::freebsd::copy_file_range;
use cow_test_support::write_pattern;

#[test]
fn copy_file_range_copies_with_explicit_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let len = 300_000usize;
    let data = write_pattern(&dir.path().join("src"), len, 1);
    let src = File::open(dir.path().join("src")).unwrap();
    let dst = File::create(dir.path().join("dst")).unwrap();
    let (mut off_in, mut off_out) = (1000u64, 0u64);
    loop {
        let n = copy_file_range(
            src.as_fd(),
            Some(&mut off_in),
            dst.as_fd(),
            Some(&mut off_out),
            1 << 20,
        )
        .expect("copy_file_range");
        if n == 0 {
            break;
        }
    }
    assert_eq!(off_in, len as u64);
    assert_eq!(off_out, (len - 1000) as u64);
    drop(dst);
    assert_eq!(
        std::fs::read(dir.path().join("dst")).unwrap(),
        &data[1000..]
    );
}
