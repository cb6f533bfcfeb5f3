//! cow-verify on real filesystems (btrfs, XFS, ext4, tmpfs from
//! `cargo xtask test`; skipped loudly when one is missing).
#![cfg(target_os = "linux")]

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use cow_test_support::{Fs, fs_test, pattern, write_pattern, write_sparse};
use cow_verify::{Location, SegmentKind, VerifyError, data_map, extents, is_clone, sharing};

const MIB: u64 = 1 << 20;

/// `dst` becomes a FICLONE of `src`.
fn ficlone(src: &Path, dst: &Path) {
    let s = File::open(src).unwrap();
    let d = File::create(dst).unwrap();
    cow_sys::linux::ficlone(d.as_fd(), s.as_fd()).unwrap();
}

/// A byte-for-byte copy with plain writes (std::fs::copy may reflink).
fn byte_copy(src: &Path, dst: &Path) {
    std::fs::write(dst, std::fs::read(src).unwrap()).unwrap();
}

fs_test!(ficlone_copy_is_a_clone, [btrfs, xfs], |dir| {
    // Block-aligned and unaligned lengths.
    for (i, len) in [4 * MIB, 3 * MIB + 1234].into_iter().enumerate() {
        let a = dir.join(format!("a{i}"));
        let b = dir.join(format!("b{i}"));
        write_pattern(&a, len as usize, 7 + i as u64);
        ficlone(&a, &b);
        let s = sharing(&a, &b).unwrap();
        assert_eq!(s.a_len, len);
        assert_eq!(s.a_bytes, len, "{s:?}");
        assert_eq!(s.shared_bytes, len, "{s:?}");
        assert_eq!(s.b_shared_bytes, len, "{s:?}");
        assert_eq!(s.same_offset_bytes, len, "{s:?}");
        assert_eq!(s.unknown_bytes, 0);
        assert_eq!(s.ratio, 1.0);
        assert!(s.is_clone());
        assert!(is_clone(&a, &b).unwrap());
        assert!(is_clone(&b, &a).unwrap());
        for path in [&a, &b] {
            let ex = extents(path).unwrap();
            assert!(!ex.is_empty());
            for e in &ex {
                assert!(e.shared, "{} extent not shared: {e:?}", path.display());
                assert!(e.flags.contains(&"shared"));
                assert!(matches!(e.location, Location::Physical(_)));
            }
        }
    }
});

fs_test!(byte_copy_shares_nothing, [btrfs, xfs, ext4], |dir| {
    let a = dir.join("a");
    let b = dir.join("b");
    write_pattern(&a, (2 * MIB) as usize, 3);
    byte_copy(&a, &b);
    let s = sharing(&a, &b).unwrap();
    assert_eq!((s.a_bytes, s.b_bytes), (2 * MIB, 2 * MIB), "{s:?}");
    assert_eq!(s.shared_bytes, 0);
    assert_eq!(s.b_shared_bytes, 0);
    assert_eq!(s.ratio, 0.0);
    assert!(!s.is_clone());
    assert!(!is_clone(&a, &b).unwrap());
    // A file is a clone of itself, by every measure.
    let own = sharing(&a, &a).unwrap();
    assert_eq!(own.ratio, 1.0);
    assert!(own.is_clone());
    for e in extents(&a).unwrap() {
        assert!(!e.shared, "{e:?}");
    }
});

fs_test!(one_rewritten_block_is_unshared, [btrfs, xfs], |dir| {
    let len = 4 * MIB;
    let a = dir.join("a");
    let b = dir.join("b");
    let original = write_pattern(&a, len as usize, 11);
    ficlone(&a, &b);
    assert!(is_clone(&a, &b).unwrap());
    // Rewrite one 4 KiB block in the middle of the clone.
    let f = OpenOptions::new().write(true).open(&b).unwrap();
    f.write_all_at(&pattern(4096, 999), 1_000 * 4096 / 4)
        .unwrap();
    f.sync_all().unwrap();
    drop(f);
    let s = sharing(&a, &b).unwrap();
    assert_eq!(s.shared_bytes, len - 4096, "{s:?}");
    assert_eq!(s.b_shared_bytes, len - 4096, "{s:?}");
    assert_eq!(s.same_offset_bytes, len - 4096, "{s:?}");
    assert_eq!((s.a_bytes, s.b_bytes), (len, len));
    assert!((s.ratio - (len - 4096) as f64 / len as f64).abs() < 1e-12);
    assert!(!s.is_clone());
    // The same numbers from the other side.
    let r = sharing(&b, &a).unwrap();
    assert_eq!(r.shared_bytes, len - 4096, "{r:?}");
    // The original is untouched.
    assert_eq!(std::fs::read(&a).unwrap(), original);
});

fs_test!(
    sparse_holes_are_not_extents,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        let p = dir.join("sparse");
        let len = 4 * MIB;
        let data = [(64 * 1024, 64 * 1024), (MIB, 4096), (3 * MIB, 256 * 1024)];
        write_sparse(&p, len, &data, 5);
        let map = data_map(&p).unwrap();
        let mut expect = Vec::new();
        let mut pos = 0;
        for &(off, n) in &data {
            if off > pos {
                expect.push((pos, off - pos, SegmentKind::Hole));
            }
            expect.push((off, n, SegmentKind::Data));
            pos = off + n;
        }
        expect.push((pos, len - pos, SegmentKind::Hole));
        let got: Vec<_> = map.iter().map(|s| (s.offset, s.len, s.kind)).collect();
        assert_eq!(got, expect);
        // data_map_of restores the file offset.
        let f = File::open(&p).unwrap();
        use std::io::{Seek, SeekFrom};
        let mut g = &f;
        g.seek(SeekFrom::Start(12345)).unwrap();
        assert_eq!(cow_verify::data_map_of(&f).unwrap(), map);
        assert_eq!(g.stream_position().unwrap(), 12345);

        if !fs.has_fiemap() {
            let err = extents(&p).unwrap_err();
            assert!(matches!(err, VerifyError::Unsupported { .. }), "{err:?}");
            assert_eq!(err.path(), p);
            assert_eq!(
                std::io::Error::from(err).kind(),
                std::io::ErrorKind::Unsupported
            );
            return;
        }
        let ex = extents(&p).unwrap();
        // Every extent lies inside a data segment, and together they cover all
        // the data exactly.
        let mut covered = 0;
        for e in &ex {
            let inside = data
                .iter()
                .any(|&(off, n)| e.logical >= off && e.logical_end() <= off + n);
            assert!(inside, "extent {e:?} is not inside the data {data:?}");
            assert!(matches!(e.location, Location::Physical(_)), "{e:?}");
            covered += e.length;
        }
        assert_eq!(covered, data.iter().map(|d| d.1).sum::<u64>());
        let s = sharing(&p, &p).unwrap();
        assert_eq!(s.a_bytes, covered);
    }
);

fs_test!(
    two_thousand_extents_are_read_whole,
    [btrfs, xfs, ext4],
    |dir| {
        let p = dir.join("fragmented");
        let n = 2_000u64;
        let data: Vec<(u64, u64)> = (0..n).map(|i| (2 * i * 4096, 4096)).collect();
        write_sparse(&p, 2 * n * 4096, &data, 1);
        let ex = extents(&p).unwrap();
        assert_eq!(ex.len(), n as usize);
        for (i, e) in ex.iter().enumerate() {
            assert_eq!(
                (e.logical, e.length),
                (2 * i as u64 * 4096, 4096),
                "extent {i}"
            );
        }
        assert!(ex.last().unwrap().flags.contains(&"last"));
        assert_eq!(
            data_map(&p)
                .unwrap()
                .iter()
                .filter(|s| s.kind == SegmentKind::Data)
                .count(),
            n as usize
        );
    }
);

fs_test!(small_files_tell_their_kind, [btrfs], |dir| {
    // btrfs stores small files inline in metadata: no device address, never
    // counted as shared, even after a FICLONE.
    let a = dir.join("tiny");
    let b = dir.join("tiny.clone");
    write_pattern(&a, 100, 2);
    ficlone(&a, &b);
    let ex = extents(&a).unwrap();
    assert_eq!(ex.len(), 1, "{ex:?}");
    assert_eq!(ex[0].location, Location::Inline, "{ex:?}");
    assert!(ex[0].flags.contains(&"inline"));
    let s = sharing(&a, &b).unwrap();
    assert_eq!(
        (s.a_bytes, s.unknown_bytes, s.shared_bytes),
        (0, 100, 0),
        "{s:?}"
    );
    assert_eq!(s.ratio, 0.0);
    assert!(!s.is_clone());
});

fs_test!(empty_files, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    let a = dir.join("empty");
    File::create(&a).unwrap();
    assert!(data_map(&a).unwrap().is_empty());
    if fs.has_fiemap() {
        assert!(extents(&a).unwrap().is_empty());
        let s = sharing(&a, &a).unwrap();
        assert_eq!(s.ratio, 1.0);
        assert!(s.is_clone());
    }
});

#[test]
fn errors_name_the_path_and_call() {
    let p = Path::new("/nonexistent/cow-verify/file");
    let e = extents(p).unwrap_err();
    assert_eq!(e.path(), p);
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent/cow-verify/file") && msg.contains("open"),
        "{msg}"
    );
    assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::NotFound);
    // Not a regular file: refused, never blocked on (a FIFO has no writer).
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    for p in [fifo.as_path(), dir.path()] {
        let e = sharing(p, p).unwrap_err();
        assert!(matches!(e, VerifyError::NotAFile { .. }), "{e:?}");
        assert_eq!(e.path(), p);
    }
}

/// One extent as `filefrag -v -b1` prints it.
#[derive(Debug, PartialEq, Eq)]
struct Frag {
    logical: u64,
    physical: u64,
    length: u64,
    shared: bool,
}

fn filefrag(path: &Path) -> Option<Vec<Frag>> {
    let bin = ["/usr/sbin/filefrag", "/sbin/filefrag", "/usr/bin/filefrag"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let out = Command::new(bin)
        .args(["-s", "-v", "-b1"])
        .arg(path)
        .output()
        .ok()?;
    assert!(out.status.success(), "filefrag failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut frags = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').map(str::trim).collect();
        // "N: lstart.. lend: pstart.. pend: len: [expected] flags"
        if fields.len() < 5 || fields[0].parse::<u64>().is_err() {
            continue;
        }
        let first = |s: &str| s.split("..").next().unwrap().trim().parse::<u64>().unwrap();
        let rest = fields[4..].join(":");
        frags.push(Frag {
            logical: first(fields[1]),
            physical: first(fields[2]),
            length: fields[3].parse().unwrap(),
            shared: rest
                .split(|c: char| c == ',' || c.is_whitespace())
                .any(|f| f == "shared"),
        });
    }
    Some(frags)
}

fs_test!(extents_match_filefrag, [btrfs, xfs, ext4], |dir, fs| {
    let sparse = dir.join("sparse");
    write_sparse(
        &sparse,
        8 * MIB,
        &[(0, 4096), (MIB, 300 * 1024), (5 * MIB, MIB)],
        9,
    );
    let plain = dir.join("plain");
    write_pattern(&plain, (3 * MIB) as usize + 17, 4);
    let mut files = vec![sparse, plain.clone()];
    if fs.reflinks() {
        let clone = dir.join("clone");
        ficlone(&plain, &clone);
        let f = OpenOptions::new().write(true).open(&clone).unwrap();
        f.write_all_at(&pattern(8192, 5), MIB).unwrap();
        drop(f);
        files.push(clone);
    }
    for p in &files {
        let ours = extents(p).unwrap();
        let Some(theirs) = filefrag(p) else {
            eprintln!("SKIP filefrag cross-check: filefrag not installed");
            return;
        };
        let ours: Vec<Frag> = ours
            .iter()
            .map(|e| Frag {
                logical: e.logical,
                physical: e.location.device_offset().unwrap(),
                length: e.length,
                shared: e.shared,
            })
            .collect();
        assert!(
            !theirs.is_empty(),
            "filefrag found no extents in {}",
            p.display()
        );
        assert_eq!(ours, theirs, "{} on {fs}", p.display());
    }
});

#[test]
fn tmpfs_has_no_extents_but_has_holes() {
    let Some(dir) = cow_test_support::dir_on(Fs::Tmpfs, "tmpfs_has_no_extents_but_has_holes")
    else {
        return;
    };
    let p = dir.path().join("f");
    write_sparse(&p, MIB, &[(4096, 4096)], 1);
    assert_eq!(data_map(&p).unwrap().len(), 3);
    assert!(matches!(
        extents(&p),
        Err(VerifyError::Unsupported {
            what: "FS_IOC_FIEMAP",
            ..
        })
    ));
}

fs_test!(compressed_extents_are_encoded, [btrfs], |dir| {
    // Files created in a directory with the compression attribute (chattr
    // +c) are compressed by btrfs: FIEMAP says `encoded`, and the device
    // address is that of the compressed data.
    let z = dir.join("z");
    std::fs::create_dir(&z).unwrap();
    let d = File::open(&z).unwrap();
    let flags = rustix::fs::ioctl_getflags(&d).unwrap();
    rustix::fs::ioctl_setflags(&d, flags | rustix::fs::IFlags::COMPRESSED).unwrap();
    let text: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("line {:08} of very compressible text\n", i % 100).into_bytes())
        .collect();
    let len = text.len() as u64;
    let (a, b) = (z.join("a"), z.join("b"));
    std::fs::write(&a, &text).unwrap();
    ficlone(&a, &b);
    let ex = extents(&a).unwrap();
    assert!(ex.len() > 1, "{ex:?}");
    for e in &ex {
        assert!(matches!(e.location, Location::Encoded(_)), "{e:?}");
        assert!(e.flags.contains(&"encoded"));
    }
    let s = sharing(&a, &b).unwrap();
    assert_eq!(
        (s.a_bytes, s.shared_bytes, s.same_offset_bytes),
        (len, len, len),
        "{s:?}"
    );
    assert!(s.is_clone());

    // Rewrite one block of the clone. btrfs gives no offset into a
    // compressed extent, so the partly referenced extent of `a` is not
    // counted: the answer errs low by at most one extent (128 KiB), never
    // high.
    let f = OpenOptions::new().write(true).open(&b).unwrap();
    f.write_all_at(&pattern(4096, 77), 40 * 4096).unwrap();
    drop(f);
    let s = sharing(&a, &b).unwrap();
    assert!(s.shared_bytes <= len - 4096, "{s:?}");
    assert!(s.shared_bytes >= len - 4096 - 128 * 1024, "{s:?}");
    assert!(!s.is_clone());
    let rewritten = extents(&b).unwrap();
    let block = rewritten
        .iter()
        .find(|e| e.logical <= 40 * 4096 && e.logical_end() > 40 * 4096)
        .unwrap();
    assert!(!block.shared, "{block:?}");
    assert_eq!(std::fs::read(&a).unwrap(), text);
});

#[test]
fn different_filesystems_share_nothing() {
    // Equal device offsets on two devices are not shared bytes.
    let (Some(x), Some(e)) = (
        cow_test_support::dir_on(Fs::Xfs, "different_filesystems_share_nothing"),
        cow_test_support::dir_on(Fs::Ext4, "different_filesystems_share_nothing"),
    ) else {
        return;
    };
    let a = x.path().join("a");
    let b = e.path().join("b");
    write_pattern(&a, MIB as usize, 1);
    byte_copy(&a, &b);
    let s = sharing(&a, &b).unwrap();
    assert!(!s.same_filesystem);
    assert_eq!(
        (s.a_bytes, s.b_bytes, s.shared_bytes),
        (MIB, MIB, 0),
        "{s:?}"
    );
    assert!(!s.is_clone());
    // Even a file compared with an extent list that has the same offsets.
    let same = sharing(&a, &a).unwrap();
    assert!(same.same_filesystem && same.is_clone());
}

fs_test!(btrfs_subvolumes_are_one_filesystem, [btrfs], |dir| {
    // A subvolume has its own st_dev, but FIEMAP offsets are
    // filesystem-wide and a clone across subvolumes shares blocks.
    let sv = dir.join("sv");
    let st = Command::new("btrfs")
        .args(["-q", "subvolume", "create"])
        .arg(&sv)
        .status();
    if !st.is_ok_and(|s| s.success()) {
        eprintln!("SKIP btrfs_subvolumes_are_one_filesystem: `btrfs subvolume create` failed");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        std::fs::metadata(dir).unwrap().dev(),
        std::fs::metadata(&sv).unwrap().dev()
    );
    let a = dir.join("a");
    let b = sv.join("b");
    let c = sv.join("c");
    write_pattern(&a, MIB as usize, 3);
    ficlone(&a, &b);
    byte_copy(&a, &c);
    let s = sharing(&a, &b).unwrap();
    assert!(s.same_filesystem, "{s:?}");
    assert_eq!(s.shared_bytes, MIB);
    assert!(s.is_clone());
    let s = sharing(&a, &c).unwrap();
    assert!(s.same_filesystem);
    assert_eq!(s.shared_bytes, 0);
    // The test directory's cleanup removes the (then empty) subvolume.
});
