//! Fault injection: a test-only seam in front of each system call the
//! single-file engine makes.
//!
//! Every call site in the engine is written as `fault!(Site::X, call)`, which
//! also restarts the call after `EINTR`. Without the `fault-injection` cargo
//! feature (the default) the macro expands to the call and that restart: no
//! thread-local, no cost.
//!
//! With the feature, each site first consults a per-thread plan (so tests
//! running in parallel threads do not disturb each other) that can make the
//! site's Nth call fail with a chosen errno, cap the bytes a read, write or
//! `copy_file_range` moves per call (short I/O), or run a hook (to look at
//! the disk at that moment). Every call is counted per site, so a test can
//! run a copy once to learn how many calls each site makes and then fail
//! each of them in turn.
//!
//! ```text
//! // In a test, with `--features fault-injection`:
//! use cow_copy::fault::{self, Action, Fault, Site};
//! fault::arm(vec![Fault { site: Site::Write, nth: 2, action: Action::Fail(libc::ENOSPC) }]);
//! let r = cow_copy::CopyOptions::new().copy(src, dst);
//! assert_eq!(fault::fired().len(), 1);
//! fault::disarm();
//! ```

// Only the Unix engine has call sites (Windows copies through the OS).
#![cfg_attr(any(not(feature = "fault-injection"), not(unix)), allow(dead_code))]
#![cfg_attr(not(unix), allow(unused_macros, unused_imports))]

use std::io;

/// A kind of system call made by the engine (a fault-injection site).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Site {
    /// `openat` (source, destination, directory, temporary).
    Open,
    /// `fstat`/`fstatat` of a file the engine works on.
    Stat,
    /// The clone ioctl (`FICLONE`).
    IoctlClone,
    /// `FS_IOC_FIEMAP` (reading back what a clone shared).
    Fiemap,
    /// `FIDEDUPERANGE`.
    IoctlDedupe,
    /// `copy_file_range`.
    CopyFileRange,
    /// `lseek(SEEK_DATA)`.
    SeekData,
    /// `lseek(SEEK_HOLE)`.
    SeekHole,
    /// `pread` of the source.
    Read,
    /// `pwrite` to the destination.
    Write,
    /// `ftruncate` (truncating or sizing the destination).
    Ftruncate,
    /// `fsync` of the destination or its directory.
    Fsync,
    /// `renameat`/`renameat2` of the atomic temporary.
    Rename,
    /// `fchmod`.
    Fchmod,
    /// `fchown`.
    Fchown,
    /// `futimens`.
    Utimes,
    /// Extended attribute calls (`flistxattr`, `fgetxattr`, `fsetxattr`).
    Xattr,
    /// `unlinkat` (removing a temporary or a destination the copy created).
    Unlink,
}

impl Site {
    /// Every site, in a fixed order.
    pub const ALL: [Site; 18] = [
        Site::Open,
        Site::Stat,
        Site::IoctlClone,
        Site::Fiemap,
        Site::IoctlDedupe,
        Site::CopyFileRange,
        Site::SeekData,
        Site::SeekHole,
        Site::Read,
        Site::Write,
        Site::Ftruncate,
        Site::Fsync,
        Site::Rename,
        Site::Fchmod,
        Site::Fchown,
        Site::Utimes,
        Site::Xattr,
        Site::Unlink,
    ];

    fn index(self) -> usize {
        Site::ALL
            .iter()
            .position(|&s| s == self)
            .unwrap_or_default()
    }
}

/// Turns an injected errno into the error type of the call it replaces.
pub(crate) trait Injected {
    /// The error for OS error number `raw`.
    fn injected(raw: i32) -> Self;
}

impl Injected for io::Error {
    fn injected(raw: i32) -> Self {
        io::Error::from_raw_os_error(raw)
    }
}

#[cfg(unix)]
impl Injected for rustix::io::Errno {
    fn injected(raw: i32) -> Self {
        rustix::io::Errno::from_raw_os_error(raw)
    }
}

/// An error that may mean "interrupted by a signal before anything
/// happened: make the call again" (`EINTR`).
pub(crate) trait Restart {
    /// Whether this is `EINTR`.
    fn interrupted(&self) -> bool;
}

impl Restart for io::Error {
    fn interrupted(&self) -> bool {
        self.kind() == io::ErrorKind::Interrupted
    }
}

#[cfg(unix)]
impl Restart for rustix::io::Errno {
    fn interrupted(&self) -> bool {
        *self == rustix::io::Errno::INTR
    }
}

/// `fault!(site, call)`: the call, unless the plan fails this call of
/// `site` (then the injected errno, as the call's error type). A call that
/// fails with `EINTR`, real or injected, is made again: every site is a call
/// that did nothing when interrupted (no bytes moved, nothing created), so
/// restarting it is what the standard library does for its own calls.
#[cfg(feature = "fault-injection")]
macro_rules! fault {
    ($site:expr, $call:expr) => {
        loop {
            let r = match $crate::fault::inject($site) {
                Some(raw) => Err($crate::fault::Injected::injected(raw)),
                None => $call,
            };
            match r {
                Err(ref e) if $crate::fault::Restart::interrupted(e) => continue,
                r => break r,
            }
        }
    };
}

/// `fault!(site, call)`: without the feature, the call, restarted after
/// `EINTR`.
#[cfg(not(feature = "fault-injection"))]
macro_rules! fault {
    ($site:expr, $call:expr) => {{
        let _ = $site;
        loop {
            match $call {
                Err(ref e) if $crate::fault::Restart::interrupted(e) => continue,
                r => break r,
            }
        }
    }};
}

pub(crate) use fault;

/// Whether a fault plan is armed on this thread: never without the feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn armed() -> bool {
    false
}

/// The length a read, write or `copy_file_range` at `site` may ask for:
/// `len`, or less when the plan asks for short I/O.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn clamp(_site: Site, len: usize) -> usize {
    len
}

/// Writes all of `buf` at `off`, like `FileExt::write_all_at` (which
/// restarts after `EINTR` and continues after short writes), with each
/// `pwrite` a [`Site::Write`].
#[cfg(unix)]
pub(crate) fn write_all_at(f: &std::fs::File, buf: &[u8], off: u64) -> io::Result<()> {
    #[cfg(not(feature = "fault-injection"))]
    {
        std::os::unix::fs::FileExt::write_all_at(f, buf, off)
    }
    #[cfg(feature = "fault-injection")]
    {
        use std::os::unix::fs::FileExt;
        let (mut buf, mut off) = (buf, off);
        while !buf.is_empty() {
            let n = clamp(Site::Write, buf.len());
            match fault!(Site::Write, f.write_at(&buf[..n], off)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    off += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(all(
    feature = "fault-injection",
    any(target_os = "linux", target_os = "android")
))]
pub(crate) use control::armed;
#[cfg(feature = "fault-injection")]
pub use control::{Action, Fault, arm, calls, disarm, fired};
#[cfg(feature = "fault-injection")]
pub(crate) use control::{clamp, inject};

#[cfg(feature = "fault-injection")]
mod control {
    use super::Site;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::fmt;

    /// What happens at a planned call.
    pub enum Action {
        /// The call fails with this OS error number (once: the Nth call).
        Fail(i32),
        /// From the Nth call on, every call moves at most this many bytes
        /// (reads, writes, `copy_file_range`); other sites ignore it.
        Short(usize),
        /// Runs this hook right before the Nth call (which then proceeds).
        Hook(Box<dyn FnMut()>),
    }

    impl fmt::Debug for Action {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Action::Fail(e) => write!(f, "Fail({})", std::io::Error::from_raw_os_error(*e)),
                Action::Short(n) => write!(f, "Short({n})"),
                Action::Hook(_) => f.write_str("Hook"),
            }
        }
    }

    /// One planned fault: `action` at the `nth` (1-based) call of `site`.
    #[derive(Debug)]
    pub struct Fault {
        /// The site.
        pub site: Site,
        /// Which call, counting from 1 since [`arm`].
        pub nth: u64,
        /// What happens.
        pub action: Action,
    }

    impl Fault {
        /// The `nth` call of `site` fails with the OS error `errno`.
        pub fn fail(site: Site, nth: u64, errno: i32) -> Fault {
            Fault {
                site,
                nth,
                action: Action::Fail(errno),
            }
        }
    }

    #[derive(Default)]
    struct State {
        plan: Vec<Fault>,
        calls: [u64; Site::ALL.len()],
        fired: Vec<(Site, u64)>,
        #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
        armed: bool,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    /// Replaces this thread's plan and resets its call counts.
    pub fn arm(plan: Vec<Fault>) {
        STATE.with(|s| {
            *s.borrow_mut() = State {
                plan,
                armed: true,
                ..State::default()
            }
        });
    }

    /// Clears this thread's plan and counts.
    pub fn disarm() {
        STATE.with(|s| *s.borrow_mut() = State::default());
    }

    /// Whether a plan is armed on this thread (per-process caches that
    /// would change the call counts or remember an injected error are
    /// bypassed then).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) fn armed() -> bool {
        STATE.with(|s| s.borrow().armed)
    }

    /// Calls made per site on this thread since [`arm`] (sites with calls).
    pub fn calls() -> BTreeMap<Site, u64> {
        STATE.with(|s| {
            let s = s.borrow();
            Site::ALL
                .iter()
                .map(|&site| (site, s.calls[site.index()]))
                .filter(|&(_, n)| n > 0)
                .collect()
        })
    }

    /// The planned failures and hooks that happened, as (site, call index).
    pub fn fired() -> Vec<(Site, u64)> {
        STATE.with(|s| s.borrow().fired.clone())
    }

    /// Counts a call of `site`; runs a planned hook; returns the errno to
    /// fail it with, if the plan says so.
    pub(crate) fn inject(site: Site) -> Option<i32> {
        let (n, hook) = STATE.with(|s| {
            let mut s = s.borrow_mut();
            let i = site.index();
            s.calls[i] += 1;
            let n = s.calls[i];
            let pos = s.plan.iter().position(|f| {
                f.site == site && f.nth == n && !matches!(f.action, Action::Short(_))
            });
            let Some(pos) = pos else {
                return (n, None);
            };
            s.fired.push((site, n));
            match &s.plan[pos].action {
                Action::Fail(e) => (n, Some(Err(*e))),
                _ => {
                    let f = s.plan.remove(pos);
                    (n, Some(Ok(f)))
                }
            }
        });
        match hook {
            None => None,
            Some(Err(e)) => Some(e),
            Some(Ok(mut f)) => {
                // Run without holding the state: the hook may copy files.
                if let Action::Hook(h) = &mut f.action {
                    h();
                }
                let _ = n;
                STATE.with(|s| s.borrow_mut().plan.push(f));
                None
            }
        }
    }

    /// The length a call at `site` may move: `len`, or the planned cap.
    pub(crate) fn clamp(site: Site, len: usize) -> usize {
        STATE.with(|s| {
            let s = s.borrow();
            let n = s.calls[site.index()];
            s.plan
                .iter()
                .filter_map(|f| match f.action {
                    Action::Short(k) if f.site == site && n + 1 >= f.nth => Some(k.max(1)),
                    _ => None,
                })
                .fold(len, usize::min)
        })
    }
}
