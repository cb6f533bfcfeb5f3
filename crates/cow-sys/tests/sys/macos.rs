//! The macOS bindings on the real volume of the temp directory (APFS on
//! every supported macOS): layouts against the SDK headers, clones that
//! share device blocks, copyfile's clone report.
#![cfg(target_os = "macos")]

use crate::common;

use std::fs::File;
use std::io;
use std::mem::{align_of, offset_of, size_of};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use cow_sys::macos::*;
use cow_test_support::{pattern, write_pattern};

const PROBE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <copyfile.h>
#include <sys/clonefile.h>
#include <sys/stat.h>
#include <sys/acl.h>

#define CONST(c) printf("const %s %llu\n", #c, (unsigned long long)(c))

int main(void) {
    printf("size log2phys %zu\nalign log2phys %zu\n", sizeof(struct log2phys), _Alignof(struct log2phys));
    printf("offset log2phys.l2p_flags %zu\n", offsetof(struct log2phys, l2p_flags));
    printf("offset log2phys.l2p_contigbytes %zu\n", offsetof(struct log2phys, l2p_contigbytes));
    printf("offset log2phys.l2p_devoffset %zu\n", offsetof(struct log2phys, l2p_devoffset));
    CONST(F_LOG2PHYS_EXT);
    CONST(CLONE_NOFOLLOW);
    CONST(CLONE_NOOWNERCOPY);
    CONST(CLONE_ACL);
    CONST(UF_NODUMP);
    CONST(UF_IMMUTABLE);
    CONST(UF_APPEND);
    CONST(UF_OPAQUE);
    CONST(UF_COMPRESSED);
    CONST(UF_TRACKED);
    CONST(UF_HIDDEN);
    CONST(SF_ARCHIVED);
    CONST(SF_IMMUTABLE);
    CONST(SF_APPEND);
    CONST(SF_NOUNLINK);
    CONST(ACL_TYPE_EXTENDED);
    CONST(COPYFILE_STATE_COPIED);
    CONST(COPYFILE_STATE_WAS_CLONED);
    CONST(COPYFILE_ACL);
    CONST(COPYFILE_STAT);
    CONST(COPYFILE_XATTR);
    CONST(COPYFILE_DATA);
    CONST(COPYFILE_SECURITY);
    CONST(COPYFILE_METADATA);
    CONST(COPYFILE_ALL);
    CONST(COPYFILE_RECURSIVE);
    CONST(COPYFILE_CHECK);
    CONST(COPYFILE_EXCL);
    CONST(COPYFILE_NOFOLLOW_SRC);
    CONST(COPYFILE_NOFOLLOW_DST);
    CONST(COPYFILE_MOVE);
    CONST(COPYFILE_UNLINK);
    CONST(COPYFILE_NOFOLLOW);
    CONST(COPYFILE_PACK);
    CONST(COPYFILE_UNPACK);
    CONST(COPYFILE_CLONE);
    CONST(COPYFILE_CLONE_FORCE);
    CONST(COPYFILE_RUN_IN_PLACE);
    CONST(COPYFILE_DATA_SPARSE);
    CONST(COPYFILE_PRESERVE_DST_TRACKED);
    CONST(COPYFILE_VERBOSE);
    return 0;
}
"#;

fn facts() -> Vec<(&'static str, u64, u64)> {
    let u = |n: usize| n as u64;
    let c = |f: CopyFileFlags| u64::from(f.bits());
    let f = |f: FileFlags| u64::from(f.bits());
    vec![
        ("size log2phys", u(size_of::<Log2Phys>()), 20),
        ("align log2phys", u(align_of::<Log2Phys>()), 4),
        (
            "offset log2phys.l2p_flags",
            u(offset_of!(Log2Phys, l2p_flags)),
            0,
        ),
        (
            "offset log2phys.l2p_contigbytes",
            u(offset_of!(Log2Phys, l2p_contigbytes)),
            4,
        ),
        (
            "offset log2phys.l2p_devoffset",
            u(offset_of!(Log2Phys, l2p_devoffset)),
            12,
        ),
        ("const F_LOG2PHYS_EXT", F_LOG2PHYS_EXT as u64, 65),
        (
            "const CLONE_NOFOLLOW",
            CloneFlags::NOFOLLOW.bits().into(),
            1,
        ),
        (
            "const CLONE_NOOWNERCOPY",
            CloneFlags::NOOWNERCOPY.bits().into(),
            2,
        ),
        ("const CLONE_ACL", CloneFlags::ACL.bits().into(), 4),
        ("const UF_NODUMP", f(FileFlags::UF_NODUMP), 0x1),
        ("const UF_IMMUTABLE", f(FileFlags::UF_IMMUTABLE), 0x2),
        ("const UF_APPEND", f(FileFlags::UF_APPEND), 0x4),
        ("const UF_OPAQUE", f(FileFlags::UF_OPAQUE), 0x8),
        ("const UF_COMPRESSED", f(FileFlags::UF_COMPRESSED), 0x20),
        ("const UF_TRACKED", f(FileFlags::UF_TRACKED), 0x40),
        ("const UF_HIDDEN", f(FileFlags::UF_HIDDEN), 0x8000),
        ("const SF_ARCHIVED", f(FileFlags::SF_ARCHIVED), 0x1_0000),
        ("const SF_IMMUTABLE", f(FileFlags::SF_IMMUTABLE), 0x2_0000),
        ("const SF_APPEND", f(FileFlags::SF_APPEND), 0x4_0000),
        ("const SF_NOUNLINK", f(FileFlags::SF_NOUNLINK), 0x10_0000),
        ("const ACL_TYPE_EXTENDED", ACL_TYPE_EXTENDED as u64, 0x100),
        (
            "const COPYFILE_STATE_COPIED",
            COPYFILE_STATE_COPIED.into(),
            8,
        ),
        (
            "const COPYFILE_STATE_WAS_CLONED",
            COPYFILE_STATE_WAS_CLONED.into(),
            10,
        ),
        ("const COPYFILE_ACL", c(CopyFileFlags::ACL), 1 << 0),
        ("const COPYFILE_STAT", c(CopyFileFlags::STAT), 1 << 1),
        ("const COPYFILE_XATTR", c(CopyFileFlags::XATTR), 1 << 2),
        ("const COPYFILE_DATA", c(CopyFileFlags::DATA), 1 << 3),
        (
            "const COPYFILE_SECURITY",
            c(CopyFileFlags::SECURITY),
            0b0011,
        ),
        (
            "const COPYFILE_METADATA",
            c(CopyFileFlags::METADATA),
            0b0111,
        ),
        ("const COPYFILE_ALL", c(CopyFileFlags::ALL), 0b1111),
        (
            "const COPYFILE_RECURSIVE",
            c(CopyFileFlags::RECURSIVE),
            1 << 15,
        ),
        ("const COPYFILE_CHECK", c(CopyFileFlags::CHECK), 1 << 16),
        ("const COPYFILE_EXCL", c(CopyFileFlags::EXCL), 1 << 17),
        (
            "const COPYFILE_NOFOLLOW_SRC",
            c(CopyFileFlags::NOFOLLOW_SRC),
            1 << 18,
        ),
        (
            "const COPYFILE_NOFOLLOW_DST",
            c(CopyFileFlags::NOFOLLOW_DST),
            1 << 19,
        ),
        ("const COPYFILE_MOVE", c(CopyFileFlags::MOVE), 1 << 20),
        ("const COPYFILE_UNLINK", c(CopyFileFlags::UNLINK), 1 << 21),
        (
            "const COPYFILE_NOFOLLOW",
            c(CopyFileFlags::NOFOLLOW),
            0b11 << 18,
        ),
        ("const COPYFILE_PACK", c(CopyFileFlags::PACK), 1 << 22),
        ("const COPYFILE_UNPACK", c(CopyFileFlags::UNPACK), 1 << 23),
        ("const COPYFILE_CLONE", c(CopyFileFlags::CLONE), 1 << 24),
        (
            "const COPYFILE_CLONE_FORCE",
            c(CopyFileFlags::CLONE_FORCE),
            1 << 25,
        ),
        (
            "const COPYFILE_RUN_IN_PLACE",
            c(CopyFileFlags::RUN_IN_PLACE),
            1 << 26,
        ),
        (
            "const COPYFILE_DATA_SPARSE",
            c(CopyFileFlags::DATA_SPARSE),
            1 << 27,
        ),
        (
            "const COPYFILE_PRESERVE_DST_TRACKED",
            c(CopyFileFlags::PRESERVE_DST_TRACKED),
            1 << 28,
        ),
        ("const COPYFILE_VERBOSE", c(CopyFileFlags::VERBOSE), 1 << 30),
    ]
}

#[test]
fn layouts_match_sdk_headers_and_documented_numbers() {
    let c = common::run_c_probe(
        PROBE,
        &["copyfile.h", "sys/clonefile.h", "fcntl.h", "sys/acl.h"],
    );
    let checked = common::check_facts(&facts(), c.as_ref());
    if let Some(c) = &c {
        assert_eq!(
            checked,
            c.len(),
            "every value the probe printed was compared"
        );
    }
    // The libc crate agrees too.
    assert_eq!(size_of::<libc::log2phys>(), size_of::<Log2Phys>());
    assert_eq!(libc::F_LOG2PHYS_EXT, F_LOG2PHYS_EXT);
    assert_eq!(
        libc::COPYFILE_STATE_WAS_CLONED as u32,
        COPYFILE_STATE_WAS_CLONED
    );
    assert_eq!(libc::COPYFILE_CLONE, CopyFileFlags::CLONE.bits());
    assert_eq!(libc::UF_IMMUTABLE, FileFlags::UF_IMMUTABLE.bits());
    assert_eq!(libc::UF_APPEND, FileFlags::UF_APPEND.bits());
    assert_eq!(libc::UF_COMPRESSED, FileFlags::UF_COMPRESSED.bits());
    assert_eq!(libc::SF_IMMUTABLE, FileFlags::SF_IMMUTABLE.bits());
    assert_eq!(
        libc::COPYFILE_DATA_SPARSE,
        CopyFileFlags::DATA_SPARSE.bits()
    );
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error()
        .unwrap_or_else(|| panic!("not an OS error: {e}"))
}

/// Device offset of the first block of `path` (synced first).
fn first_block(path: &Path) -> i64 {
    let f = File::open(path).unwrap();
    f.sync_all().unwrap();
    let l2p = log2phys_ext(f.as_fd(), 0, 4096).expect("F_LOG2PHYS_EXT");
    assert!(l2p.l2p_contigbytes > 0, "no contiguous bytes: {l2p:?}");
    let dev = l2p.l2p_devoffset;
    assert!(dev >= 0, "the first block is not on the device: {l2p:?}");
    dev
}

fn source(dir: &Path, len: usize, seed: u64) -> Vec<u8> {
    let data = write_pattern(&dir.join("src"), len, seed);
    File::open(dir.join("src")).unwrap().sync_all().unwrap();
    data
}

#[test]
fn clonefile_shares_the_first_block() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = source(d, 1 << 20, 1);
    clonefile(&d.join("src"), &d.join("clone"), CloneFlags::empty()).expect("clonefile");
    assert_eq!(std::fs::read(d.join("clone")).unwrap(), data);
    assert_eq!(first_block(&d.join("clone")), first_block(&d.join("src")));

    // Discriminator: a plain copy lives elsewhere.
    std::fs::write(d.join("copy"), &data).unwrap();
    assert_ne!(first_block(&d.join("copy")), first_block(&d.join("src")));

    // Copy on write: changing the clone leaves the source alone.
    let clone = std::fs::OpenOptions::new()
        .write(true)
        .open(d.join("clone"))
        .unwrap();
    clone.write_all_at(b"changed", 0).unwrap();
    clone.sync_all().unwrap();
    assert_eq!(std::fs::read(d.join("src")).unwrap(), data);

    let err = clonefile(&d.join("src"), &d.join("clone"), CloneFlags::empty())
        .expect_err("clonefile onto an existing file");
    assert_eq!(errno(&err), libc::EEXIST, "{err}");
}

#[test]
fn clonefileat_resolves_against_directory_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("a")).unwrap();
    std::fs::create_dir(d.join("b")).unwrap();
    let data = write_pattern(&d.join("a/f"), 200_000, 2);
    let a = File::open(d.join("a")).unwrap();
    let b = File::open(d.join("b")).unwrap();
    clonefileat(
        a.as_fd(),
        Path::new("f"),
        b.as_fd(),
        Path::new("g"),
        CloneFlags::empty(),
    )
    .expect("clonefileat");
    assert_eq!(std::fs::read(d.join("b/g")).unwrap(), data);
    assert_eq!(first_block(&d.join("b/g")), first_block(&d.join("a/f")));
}

#[test]
fn fclonefileat_clones_to_a_new_name_and_refuses_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = source(d, 300_000, 3);
    let src = File::open(d.join("src")).unwrap();
    let parent = File::open(d).unwrap();

    fclonefileat(
        src.as_fd(),
        parent.as_fd(),
        Path::new("new"),
        CloneFlags::empty(),
    )
    .expect("fclonefileat");
    assert_eq!(std::fs::read(d.join("new")).unwrap(), data);
    assert_eq!(first_block(&d.join("new")), first_block(&d.join("src")));

    std::fs::write(d.join("existing"), b"keep me").unwrap();
    let err = fclonefileat(
        src.as_fd(),
        parent.as_fd(),
        Path::new("existing"),
        CloneFlags::empty(),
    )
    .expect_err("fclonefileat onto an existing file");
    assert_eq!(errno(&err), libc::EEXIST, "{err}");
    assert_eq!(std::fs::read(d.join("existing")).unwrap(), b"keep me");
}

#[test]
fn copyfile_with_clone_reports_was_cloned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = source(d, 1 << 20, 4);
    let mut state = CopyfileState::new().expect("copyfile_state_alloc");
    copyfile(
        &d.join("src"),
        &d.join("dst"),
        Some(&mut state),
        CopyFileFlags::CLONE | CopyFileFlags::ALL,
    )
    .expect("copyfile");
    assert!(
        state.was_cloned().unwrap(),
        "copyfile(CLONE) did not clone on APFS"
    );
    assert_eq!(std::fs::read(d.join("dst")).unwrap(), data);
    assert_eq!(first_block(&d.join("dst")), first_block(&d.join("src")));

    // A state reports on one copy only.
    let err = copyfile(
        &d.join("src"),
        &d.join("again"),
        Some(&mut state),
        CopyFileFlags::CLONE,
    )
    .expect_err("a used state must be refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(!d.join("again").exists());

    // Without a state the call works as well.
    copyfile(&d.join("src"), &d.join("plain"), None, CopyFileFlags::DATA).expect("copyfile");
    assert_eq!(std::fs::read(d.join("plain")).unwrap(), data);
}

#[test]
fn fcopyfile_copies_bytes_but_does_not_clone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = source(d, 1 << 20, 5);
    let src = File::open(d.join("src")).unwrap();
    let dst = File::create(d.join("dst")).unwrap();
    let mut state = CopyfileState::new().unwrap();
    fcopyfile(
        src.as_fd(),
        dst.as_fd(),
        Some(&mut state),
        CopyFileFlags::DATA | CopyFileFlags::CLONE,
    )
    .expect("fcopyfile");
    drop(dst);
    assert_eq!(std::fs::read(d.join("dst")).unwrap(), data);
    // The finding this project is built on: descriptors cannot clone.
    assert!(!state.was_cloned().unwrap(), "fcopyfile reported a clone");
    assert_ne!(first_block(&d.join("dst")), first_block(&d.join("src")));
}

#[test]
fn log2phys_ext_maps_data_and_refuses_eof() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let len = 256 * 1024;
    std::fs::write(d.join("f"), pattern(len, 6)).unwrap();
    let f = File::open(d.join("f")).unwrap();
    f.sync_all().unwrap();
    let l2p = log2phys_ext(f.as_fd(), 0, len as u64).unwrap();
    assert!(l2p.l2p_devoffset >= 0);
    assert!(
        l2p.l2p_contigbytes > 0 && l2p.l2p_contigbytes <= len as i64,
        "{l2p:?}"
    );
    // An offset inside the first contiguous run maps linearly.
    if l2p.l2p_contigbytes > 8192 {
        let inner = log2phys_ext(f.as_fd(), 8192, 4096).unwrap();
        // Packed fields are copied out, never borrowed.
        let (inner_dev, first_dev) = (inner.l2p_devoffset, l2p.l2p_devoffset);
        assert_eq!(inner_dev, first_dev + 8192);
    }
    // At EOF there is nothing to map: APFS answers ERANGE; a file system
    // that answers at all must not claim device blocks there.
    match log2phys_ext(f.as_fd(), len as u64, 4096) {
        Err(e) => {
            eprintln!("F_LOG2PHYS_EXT at EOF: {e}");
            assert!(e.raw_os_error().is_some(), "{e}");
        }
        Ok(l2p) => assert!(
            l2p.l2p_devoffset == -1 || l2p.l2p_contigbytes == 0,
            "EOF mapped to device blocks: {l2p:?}"
        ),
    }
}

#[test]
fn mkfifoat_and_mknodat_are_found_and_create_relative_to_the_directory() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    // Every macOS that CI runs is 13 or later: the calls must be found.
    let dir = tempfile::tempdir().unwrap();
    let d = File::open(dir.path()).unwrap();
    mkfifoat(d.as_fd(), c"fifo", 0o600).expect("mkfifoat");
    let m = std::fs::symlink_metadata(dir.path().join("fifo")).unwrap();
    assert!(m.file_type().is_fifo(), "{m:?}");
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    let again = mkfifoat(d.as_fd(), c"fifo", 0o600).unwrap_err();
    assert_eq!(errno(&again), libc::EEXIST, "{again}");
    // A FIFO through mknodat; device nodes need root.
    for (name, kind) in [(c"node-fifo", libc::S_IFIFO), (c"node-chr", libc::S_IFCHR)] {
        match mknodat(d.as_fd(), name, kind | 0o600, 0) {
            Ok(()) => {
                let path = dir.path().join(name.to_str().unwrap());
                let t = std::fs::symlink_metadata(path).unwrap().file_type();
                assert!(
                    if kind == libc::S_IFIFO {
                        t.is_fifo()
                    } else {
                        t.is_char_device()
                    },
                    "{name:?}: {t:?}"
                );
            }
            Err(e) => assert_eq!(errno(&e), libc::EPERM, "{name:?}: {e}"),
        }
    }
}

fn flags_of(path: &Path) -> u32 {
    use std::os::macos::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().st_flags()
}

/// The clone carries the source's BSD flags and mode (xnu
/// clonefile_internal copies va_flags and va_mode): `chflagsat` clears
/// them through the directory, even on a file whose mode denies access.
#[test]
fn clone_carries_flags_and_chflagsat_clears_them_without_opening() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pattern(&d.join("src"), 100_000, 7);
    std::fs::set_permissions(d.join("src"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let parent = File::open(d).unwrap();
    chflagsat(
        parent.as_fd(),
        Path::new("src"),
        FileFlags::UF_IMMUTABLE | FileFlags::UF_APPEND,
    )
    .expect("chflagsat uchg,uappnd");
    assert_eq!(flags_of(&d.join("src")) & 0x6, 0x6);
    let src = File::open(d.join("src")).unwrap();
    fclonefileat(
        src.as_fd(),
        parent.as_fd(),
        Path::new("clone"),
        CloneFlags::NOFOLLOW | CloneFlags::NOOWNERCOPY,
    )
    .expect("fclonefileat of an immutable, read-only source");
    let clone = d.join("clone");
    assert_eq!(
        flags_of(&clone) & 0x6,
        0x6,
        "the clone has the source's flags"
    );
    let err = std::fs::remove_file(&clone).expect_err("an immutable clone cannot be removed");
    assert_eq!(errno(&err), libc::EPERM, "{err}");
    // Mode 0000 as well: clearing flags needs ownership only.
    chflagsat(parent.as_fd(), Path::new("clone"), FileFlags::empty()).unwrap();
    std::fs::set_permissions(&clone, std::fs::Permissions::from_mode(0o000)).unwrap();
    chflagsat(parent.as_fd(), Path::new("clone"), FileFlags::UF_HIDDEN).unwrap();
    assert_eq!(flags_of(&clone), FileFlags::UF_HIDDEN.bits());
    chflagsat(parent.as_fd(), Path::new("clone"), FileFlags::empty()).unwrap();
    assert_eq!(flags_of(&clone), 0);
    std::fs::remove_file(&clone).unwrap();
    // A symlink at the name is changed itself, never its target.
    std::os::unix::fs::symlink("src", d.join("link")).unwrap();
    chflagsat(parent.as_fd(), Path::new("link"), FileFlags::UF_HIDDEN).unwrap();
    assert_eq!(flags_of(&d.join("src")) & 0x6, 0x6);
    assert_eq!(flags_of(&d.join("src")) & FileFlags::UF_HIDDEN.bits(), 0);
    chflagsat(parent.as_fd(), Path::new("src"), FileFlags::empty()).unwrap();
}

/// fclonefileat with CLONE_NOFOLLOW refuses a symlink at the destination
/// name (EEXIST) instead of creating the clone at the link's target.
#[test]
fn fclonefileat_nofollow_refuses_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    source(d, 10_000, 8);
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join("planted")).unwrap();
    let src = File::open(d.join("src")).unwrap();
    let parent = File::open(d).unwrap();
    let err = fclonefileat(
        src.as_fd(),
        parent.as_fd(),
        Path::new("planted"),
        CloneFlags::NOFOLLOW,
    )
    .expect_err("a symlink at the destination");
    assert_eq!(errno(&err), libc::EEXIST, "{err}");
    assert!(!d.join("elsewhere").exists());
}

/// A new file in a temp directory has no extended ACL; one set with
/// chmod +a is seen.
#[test]
fn has_extended_acl_sees_an_acl() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, b"x").unwrap();
    assert!(!has_extended_acl(File::open(&p).unwrap().as_fd()).unwrap());
    let status = std::process::Command::new("chmod")
        .arg("+a")
        .arg("everyone deny delete")
        .arg(&p)
        .status()
        .unwrap();
    assert!(status.success(), "chmod +a: {status}");
    assert!(has_extended_acl(File::open(&p).unwrap().as_fd()).unwrap());
}
