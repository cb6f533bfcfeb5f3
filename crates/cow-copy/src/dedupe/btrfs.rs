//! On btrfs, the extent maps of the candidates read from the subvolume's
//! own tree (`BTRFS_IOC_TREE_SEARCH_V2`): one call covers the inode and
//! extent items of many files, none of them opened. The kernel allows it
//! to root only; elsewhere (or when it fails) every file is mapped with
//! `FIEMAP` as before.
//!
//! What the tree says is used only to leave work out, never to share: two
//! files whose extent items name the same bytes of the same extents hold
//! the same bytes, and a file stored inline has no blocks to share. Before
//! the search the filesystem is flushed (`syncfs`): data still in the page
//! cache, or written but not yet completed, has no extent item, and a file
//! rewritten since it was last shared would otherwise still look shared.
//! Each file's inode item must show the size and mtime the scan saw, or
//! the file is left to `FIEMAP` (and to the checks made when it is opened).

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::fd::AsFd;

use cow_sys::linux::btrfs::{
    self, EXTENT_DATA_KEY, FILE_EXTENT_INLINE, FILE_EXTENT_PREALLOC, FILE_EXTENT_REG,
    FileExtentItem, INODE_ITEM_KEY, InodeItem, SearchBuf, SearchKey,
};
use rustix::fs::FileType;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::dirs::open_read;
use super::scan::{fstat, nanos};

/// Candidates whose inode numbers are at most this far apart are searched
/// as one key range: the items of the inodes between them (other files,
/// directories) are returned too, and skipped.
const GAP: u64 = 16;

/// Bytes of items per call.
const BUF: usize = 256 << 10;

/// Seeds the hash of a map read from the tree, so that it never equals one
/// made from `FIEMAP` by accident of layout.
const SEED: u64 = 0x6274_7266_735f_6d61;

/// A file the scan saw, to be found in the tree.
#[derive(Debug, Clone, Copy)]
pub(super) struct Want {
    pub(super) ino: u64,
    pub(super) size: u64,
    /// Nanoseconds since the epoch.
    pub(super) mtime: i64,
}

/// What the tree says of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TreeMap {
    /// Stored inline in the tree: no blocks to share.
    Inline,
    /// A hash of its data extents (merged where contiguous, holes left
    /// out): equal values mean the same bytes.
    Extents(u64),
}

/// One stretch of a file's data: `len` bytes at file offset `logical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    logical: u64,
    len: u64,
    kind: u8,
    compression: u8,
    /// Uncompressed: the address of the piece's first byte. Compressed:
    /// the extent's start (with `offset` and `disk_len`, which name the
    /// bytes within it).
    phys: u64,
    offset: u64,
    disk_len: u64,
}

impl Piece {
    /// Appends `next` when it continues this piece in the file and on disk.
    fn extend(&mut self, next: &Piece) -> bool {
        let contiguous = self.kind == next.kind
            && self.compression == 0
            && next.compression == 0
            && self.logical + self.len == next.logical
            && self.phys + self.len == next.phys;
        if contiguous {
            self.len += next.len;
        }
        contiguous
    }

    fn bytes(&self, out: &mut Vec<u8>) {
        for v in [
            self.logical,
            self.len,
            self.phys,
            self.offset,
            self.disk_len,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[self.kind, self.compression]);
    }
}

/// The items of one file, as they come.
#[derive(Default)]
struct Acc {
    inode_ok: bool,
    inline: bool,
    /// Something not understood: the map proves nothing.
    odd: bool,
    pending: Option<Piece>,
    pieces: u32,
    bytes: Vec<u8>,
}

impl Acc {
    fn reset(&mut self) {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.clear();
        *self = Acc {
            bytes,
            ..Acc::default()
        };
    }

    fn inode(&mut self, want: &Want, data: &[u8]) {
        let Some(i) = InodeItem::parse(data) else {
            self.odd = true;
            return;
        };
        // The seconds are stored as the kernel's signed value.
        let mtime = nanos(i.mtime_sec as i64, i.mtime_nsec.into());
        self.inode_ok = i.size == want.size
            && mtime == want.mtime
            && FileType::from_raw_mode(i.mode as _) == FileType::RegularFile;
    }

    fn extent(&mut self, want: &Want, logical: u64, data: &[u8]) {
        let Some(e) = FileExtentItem::parse(data) else {
            self.odd = true;
            return;
        };
        if e.encryption != 0 || e.other_encoding != 0 {
            self.odd = true;
            return;
        }
        match e.kind {
            FILE_EXTENT_INLINE => self.inline = true,
            // Past the end, or a hole: reads as nothing, or as zeros where
            // the offsets of the other pieces leave a gap.
            _ if logical >= want.size => {}
            FILE_EXTENT_REG if e.disk_bytenr == 0 => {}
            FILE_EXTENT_REG | FILE_EXTENT_PREALLOC => {
                let compressed = e.compression != 0;
                let piece = Piece {
                    logical,
                    len: e.num_bytes.min(want.size - logical),
                    kind: e.kind,
                    compression: e.compression,
                    phys: if compressed {
                        e.disk_bytenr
                    } else {
                        e.disk_bytenr.saturating_add(e.offset)
                    },
                    offset: if compressed { e.offset } else { 0 },
                    disk_len: if compressed { e.disk_num_bytes } else { 0 },
                };
                if let Some(p) = &mut self.pending {
                    if p.extend(&piece) {
                        return;
                    }
                    p.bytes(&mut self.bytes);
                    self.pieces += 1;
                }
                self.pending = Some(piece);
            }
            _ => self.odd = true,
        }
    }

    fn finish(&mut self) -> Option<TreeMap> {
        if let Some(p) = self.pending.take() {
            p.bytes(&mut self.bytes);
            self.pieces += 1;
        }
        if !self.inode_ok || self.odd {
            return None;
        }
        if self.inline {
            return Some(TreeMap::Inline);
        }
        if self.pieces == 0 {
            return None;
        }
        Some(TreeMap::Extents(
            xxh3_64_with_seed(&self.bytes, SEED).max(1),
        ))
    }
}

/// Opens `root` (on device `dev`) to search its subvolume's tree, as the
/// candidates are opened (without blocking on a FIFO; a root given by the
/// user may be a symlink), and checks it is a directory or file on `dev`.
fn open_on(root: &std::path::Path, dev: u64) -> Option<File> {
    let f = open_read(None, root.as_os_str()).ok()?;
    let m = fstat(&f).ok()?;
    let kind = FileType::from_raw_mode(m.st_mode);
    (m.st_dev == dev && matches!(kind, FileType::Directory | FileType::RegularFile)).then_some(f)
}

/// Reads the maps of files `0..len` (sorted by inode number, `want(k)`
/// being file `k`; all in the subvolume of `root`, whose `st_dev` is
/// `dev`) and gives each one the tree says something certain about to
/// `found`. `false` when the tree cannot be searched (not root, not btrfs,
/// an old kernel) or a search failed midway; what was found until then
/// holds.
pub(super) fn maps(
    root: &std::path::Path,
    dev: u64,
    len: usize,
    want: impl Fn(usize) -> Want,
    mut found: impl FnMut(usize, TreeMap),
) -> bool {
    if len == 0 {
        return true;
    }
    let Some(f) = open_on(root, dev) else {
        return false;
    };
    let fd = f.as_fd();
    let mut buf = SearchBuf::new(BUF);
    // Asked once before the flush, so that a caller who may not search
    // does not flush the filesystem for nothing.
    let first = want(0).ino;
    let mut probe = SearchKey::subvolume(first, INODE_ITEM_KEY, first, INODE_ITEM_KEY);
    probe.nr_items = 1;
    if btrfs::tree_search_once(fd, &probe, &mut buf).is_err() || rustix::fs::syncfs(fd).is_err() {
        return false;
    }
    let mut start = 0;
    while start < len {
        let mut end = start + 1;
        let mut last = want(start).ino;
        while end < len {
            let ino = want(end).ino;
            if ino - last > GAP {
                break;
            }
            last = ino;
            end += 1;
        }
        if search_run(fd, start..end, &want, &mut found, &mut buf).is_err() {
            return false;
        }
        start = end;
    }
    true
}

/// The maps of files `run` (close inode numbers) to `found`.
fn search_run(
    fd: std::os::fd::BorrowedFd<'_>,
    run: std::ops::Range<usize>,
    want: &impl Fn(usize) -> Want,
    found: &mut impl FnMut(usize, TreeMap),
    buf: &mut SearchBuf,
) -> io::Result<()> {
    let (lo, hi) = (want(run.start).ino, want(run.end - 1).ino);
    let key = SearchKey::subvolume(lo, INODE_ITEM_KEY, hi, EXTENT_DATA_KEY);
    let mut acc = Acc::default();
    let mut j = run.start;
    let mut w = want(j);
    let mut finish = |j: usize, acc: &mut Acc| {
        if let Some(m) = acc.finish() {
            found(j, m);
        }
        acc.reset();
    };
    btrfs::tree_search(fd, key, buf, |h, data| {
        while w.ino < h.objectid {
            finish(j, &mut acc);
            j += 1;
            if j == run.end {
                return ControlFlow::Break(());
            }
            w = want(j);
        }
        if w.ino == h.objectid {
            match u8::try_from(h.item_type) {
                Ok(INODE_ITEM_KEY) => acc.inode(&w, data),
                Ok(EXTENT_DATA_KEY) => acc.extent(&w, h.offset, data),
                _ => {}
            }
        }
        ControlFlow::Continue(())
    })?;
    if j < run.end {
        finish(j, &mut acc);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(logical: u64, len: u64, phys: u64) -> Piece {
        Piece {
            logical,
            len,
            kind: FILE_EXTENT_REG,
            compression: 0,
            phys,
            offset: 0,
            disk_len: 0,
        }
    }

    #[test]
    fn contiguous_pieces_merge_and_others_do_not() {
        let mut a = piece(0, 4096, 1 << 20);
        assert!(a.extend(&piece(4096, 8192, (1 << 20) + 4096)));
        assert_eq!(a.len, 12288);
        // A gap in the file, or on disk, or another kind: a new piece.
        assert!(!a.extend(&piece(16384, 4096, (1 << 20) + 16384)));
        assert!(!a.extend(&piece(12288, 4096, 5 << 20)));
        let mut p = piece(12288, 4096, (1 << 20) + 12288);
        p.kind = FILE_EXTENT_PREALLOC;
        assert!(!a.extend(&p));
        // Compressed pieces never merge (their offsets are in decoded bytes).
        let mut c = piece(12288, 4096, (1 << 20) + 12288);
        c.compression = 3;
        assert!(!a.extend(&c));
    }
}
