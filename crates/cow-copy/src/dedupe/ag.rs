//! One `FIEMAP` per XFS allocation group at a time.
//!
//! On XFS, the `SHARED` flag of each extent of a reflinked file is a lookup
//! in the reference-count tree of the allocation group (AG) holding the
//! blocks, under the AG header's buffer lock: a semaphore, which the kernel
//! hands to a sleeping waiter. Two `FIEMAP`s in one AG at once therefore
//! make one thread sleep and the lock wait until it is scheduled again.
//! Measured on the bench's rerun over XFS (two CPUs): the calls took 24 ms
//! of thread time on one worker, 45 to 57 ms on two. Here a worker first
//! takes a user-space lock for the AG it expects the call to lock,
//! spinning while another worker holds it (the calls take microseconds),
//! so that concurrent calls go to different AGs and none sleeps in the
//! kernel for its AG header. The lock is advisory: a worker that still
//! finds it taken after spinning, yielding once and spinning again goes on
//! without it, and the map phase takes none once the run is cold (a call
//! may then wait for the disk while it holds its AG).
//!
//! Which AG a call locks is known only after it: the expectation is the AG
//! of the group's lowest inode (XFS keeps a file's blocks near its inode,
//! and the first member of a size group is usually the one whose blocks
//! the others share), then the AG of the blocks the previous member of the
//! group turned out to share. A wrong guess costs only what the kernel
//! lock costs anyway.

use std::sync::atomic::{AtomicBool, Ordering};

use cow_sys::linux::xfs::{FsopGeomV1, fs_geometry};

use super::scan::Tree;

/// Spins before a worker gives up its CPU while another holds the AG
/// (2,000 `pause`s, some tens of microseconds; a `FIEMAP` takes a few:
/// yielding after 20 or 200 made the bench's XFS rerun 10 to 40 ms
/// slower, spinning 20,000 gained nothing).
const SPINS: u32 = 2000;

/// Per device: XFS's geometry and one lock per AG (`None` elsewhere).
pub(super) struct AgLocks {
    devs: Vec<Option<(FsopGeomV1, Vec<AtomicBool>)>>,
}

/// The AG a worker expects its next `FIEMAP` on a device to lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Guess(Option<u32>);

impl AgLocks {
    /// Asks every XFS device of `tree` for its geometry.
    pub(super) fn new(tree: &Tree) -> Self {
        let devs = tree
            .devices
            .iter()
            .map(|d| {
                if !d.xfs {
                    return None;
                }
                let g = std::fs::File::open(&d.root)
                    .ok()
                    .and_then(|f| fs_geometry(std::os::fd::AsFd::as_fd(&f)).ok())?;
                // One lock per AG, up to a bound: beyond it AGs share locks.
                let n = g.agcount.clamp(1, 1024) as usize;
                Some((g, (0..n).map(|_| AtomicBool::new(false)).collect()))
            })
            .collect();
        AgLocks { devs }
    }

    /// The geometry and locks of device `dev`, if it is XFS.
    fn dev(&self, dev: u16) -> Option<&(FsopGeomV1, Vec<AtomicBool>)> {
        self.devs.get(dev as usize).and_then(Option::as_ref)
    }

    /// The lock `ag_of` names on `dev` (AGs beyond the locks share them).
    fn guess(&self, dev: u16, ag_of: impl FnOnce(&FsopGeomV1) -> u64) -> Guess {
        Guess(
            self.dev(dev)
                .map(|(g, locks)| (ag_of(g) % locks.len() as u64) as u32),
        )
    }

    /// The AG of inode `ino` on device `dev`.
    pub(super) fn of_inode(&self, dev: u16, ino: u64) -> Guess {
        self.guess(dev, |g| g.ag_of_inode(ino))
    }

    /// The AG of the byte at `physical` (a `FIEMAP` address) on `dev`.
    pub(super) fn of_physical(&self, dev: u16, physical: u64) -> Guess {
        self.guess(dev, |g| g.ag_of_physical(physical))
    }

    /// Runs `f` holding the lock of the AG `guess` names on `dev` (no lock
    /// where there are no AGs, or when its holder does not let go of it
    /// within two rounds of spinning).
    pub(super) fn hold<T>(&self, dev: u16, guess: Guess, f: impl FnOnce() -> T) -> T {
        let lock = match (guess.0, self.dev(dev)) {
            (Some(ag), Some((_, locks))) if (ag as usize) < locks.len() => &locks[ag as usize],
            _ => return f(),
        };
        // Read before trying to take it: spinning on a read leaves the
        // holder's cache line alone until it is given back.
        let take = || {
            !lock.load(Ordering::Relaxed)
                && lock
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        };
        // Spin, give the CPU up once (the holder may be waiting for it),
        // spin again; a holder still inside is waiting for something else
        // (a read of metadata on a cold cache): go on without the lock
        // rather than burn a CPU, leaving the order to the kernel.
        let mut got = false;
        'wait: for round in 0..2 {
            for _ in 0..SPINS {
                if take() {
                    got = true;
                    break 'wait;
                }
                std::hint::spin_loop();
            }
            if round == 0 {
                std::thread::yield_now();
            }
        }
        /// Gives the AG back when dropped, even on a panic.
        struct Held<'a>(Option<&'a AtomicBool>);
        impl Drop for Held<'_> {
            fn drop(&mut self) {
                if let Some(l) = self.0 {
                    l.store(false, Ordering::Release);
                }
            }
        }
        let _held = Held(got.then_some(lock));
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn locks(agcount: u32) -> AgLocks {
        let g = FsopGeomV1 {
            blocksize: 4096,
            agblocks: 1 << 16,
            agcount,
            inodesize: 512,
            ..FsopGeomV1::default()
        };
        AgLocks {
            devs: vec![
                None,
                Some((g, (0..agcount).map(|_| AtomicBool::new(false)).collect())),
            ],
        }
    }

    #[test]
    fn guesses_follow_the_geometry() {
        let l = locks(4);
        // agblklog 16 + inopblog 3.
        assert_eq!(l.of_inode(1, 3 << 19), Guess(Some(3)));
        assert_eq!(l.of_physical(1, (2 << 16) * 4096 + 1), Guess(Some(2)));
        assert_eq!(l.of_inode(0, 3 << 19), Guess(None));
        assert_eq!(l.of_inode(7, 1), Guess(None));
    }

    #[test]
    fn a_held_ag_is_waited_for_then_passed_others_are_free() {
        let l = locks(2);
        let held = |ag: usize| l.devs[1].as_ref().unwrap().1[ag].load(Ordering::SeqCst);
        l.hold(1, Guess(Some(0)), || {
            assert!(held(0));
            // Another AG is taken and given back.
            l.hold(1, Guess(Some(1)), || assert!(held(1)));
            assert!(!held(1));
            // This one is held (here, and not let go of while the call
            // waits): after its rounds of spinning the call runs without
            // it, and the holder keeps it.
            assert_eq!(l.hold(1, Guess(Some(0)), || 3), 3);
            assert!(held(0));
        });
        assert!(!held(0));
        // Without AGs nothing is held: calls nest freely.
        assert_eq!(l.hold(0, Guess(None), || l.hold(0, Guess(None), || 5)), 5);
    }

    #[test]
    fn workers_in_one_ag_all_get_through() {
        let l = locks(1);
        let done = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..300 {
                        l.hold(1, Guess(Some(0)), || {
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                });
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 1800);
        assert!(!l.devs[1].as_ref().unwrap().1[0].load(Ordering::SeqCst));
    }

    cow_test_support::fs_test!(
        xfs_is_told_apart_by_its_geometry,
        [xfs, btrfs, ext4, tmpfs],
        |dir, fs| {
            use std::os::unix::fs::MetadataExt;
            let files: Vec<_> = (0..4)
                .map(|k| dir.join(format!("d{k}")).join("f"))
                .collect();
            for f in &files {
                std::fs::create_dir(f.parent().unwrap()).unwrap();
                std::fs::write(f, b"data").unwrap();
            }
            let quiet = |_: &crate::dedupe::Event<'_>| {};
            let (tree, _) = crate::dedupe::scan::scan(&[dir.to_path_buf()], 1, 16, &quiet).unwrap();
            let l = AgLocks::new(&tree);
            assert_eq!(l.devs.len(), 1);
            for f in &files {
                let g = l.of_inode(0, std::fs::metadata(f).unwrap().ino());
                match (fs, &l.devs[0]) {
                    (cow_test_support::Fs::Xfs, Some((geom, locks))) => {
                        assert_eq!(locks.len(), geom.agcount as usize);
                        assert!(matches!(g, Guess(Some(ag)) if ag < geom.agcount), "{g:?}");
                    }
                    (cow_test_support::Fs::Xfs, None) => panic!("no geometry on XFS"),
                    (_, d) => {
                        assert!(d.is_none(), "{fs:?}");
                        assert_eq!(g, Guess(None));
                    }
                }
            }
        }
    );

    #[test]
    fn a_panic_inside_gives_the_ag_back() {
        let l = locks(1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            l.hold(1, Guess(Some(0)), || panic!("inside"));
        }));
        assert!(r.is_err());
        assert_eq!(l.hold(1, Guess(Some(0)), || 7), 7);
    }
}
