//! A counting gate around the calls whose kernel work holds filesystem
//! locks while it runs on a CPU (`FIEMAP`, `FIDEDUPERANGE`).
//!
//! The workers outnumber the CPUs so that reads and opens overlap their
//! waits. Let as many of them into a lock-taking call, though, and the
//! scheduler preempts a thread holding a lock (on XFS, the allocation
//! group's header buffer, taken by every refcount lookup and update) while
//! the others queue behind it: measured on XFS, half of the share phase's
//! thread time was spent waiting for that buffer. At most one such call
//! per CPU runs at once; the others wait here, where no lock is held.

use std::sync::{Condvar, Mutex};

/// At most `n` callers inside [`Gate::pass`] at once.
pub(super) struct Gate {
    places: Mutex<Places>,
    freed: Condvar,
}

struct Places {
    free: usize,
    /// Callers asleep in [`Gate::pass`]: only then does giving a place
    /// back wake one (a `futex` call; without waiters it would be one
    /// wasted system call per pass).
    waiting: usize,
}

/// Gives the place back when dropped, even on a panic.
struct Held<'a>(&'a Gate);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut p = self.0.places.lock().unwrap_or_else(|e| e.into_inner());
        p.free += 1;
        let wake = p.waiting > 0;
        drop(p);
        if wake {
            self.0.freed.notify_one();
        }
    }
}

impl Gate {
    /// A gate letting `n` (at least one) callers in at once.
    pub(super) fn new(n: usize) -> Self {
        Gate {
            places: Mutex::new(Places {
                free: n.max(1),
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` once a place is free.
    pub(super) fn pass<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut p = self.places.lock().unwrap_or_else(|e| e.into_inner());
        while p.free == 0 {
            p.waiting += 1;
            p = self.freed.wait(p).unwrap_or_else(|e| e.into_inner());
            p.waiting -= 1;
        }
        p.free -= 1;
        drop(p);
        let _held = Held(self);
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_inside_than_places() {
        let gate = Gate::new(2);
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        gate.pass(|| {
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                });
            }
        });
        assert_eq!(inside.load(Ordering::SeqCst), 0);
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=2).contains(&most),
            "{most} callers were inside at once"
        );
    }

    #[test]
    fn a_panic_inside_gives_the_place_back() {
        let gate = Gate::new(1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gate.pass(|| panic!("inside"));
        }));
        assert!(r.is_err());
        assert_eq!(gate.pass(|| 7), 7);
    }
}
