//! `cow clean`: temporaries of killed atomic copies are removed; one that a
//! process has open, one written too recently and anything that only looks
//! similar are kept.
#![cfg(target_os = "linux")]

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use cow_test_support::{fs_test, set_mtime, write_pattern};

fn clean(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cow"))
        .arg("clean")
        .args(args)
        .arg(dir)
        .output()
        .expect("run cow")
}

/// Writes `path` and moves its mtime two hours back.
fn old_file(path: &Path) {
    write_pattern(path, 1000, 1);
    set_mtime(path, SystemTime::now() - Duration::from_secs(7200));
}

fs_test!(
    clean_removes_only_stale_temporaries,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        fs::create_dir(dir.join("sub")).unwrap();
        let stale = dir.join(".a.cow-tmp-abc123");
        let nested = dir.join("sub/.b.cow-tmp-zzz999");
        let held = dir.join(".c.cow-tmp-held00");
        let fresh = dir.join(".d.cow-tmp-new000");
        let lookalikes = [
            dir.join("e.cow-tmp-abc123"),
            dir.join(".f.cow-tmp-ABC123"),
            dir.join(".g.cow-tmp-abc1234"),
            dir.join("data"),
        ];
        for p in [&stale, &nested, &held].into_iter().chain(&lookalikes) {
            old_file(p);
        }
        write_pattern(&fresh, 10, 2);
        // An atomic copy in progress keeps its temporary open.
        let _open = File::open(&held).unwrap();

        // --dry-run removes nothing.
        let o = clean(&["-r", "--dry-run"], dir);
        assert!(o.status.success(), "{o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("would remove") && out.contains(".a.cow-tmp-abc123"),
            "{out}"
        );
        assert!(stale.exists() && nested.exists());

        // Without -r the subdirectory is not looked at.
        let o = clean(&[], dir);
        assert!(o.status.success(), "{o:?}");
        assert!(!stale.exists(), "the stale temporary is removed");
        assert!(nested.exists());

        let o = clean(&["-r", "--json"], dir);
        assert!(o.status.success(), "{o:?}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let action = |name: &str| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|d| d["path"].as_str().unwrap().ends_with(name))
                .map(|d| d["action"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            action(".b.cow-tmp-zzz999").as_deref(),
            Some("removed"),
            "{v}"
        );
        assert_eq!(action(".c.cow-tmp-held00").as_deref(), Some("kept"), "{v}");
        assert_eq!(action(".d.cow-tmp-new000").as_deref(), Some("kept"), "{v}");
        let held_entry = v
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["path"].as_str().unwrap().ends_with(".c.cow-tmp-held00"))
            .unwrap();
        assert_eq!(held_entry["open_by_pid"], std::process::id(), "{v}");
        assert!(!nested.exists());
        assert!(held.exists() && fresh.exists());
        for p in &lookalikes {
            assert!(p.exists(), "{} must not be touched", p.display());
            assert!(action(&p.file_name().unwrap().to_string_lossy()).is_none());
        }

        // --min-age 0 takes the fresh one too, never the open one.
        let o = clean(&["--min-age", "0"], dir);
        assert!(o.status.success(), "{o:?}");
        assert!(!fresh.exists() && held.exists());
    }
);

#[test]
fn clean_fails_on_a_missing_directory() {
    let o = clean(&[], Path::new("/nonexistent/cow-clean"));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/cow-clean"));
}
