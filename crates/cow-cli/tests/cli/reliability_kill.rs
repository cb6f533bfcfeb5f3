//! An interrupted copy: `cow cp --atomic` over an existing destination,
//! SIGKILLed at many different moments. The destination is always either
//! the old file or the new one, never a mix; a killed run can leave only a
//! temporary named `.NAME.cow-tmp-XXXXXX`, mode 0600 until its data is
//! complete, and later `cow cp --atomic` runs to the same destination still
//! work. SIGINT, SIGTERM and SIGHUP (catchable) leave no temporary at all.
//! And the default (in place, no `--atomic`) SIGKILLed in the same way:
//! the destination is old, new or torn (a prefix of the source, then
//! zeros), the source is untouched and nothing else is left.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cow_test_support::{fs_test, write_pattern};

const MARKER: &str = ".cow-tmp-";

/// Kills per loop, at moments spread over (and past) one copy's time.
const RUNS: u32 = 20;

/// Runs `cow cp ARGS src dst` to its end; it must succeed.
fn cow_cp(args: &[&str], src: &Path, dst: &Path) {
    let st = Command::new(env!("CARGO_BIN_EXE_cow"))
        .arg("cp")
        .args(args)
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(st.success(), "cow cp {args:?} to {}: {st}", dst.display());
}

/// The moment of the `i`th of [`RUNS`] kills of `cow cp ARGS src`: timed
/// by one uninterrupted copy (to `probe` in `dir`, removed again).
fn kill_delays(dir: &Path, args: &[&str], src: &Path) -> impl Fn(u32) -> Duration + use<> {
    let t = Instant::now();
    cow_cp(args, src, &dir.join("probe"));
    let full = t.elapsed();
    fs::remove_file(dir.join("probe")).unwrap();
    move |i| full.mul_f64(f64::from(i) / f64::from(RUNS - 4))
}

/// Starts `cow cp ARGS src dst` and SIGKILLs it after `delay`.
fn kill_after(args: &[&str], src: &Path, dst: &Path, delay: Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cow"))
        .arg("cp")
        .args(args)
        .arg(src)
        .arg(dst)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
}

fn kill_loop(dir: &Path, label: &str, extra: &[&str]) {
    let src = dir.join("big");
    let dst = dir.join("dst");
    let new = write_pattern(&src, 32 << 20, 1);
    let old = write_pattern(&dst, 3 << 20, 2);
    let args: Vec<&str> = ["--atomic"].iter().chain(extra).copied().collect();
    let delay_of = kill_delays(dir, &args, &src);

    let (mut saw_old, mut saw_new) = (0, 0);
    let mut leftovers = std::collections::BTreeSet::new();
    let (runs, full) = (RUNS, delay_of(RUNS - 4));
    for i in 0..runs {
        fs::write(&dst, &old).unwrap();
        let delay = delay_of(i);
        kill_after(&args, &src, &dst, delay);

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
    // After all that, with the leftovers still there, a normal run works.
    cow_cp(&["--atomic"], &src, &dst);
    assert!(fs::read(&dst).unwrap() == new);
    // `cow clean` removes exactly the leftovers (their processes are gone).
    let o = Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(["clean", "--min-age", "0"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{label}: {o:?}");
    for name in &leftovers {
        assert!(!dir.join(name).exists(), "{label}: cow clean left {name}");
    }
    assert!(fs::read(&dst).unwrap() == new && src.exists());
}

fs_test!(
    reliability_kill_atomic,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        kill_loop(dir, &format!("{fs} reflink=never"), &["--reflink=never"]);
        kill_loop(dir, &format!("{fs} default"), &[]);
    }
);

/// What a killed in-place copy may leave at `dst`, given the file it
/// replaced (`old`, `None` for a new destination) and the source `new`: the
/// old file untouched, or a torn copy, no longer than the source, that holds
/// the source's bytes up to some offset and zeros after it (the old
/// content is cut to nothing before the first write, and the data is
/// written in order). Returns whether it was torn.
fn check_in_place_leftover(
    label: &str,
    old: Option<&[u8]>,
    new: &[u8],
    now: Option<&[u8]>,
) -> bool {
    let Some(now) = now else {
        assert!(old.is_none(), "{label}: the existing destination vanished");
        return false;
    };
    if Some(now) == old || now == new {
        return false;
    }
    assert!(
        now.len() <= new.len(),
        "{label}: {} bytes, longer than the source ({})",
        now.len(),
        new.len()
    );
    let copied = now.iter().zip(new).take_while(|(a, b)| a == b).count();
    assert!(
        now[copied..].iter().all(|&b| b == 0),
        "{label}: the source's first {copied} bytes, then bytes that are neither the source's nor zeros"
    );
    true
}

/// Kills `cow cp` (the default in-place mode, no `--atomic`) at moments
/// spread over one copy, each time over `old` again (or a new destination
/// when `old` is empty), and checks every outcome against
/// [`check_in_place_leftover`]. The source never changes and nothing but
/// the destination is ever left (in place, there is no temporary).
fn kill_in_place(dir: &Path, label: &str, extra: &[&str], old_len: usize) {
    let src = dir.join("big");
    let dst = dir.join("dst");
    let new = write_pattern(&src, 16 << 20, 5);
    let old = (old_len > 0).then(|| cow_test_support::pattern(old_len, 6));
    let delay_of = kill_delays(dir, extra, &src);

    let (mut kept, mut torn) = (0, 0);
    let (runs, full) = (RUNS, delay_of(RUNS - 4));
    for i in 0..runs {
        match &old {
            Some(old) => fs::write(&dst, old).unwrap(),
            None => {
                let _ = fs::remove_file(&dst);
            }
        }
        let delay = delay_of(i);
        kill_after(extra, &src, &dst, delay);

        let run = format!("{label}: run {i} (killed after {delay:?})");
        let now = fs::read(&dst).ok();
        if check_in_place_leftover(&run, old.as_deref(), &new, now.as_deref()) {
            torn += 1;
        } else {
            kept += 1;
        }
        let mut names = cow_test_support::names_in(dir);
        names.retain(|n| n != "dst");
        assert_eq!(
            names,
            ["big"],
            "{run}: something besides the destination was left"
        );
    }
    assert!(
        fs::read(&src).unwrap() == new,
        "{label}: the source changed"
    );
    eprintln!(
        "{label}: one copy takes {full:?}; {runs} kills: {kept} left the old or the new file (or none), {torn} a torn copy"
    );
    // A normal run afterwards repairs it.
    cow_cp(&[], &src, &dst);
    assert!(fs::read(&dst).unwrap() == new);
    fs::remove_file(&dst).unwrap();
}

fs_test!(
    reliability_kill_in_place,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        // The old file is longer than the 16 MiB source: none of it may
        // survive in a torn copy.
        kill_in_place(
            dir,
            &format!("{fs} reflink=never"),
            &["--reflink=never"],
            17 << 20,
        );
        kill_in_place(dir, &format!("{fs} default"), &[], 17 << 20);
        kill_in_place(
            dir,
            &format!("{fs} new destination"),
            &["--reflink=never"],
            0,
        );
    }
);

/// The names of the temporaries in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| cow_copy::leftovers::is_temporary_name(n))
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

fs_test!(
    reliability_signal_removes_temporary,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        use rustix::process::{Pid, Signal, kill_process};
        use std::os::unix::process::ExitStatusExt;
        let src = dir.join("big");
        let dst = dir.join("dst");
        write_pattern(&src, 256 << 20, 3);
        let old = write_pattern(&dst, 4096, 4);
        for (sig, raw) in [(Signal::INT, 2), (Signal::TERM, 15), (Signal::HUP, 1)] {
            // Catch the copy while its temporary exists (a fast machine may
            // finish first: then try again).
            let mut caught = 0;
            for _ in 0..10 {
                fs::write(&dst, &old).unwrap();
                let mut child = Command::new(env!("CARGO_BIN_EXE_cow"))
                    .args(["cp", "--atomic", "--reflink=never"])
                    .arg(&src)
                    .arg(&dst)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let seen = loop {
                    if !temporaries(dir).is_empty() {
                        break true;
                    }
                    if child.try_wait().unwrap().is_some() {
                        break false;
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                };
                if !seen {
                    let out = child.wait_with_output().unwrap();
                    assert!(out.status.success(), "{fs}: copy failed");
                    continue;
                }
                let pid = Pid::from_raw(child.id() as i32).unwrap();
                kill_process(pid, sig).unwrap();
                let out = child.wait_with_output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                let now = fs::read(&dst).unwrap();
                if out.status.success() {
                    // Finished between the look and the signal: the new file.
                    assert!(now.len() == 256 << 20, "{fs}: a finished copy is whole");
                    assert!(temporaries(dir).is_empty());
                    continue;
                }
                caught += 1;
                assert_eq!(
                    out.status.signal(),
                    Some(raw),
                    "{fs}: cow should die of signal {raw}: {:?} {stderr}",
                    out.status
                );
                assert!(now == old, "{fs}: signal {raw}: the destination changed");
                assert_eq!(
                    temporaries(dir),
                    Vec::<String>::new(),
                    "{fs}: signal {raw} left a temporary"
                );
                assert!(
                    stderr.contains("removed 1 unfinished temporary file"),
                    "{fs}: {stderr}"
                );
            }
            assert!(
                caught > 0,
                "{fs}: never caught a copy in flight for signal {raw}"
            );
            eprintln!("{fs}: signal {raw}: {caught} of 10 copies interrupted, no temporary left");
        }
    }
);
