//! SIGINT, SIGTERM and SIGHUP during `cow cp` (Ctrl-C and Ctrl-Break on
//! Windows): remove the temporaries of the atomic copies
//! in flight, then die of the signal as usual.
//!
//! Without this, Ctrl-C during `cow cp --atomic` leaves
//! `.NAME.cow-tmp-XXXXXX` files next to the destinations (each destination
//! itself is intact either way). A plain copy is not changed: like GNU cp,
//! an interrupted in-place copy leaves the destination as far as it got.

/// Starts a thread that waits for SIGINT, SIGTERM or SIGHUP, removes the
/// temporaries ([`cow_copy::remove_temporaries`]), says so on stderr, and
/// ends the process the way the signal would have (so a shell sees "killed
/// by SIGINT"). If the handler cannot be installed the copy runs without it.
#[cfg(unix)]
pub(crate) fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("cow-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                report(cow_copy::remove_temporaries());
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig);
            }
        });
    drop(spawned);
}

/// Windows: on Ctrl-C or Ctrl-Break removes the
/// temporaries, says so, and exits with 130 as a shell reports Ctrl-C.
#[cfg(windows)]
pub(crate) fn install() {
    // Installing fails only if a handler is already set: then the copy
    // runs without this one.
    let _ = ctrlc::set_handler(|| {
        report(cow_copy::remove_temporaries());
        std::process::exit(130);
    });
}

/// Other platforms: no handler.
#[cfg(not(any(unix, windows)))]
pub(crate) fn install() {}

/// Says how many temporaries an interrupt removed.
#[cfg(any(unix, windows))]
fn report(removed: usize) {
    if removed > 0 {
        eprintln!(
            "cow cp: interrupted: removed {removed} unfinished temporary file{}; \
             their destinations were left as they were",
            if removed == 1 { "" } else { "s" }
        );
    }
}
