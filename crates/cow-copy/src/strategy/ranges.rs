//! The range arithmetic of the copy strategies as pure functions (no file,
//! no syscall), so that property tests can drive them with arbitrary extent
//! maps and offsets: walking a data/hole map, splitting a range into
//! requests, and finding the whole zero blocks a sparse copy leaves out.

use std::ops::Range;

use super::Segment;

/// The answer of one `SEEK_DATA`/`SEEK_HOLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seek {
    /// The offset found.
    At(u64),
    /// `ENXIO`: no data (or the file ends) at or after the offset.
    End,
}

/// Walks the data segments of the first `len` bytes of a file, asking
/// `seek_data(off)` for the next data at or after `off` and `seek_hole(off)`
/// for the next hole. Segments are sorted, disjoint, non-empty and end at
/// most at `len`; a file that shrinks during the walk (`End`, or a hole
/// answer before the data answer) just ends it.
pub(crate) fn walk_segments<E>(
    len: u64,
    mut seek_data: impl FnMut(u64) -> Result<Seek, E>,
    mut seek_hole: impl FnMut(u64) -> Result<Seek, E>,
) -> Result<Vec<Segment>, E> {
    let mut out: Vec<Segment> = Vec::new();
    let mut off = 0u64;
    while off < len {
        let start = match seek_data(off)? {
            // A filesystem answers with an offset at or after the asked one;
            // anything else is not trusted to move forward.
            Seek::At(d) if d >= off => d,
            Seek::At(_) | Seek::End => break,
        };
        if start >= len {
            break;
        }
        let end = match seek_hole(start)? {
            Seek::At(h) => h.min(len),
            // Truncated under us: nothing more.
            Seek::End => break,
        };
        if end <= start {
            break;
        }
        match out.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => out.push(Segment { start, end }),
        }
        off = end;
    }
    Ok(out)
}

/// The largest file offset (`off_t` is signed): no byte lies at or beyond
/// it, and a request reaching past it fails (`EINVAL`, `EFBIG`) instead of
/// meeting the end of file.
pub(crate) const MAX_OFFSET: u64 = i64::MAX as u64;

/// The length of the next request at `off` within a segment ending at `end`
/// (or running to the end of file: `to_eof`), at most `max` bytes and never
/// past [`MAX_OFFSET`]. 0 means the end of file is reached.
pub(crate) fn request(off: u64, end: u64, to_eof: bool, max: u64) -> u64 {
    let room = MAX_OFFSET.saturating_sub(off).min(max);
    if to_eof {
        room
    } else {
        end.saturating_sub(off).min(room)
    }
}

/// The parts of `chunk` (which sits at file offset `off`) to write when every
/// whole, `bs`-aligned block of zeros is left out (a hole stays there), and
/// the number of bytes left out.
pub(crate) fn nonzero_ranges(chunk: &[u8], off: u64, bs: u64) -> (Vec<Range<usize>>, u64) {
    let bs = bs.max(1);
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut skipped = 0u64;
    let mut pos = 0usize;
    let mut pending: Option<usize> = None;
    while pos < chunk.len() {
        let abs = off + pos as u64;
        let to_boundary = bs - abs % bs;
        let len = (to_boundary.min((chunk.len() - pos) as u64)) as usize;
        let whole_block = abs % bs == 0 && len as u64 == bs;
        if whole_block && chunk[pos..pos + len].iter().all(|&b| b == 0) {
            if let Some(p) = pending.take() {
                out.push(p..pos);
            }
            skipped += len as u64;
        } else if pending.is_none() {
            pending = Some(pos);
        }
        pos += len;
    }
    if let Some(p) = pending {
        out.push(p..chunk.len());
    }
    (out, skipped)
}

#[cfg(test)]
mod proptests {
    //! Property tests; `PROPTEST_CASES=100000 cargo test -p cow-copy ranges`
    //! for a long run (the default is a short one).

    use super::*;
    use proptest::prelude::*;

    /// A random data map: sorted, disjoint data ranges and a file length.
    fn map() -> impl Strategy<Value = (Vec<(u64, u64)>, u64)> {
        (
            proptest::collection::vec((0u64..1 << 20, 1u64..1 << 18), 0..12),
            0u64..1 << 22,
        )
            .prop_map(|(gaps, tail)| {
                let mut v = Vec::new();
                let mut at = 0u64;
                for (gap, len) in gaps {
                    // A zero gap after the first range merges two ranges.
                    let start = at + if v.is_empty() { gap } else { gap.max(1) };
                    v.push((start, start + len));
                    at = start + len;
                }
                (v, at + tail)
            })
    }

    /// SEEK_DATA/SEEK_HOLE over `data` in a file of `size` bytes, with the
    /// filesystem allowed to report holes at `gran`-aligned boundaries only
    /// (data rounded out to blocks, as ext4 and XFS do).
    fn oracle(data: &[(u64, u64)], size: u64, gran: u64) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = Vec::new();
        for &(s, e) in data {
            let s = s / gran * gran;
            let e = e.div_ceil(gran).saturating_mul(gran).min(size);
            if s >= e {
                continue;
            }
            match v.last_mut() {
                Some(last) if last.1 >= s => last.1 = last.1.max(e),
                _ => v.push((s, e)),
            }
        }
        v
    }

    fn seek_data(map: &[(u64, u64)], size: u64, off: u64) -> Result<Seek, ()> {
        if off >= size {
            return Ok(Seek::End);
        }
        Ok(map
            .iter()
            .find(|&&(_, e)| e > off)
            .map_or(Seek::End, |&(s, _)| Seek::At(s.max(off))))
    }

    fn seek_hole(map: &[(u64, u64)], size: u64, off: u64) -> Result<Seek, ()> {
        if off >= size {
            return Ok(Seek::End);
        }
        Ok(Seek::At(
            map.iter()
                .find(|&&(s, e)| s <= off && off < e)
                .map_or(off, |&(_, e)| e),
        ))
    }

    proptest! {
        #[test]
        fn walk_finds_exactly_the_data(
            (data, size) in map(),
            len_cut in 0u64..=100,
            gran in prop::sample::select(vec![1u64, 512, 4096, 65536]),
        ) {
            // The length seen at open may be shorter than the file (it grew).
            let len = size * len_cut / 100;
            let m = oracle(&data, size, gran);
            let segs = walk_segments(len, |o| seek_data(&m, size, o), |o| seek_hole(&m, size, o)).unwrap();
            // Sorted, disjoint, non-adjacent, non-empty, within len.
            for w in segs.windows(2) {
                prop_assert!(w[0].end < w[1].start, "{:?}", segs);
            }
            for s in &segs {
                prop_assert!(s.start < s.end && s.end <= len, "{:?}", segs);
            }
            // Every data byte below len is in a segment, and nothing else.
            let expect: Vec<(u64, u64)> = m
                .iter()
                .filter(|&&(s, _)| s < len)
                .map(|&(s, e)| (s, e.min(len)))
                .collect();
            let got: Vec<(u64, u64)> = segs.iter().map(|s| (s.start, s.end)).collect();
            prop_assert_eq!(got, expect);
        }

        #[test]
        fn walk_survives_any_answers(
            len in 0u64..1 << 30,
            answers in proptest::collection::vec((any::<bool>(), 0u64..1 << 31), 0..64),
        ) {
            // A filesystem (or a file changing under us) may answer
            // anything: the walk must end, and its segments stay sane.
            let it = std::cell::RefCell::new(answers.into_iter());
            let next = |_: u64| -> Result<Seek, ()> {
                Ok(match it.borrow_mut().next() {
                    Some((true, o)) => Seek::At(o),
                    _ => Seek::End,
                })
            };
            let segs = walk_segments(len, next, next            ).unwrap();
            for w in segs.windows(2) {
                prop_assert!(w[0].end < w[1].start);
            }
            for s in &segs {
                prop_assert!(s.start < s.end && s.end <= len);
            }
        }

        #[test]
        fn requests_tile_the_segment(start in 0u64..1 << 40, n in 0u64..1 << 32, max in 1u64..1 << 31) {
            let end = start.saturating_add(n);
            let mut off = start;
            let mut calls = 0u64;
            while off < end {
                let r = request(off, end, false, max);
                prop_assert!(r >= 1 && r <= max && off + r <= end);
                off += r;
                calls += 1;
            }
            prop_assert_eq!(off, end.max(start));
            prop_assert_eq!(calls, n.div_ceil(max));
            prop_assert_eq!(request(start, end, true, max), max);
        }

        #[test]
        fn zero_blocks_are_left_out_exactly(
            blocks in proptest::collection::vec((any::<bool>(), 1usize..300), 0..40),
            off in 0u64..100_000,
            bs in prop::sample::select(vec![1u64, 7, 512, 4096]),
        ) {
            // Runs of zeros and of non-zero bytes.
            let mut chunk = Vec::new();
            for (zero, n) in blocks {
                chunk.extend((0..n).map(|i| if zero { 0 } else { (i % 251 + 1) as u8 }));
            }
            let (ranges, skipped) = nonzero_ranges(&chunk, off, bs);
            let mut covered = vec![false; chunk.len()];
            let mut prev_end = None;
            for r in &ranges {
                prop_assert!(r.start < r.end && r.end <= chunk.len());
                if let Some(p) = prev_end {
                    prop_assert!(p < r.start, "ranges touch or overlap: {:?}", ranges);
                }
                prev_end = Some(r.end);
                for c in &mut covered[r.clone()] {
                    *c = true;
                }
            }
            let written: usize = ranges.iter().map(|r| r.len()).sum();
            prop_assert_eq!(written as u64 + skipped, chunk.len() as u64);
            // Left out: exactly the whole aligned blocks of zeros.
            for (i, &c) in covered.iter().enumerate() {
                let abs = off + i as u64;
                let bstart = abs / bs * bs;
                let lo = bstart.checked_sub(off).map(|v| v as usize);
                let whole = lo.is_some_and(|lo| lo + bs as usize <= chunk.len());
                let zero_block = whole && {
                    let lo = lo.unwrap_or(0);
                    chunk[lo..lo + bs as usize].iter().all(|&b| b == 0)
                };
                prop_assert_eq!(!c, zero_block, "byte {} (abs {})", i, abs);
            }
        }
    }
}
