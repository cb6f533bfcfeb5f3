//! What the attacker does, in tight loops, until it is killed. Paths are
//! relative to its working directory (the test's arena); every failure is
//! ignored (the attacker just tries again).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{self as rfs, CWD, Mode, OFlags, RenameFlags};

/// Runs the attack named by `args[0]` forever.
pub(crate) fn run(args: &[OsString]) {
    let arg = |i: usize| PathBuf::from(&args[i]);
    let names: Vec<PathBuf> = args.iter().skip(4).map(PathBuf::from).collect();
    match args[0].to_str() {
        // Swap each entry of the destination directory, right after root
        // created it, for a symlink to the victim or a hard link of it:
        // special DIR VICTIM_ABS VICTIM_REL,VICTIM_REL NAMES...
        Some("special") => swap_entries(&arg(1), &arg(2), &list(&args[3]), &names),
        // Plant hard links of the victims under the destination's names:
        // hardlink DIR - VICTIM,VICTIM NAMES...
        Some("hardlink") => plant_links(&arg(1), &list(&args[3]), &names),
        // Re-create LINK -> TARGET whenever it is gone: dangling LINK TARGET
        Some("dangling") => loop {
            let _ = symlink(arg(2), arg(1));
        },
        // Exchange DIR/d and DIR/l (a symlink to root's directory) and
        // re-create the stale temporary in the real d: clean DIR NAME
        Some("clean") => exchange_dirs(&arg(1), &arg(2)),
        other => panic!("unknown attack {other:?}"),
    }
}

/// A comma-separated list of paths.
fn list(arg: &OsString) -> Vec<PathBuf> {
    arg.to_str()
        .unwrap()
        .split(',')
        .map(PathBuf::from)
        .collect()
}

fn swap_entries(dir: &Path, victim_abs: &Path, victims_rel: &[PathBuf], names: &[PathBuf]) {
    let tmp = dir.join(".t");
    loop {
        for n in names {
            let target = dir.join(n);
            let _ = symlink(victim_abs, &tmp);
            let _ = fs::rename(&tmp, &target);
            for v in victims_rel {
                let _ = fs::hard_link(v, &tmp);
                let _ = fs::rename(&tmp, &target);
            }
        }
    }
}

fn plant_links(dir: &Path, victims: &[PathBuf], names: &[PathBuf]) {
    let tmp = dir.join(".h");
    loop {
        for n in names {
            for v in victims {
                if fs::hard_link(v, &tmp).is_ok() {
                    let _ = fs::rename(&tmp, dir.join(n));
                }
            }
        }
    }
}

fn exchange_dirs(dir: &Path, name: &Path) {
    let (d, l) = (dir.join("d"), dir.join("l"));
    let real = rfs::open(&d, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    let old = SystemTime::now() - Duration::from_secs(7200);
    let old = rfs::Timespec {
        tv_sec: old
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        tv_nsec: 0,
    };
    let times = rfs::Timestamps {
        last_access: old,
        last_modification: old,
    };
    loop {
        let _ = rfs::renameat_with(CWD, &d, CWD, &l, RenameFlags::EXCHANGE);
        if rfs::statat(&real, name, rfs::AtFlags::SYMLINK_NOFOLLOW).is_err() {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC;
            if let Ok(fd) = rfs::openat(&real, name, flags, Mode::from_raw_mode(0o644)) {
                let _ = rfs::futimens(&fd, &times);
            }
        }
    }
}
