//! `cow dedupe` on real filesystems: identical files end up sharing every
//! block, different files are refused and left alone.

#![cfg(target_os = "linux")]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use cow_test_support::{Fs, btrfs, btrfs_du, fs_test, pattern, write_synced};

const MIB: usize = 1 << 20;

fn cow(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cow"))
        .arg("dedupe")
        .args(args)
        .output()
        .unwrap()
}

/// btrfs `filesystem du -s --raw`: exclusive + shared among the files
/// under `dir` only.
fn btrfs_usage(dir: &Path) -> u64 {
    btrfs(&["filesystem", "sync"], &[dir]);
    let (_, exclusive, shared) = btrfs_du(dir);
    exclusive + shared
}

fs_test!(identical_files_share_everything, [btrfs, xfs], |dir, fs| {
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    let data = pattern(8 * MIB, 1);
    for p in [&a, &b, &c] {
        write_synced(p, &data);
    }
    let before = (fs == Fs::Btrfs).then(|| btrfs_usage(dir));
    let out = cow(&[&a, &b, &c]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!("{} bytes shared", 16 * MIB)),
        "{stdout}"
    );
    for p in [&b, &c] {
        let s = cow_verify::sharing(&a, p).unwrap();
        assert_eq!(s.ratio, 1.0, "{s:?}");
        assert!(cow_verify::is_clone(&a, p).unwrap());
        assert_eq!(fs::read(p).unwrap(), data);
    }
    if let Some(before) = before {
        let after = btrfs_usage(dir);
        assert!(
            (before - after).abs_diff(16 * MIB as u64) <= MIB as u64 / 2,
            "usage {before} -> {after}"
        );
    }
    // Again: nothing left to do, and it says so.
    let out = cow(&[&a, &b]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already shares every block"));
});

fs_test!(different_files_are_refused, [btrfs, xfs], |dir| {
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    let data = pattern(4 * MIB, 2);
    write_synced(&a, &data);
    let mut other = data.clone();
    other[3 * MIB + 17] ^= 1;
    write_synced(&b, &other);
    write_synced(&c, &data[..MIB]);
    let mtimes = [&a, &b, &c].map(|p| fs::metadata(p).unwrap().modified().unwrap());

    let out = Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(["dedupe", "--json"])
        .args([&a, &b, &c])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = json["files"].as_array().unwrap();
    assert_eq!(files[0]["status"], "differs", "{json}");
    assert_eq!(files[1]["status"], "differs", "{json}");
    let msg = files[0]["error"].as_str().unwrap();
    assert!(
        msg.contains(&*b.to_string_lossy()) && msg.contains(&*a.to_string_lossy()),
        "{msg}"
    );
    assert!(msg.contains(&format!("byte {}", 3 * MIB + 17)), "{msg}");
    assert!(files[1]["error"].as_str().unwrap().contains("size"));

    // Nothing changed: contents, times, and no block is shared.
    assert_eq!(fs::read(&a).unwrap(), data);
    assert_eq!(fs::read(&b).unwrap(), other);
    assert_eq!(fs::read(&c).unwrap(), &data[..MIB]);
    for (p, t) in [&a, &b, &c].iter().zip(mtimes) {
        assert_eq!(fs::metadata(p).unwrap().modified().unwrap(), t);
    }
});

fs_test!(
    same_file_and_unsupported_are_errors,
    [btrfs, ext4],
    |dir, fs| {
        let (a, b) = (dir.join("a"), dir.join("b"));
        let data = pattern(MIB, 3);
        write_synced(&a, &data);
        fs::hard_link(&a, &b).unwrap();
        let out = cow(&[&a, &b]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("same file"));
        let c = dir.join("c");
        write_synced(&c, &data);
        let out = cow(&[&a, &c]);
        if fs.reflinks() {
            assert!(out.status.success(), "{out:?}");
        } else {
            assert_eq!(out.status.code(), Some(1));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("cannot dedupe"),
                "{out:?}"
            );
        }
        assert_eq!(fs::read(&c).unwrap(), data);
    }
);

#[test]
fn one_path_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(["dedupe", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
