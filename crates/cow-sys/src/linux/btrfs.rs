//! btrfs: `BTRFS_IOC_TREE_SEARCH_V2`, and the two items of a subvolume's
//! tree a dedupe reads with it: `struct btrfs_inode_item` and
//! `struct btrfs_file_extent_item`.
//!
//! The search reads the filesystem's own metadata: the extent items of many
//! files in one call, without opening them. The kernel allows it to
//! `CAP_SYS_ADMIN` only (others get `EPERM`). It reads the tree as it is:
//! data still dirty in the page cache, or written but not yet completed
//! (ordered), has no extent item yet, so callers that need the items to
//! match the files' contents flush first (`syncfs`).
//!
//! Layouts follow `<linux/btrfs.h>` and `<linux/btrfs_tree.h>`; the tests
//! compare them with a C probe. Items are parsed from their on-disk
//! little-endian bytes, so no `unsafe` touches them.

use std::io;
use std::ops::ControlFlow;
use std::os::fd::BorrowedFd;

use rustix::ioctl::{self, Opcode, opcode};

use super::BufferIoctl;

/// `struct btrfs_ioctl_search_key`: which slice of which tree to search.
/// Keys are compared as whole (objectid, type, offset) tuples: every item
/// between `(min_objectid, min_type, min_offset)` and `(max_objectid,
/// max_type, max_offset)` is returned, whatever its own type.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchKey {
    /// The tree: 0 is the subvolume tree of the file the ioctl is called on.
    pub tree_id: u64,
    /// Smallest objectid (for a subvolume tree: inode number).
    pub min_objectid: u64,
    /// Largest objectid.
    pub max_objectid: u64,
    /// Smallest key offset (for an extent item: the file offset).
    pub min_offset: u64,
    /// Largest key offset.
    pub max_offset: u64,
    /// Smallest transaction id of the metadata block holding the item.
    pub min_transid: u64,
    /// Largest transaction id of the metadata block holding the item.
    pub max_transid: u64,
    /// Smallest item type.
    pub min_type: u32,
    /// Largest item type.
    pub max_type: u32,
    /// In: the most items wanted. Out: the items returned.
    pub nr_items: u32,
    /// Padding.
    pub unused: u32,
    /// Reserved.
    pub unused1: u64,
    /// Reserved.
    pub unused2: u64,
    /// Reserved.
    pub unused3: u64,
    /// Reserved.
    pub unused4: u64,
}

impl SearchKey {
    /// The items of the subvolume of the file searched on, from key
    /// `(min_objectid, min_type, 0)` to `(max_objectid, max_type, u64::MAX)`,
    /// in any transaction, as many as fit.
    pub fn subvolume(min_objectid: u64, min_type: u8, max_objectid: u64, max_type: u8) -> Self {
        SearchKey {
            tree_id: 0,
            min_objectid,
            max_objectid,
            min_offset: 0,
            max_offset: u64::MAX,
            min_transid: 0,
            max_transid: u64::MAX,
            min_type: min_type.into(),
            max_type: max_type.into(),
            nr_items: u32::MAX,
            ..Default::default()
        }
    }
}

/// The fixed head of `struct btrfs_ioctl_search_args_v2`; the found items
/// follow it in the buffer (`__u8 buf[]`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchArgsV2 {
    /// In: what to search. Out: `nr_items` says how many were returned.
    pub key: SearchKey,
    /// In: the bytes of room after this head. Out, on `EOVERFLOW`: the
    /// room the next item needs.
    pub buf_size: u64,
}

/// `struct btrfs_ioctl_search_header`: put before each item returned, in
/// the CPU's byte order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchHeader {
    /// Transaction of the metadata block holding the item.
    pub transid: u64,
    /// The item key's objectid.
    pub objectid: u64,
    /// The item key's offset.
    pub offset: u64,
    /// The item key's type (`type` in C).
    pub item_type: u32,
    /// Bytes of the item that follow.
    pub len: u32,
}

/// `BTRFS_IOC_TREE_SEARCH_V2`: `_IOWR(0x94, 17, struct
/// btrfs_ioctl_search_args_v2)`.
pub const BTRFS_IOC_TREE_SEARCH_V2: Opcode = opcode::read_write::<SearchArgsV2>(0x94, 17);

/// `BTRFS_INODE_ITEM_KEY`: an inode's metadata.
pub const INODE_ITEM_KEY: u8 = 1;
/// `BTRFS_EXTENT_DATA_KEY`: one extent of a file, keyed by its file offset.
pub const EXTENT_DATA_KEY: u8 = 108;

/// `BTRFS_FILE_EXTENT_INLINE`: the data is in the item itself.
pub const FILE_EXTENT_INLINE: u8 = 0;
/// `BTRFS_FILE_EXTENT_REG`: a regular extent (`disk_bytenr` 0: a hole).
pub const FILE_EXTENT_REG: u8 = 1;
/// `BTRFS_FILE_EXTENT_PREALLOC`: allocated, never written (reads zeros).
pub const FILE_EXTENT_PREALLOC: u8 = 2;

/// The kernel never fills more than this much of a search buffer.
pub const SEARCH_BUF_MAX: usize = 16 << 20;

/// The size of the [`SearchHeader`] before each item.
const HEADER: usize = std::mem::size_of::<SearchHeader>();

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn ne64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn ne32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The fields of `struct btrfs_file_extent_item` (packed, little-endian;
/// 53 bytes, or 21 and the data for an inline extent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileExtentItem {
    /// Transaction that created the extent.
    pub generation: u64,
    /// Bytes of the decoded extent.
    pub ram_bytes: u64,
    /// Compression (0: none, 1: zlib, 2: lzo, 3: zstd).
    pub compression: u8,
    /// Encryption (0: none).
    pub encryption: u8,
    /// Other encoding (0: none).
    pub other_encoding: u16,
    /// [`FILE_EXTENT_INLINE`], [`FILE_EXTENT_REG`] or
    /// [`FILE_EXTENT_PREALLOC`].
    pub kind: u8,
    /// Where the extent starts on the filesystem's logical address space
    /// (0 for a hole and for inline data).
    pub disk_bytenr: u64,
    /// Its bytes on disk.
    pub disk_num_bytes: u64,
    /// Where in the (decoded) extent this file's part starts.
    pub offset: u64,
    /// Bytes of the file this item covers (for inline data: its length).
    pub num_bytes: u64,
}

impl FileExtentItem {
    /// Offset of `disk_bytenr`, where an inline extent's data starts.
    pub const INLINE_DATA: usize = 21;
    /// Size of a non-inline item.
    pub const SIZE: usize = 53;

    /// Parses an item's bytes; `None` when they are too short for its kind.
    pub fn parse(b: &[u8]) -> Option<FileExtentItem> {
        if b.len() < Self::INLINE_DATA {
            return None;
        }
        let kind = b[20];
        let mut item = FileExtentItem {
            generation: le64(b, 0),
            ram_bytes: le64(b, 8),
            compression: b[16],
            encryption: b[17],
            other_encoding: u16::from_le_bytes([b[18], b[19]]),
            kind,
            disk_bytenr: 0,
            disk_num_bytes: 0,
            offset: 0,
            num_bytes: (b.len() - Self::INLINE_DATA) as u64,
        };
        if kind != FILE_EXTENT_INLINE {
            if b.len() < Self::SIZE {
                return None;
            }
            item.disk_bytenr = le64(b, 21);
            item.disk_num_bytes = le64(b, 29);
            item.offset = le64(b, 37);
            item.num_bytes = le64(b, 45);
        }
        Some(item)
    }
}

/// The fields of `struct btrfs_inode_item` (packed, little-endian, 160
/// bytes) that tell which file an inode holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodeItem {
    /// Transaction that created the inode.
    pub generation: u64,
    /// Transaction that last changed it.
    pub transid: u64,
    /// File size.
    pub size: u64,
    /// Bytes allocated.
    pub nbytes: u64,
    /// Links.
    pub nlink: u32,
    /// `st_mode`.
    pub mode: u32,
    /// btrfs inode flags.
    pub flags: u64,
    /// Modification time: seconds.
    pub mtime_sec: u64,
    /// Modification time: nanoseconds.
    pub mtime_nsec: u32,
}

impl InodeItem {
    /// Size of the item.
    pub const SIZE: usize = 160;
    /// Offset of `mtime` (a 12-byte `struct btrfs_timespec`).
    pub const MTIME: usize = 136;

    /// Parses an item's bytes; `None` when they are too short.
    pub fn parse(b: &[u8]) -> Option<InodeItem> {
        if b.len() < Self::SIZE {
            return None;
        }
        Some(InodeItem {
            generation: le64(b, 0),
            transid: le64(b, 8),
            size: le64(b, 16),
            nbytes: le64(b, 24),
            nlink: le32(b, 40),
            mode: le32(b, 52),
            flags: le64(b, 64),
            mtime_sec: le64(b, Self::MTIME),
            mtime_nsec: le32(b, Self::MTIME + 8),
        })
    }
}

/// A reusable buffer for [`tree_search`].
pub struct SearchBuf {
    words: Vec<u64>,
}

impl SearchBuf {
    /// Room for `bytes` of items per call (at most [`SEARCH_BUF_MAX`]).
    pub fn new(bytes: usize) -> SearchBuf {
        let bytes = bytes.clamp(HEADER, SEARCH_BUF_MAX);
        let head = std::mem::size_of::<SearchArgsV2>();
        SearchBuf {
            words: vec![0u64; (head + bytes).div_ceil(8)],
        }
    }

    fn room(&self) -> usize {
        self.words.len() * 8 - std::mem::size_of::<SearchArgsV2>()
    }
}

/// One `BTRFS_IOC_TREE_SEARCH_V2` call on `fd`: the items from `key`'s
/// minimum on, as many as fit in `buf`. Returns the returned count and the
/// bytes holding them (headers and items, see [`items`]). `EOVERFLOW`
/// (one item larger than the buffer) grows `buf` and asks again.
pub fn tree_search_once<'b>(
    fd: BorrowedFd<'_>,
    key: &SearchKey,
    buf: &'b mut SearchBuf,
) -> io::Result<(u32, &'b [u8])> {
    loop {
        let room = buf.room();
        let base = buf.words.as_mut_ptr().cast::<u8>();
        // SAFETY: `words` is 8-byte aligned and longer than the head.
        unsafe {
            base.cast::<SearchArgsV2>().write(SearchArgsV2 {
                key: *key,
                buf_size: room as u64,
            });
        }
        let req = BufferIoctl {
            opcode: BTRFS_IOC_TREE_SEARCH_V2,
            ptr: base.cast(),
        };
        // SAFETY: the buffer is a `struct btrfs_ioctl_search_args_v2` whose
        // `buf_size` is the room after the head, all the kernel writes; it
        // outlives the call.
        let r = unsafe { ioctl::ioctl(fd, req) };
        // SAFETY: in bounds and aligned; the kernel wrote plain integers.
        let head = unsafe { base.cast::<SearchArgsV2>().read() };
        match r {
            Ok(()) => {
                let n = head.key.nr_items;
                let start = std::mem::size_of::<SearchArgsV2>();
                let bytes: &[u8] = bytemuck_words(&buf.words);
                return Ok((n, &bytes[start..start + room]));
            }
            Err(rustix::io::Errno::OVERFLOW)
                if (head.buf_size as usize) > room && room < SEARCH_BUF_MAX =>
            {
                *buf = SearchBuf::new(head.buf_size as usize);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The words as bytes, read in place.
fn bytemuck_words(words: &[u64]) -> &[u8] {
    // SAFETY: any `u64` is 8 valid bytes; the length is exact and the
    // lifetime is the slice's.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
}

/// The `n` items in `bytes` as returned by [`tree_search_once`]: each
/// header and the item's bytes. Stops early at a header that runs past the
/// end.
pub fn items(n: u32, bytes: &[u8]) -> impl Iterator<Item = (SearchHeader, &[u8])> {
    let mut at = 0usize;
    (0..n).map_while(move |_| {
        let h = bytes.get(at..at + HEADER)?;
        let head = SearchHeader {
            transid: ne64(h, 0),
            objectid: ne64(h, 8),
            offset: ne64(h, 16),
            item_type: ne32(h, 24),
            len: ne32(h, 28),
        };
        let data = bytes.get(at + HEADER..at + HEADER + head.len as usize)?;
        at += HEADER + head.len as usize;
        Some((head, data))
    })
}

/// The key right after `h`'s, in tuple order; `None` past the last key.
fn next_key(h: &SearchHeader) -> Option<(u64, u32, u64)> {
    if let Some(o) = h.offset.checked_add(1) {
        Some((h.objectid, h.item_type, o))
    } else if h.item_type < 255 {
        Some((h.objectid, h.item_type + 1, 0))
    } else {
        Some((h.objectid.checked_add(1)?, 0, 0))
    }
}

/// Every item of `key`'s range, in key order, to `f` (which may stop
/// early): [`tree_search_once`] in a loop, each call going on after the
/// last item of the one before.
pub fn tree_search(
    fd: BorrowedFd<'_>,
    mut key: SearchKey,
    buf: &mut SearchBuf,
    mut f: impl FnMut(&SearchHeader, &[u8]) -> ControlFlow<()>,
) -> io::Result<()> {
    let max = (key.max_objectid, key.max_type, key.max_offset);
    loop {
        let (n, bytes) = tree_search_once(fd, &key, buf)?;
        let mut last = None;
        for (h, data) in items(n, bytes) {
            if f(&h, data).is_break() {
                return Ok(());
            }
            last = Some(h);
        }
        let Some(next) = last.as_ref().and_then(next_key) else {
            return Ok(());
        };
        if next > max {
            return Ok(());
        }
        (key.min_objectid, key.min_type, key.min_offset) = next;
    }
}
