//! `cow cp -r --update=identical --trust-mtime` on real filesystems: files
//! with the source's size and modification time are kept unread, the rest
//! are compared (equal bytes kept, different bytes copied).

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use cow_test_support::{fs_test, pattern, set_mtime, write_synced};

fn cow(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

fn ino(p: &Path) -> u64 {
    fs::metadata(p).unwrap().ino()
}

fs_test!(trust_mtime_tree, [btrfs, xfs, ext4, tmpfs], |dir| {
    let (src, dst) = (dir.join("stage"), dir.join("site"));
    let t = SystemTime::now() - Duration::from_secs(7200) + Duration::from_nanos(987_654_321);
    for d in [&src, &dst] {
        fs::create_dir_all(d.join("pkg")).unwrap();
    }
    // trusted: same size and time, other bytes (kept: the trust semantics);
    // touched: same bytes, other time (compared, kept);
    // changed: same size, other bytes, other time (copied).
    let new = |n: &str, seed| write_synced(&src.join("pkg").join(n), &pattern(70_000, seed));
    new("trusted", 1);
    new("touched", 2);
    new("changed", 3);
    let old = |n: &str, seed| write_synced(&dst.join("pkg").join(n), &pattern(70_000, seed));
    old("trusted", 11);
    old("touched", 2);
    old("changed", 13);
    set_mtime(&src.join("pkg/trusted"), t);
    set_mtime(&dst.join("pkg/trusted"), t);
    set_mtime(&dst.join("pkg/touched"), t);
    // "Other time" for sure: written a moment apart, the two copies of
    // `changed` can get the same mtime on a filesystem with coarse
    // timestamps (tmpfs: one clock tick), and would then be trusted.
    set_mtime(&dst.join("pkg/changed"), t - Duration::from_secs(60));
    let before: Vec<u64> = ["trusted", "touched"]
        .iter()
        .map(|n| ino(&dst.join("pkg").join(n)))
        .collect();

    let bad = cow(&["cp", "-r", "--trust-mtime"], &[&src, &dst]);
    assert!(!bad.status.success(), "needs --update=identical");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--update=identical"));

    let out = cow(
        &["cp", "-r", "-T", "--update=identical", "--trust-mtime"],
        &[&src, &dst],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |n: &str| fs::read(dst.join("pkg").join(n)).unwrap();
    assert_eq!(read("trusted"), pattern(70_000, 11), "trusted, not read");
    assert_eq!(read("touched"), pattern(70_000, 2));
    assert_eq!(
        read("changed"),
        pattern(70_000, 3),
        "different bytes copied"
    );
    let after: Vec<u64> = ["trusted", "touched"]
        .iter()
        .map(|n| ino(&dst.join("pkg").join(n)))
        .collect();
    assert_eq!(before, after, "kept files keep their inodes");
    assert_eq!(
        fs::metadata(dst.join("pkg/touched"))
            .unwrap()
            .modified()
            .unwrap(),
        t,
        "a compared, kept file keeps its time"
    );
});
