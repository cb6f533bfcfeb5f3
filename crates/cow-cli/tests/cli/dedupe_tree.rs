//! `cow dedupe -r` and `cow verify -r` on real filesystems.

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use cow_test_support::{fs_test, pattern, write_synced};

const KIB: usize = 1 << 10;

fn cow(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fs_test!(dedupe_tree_json_and_verify, [btrfs, xfs], |dir| {
    let (a, b) = (dir.join("a"), dir.join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    let one = pattern(300 * KIB, 1);
    let two = pattern(40 * KIB, 2);
    for d in [&a, &b] {
        write_synced(&d.join("one"), &one);
        write_synced(&d.join("two"), &two);
        write_synced(
            &d.join("own"),
            &pattern(40 * KIB, if d == &a { 3 } else { 4 }),
        );
    }
    // A read-only duplicate with a name that needs quoting.
    let odd = b.join("ro\nfile");
    write_synced(&odd, &two);
    fs::set_permissions(&odd, fs::Permissions::from_mode(0o444)).unwrap();

    let dry = cow(&["dedupe", "-r", "--dry-run", "--json"], &[&a, &b]);
    assert!(dry.status.success(), "{dry:?}");
    let d = json(&dry);
    assert_eq!(d["dry_run"], true);
    assert_eq!(d["space_freed"], serde_json::Value::Null);

    let out = cow(&["dedupe", "-r", "--json"], &[&a, &b]);
    assert!(out.status.success(), "{out:?}");
    let r = json(&out);
    assert_eq!(r["groups"].as_array().unwrap().len(), 2, "{r:#}");
    let newly = (one.len() + two.len()) as u64;
    assert_eq!(r["bytes_newly_shared"], newly, "{r:#}");
    assert_eq!(d["bytes_newly_shared"], newly, "{d:#}");
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{r:#}");
    assert_eq!(skipped[0]["reason"]["code"], "read-only");

    // Text: the rerun shares nothing new; the skip names the file quoted.
    let again = cow(&["dedupe", "-r", "--stats"], &[&a, &b]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{again:?}");
    assert!(stdout.contains("\n0 bytes newly shared"), "{stdout}");
    assert!(
        stdout.contains(&format!("{newly} bytes already shared")),
        "{stdout}"
    );
    assert!(stdout.contains("stats: "), "{stdout}");
    assert!(stderr.contains("/ro'$'\\n''file': read-only"), "{stderr}");

    // verify -r: a's files are all shared; the tree holds each content once
    // (plus the two unshared ones and the read-only copy).
    let v = cow(&["verify", "-r", "--json"], &[&a, dir]);
    assert!(v.status.success(), "{v:?}");
    let v = json(&v);
    assert_eq!(v[0]["files"], 3);
    assert_eq!(v[0]["shared_bytes"], newly, "{v:#}");
    assert_eq!(v[1]["files"], 7);
    let unique = (one.len() + two.len() + 40 * KIB * 2 + two.len()) as u64;
    assert_eq!(v[1]["physical_bytes"], unique, "{v:#}");
});

fs_test!(cannot_dedupe_is_printed_once, [ext4, tmpfs], |dir| {
    for i in 0..4 {
        let data = pattern(8 * KIB, i);
        write_synced(&dir.join(format!("x{i}")), &data);
        write_synced(&dir.join(format!("y{i}")), &data);
    }
    let out = cow(&["dedupe", "-r"], &[dir]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stderr.matches("cannot dedupe").count(), 1, "{stderr}");
    assert!(stderr.contains("8 files left alone"), "{stderr}");
});

#[test]
fn usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    fs::write(&f, b"x").unwrap();
    // One file and no -r: nothing to share it with.
    assert_eq!(cow(&["dedupe"], &[&f]).status.code(), Some(2));
    // Tree options need -r.
    assert_eq!(
        cow(&["dedupe", "--dry-run"], &[&f, &f]).status.code(),
        Some(2)
    );
    assert_eq!(
        cow(&["dedupe", "-r", "--min-size", "1Q"], &[&f])
            .status
            .code(),
        Some(2)
    );
    for bad in ["0", "-1", "many"] {
        let out = cow(&["dedupe", "-r", "--threads", bad], &[&f]);
        assert_eq!(out.status.code(), Some(2), "--threads {bad}: {out:?}");
    }
    assert_eq!(
        cow(&["dedupe", "--threads", "2"], &[&f, &f]).status.code(),
        Some(2),
        "--threads without -r"
    );
}

fs_test!(threads_option_runs_the_same, [btrfs], |dir| {
    let data = pattern(64 * KIB, 5);
    for name in ["x", "y", "z"] {
        write_synced(&dir.join(name), &data);
    }
    let out = cow(&["dedupe", "-r", "--threads", "1", "--json"], &[dir]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["groups"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["bytes_newly_shared"], 2 * data.len() as u64, "{v}");
});
