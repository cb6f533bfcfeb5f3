//! `cow` on the machine's own temporary directory, on every platform (the
//! real-filesystem suites are Linux-only): the bytes arrive, a copy onto
//! itself fails without damage, usage errors exit 2, `cow probe` answers.

use std::fs;
use std::process::Command;

fn cow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cow"))
}

#[test]
fn cp_copies_a_file_and_refuses_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = cow_test_support::pattern(200_003, 9);
    fs::write(&src, &data).unwrap();
    let out = cow().arg("cp").arg(&src).arg(&dst).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read(&dst).unwrap(), data);

    let out = cow().arg("cp").arg(&src).arg(&src).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("src"), "the error names the path: {err}");
    assert_eq!(fs::read(&src).unwrap(), data, "source intact");
}

#[test]
fn usage_errors_exit_2() {
    let out = cow()
        .args(["cp", "--reflink=sometimes", "a", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = cow().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn probe_answers_for_the_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = cow()
        .arg("probe")
        .arg("--json")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.to_string().contains("reflink"), "{v}");
}

#[test]
fn cp_atomic_replaces_whole_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = cow_test_support::pattern(300_001, 10);
    fs::write(&src, &data).unwrap();
    fs::write(&dst, cow_test_support::pattern(900_000, 11)).unwrap();
    let out = cow()
        .args(["cp", "--atomic"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read(&dst).unwrap(), data);
    assert_eq!(cow_test_support::names_in(dir.path()), ["dst", "src"]);
}

#[test]
fn cp_r_copies_a_tree() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub").join("deeper")).unwrap();
    let files = [
        ("a", cow_test_support::pattern(1, 12)),
        ("sub/b", cow_test_support::pattern(70_000, 13)),
        ("sub/deeper/c", Vec::new()),
    ];
    for (name, data) in &files {
        fs::write(src.join(name), data).unwrap();
    }
    let dst = dir.path().join("dst");
    let out = cow()
        .args(["cp", "-r"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for (name, data) in &files {
        assert_eq!(&fs::read(dst.join(name)).unwrap(), data, "{name}");
    }
    assert_eq!(cow_test_support::names_in(&dst), ["a", "sub"]);
}
