//! An interrupted copy: `cow cp --atomic` over an existing destination,
//! SIGKILLed at many different moments. The destination is always either
//! the old file or the new one, never a mix; a killed run can leave only a
//! temporary named `.NAME.cow-tmp-XXXXXX`, mode 0600 until its data is
//! complete, and later `cow cp --atomic` runs to the same destination still
//! work.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use cow_test_support::{fs_test, write_pattern};

const MARKER: &str = ".cow-tmp-";

fn kill_loop(dir: &Path, label: &str, extra: &[&str]) {
    let src = dir.join("big");
    let dst = dir.join("dst");
    let new = write_pattern(&src, 32 << 20, 1);
    let old = write_pattern(&dst, 3 << 20, 2);
    // How long one uninterrupted copy takes, to spread the kills over it.
    let t = Instant::now();
    let st = Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(["cp", "--atomic"])
        .args(extra)
        .arg(&src)
        .arg(dir.join("probe"))
        .status()
        .unwrap();
    assert!(st.success());
    let full = t.elapsed();
    fs::remove_file(dir.join("probe")).unwrap();

    let (mut saw_old, mut saw_new) = (0, 0);
    let mut leftovers = std::collections::BTreeSet::new();
    let runs = 20u32;
    for i in 0..runs {
        fs::write(&dst, &old).unwrap();
        let delay = full.mul_f64(f64::from(i) / f64::from(runs - 4));
        let mut child = Command::new(env!("CARGO_BIN_EXE_cow"))
            .args(["cp", "--atomic"])
            .args(extra)
            .arg(&src)
            .arg(&dst)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();

        let now = fs::read(&dst).unwrap();
        if now == old {
            saw_old += 1;
        } else if now == new {
            saw_new += 1;
        } else {
            panic!(
                "{label}: run {i} (killed after {delay:?}): the destination is neither the old nor the new file ({} bytes)",
                now.len()
            );
        }
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "big" || name == "dst" || leftovers.contains(&name) {
                continue;
            }
            assert!(
                name.starts_with(".dst") && name.contains(MARKER),
                "{label}: run {i}: unrecognisable leftover {name:?}"
            );
            // Private while incomplete; the final mode (the source's) is set
            // only once all the data is there, right before the rename.
            let mode = e.metadata().unwrap().mode() & 0o777;
            if mode != 0o600 {
                assert_eq!(mode, 0o644, "{label}: leftover {name} has mode {mode:o}");
                assert!(
                    fs::read(e.path()).unwrap() == new,
                    "{label}: leftover {name} got its final mode before its data"
                );
            }
            leftovers.insert(name);
        }
    }
    eprintln!(
        "{label}: one copy takes {full:?}; {runs} kills: {saw_old} left the old file, {saw_new} the new one, {} left a temporary",
        leftovers.len()
    );
    let st = Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(["cp", "--atomic"])
        .arg(&src)
        .arg(&dst)
        .status()
        .unwrap();
    // After all that, with the leftovers still there, a normal run works.
    assert!(st.success());
    assert!(fs::read(&dst).unwrap() == new);
    for name in leftovers {
        fs::remove_file(dir.join(name)).unwrap();
    }
}

fs_test!(
    reliability_kill_atomic,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        kill_loop(dir, &format!("{fs} reflink=never"), &["--reflink=never"]);
        kill_loop(dir, &format!("{fs} default"), &[]);
    }
);
