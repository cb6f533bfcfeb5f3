//! Ctrl-C / SIGTERM handling: the handler only counts signals; the main thread
//! notices, stops the child it is waiting for, and then cleans up.

use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

/// Installs the counting handler for SIGINT, SIGTERM and SIGHUP (once).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        if let Err(e) = ctrlc::set_handler(|| {
            SIGNALS.fetch_add(1, Ordering::SeqCst);
        }) {
            eprintln!("xtask: warning: cannot install the Ctrl-C handler: {e}");
        }
    });
}

/// How many termination signals arrived so far.
pub(crate) fn count() -> usize {
    SIGNALS.load(Ordering::SeqCst)
}

/// Whether a termination signal arrived.
pub(crate) fn interrupted() -> bool {
    count() > 0
}

/// How long a child gets after each escalation step before the next one.
const GRACE_INT: Duration = Duration::from_secs(10);
const GRACE_TERM: Duration = Duration::from_secs(5);

/// Runs `cmd` to completion, with stdin closed and (on Unix) in a process
/// group of its own. When we receive a termination signal the child's group
/// gets SIGINT, then SIGTERM after 10 s, then SIGKILL after 5 more seconds
/// (a further signal to us skips ahead). Returns the child's exit status.
///
/// A child of its own group does not also get the terminal's Ctrl-C, so it
/// sees exactly one SIGINT, whether the signal came from a terminal or from
/// `kill` aimed at xtask alone.
pub(crate) fn run_interruptible(cmd: &mut Command) -> io::Result<ExitStatus> {
    cmd.stdin(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn()?;
    wait_interruptible(&mut child)
}

/// Waits for `child`, forwarding our termination signals as described in
/// [`run_interruptible`]. A signal that arrived before the wait (even before
/// the spawn) is forwarded at once, so none is lost in between.
pub(crate) fn wait_interruptible(child: &mut Child) -> io::Result<ExitStatus> {
    // 0: nothing sent, 1: SIGINT sent, 2: SIGTERM sent, 3: SIGKILL sent.
    let mut step = 0usize;
    let mut seen = count();
    let mut since = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let now = count();
        let escalate = (step == 0 && now > 0)
            || (step > 0 && now > seen)
            || (step == 1 && since.elapsed() >= GRACE_INT)
            || (step == 2 && since.elapsed() >= GRACE_TERM);
        if escalate && step < 3 {
            step += 1;
            seen = now;
            since = Instant::now();
            let what = ["", "SIGINT", "SIGTERM", "SIGKILL"][step];
            eprintln!(
                "xtask: interrupted: sending {what} to the child (pid {})",
                child.id()
            );
            signal_child(child, step);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
fn signal_child(child: &mut Child, step: usize) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let sig = match step {
        1 => Signal::INT,
        2 => Signal::TERM,
        _ => Signal::KILL,
    };
    let pid = Pid::from_child(child);
    // The child leads its own group (see run_interruptible); if it does not
    // (a caller spawned it differently), signal just the child.
    if kill_process_group(pid, sig).is_err() {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

#[cfg(not(unix))]
fn signal_child(child: &mut Child, step: usize) {
    // A console Ctrl-C already reached the child; only force the end.
    if step >= 2 {
        let _ = child.kill();
    }
}
