//! A real ENOSPC: the 64 MiB ext4 that `cargo xtask test` mounts for this
//! (`COW_TEST_SMALL`) is filled until a copy runs out of space half-way.
//! With `atomic` the existing destination survives whole; without it the
//! error says the destination is incomplete; a new destination is removed;
//! the error is ENOSPC (`StorageFull`) and names the path; no temporary is
//! left and the space the failed copy took is given back.

#![cfg(target_os = "linux")]

use std::fs;
use std::io::Write;
use std::path::Path;

use cow_copy::{CopyError, CopyOptions, Reflink};
use cow_test_support::{small_dir, write_pattern};

const MIB: u64 = 1 << 20;

fn free_bytes(dir: &Path) -> u64 {
    let st = rustix::fs::statvfs(dir).unwrap();
    st.f_bavail * st.f_frsize
}

/// Fills the filesystem until only about `leave` bytes are free.
fn fill(dir: &Path, leave: u64) {
    let mut f = fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0x5au8; MIB as usize];
    while free_bytes(dir) > leave + MIB {
        if f.write_all(&chunk).is_err() {
            break;
        }
        f.sync_all().unwrap();
    }
    f.sync_all().unwrap();
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(cow_copy::TEMP_MARKER))
        .collect()
}

fn assert_enospc(e: &CopyError, path: &Path) {
    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
    assert_eq!(
        e.raw_os_error(),
        Some(rustix::io::Errno::NOSPC.raw_os_error())
    );
    assert!(
        e.to_string().contains(&*path.to_string_lossy()),
        "the error does not name {}: {e}",
        path.display()
    );
}

fn out_of_space(opts: CopyOptions, label: &str) {
    let Some(tmp) = small_dir(&format!("enospc::{label}")) else {
        return;
    };
    let dir = tmp.path();
    let src = dir.join("src");
    let dst = dir.join("dst");
    write_pattern(&src, (20 * MIB) as usize, 1);
    let old = write_pattern(&dst, MIB as usize, 2);
    fill(dir, 8 * MIB);
    let free_before = free_bytes(dir);
    assert!(
        free_before < 20 * MIB,
        "{label}: could not fill the filesystem ({free_before} bytes free)"
    );

    // Atomic: the old destination survives whole.
    let e = opts.clone().atomic(true).copy(&src, &dst).unwrap_err();
    assert_enospc(&e, &dst);
    assert_eq!(
        fs::read(&dst).unwrap(),
        old,
        "{label}: atomic copy damaged dst"
    );
    assert!(leftovers(dir).is_empty(), "{label}: {:?}", leftovers(dir));
    let free_after = free_bytes(dir);
    assert!(
        free_after + MIB >= free_before,
        "{label}: the failed atomic copy kept space ({free_before} -> {free_after})"
    );

    // A new destination that cannot be completed is removed.
    let new = dir.join("new");
    let e = opts.clone().copy(&src, &new).unwrap_err();
    assert_enospc(&e, &new);
    assert!(!new.exists(), "{label}: a partial new file was left");
    assert!(leftovers(dir).is_empty());

    // In place: the error says the destination is incomplete and how much
    // of it was written.
    let e = opts.clone().copy(&src, &dst).unwrap_err();
    assert_enospc(&e, &dst);
    match &e {
        CopyError::Incomplete { written, .. } => {
            // The destination is a true prefix of the source, as long as
            // the error says.
            let now = fs::read(&dst).unwrap();
            assert_eq!(*written, now.len() as u64, "{label}: {e}");
            assert!(*written > 0 && *written < 20 * MIB, "{label}: {e}");
            assert!(
                now == fs::read(&src).unwrap()[..now.len()],
                "{label}: not a prefix"
            );
        }
        other => panic!("{label}: expected Incomplete, got {other}"),
    }
    eprintln!("{label}: in place: {e}");
    assert!(e.to_string().contains("incomplete"), "{e}");
    assert!(leftovers(dir).is_empty());

    // Room again: the same copy now succeeds.
    fs::remove_file(dir.join("filler")).unwrap();
    let r = opts.atomic(true).copy(&src, &dst).unwrap();
    assert_eq!(r.len, 20 * MIB);
    assert_eq!(fs::read(&dst).unwrap(), fs::read(&src).unwrap());
}

/// One test for both paths: they share the one small filesystem, so they
/// must not fill it at the same time.
#[test]
fn enospc_mid_copy() {
    out_of_space(CopyOptions::new(), "kernel_copy");
    out_of_space(CopyOptions::new().reflink(Reflink::Never), "user_copy");
}
