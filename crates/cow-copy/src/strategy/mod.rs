//! Steps 3 to 5 of the chain and the helpers they share.

pub(crate) mod clone;
pub(crate) mod kernel;
pub(crate) mod ranges;
pub(crate) mod user;

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

use crate::fault::{Site, fault};
use ranges::Seek;

/// A run of data in the source: `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// The data segments of the first `len` bytes of `file`, found with
/// `SEEK_DATA`/`SEEK_HOLE`. `None` when the filesystem cannot tell (then the
/// whole file is data). A segment ending at `len` means the file ends in
/// data: callers read that one to the real end of file, which may be later
/// if the file grew.
pub(crate) fn data_segments(file: &File, len: u64) -> io::Result<Option<Vec<Segment>>> {
    let fd = file.as_fd();
    let seek = |how: SeekFrom| match how {
        SeekFrom::Data(_) => fault!(Site::SeekData, rustix::fs::seek(fd, how)),
        _ => fault!(Site::SeekHole, rustix::fs::seek(fd, how)),
    };
    let answer = |r: Result<u64, Errno>| match r {
        Ok(o) => Ok(Seek::At(o)),
        Err(Errno::NXIO) => Ok(Seek::End),
        Err(e) => Err(e),
    };
    // Most files are one run of data: a single SEEK_HOLE from 0 says so.
    match seek(SeekFrom::Hole(0)) {
        Ok(h) if h >= len => return Ok(Some(vec![Segment { start: 0, end: len }])),
        // No SEEK_HOLE here at all: the whole file is data.
        Err(e) if e == Errno::INVAL || e == Errno::OPNOTSUPP || e == Errno::NOTSUP => {
            return Ok(None);
        }
        Err(e) if e != Errno::NXIO => return Err(e.into()),
        // A hole before `len` (or the file shrank): walk it.
        _ => {}
    }
    let mut first = true;
    let walked = ranges::walk_segments(
        len,
        |off| {
            let r = seek(SeekFrom::Data(off));
            // No SEEK_DATA here at all: the whole file is data.
            if std::mem::take(&mut first)
                && matches!(r, Err(e) if e == Errno::INVAL || e == Errno::OPNOTSUPP || e == Errno::NOTSUP)
            {
                return Err(None);
            }
            answer(r).map_err(Some)
        },
        |off| answer(seek(SeekFrom::Hole(off))).map_err(Some),
    );
    match walked {
        Ok(v) => Ok(Some(v)),
        Err(None) => Ok(None),
        Err(Some(e)) => Err(e.into()),
    }
}

/// Files up to this size with blocks allocated are copied as one run of
/// data without asking where their holes are: a hole in them could save at
/// most this much, and the `SEEK_HOLE` call costs more than that block on
/// a tree of small files (a `node_modules`).
const PROBE_HOLES_ABOVE: u64 = 4096;

/// The segments to copy under the sparse policy: the data segments, or the
/// whole file as one when holes are not detectable or `len` is 0 (a procfs
/// file that reports size 0 but has data is read to its end). `meta` is the
/// file's status when it was opened: a file of at most one block that has
/// a block allocated is taken as data (one with none allocated, all hole
/// or inline, is still asked).
pub(crate) fn plan(file: &File, len: u64, meta: &std::fs::Metadata) -> io::Result<Vec<Segment>> {
    if len == 0 {
        return Ok(vec![Segment { start: 0, end: 0 }]);
    }
    if len <= PROBE_HOLES_ABOVE && allocated(meta) {
        return Ok(vec![Segment { start: 0, end: len }]);
    }
    Ok(data_segments(file, len)?.unwrap_or_else(|| vec![Segment { start: 0, end: len }]))
}

#[cfg(unix)]
fn allocated(meta: &std::fs::Metadata) -> bool {
    std::os::unix::fs::MetadataExt::blocks(meta) > 0
}

#[cfg(not(unix))]
fn allocated(_meta: &std::fs::Metadata) -> bool {
    false
}
