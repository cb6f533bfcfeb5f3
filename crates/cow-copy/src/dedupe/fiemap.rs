//! The extent map of one open file with `FS_IOC_FIEMAP`, as far as it
//! proves sharing: files whose extents are all shared and exactly
//! addressed get a signature of their physical map (equal signatures, same
//! blocks, same bytes); inline files are told apart.

use std::fs::File;
use std::os::fd::AsFd;

use cow_sys::linux::{FiemapExtent, FiemapExtentFlags as F, FiemapFlags, fiemap_all, fiemap_array};
use xxhash_rust::xxh3::Xxh3;

use super::ag::{AgLocks, Guess};
use super::gate::Gate;

/// How the `FIEMAP` calls of one file wait: for a CPU at the gate (unless
/// `gate` is `None`), then (unless `ags` is `None`) for the XFS allocation
/// group they are expected to lock.
pub(super) struct Serial<'a> {
    pub(super) gate: Option<&'a Gate>,
    pub(super) ags: Option<&'a AgLocks>,
    pub(super) dev: u16,
    pub(super) guess: Guess,
}

impl Serial<'_> {
    fn call<T>(&self, f: impl FnOnce() -> T) -> T {
        let locked = || match self.ags {
            Some(ags) => ags.hold(self.dev, self.guess, f),
            None => f(),
        };
        match self.gate {
            Some(gate) => gate.pass(locked),
            None => locked(),
        }
    }
}

/// What the extent map says about a file.
pub(super) enum Map {
    /// Every extent shared and exactly addressed: the map's hash, and the
    /// device address of the first extent.
    Shared {
        /// The hash.
        sig: u64,
        /// `fe_physical` of the first extent.
        physical: u64,
    },
    /// Data stored inline: nothing to gain.
    Inline,
    /// Nothing provable.
    Other,
}

/// Extents asked for in the first `FIEMAP` call of a file: most files have
/// one or a few, and a map whose first extents are not shared proves
/// nothing, so the rest is never asked for.
const FIRST_EXTENTS: usize = 8;

/// A file's extents: the first call's, on the stack, or every one.
// The large variant is the point: no allocation for most files.
#[allow(clippy::large_enum_variant)]
enum Extents {
    First([FiemapExtent; FIRST_EXTENTS], usize),
    All(Vec<FiemapExtent>),
}

impl Extents {
    fn as_slice(&self) -> &[FiemapExtent] {
        match self {
            Extents::First(e, n) => &e[..*n],
            Extents::All(e) => e,
        }
    }
}

/// Whether an extent proves sharing: shared, and a plain extent at an
/// exact device offset.
fn proves(e: &FiemapExtent) -> bool {
    let fl = e.flags();
    fl.contains(F::SHARED)
        && !fl
            .intersects(F::UNKNOWN | F::DELALLOC | F::ENCODED | F::DATA_ENCRYPTED | F::NOT_ALIGNED)
}

/// What the first extents of a map (`batch`, asked for `0..size`) say.
enum First {
    /// Stored inline.
    Inline,
    /// Some extent within the file proves nothing: the map cannot.
    Unshared,
    /// Dirty data shows (delayed allocation): ask again after a flush.
    Dirty,
    /// Every extent returned proves sharing, and they are all of them.
    Complete,
    /// Every extent returned proves sharing, and there are more.
    More,
}

fn first_look(batch: &[FiemapExtent], size: u64, asked: usize) -> First {
    let mut end = 0u64;
    for e in batch.iter().filter(|e| e.fe_logical < size) {
        let fl = e.flags();
        if fl.contains(F::DATA_INLINE) {
            return First::Inline;
        }
        if fl.intersects(F::DELALLOC | F::UNKNOWN) {
            return First::Dirty;
        }
        if !proves(e) {
            return First::Unshared;
        }
        end = e.fe_logical.saturating_add(e.fe_length);
    }
    let last = batch.last().is_some_and(|e| e.flags().contains(F::LAST));
    if last || end >= size || batch.len() < asked {
        First::Complete
    } else {
        First::More
    }
}

/// The extent map of `f` as far as it matters: `None` when it cannot
/// prove sharing (read failed, or an extent within the file is not a
/// plain shared one), `Some(Err(()))` when the file is inline, else every
/// extent. The first call asks for [`FIRST_EXTENTS`] extents of
/// `0..size` only; the whole map is read only when those all prove
/// sharing and do not reach the end.
///
/// Flushing: on btrfs (`quick`) the map is first asked without
/// `FIEMAP_FLAG_SYNC`, which is most of the cost of a rerun: btrfs shows
/// dirty data, even over an existing extent, as a delayed allocation, so a
/// map without one is final, and one with it is asked again after the
/// flush. XFS maps its data fork only, where a pending copy-on-write of a
/// shared extent does not show: there the flush always comes first.
fn extent_map(
    serial: &Serial<'_>,
    f: &File,
    size: u64,
    quick: bool,
) -> Option<Result<Extents, ()>> {
    let fd = f.as_fd();
    let mut flags = if quick {
        FiemapFlags::empty()
    } else {
        FiemapFlags::SYNC
    };
    loop {
        let (head, batch) = serial
            .call(|| fiemap_array::<FIRST_EXTENTS>(fd, 0, size, flags))
            .ok()?;
        let n = (head.fm_mapped_extents as usize).min(FIRST_EXTENTS);
        match first_look(&batch[..n], size, FIRST_EXTENTS) {
            First::Inline => return Some(Err(())),
            First::Unshared => return None,
            First::Dirty if !flags.contains(FiemapFlags::SYNC) => flags = FiemapFlags::SYNC,
            First::Dirty => return None,
            First::Complete => return Some(Ok(Extents::First(batch, n))),
            // The flush, if any, was done by the first call.
            First::More => {
                return serial
                    .call(|| fiemap_all(fd, FiemapFlags::empty()))
                    .ok()
                    .map(|e| Ok(Extents::All(e)));
            }
        }
    }
}

/// What the extent map of `f` (`size` bytes; `quick`: btrfs, see
/// [`extent_map`]) proves, its calls waiting as `serial` says.
pub(super) fn map_of(serial: &Serial<'_>, f: &File, size: u64, quick: bool) -> Map {
    let extents = match extent_map(serial, f, size, quick) {
        Some(Ok(e)) => e,
        Some(Err(())) => return Map::Inline,
        None => return Map::Other,
    };
    let extents = extents.as_slice();
    let mut h = Xxh3::new();
    let mut all = !extents.is_empty();
    for e in extents {
        if e.fe_logical >= size {
            continue;
        }
        let fl = e.flags();
        if fl.contains(F::DATA_INLINE) {
            return Map::Inline;
        }
        // Only plain extents at exact device offsets prove anything.
        if proves(e) {
            let len = e.fe_length.min(size - e.fe_logical);
            h.update(&e.fe_logical.to_le_bytes());
            h.update(&e.fe_physical.to_le_bytes());
            h.update(&len.to_le_bytes());
        } else {
            all = false;
        }
    }
    match h.digest() {
        s if all && s != 0 => Map::Shared {
            sig: s,
            physical: extents[0].fe_physical,
        },
        _ => Map::Other,
    }
}
