//! Permissions the engine sets on its own files: the atomic temporary is
//! private (0600) while it exists, whatever the source's and the old
//! destination's modes; setuid/setgid never reach a copy owned by someone
//! other than the source's owner.
//!
//! The temporary is inspected from inside the copy through the
//! fault-injection seam (a hook that runs at the first data call).

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use cow_copy::fault::{self, Action, Fault, Site};
use cow_copy::{CopyOptions, Preserve, Reflink};
use cow_test_support::{fs_test, write_pattern};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs an atomic copy and, at the first call of `site`, records the name,
/// mode and size of every temporary in `dir`.
fn temps_seen_at(dir: &Path, opts: CopyOptions, site: Site) -> Vec<(String, u32)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (d, s) = (dir.to_path_buf(), Arc::clone(&seen));
    fault::arm(vec![Fault {
        site,
        nth: 1,
        action: Action::Hook(Box::new(move || {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(cow_copy::TEMP_MARKER) {
                    let mode = e.metadata().unwrap().mode() & 0o7777;
                    s.lock().unwrap().push((name, mode));
                }
            }
        })),
    }]);
    let r = opts.atomic(true).copy(dir.join("src"), dir.join("dst"));
    let fired = fault::fired();
    fault::disarm();
    r.unwrap();
    assert_eq!(fired, vec![(site, 1)], "the hook did not run");
    seen.lock().unwrap().clone()
}

fs_test!(
    atomic_temporary_is_private,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        let dst = dir.join("dst");
        let content = write_pattern(&src, 300_000, 1);
        fs::set_permissions(&src, fs::Permissions::from_mode(0o644)).unwrap();
        for (opts, site) in [
            // The clone attempt (every filesystem tries FICLONE first).
            (CopyOptions::new(), Site::IoctlClone),
            // The first write of a user-space copy.
            (CopyOptions::new().reflink(Reflink::Never), Site::Write),
            // Right before the rename, after the data and metadata were set.
            (
                CopyOptions::new().preserve(Preserve {
                    mode: false,
                    ..Preserve::default()
                }),
                Site::Rename,
            ),
        ] {
            write_pattern(&dst, 1000, 2);
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o664)).unwrap();
            let seen = temps_seen_at(dir, opts, site);
            assert_eq!(seen.len(), 1, "{site:?}: {seen:?}");
            let (name, mode) = &seen[0];
            assert!(name.starts_with(".dst.cow-tmp-"), "{name}");
            if site == Site::Rename {
                // Its final mode is set only once the data is complete: the old
                // destination's, since mode is not preserved.
                assert_eq!(*mode, 0o664, "{site:?}: {name} has mode {mode:o}");
            } else {
                assert_eq!(*mode, 0o600, "{site:?}: {name} has mode {mode:o}");
            }
            assert_eq!(fs::read(&dst).unwrap(), content);
        }
    }
);

fs_test!(
    setuid_not_given_to_another_owner,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        if !is_root() {
            eprintln!("SKIP setuid_not_given_to_another_owner: needs root to own files as others");
            return;
        }
        let src = dir.join("src");
        write_pattern(&src, 10_000, 3);
        std::os::unix::fs::chown(&src, Some(1000), Some(1000)).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o6755)).unwrap();
        assert_eq!(fs::metadata(&src).unwrap().mode() & 0o7777, 0o6755);

        // Root copies someone's setuid/setgid program: the copy is root's, so
        // the bits go (in place, new or existing, and atomic).
        for atomic in [false, true] {
            for existing in [false, true] {
                let dst = dir.join("dst");
                let _ = fs::remove_file(&dst);
                if existing {
                    write_pattern(&dst, 10, 4);
                }
                CopyOptions::new().atomic(atomic).copy(&src, &dst).unwrap();
                let m = fs::metadata(&dst).unwrap();
                assert_eq!(m.uid(), 0);
                assert_eq!(
                    m.mode() & 0o7777,
                    0o755,
                    "atomic={atomic} existing={existing}: mode {:o}",
                    m.mode() & 0o7777
                );
            }
        }

        // Owner kept (-p as root): the bits stay.
        let dst = dir.join("kept");
        CopyOptions::new()
            .preserve(Preserve::all())
            .copy(&src, &dst)
            .unwrap();
        let m = fs::metadata(&dst).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
        assert_eq!(m.mode() & 0o7777, 0o6755);

        // Same owner (root's own setuid file): std::fs::copy semantics keep them.
        let own = dir.join("own");
        write_pattern(&own, 100, 5);
        fs::set_permissions(&own, fs::Permissions::from_mode(0o4755)).unwrap();
        cow_copy::copy(&own, dir.join("own2")).unwrap();
        assert_eq!(
            fs::metadata(dir.join("own2")).unwrap().mode() & 0o7777,
            0o4755
        );

        // Group differs only: setgid goes, setuid stays.
        let g = dir.join("g");
        write_pattern(&g, 100, 6);
        std::os::unix::fs::chown(&g, Some(0), Some(1000)).unwrap();
        fs::set_permissions(&g, fs::Permissions::from_mode(0o6755)).unwrap();
        cow_copy::copy(&g, dir.join("g2")).unwrap();
        assert_eq!(
            fs::metadata(dir.join("g2")).unwrap().mode() & 0o7777,
            0o4755
        );
    }
);
