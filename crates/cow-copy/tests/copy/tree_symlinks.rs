//! Symlinks in tree copies: their xattrs, and the temporary a symlink
//! that replaces an entry leaves when the tree is cut short (split from
//! `tree.rs`).

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::tree::{opts_p, xattr};
use cow_copy::tree::TreeOptions;
use cow_copy::{CopyOptions, Preserve};
use cow_test_support::{Fs, fs_test, write_pattern};

/// The symlink xattr the tests below use: `trusted.*` is one of the
/// namespaces Linux allows on symlinks (`user.*` is refused), and root may
/// set it.
const LINK_ATTR: &str = "trusted.cow_test";

/// Every xattr name of `p` itself (not followed), sorted.
fn xattr_names(p: &Path) -> Vec<String> {
    let mut buf = vec![0u8; 64 * 1024];
    let n = rustix::fs::llistxattr(p, &mut buf[..])
        .unwrap_or_else(|e| panic!("llistxattr {}: {e}", p.display()));
    let mut names: Vec<String> = buf[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    names.sort();
    names
}

/// A tree with symlinks carrying `LINK_ATTR`: `src/file` (its target, with
/// no xattr), `src/sub/link -> ../file`, `src/dangling -> nowhere`.
/// Returns the symlinks whose xattr the filesystem accepted, each with its
/// value; an empty list when it refuses them (said on stderr).
fn symlink_tree(fs: Fs, src: &Path) -> Vec<(&'static str, Vec<u8>)> {
    fs::create_dir_all(src.join("sub")).unwrap();
    write_pattern(&src.join("file"), 1000, 1);
    symlink("../file", src.join("sub/link")).unwrap();
    symlink("nowhere", src.join("dangling")).unwrap();
    let mut set = Vec::new();
    for (rel, value) in [("sub/link", &b"link value"[..]), ("dangling", b"dangling")] {
        let p = src.join(rel);
        match rustix::fs::lsetxattr(&p, LINK_ATTR, value, rustix::fs::XattrFlags::empty()) {
            Ok(()) => set.push((rel, value.to_vec())),
            Err(e) => {
                // The four test filesystems all let root do it: only an
                // unprivileged run may take this path.
                assert!(
                    !rustix::process::geteuid().is_root(),
                    "{}: root cannot set {LINK_ATTR} on the symlink {rel}: {e}",
                    fs.name()
                );
                eprintln!(
                    "NOTE {}: the source filesystem refuses {LINK_ATTR} on the symlink {rel}: {e}; \
                     checking only that the copy is complete and adds no xattr",
                    fs.name()
                )
            }
        }
    }
    // Not followed: the target has no xattr of that name.
    assert_eq!(xattr(&src.join("file"), LINK_ATTR), None);
    set
}

fs_test!(
    symlink_xattrs_preserved,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        let src = dir.join("src");
        let dst = dir.join("dst");
        let set = symlink_tree(fs, &src);
        // An older copy whose symlink is replaced (through a temporary
        // sibling) must get the xattr too.
        fs::create_dir_all(dst.join("sub")).unwrap();
        symlink("old target", dst.join("sub/link")).unwrap();

        let r = opts_p().copy(&src, &dst).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.is_complete(), "{:?}", r.failures);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.totals.symlinks, 2, "{:?}", r.totals);
        for rel in ["sub/link", "dangling"] {
            assert_eq!(
                fs::read_link(dst.join(rel)).unwrap(),
                fs::read_link(src.join(rel)).unwrap(),
                "target of {rel}"
            );
            assert_eq!(
                xattr_names(&dst.join(rel)),
                xattr_names(&src.join(rel)),
                "xattr names of {rel}"
            );
        }
        for (rel, value) in &set {
            assert_eq!(
                xattr(&dst.join(rel), LINK_ATTR).as_deref(),
                Some(&value[..]),
                "{LINK_ATTR} of {rel}"
            );
        }
        // Neither link was followed: no target got the attribute (the
        // dangling one would have been created otherwise).
        assert_eq!(xattr(&dst.join("file"), LINK_ATTR), None);
        assert_eq!(xattr(&src.join("file"), LINK_ATTR), None);
        assert!(!dst.join("nowhere").exists() && !src.join("nowhere").exists());

        // The root of the copy a symlink itself (reached by path, not
        // through a directory descriptor).
        let root = dir.join("root-copy");
        let r = opts_p()
            .copy(src.join("sub/link"), &root)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.is_complete() && r.warnings.is_empty(), "{r:?}");
        assert_eq!(fs::read_link(&root).unwrap(), Path::new("../file"));
        assert_eq!(
            xattr(&root, LINK_ATTR),
            xattr(&src.join("sub/link"), LINK_ATTR)
        );
        if set.is_empty() {
            assert_eq!(xattr_names(&dst.join("sub/link")), Vec::<String>::new());
        }
    }
);

fs_test!(
    symlink_xattrs_not_copied_without_preserve,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        let src = dir.join("src");
        let set = symlink_tree(fs, &src);
        let everything_but_xattrs = Preserve {
            xattrs: false,
            ..Preserve::all()
        };
        for (i, preserve) in [Preserve::none(), everything_but_xattrs]
            .into_iter()
            .enumerate()
        {
            let dst = dir.join(format!("dst{i}"));
            let opts = TreeOptions::new().copy_options(CopyOptions::new().preserve(preserve));
            let r = opts.copy(&src, &dst).unwrap_or_else(|e| panic!("{e}"));
            assert!(r.is_complete() && r.warnings.is_empty(), "{r:?}");
            for rel in ["sub/link", "dangling"] {
                assert_eq!(
                    fs::read_link(dst.join(rel)).unwrap(),
                    fs::read_link(src.join(rel)).unwrap()
                );
                assert_eq!(
                    xattr(&dst.join(rel), LINK_ATTR),
                    None,
                    "{rel} ({preserve:?})"
                );
            }
        }
        // The source still has them: the test had something to not copy.
        for (rel, value) in &set {
            assert_eq!(
                xattr(&src.join(rel), LINK_ATTR).as_deref(),
                Some(&value[..])
            );
        }
    }
);

// A symlink that replaces an entry is made under the one temporary name
// (`replace::temp_name`). When the tree can neither rename it into place
// nor remove it (both calls fail here), what it leaves behind is found by
// `cow clean`'s search (`leftovers::find`) and removed by it.
fs_test!(tree_leftover_found_by_clean, [btrfs, tmpfs], |dir| {
    use cow_copy::fault::{self, Fault, Site};
    let src = dir.join("src");
    let dst = dir.join("dst");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&dst).unwrap();
    symlink("target", src.join("link")).unwrap();
    fs::write(dst.join("link"), b"old").unwrap();
    let eio = rustix::io::Errno::IO.raw_os_error();
    fault::arm(vec![
        Fault::fail(Site::Rename, 1, eio),
        Fault::fail(Site::Unlink, 1, eio),
    ]);
    let r = TreeOptions::new().jobs(1).copy(&src, &dst);
    let fired = fault::fired();
    fault::disarm();
    r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fired, vec![(Site::Rename, 1), (Site::Unlink, 1)]);
    // The entry was still replaced (by remove and create).
    assert_eq!(
        fs::read_link(dst.join("link")).unwrap(),
        Path::new("target")
    );
    let found = cow_copy::leftovers::find(&dst, true).unwrap();
    assert_eq!(found.temporaries.len(), 1, "{:?}", found.temporaries);
    let t = &found.temporaries[0];
    let name = t.path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(".link.cow-tmp-"), "{name}");
    assert!(
        fs::symlink_metadata(&t.path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    t.remove().unwrap();
    assert!(fs::symlink_metadata(&t.path).is_err());
    assert!(
        cow_copy::leftovers::find(&dst, true)
            .unwrap()
            .temporaries
            .is_empty()
    );
});
