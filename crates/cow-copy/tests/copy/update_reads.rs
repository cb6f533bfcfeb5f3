//! Counts the bytes an update reads, with the kernel's own per-thread I/O
//! accounting (`/proc/thread-self/io`, `rchar`): when the first byte differs
//! the check costs at most one block per file. On btrfs and XFS the copy
//! itself is a clone, which reads nothing, so the count is the check's.

#![cfg(target_os = "linux")]

use std::fs;
use std::path::Path;

use cow_copy::{CopyOptions, Overwrite, Strategy, identical};
use cow_test_support::{fs_test, pattern, write_synced};

const MIB: usize = 1 << 20;

/// Bytes this thread has read through read-like syscalls so far.
fn rchar() -> u64 {
    let text = fs::read_to_string("/proc/thread-self/io").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Reading the counter itself is counted too, and its text grows with the
/// numbers in it: measurements are exact to within this many bytes.
const SLACK: u64 = 64;

/// The `rchar` an update copy of `src` over `dst` costs (minus what reading
/// the counter itself costs, to within [`SLACK`]).
fn counted_update(src: &Path, dst: &Path) -> (u64, Strategy) {
    let overhead = {
        let a = rchar();
        let b = rchar();
        b - a
    };
    let before = rchar();
    let report = CopyOptions::new()
        .overwrite(Overwrite::IfDifferent)
        .copy(src, dst)
        .unwrap();
    let after = rchar();
    (after - before - overhead, report.strategy)
}

fs_test!(first_byte_difference_reads_one_block, [btrfs, xfs], |dir| {
    let (src, dst) = (dir.join("new"), dir.join("installed"));
    let mut data = pattern(64 * MIB, 1);
    write_synced(&dst, &data);
    data[0] ^= 1;
    write_synced(&src, &data);
    let (read, strategy) = counted_update(&src, &dst);
    eprintln!("first byte differs: {read} bytes read, {strategy}");
    assert_eq!(strategy, Strategy::Cloned);
    assert!(
        read <= 2 * identical::FIRST_READ + SLACK,
        "{read} bytes read"
    );
    assert_eq!(fs::read(&dst).unwrap(), data);
});

fs_test!(last_byte_difference_reads_both_files, [btrfs, xfs], |dir| {
    let (src, dst) = (dir.join("new"), dir.join("installed"));
    let mut data = pattern(8 * MIB, 2);
    write_synced(&dst, &data);
    *data.last_mut().unwrap() ^= 1;
    write_synced(&src, &data);
    let (read, strategy) = counted_update(&src, &dst);
    eprintln!("last byte differs: {read} bytes read, {strategy}");
    assert_eq!(strategy, Strategy::Cloned);
    assert!(read.abs_diff(2 * data.len() as u64) <= SLACK, "{read}");
    assert_eq!(fs::read(&dst).unwrap(), data);
});

fs_test!(
    identical_reads_both_files_writes_nothing,
    [btrfs, xfs, ext4],
    |dir| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        let data = pattern(8 * MIB + 1, 3);
        write_synced(&dst, &data);
        write_synced(&src, &data);
        let (read, strategy) = counted_update(&src, &dst);
        assert_eq!(strategy, Strategy::Skipped);
        assert!(read.abs_diff(2 * data.len() as u64) <= SLACK, "{read}");
    }
);
