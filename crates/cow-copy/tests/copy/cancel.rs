//! Cancelling a copy half-way through one large file
//! (`CopyOptions::cancel`, `TreeOptions::cancel`): the flag is set from
//! another thread while the file is being copied; the copy fails with
//! `ErrorKind::Interrupted` naming the destination, leaves no temporary,
//! removes a destination it created, leaves an atomic copy's destination
//! untouched and an in-place one a true prefix of the source.

#![cfg(unix)]

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use cow_copy::tree::TreeOptions;
use cow_copy::{CopyError, CopyOptions, Reflink};
use cow_test_support::{fs_test, names_in, write_pattern};

/// Big enough for many chunks of either loop (1 MiB read/write, 16 MiB
/// kernel copy with a cancel flag).
const LEN: usize = 96 << 20;

/// A flag that another thread sets as soon as the first chunk of data has
/// been copied; the copying thread waits (in the observer) until it is set,
/// so the cancel lands mid-file every time. Returns the flag and the
/// observer to install.
fn set_mid_copy() -> (Arc<AtomicBool>, cow_copy::MovedFn) {
    let flag = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let setter = flag.clone();
    std::thread::spawn(move || {
        if rx.recv().is_ok() {
            setter.store(true, Ordering::Relaxed);
        }
    });
    let seen = flag.clone();
    let told = AtomicBool::new(false);
    let observer: cow_copy::MovedFn = Arc::new(move |_| {
        if !told.swap(true, Ordering::Relaxed) {
            let _ = tx.send(());
            while !seen.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
        }
    });
    (flag, observer)
}

/// The options of one mode, with a cancel that fires after the first chunk.
fn cancelling(reflink: Reflink, atomic: bool) -> CopyOptions {
    let (flag, observer) = set_mid_copy();
    CopyOptions::new()
        .reflink(reflink)
        .atomic(atomic)
        .observer(observer)
        .cancel(flag)
}

/// `reflink = never` reads and writes; `auto` on ext4 and tmpfs (no
/// clone) uses the kernel copy.
const MODES: [(&str, Reflink); 2] = [("read-write", Reflink::Never), ("kernel", Reflink::Auto)];

fn assert_cancelled(e: &CopyError, dst: &Path, what: &str) {
    assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{what}: {e}");
    let msg = e.to_string();
    assert!(msg.contains(&dst.display().to_string()), "{what}: {msg}");
    assert!(msg.contains("cancelled"), "{what}: {msg}");
}

fs_test!(new_destination_is_removed, [ext4, tmpfs], |dir| {
    let src = dir.join("src");
    write_pattern(&src, LEN, 1);
    for (what, reflink) in MODES {
        for atomic in [false, true] {
            let dst = dir.join("dst");
            let e = cancelling(reflink, atomic)
                .copy(&src, &dst)
                .expect_err("a cancelled copy fails");
            let what = format!("{what}, atomic {atomic}");
            assert_cancelled(&e, &dst, &what);
            // Nothing but the source: no destination, no temporary.
            assert_eq!(names_in(dir), ["src"], "{what}");
        }
    }
});

fs_test!(atomic_leaves_destination_untouched, [ext4, tmpfs], |dir| {
    let src = dir.join("src");
    write_pattern(&src, LEN, 2);
    let dst = dir.join("dst");
    let old = write_pattern(&dst, 3 << 20, 3);
    for (what, reflink) in MODES {
        let e = cancelling(reflink, true)
            .copy(&src, &dst)
            .expect_err("a cancelled copy fails");
        assert_cancelled(&e, &dst, what);
        assert_eq!(std::fs::read(&dst).unwrap(), old, "{what}: the old content");
        assert_eq!(names_in(dir), ["dst", "src"], "{what}: no temporary");
    }
});

fs_test!(in_place_is_a_prefix, [ext4, tmpfs], |dir| {
    let src = dir.join("src");
    let data = write_pattern(&src, LEN, 4);
    for (what, reflink) in MODES {
        let dst = dir.join("dst");
        write_pattern(&dst, 5 << 20, 5);
        let e = cancelling(reflink, false)
            .copy(&src, &dst)
            .expect_err("a cancelled copy fails");
        assert_cancelled(&e, &dst, what);
        let CopyError::Incomplete { written, .. } = e else {
            panic!("{what}: an in-place copy says it is incomplete: {e:?}");
        };
        let got = std::fs::read(&dst).unwrap();
        assert_eq!(got.len() as u64, written, "{what}");
        assert!(
            !got.is_empty() && got.len() < LEN,
            "{what}: {} bytes",
            got.len()
        );
        assert_eq!(got[..], data[..got.len()], "{what}: a prefix of the source");
        assert_eq!(names_in(dir), ["dst", "src"], "{what}");
    }
});

fs_test!(flag_never_set_copies_everything, [ext4, tmpfs], |dir| {
    let src = dir.join("src");
    let data = write_pattern(&src, 20 << 20, 6);
    for (what, reflink) in MODES {
        let dst = dir.join(what);
        let r = CopyOptions::new()
            .reflink(reflink)
            .cancel(Arc::new(AtomicBool::new(false)))
            .copy(&src, &dst)
            .expect("copy");
        assert_eq!(r.len, data.len() as u64, "{what}");
        assert_eq!(std::fs::read(&dst).unwrap(), data, "{what}");
    }
});

fs_test!(tree_stops_inside_a_file, [ext4, tmpfs], |dir| {
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    write_pattern(&src.join("big"), LEN, 7);
    for atomic in [false, true] {
        let dst = dir.join(format!("dst-{atomic}"));
        let (flag, observer) = set_mid_copy();
        let file = CopyOptions::new()
            .reflink(Reflink::Never)
            .atomic(atomic)
            .observer(observer);
        let opts = TreeOptions::new().copy_options(file).cancel(flag);
        let e = opts.copy(&src, &dst).expect_err("a cancelled tree fails");
        let report = e.report().expect("a report of what was done");
        assert!(report.stopped_early, "atomic {atomic}");
        assert_eq!(
            report.failures.len(),
            1,
            "atomic {atomic}: {:?}",
            report.failures
        );
        assert_eq!(report.failures[0].kind, io::ErrorKind::Interrupted);
        // The directory was created; the file it was in the middle of, or
        // its temporary, is gone.
        assert!(
            names_in(&dst).is_empty(),
            "atomic {atomic}: {:?}",
            names_in(&dst)
        );
    }
});
