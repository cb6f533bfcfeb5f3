//! The byte observer (`CopyOptions::observer`): every strategy tells it the
//! bytes it moves, inside a file, and the sum matches the report.

#![cfg(unix)]

use std::sync::{Arc, Mutex};

use cow_copy::{CopyOptions, Moved, Reflink, Strategy};
use cow_test_support::{fs_test, pattern, write_pattern};

/// Copies `src` to `dst` with `opts` and returns the report and every
/// observed event.
fn observed(
    opts: CopyOptions,
    src: &std::path::Path,
    dst: &std::path::Path,
) -> (cow_copy::CopyReport, Vec<Moved>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let opts = opts.observer(Arc::new(move |m| s.lock().unwrap().push(m)));
    let report = opts.copy(src, dst).expect("copy");
    let events = seen.lock().unwrap().clone();
    (report, events)
}

fn sums(events: &[Moved]) -> (u64, u64, usize) {
    let (mut cloned, mut copied, mut chunks) = (0, 0, 0);
    for m in events {
        match *m {
            Moved::Cloned(n) => cloned += n,
            Moved::Copied(n) => {
                copied += n;
                chunks += 1;
            }
            _ => {}
        }
    }
    (cloned, copied, chunks)
}

const LEN: usize = 40 << 20;

fs_test!(copies_report_chunk_by_chunk, [ext4, tmpfs], |dir| {
    let src = dir.join("src");
    write_pattern(&src, LEN, 7);
    for (name, reflink) in [("auto", Reflink::Auto), ("never", Reflink::Never)] {
        let dst = dir.join(name);
        let (r, events) = observed(CopyOptions::new().reflink(reflink), &src, &dst);
        let (cloned, copied, chunks) = sums(&events);
        assert_eq!(cloned, 0, "{name}: nothing is shared here");
        assert_eq!(
            copied, r.bytes_copied,
            "{name}: the events add up to the report"
        );
        assert_eq!(copied, LEN as u64);
        // More than one event for one file: progress moves inside it.
        assert!(
            chunks > 1,
            "{name}: {chunks} event(s) for a {LEN}-byte file ({:?})",
            r.strategy
        );
        assert_eq!(std::fs::read(&dst).unwrap(), pattern(LEN, 7));
    }
});

fs_test!(a_clone_counts_its_bytes_at_once, [btrfs, xfs], |dir| {
    let src = dir.join("src");
    write_pattern(&src, LEN, 8);
    let (r, events) = observed(
        CopyOptions::new().reflink(Reflink::Always),
        &src,
        &dir.join("dst"),
    );
    assert_eq!(r.strategy, Strategy::Cloned);
    assert_eq!(events, vec![Moved::Cloned(LEN as u64)]);
});
