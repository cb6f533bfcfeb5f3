//! Random sizes and sparse layouts x option combinations x filesystem:
//! byte-equal destination, holes kept where asked, and a truthful report.

#![cfg(target_os = "linux")]

use crate::common;

use std::fs;

use common::*;
use cow_copy::{CopyError, CopyOptions, Reflink, Sparse};
use cow_test_support::{Fs, fs_test, write_pattern, write_sparse};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

#[derive(Debug, Clone)]
struct Case {
    len: u64,
    data: Vec<(u64, u64)>,
    reflink: Reflink,
    sparse: Sparse,
    atomic: bool,
    existing: Option<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    let len = prop_oneof![0u64..10_000, 0u64..(3 << 20)];
    (
        len,
        prop::collection::vec((0.0f64..1.0, 1u64..300_000), 0..6),
        prop_oneof![
            Just(Reflink::Auto),
            Just(Reflink::Never),
            Just(Reflink::Always)
        ],
        prop_oneof![
            Just(Sparse::Auto),
            Just(Sparse::Always),
            Just(Sparse::Never)
        ],
        any::<bool>(),
        prop::option::of(0usize..400_000),
    )
        .prop_map(|(len, raw, reflink, sparse, atomic, existing)| {
            let data = raw
                .into_iter()
                .filter(|_| len > 0)
                .map(|(f, n)| {
                    let off = ((len as f64) * f) as u64;
                    (off, n.min(len - off))
                })
                .filter(|&(_, n)| n > 0)
                .collect();
            Case {
                len,
                data,
                reflink,
                sparse,
                atomic,
                existing,
            }
        })
}

fn run(fs: Fs, dir: &std::path::Path) {
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let counter = std::cell::Cell::new(0u64);
    runner
        .run(&case(), |c| {
            counter.set(counter.get() + 1);
            let n = counter.get();
            let src = dir.join(format!("src{n}"));
            let dst = dir.join(format!("dst{n}"));
            write_sparse(&src, c.len, &c.data, n);
            let old = c.existing.map(|m| write_pattern(&dst, m, n + 1000));
            let opts = CopyOptions::new()
                .reflink(c.reflink)
                .sparse(c.sparse)
                .atomic(c.atomic);
            let result = opts.copy(&src, &dst);
            if c.reflink == Reflink::Always && !fs.reflinks() {
                let e = result.expect_err("reflink=always cannot succeed here");
                prop_assert!(matches!(e, CopyError::ReflinkUnsupported { .. }), "{e}");
                match &old {
                    Some(old) => prop_assert_eq!(&fs::read(&dst).unwrap(), old),
                    None => prop_assert!(!dst.exists()),
                }
            } else {
                let r = result.map_err(|e| TestCaseError::fail(format!("{c:?}: {e}")))?;
                assert_same_bytes(&src, &dst);
                assert_truthful(fs, &src, &dst, &r);
                match c.sparse {
                    Sparse::Auto => assert_holes_kept(&src, &dst),
                    Sparse::Never if c.reflink != Reflink::Always => {
                        prop_assert_eq!(r.hole_bytes, 0)
                    }
                    Sparse::Never => {}
                    Sparse::Always => {}
                }
                if c.reflink == Reflink::Always {
                    // btrfs stores files under a block inline in metadata:
                    // the clone ioctl copies those, and the report says so.
                    let inline = fs == Fs::Btrfs && r.len < 4096;
                    prop_assert!(r.bytes_copied == 0 || inline, "{:?}", r);
                }
                if c.reflink == Reflink::Never {
                    prop_assert_eq!(r.bytes_cloned, 0);
                }
            }
            let _ = fs::remove_file(&src);
            let _ = fs::remove_file(&dst);
            Ok(())
        })
        .unwrap();
}

fs_test!(
    random_layouts_and_options,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        run(fs, dir);
    }
);
