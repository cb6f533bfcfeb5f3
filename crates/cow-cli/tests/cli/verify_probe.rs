//! `cow verify` and `cow probe` as a user runs them, on real filesystems.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Command, Output};

use cow_test_support::{fs_test, write_pattern};

fn cow(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot run cow")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn cp(args: &[&str], cwd: &Path) {
    let st = Command::new("cp")
        .args(args)
        .current_dir(cwd)
        .status()
        .unwrap();
    assert!(st.success(), "cp {args:?} failed");
}

fs_test!(verify_gnu_cp_copies, [btrfs, xfs], |dir| {
    write_pattern(&dir.join("orig"), 8 << 20, 42);
    cp(&["--reflink=always", "orig", "reflinked"], dir);
    cp(&["--reflink=never", "orig", "copied"], dir);

    let o = cow(&["verify", "orig", "reflinked", "copied"], dir);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "orig ⤳ reflinked: 1.000 (8.0 MiB of 8.0 MiB shared), clone",
            "orig ⤳ copied: 0.000 (0 B of 8.0 MiB shared)",
        ]
    );

    // --expect-clone fails on the byte copy only.
    assert_eq!(
        cow(&["verify", "--expect-clone", "orig", "reflinked"], dir)
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        cow(&["verify", "--expect-clone", "orig", "copied"], dir)
            .status
            .code(),
        Some(1)
    );

    // JSON parses and says the same.
    let o = cow(
        &[
            "verify",
            "--json",
            "--extents",
            "orig",
            "reflinked",
            "copied",
        ],
        dir,
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["reference"], "orig");
    assert_eq!(v["files"][0]["sharing"]["ratio"], 1.0);
    assert_eq!(v["files"][0]["sharing"]["shared_bytes"], 8 << 20);
    assert_eq!(v["files"][0]["is_clone"], true);
    assert_eq!(v["files"][1]["sharing"]["ratio"], 0.0);
    assert_eq!(v["files"][1]["is_clone"], false);
    let ext = v["files"][0]["extents"].as_array().unwrap();
    assert!(!ext.is_empty());
    assert!(
        ext.iter()
            .all(|e| e["shared"] == true
                && e["flags"].as_array().unwrap().contains(&"shared".into()))
    );
    assert!(
        v["reference_extents"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    // The extent table names the flags.
    let o = cow(&["verify", "--extents", "orig", "reflinked"], dir);
    let text = stdout(&o);
    assert!(
        text.contains("physical") && text.contains("shared"),
        "{text}"
    );
});

fs_test!(verify_errors_name_path_and_call, [tmpfs], |dir| {
    write_pattern(&dir.join("a"), 4096, 1);
    // tmpfs has no FIEMAP: the error names the file and the call.
    let o = cow(&["verify", "a", "a"], dir);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("a:") && err.contains("FS_IOC_FIEMAP"), "{err}");
    // A missing file: path and `open`.
    let o = cow(&["verify", "missing", "a"], dir);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing") && err.contains("open"), "{err}");
    // Usage errors exit 2.
    assert_eq!(cow(&["verify", "a"], dir).status.code(), Some(2));
});

fs_test!(probe_table_and_json, [btrfs, ext4], |dir, fs| {
    let o = cow(&["probe", "."], dir);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = stdout(&o);
    let want = if fs.reflinks() { "yes" } else { "no" };
    let reflink = text
        .lines()
        .find(|l| l.trim_start().starts_with("reflink"))
        .unwrap();
    assert_eq!(reflink.split_whitespace().nth(1), Some(want), "{text}");
    assert!(
        text.contains("live test") || text.contains("FICLONE"),
        "{text}"
    );

    let o = cow(&["probe", "--json", ".", "missing"], dir);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["reflink"]["support"], want);
    assert_eq!(v[0]["sparse"]["support"], "yes");
    assert_eq!(v[1]["path"], "missing");
    assert!(v[1]["error"].as_str().unwrap().contains("stat"));
    // Nothing left behind.
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
});
