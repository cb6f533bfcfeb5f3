//! Live sources on Windows (docs/architecture.md, invariant 10): an atomic
//! copy whose source is rewritten while its bytes are read reports it, and
//! `retry_changed` copies it again. The change is made by a fault-injection
//! hook right before the first read of the temporary's copy loop, so it
//! always lands inside the copy.
#![cfg(windows)]

use std::fs;
use std::os::windows::fs::FileExt;
use std::time::Duration;

use cow_copy::fault::{self, Action, Fault, Site};
use cow_copy::{CopyOptions, Reflink, Strategy};

const LEN: usize = 1 << 20;

#[test]
fn a_changed_source_is_reported_and_copied_again() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    for retry in [0u32, 1] {
        fs::write(&src, vec![3u8; LEN]).unwrap();
        let changed = src.clone();
        fault::arm(vec![Fault {
            site: Site::Read,
            nth: 1,
            action: Action::Hook(Box::new(move || {
                // Lets a coarse clock tick, so the write time moves.
                std::thread::sleep(Duration::from_millis(20));
                let f = fs::OpenOptions::new().write(true).open(&changed).unwrap();
                f.seek_write(&[0xA5; 4096], (LEN / 2) as u64).unwrap();
            })),
        }]);
        let r = CopyOptions::new()
            .reflink(Reflink::Never)
            .atomic(true)
            .retry_changed(retry)
            .copy(&src, &dst);
        let fired = fault::fired();
        fault::disarm();
        let r = r.unwrap();
        assert_eq!(fired, vec![(Site::Read, 1)], "the hook did not run");
        assert_eq!(r.strategy, Strategy::UserCopy);
        assert_eq!(r.retries, retry);
        // Without a retry the change is reported; with one, the second copy
        // read a source that held still and has its new bytes.
        assert_eq!(r.source_changed, retry == 0, "retry={retry}: {r:?}");
        if retry == 1 {
            assert_eq!(fs::read(&dst).unwrap(), fs::read(&src).unwrap());
        }
    }
    // An unchanged source says nothing.
    let r = CopyOptions::new()
        .reflink(Reflink::Never)
        .atomic(true)
        .copy(&src, dir.path().join("quiet"))
        .unwrap();
    assert!(!r.source_changed, "{r:?}");
}
