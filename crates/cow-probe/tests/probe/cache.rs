//! The probe cache: a second probe of a device does no I/O. Alone in its
//! own test binary so no other test creates scratch files meanwhile.
#![cfg(target_os = "linux")]

use std::time::SystemTime;

use cow_probe::{probe, scratch_files_created};
use cow_test_support::fs_test;

fn mtime(p: &std::path::Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

fs_test!(second_probe_does_no_io, [btrfs, xfs, ext4, tmpfs], |dir| {
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let first = probe(dir).unwrap();
    assert!(first.is_live(), "{first:?}");
    assert!(
        scratch_files_created(first.dev) > 0,
        "the first probe tested live"
    );
    let created = scratch_files_created(first.dev);
    let (m_dir, m_sub) = (mtime(dir), mtime(&sub));
    std::thread::sleep(std::time::Duration::from_millis(20));

    let again = probe(dir).unwrap();
    let other = probe(&sub).unwrap();
    assert_eq!(
        scratch_files_created(first.dev),
        created,
        "a cached probe created files"
    );
    assert_eq!(mtime(dir), m_dir, "the directory changed: the probe wrote");
    assert_eq!(mtime(&sub), m_sub);
    assert_eq!(again, first);
    assert_eq!(other.path, sub);
    assert_eq!(other.reflink, first.reflink);
    assert_eq!(other.dev, first.dev);
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
});
