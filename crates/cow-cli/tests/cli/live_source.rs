//! `cow cp` and a source that is written while it is copied: the warning
//! "source changed during the copy" on stderr, the count in `--json`, exit
//! status 1 (like GNU tar); a still source gives none of these.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use cow_test_support::{fs_test, write_pattern};

const LEN: usize = 64 << 20;

fn cp(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cow"))
        .arg("cp")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run cow")
}

/// Runs `cow cp ARGS` while another thread rewrites 64 KiB blocks of `src`
/// (same length) without pause, the way the reproducer did.
fn cp_while_writing(args: &[&str], dir: &Path) -> Output {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let f = fs::OpenOptions::new()
                .write(true)
                .open(dir.join("src"))
                .unwrap();
            let mut off = 0u64;
            while !stop.load(Ordering::Relaxed) {
                f.write_all_at(&[0x5A; 65536], off).unwrap();
                off = (off + 7 * 65536) % LEN as u64;
            }
        });
        let out = cp(args, dir);
        stop.store(true, Ordering::Relaxed);
        out
    })
}

fs_test!(cp_reports_a_source_that_changed, [xfs, ext4], |dir| {
    write_pattern(&dir.join("src"), LEN, 9);
    let out = cp_while_writing(&["--reflink=never", "--json", "src", "dst"], dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["totals"]["source_changed"], 1, "{json}");
    assert_eq!(json["sources"][0]["file"]["source_changed"], true, "{json}");

    // Without --json the warning names the source.
    let out = cp_while_writing(&["--reflink=never", "src", "dst2"], dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("cow cp: warning: 'src': source changed during the copy"),
        "stderr: {stderr}"
    );

    // A source nobody writes: exit 0, no warning, counted 0.
    let out = cp(
        &[
            "--reflink=never",
            "--json",
            "--retry-changed=2",
            "src",
            "dst3",
        ],
        dir,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["totals"]["source_changed"], 0, "{json}");
    assert_eq!(
        fs::read(dir.join("src")).unwrap(),
        fs::read(dir.join("dst3")).unwrap()
    );
});
