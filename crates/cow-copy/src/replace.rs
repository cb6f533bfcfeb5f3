//! Atomic replacement: write a temporary sibling, rename it over the
//! destination. The old destination stays whole until the rename.
//!
//! The temporary is named `.NAME.cow-tmp-XXXXXX` (so a leftover after a
//! crash is obvious, the same name on every platform: [`temp_name`]),
//! created exclusively with mode 0600 and removed on any
//! failure. While it is written it is listed, so that a process interrupted
//! by a signal can remove it before exiting ([`crate::remove_temporaries`]).

use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::TEMP_MARKER;

#[cfg(unix)]
mod unix;

#[cfg(unix)]
pub(crate) use unix::{
    Temp, create_temp, create_temp_with, remove, remove_all, rename_over, sync_dir,
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let mut v = h.finish();
    (0..6)
        .map(|_| {
            let c = ALPHABET[(v % ALPHABET.len() as u64) as usize] as char;
            v /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The longest directory entry name (`NAME_MAX`; Windows: 255 UTF-16
/// units).
const NAME_MAX: usize = 255;

/// The temporary name for `name`: `.NAME.cow-tmp-XXXXXX`, built from the
/// name's bytes (any bytes on Unix, UTF-16 units on Windows) and always within `NAME_MAX`:
/// a long name is cut to fit (a cut through a multi-byte character is
/// harmless, the name is only a marker).
pub(crate) fn temp_name(name: &OsStr) -> OsString {
    let tail = suffix();
    let fixed = 1 + TEMP_MARKER.len() + tail.len();
    let mut out = OsString::with_capacity(NAME_MAX);
    out.push(".");
    out.push(cut(name, NAME_MAX - fixed));
    out.push(TEMP_MARKER);
    out.push(tail);
    out
}

/// The first `max` bytes of `name` (Unix: any bytes).
#[cfg(unix)]
fn cut(name: &OsStr, max: usize) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = name.as_bytes();
    OsString::from_vec(bytes[..bytes.len().min(max)].to_vec())
}

/// The first `max` UTF-16 units of `name` (Windows names are counted in
/// them).
#[cfg(windows)]
fn cut(name: &OsStr, max: usize) -> OsString {
    use std::os::windows::ffi::{OsStrExt, OsStringExt};
    let wide: Vec<u16> = name.encode_wide().take(max).collect();
    OsString::from_wide(&wide)
}
