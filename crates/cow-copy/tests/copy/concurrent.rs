//! A source that is appended to and truncated while it is copied: no hang,
//! no crash, no garbage. The writer only ever keeps the file equal to a
//! prefix of one fixed pattern, so every destination must be a prefix of
//! that pattern too; a copy during which the source did not change must be
//! exact and say nothing changed; an error must name the path; no copy
//! may hang and no temporary may be left.

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cow_copy::{CopyOptions, Reflink};
use cow_test_support::{fs_test, pattern};

const MAX: usize = 16 << 20;
const CHUNK: usize = 256 << 10;

/// Appends and truncates `path` until `stop`, keeping it a prefix of `p`.
/// `gen` is odd while an operation is in flight, and counts operations.
fn writer(path: &Path, p: &[u8], stop: &AtomicBool, generation: &AtomicU64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    while !stop.load(Ordering::Relaxed) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        generation.fetch_add(1, Ordering::SeqCst);
        let len = f.metadata().unwrap().len() as usize;
        if len + CHUNK > MAX || x % 5 == 0 {
            // Only ever shorter: a longer set_len would add zeros.
            f.set_len((x as usize % (MAX / 2)).min(len) as u64).unwrap();
        } else {
            f.write_all_at(&p[len..len + CHUNK], len as u64).unwrap();
        }
        generation.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_micros(200));
    }
}

struct Stats {
    copies: u64,
    size_changed: u64,
    mixed: u64,
    unchanged_exact: u64,
    errors: Vec<String>,
}

fn run(dir: &Path, label: &str) {
    let p = Arc::new(pattern(MAX, 7));
    let src = dir.join("src");
    fs::write(&src, &p[..MAX / 2]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let generation = Arc::new(AtomicU64::new(0));
    let w = {
        let (src, p, stop, g) = (
            src.clone(),
            Arc::clone(&p),
            Arc::clone(&stop),
            Arc::clone(&generation),
        );
        std::thread::spawn(move || writer(&src, &p, &stop, &g))
    };

    let (tx, rx) = mpsc::channel();
    let copier = {
        let (dir, p, g) = (dir.to_path_buf(), Arc::clone(&p), Arc::clone(&generation));
        std::thread::spawn(move || {
            let mut st = Stats {
                copies: 0,
                size_changed: 0,
                mixed: 0,
                unchanged_exact: 0,
                errors: Vec::new(),
            };
            let opts = [
                CopyOptions::new(),
                CopyOptions::new().reflink(Reflink::Never),
                CopyOptions::new().atomic(true),
            ];
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut i = 0usize;
            while Instant::now() < deadline {
                let o = &opts[i % opts.len()];
                i += 1;
                let dst = dir.join("dst");
                let g0 = g.load(Ordering::SeqCst);
                let r = o.copy(dir.join("src"), &dst);
                let len_after = fs::metadata(dir.join("src")).unwrap().len();
                let g1 = g.load(Ordering::SeqCst);
                st.copies += 1;
                match r {
                    Ok(rep) => {
                        let got = fs::read(&dst).unwrap();
                        assert_eq!(got.len() as u64, rep.len, "report len vs file");
                        assert!(got.len() <= MAX, "copy {i}: {rep:?}");
                        let prefix = got[..] == p[..got.len()];
                        if rep.size_changed {
                            st.size_changed += 1;
                            // Bytes seen at different moments: each is the
                            // source's byte at that offset, or zero where the
                            // source was cut while it was read.
                            if !prefix {
                                st.mixed += 1;
                                let foreign = got
                                    .iter()
                                    .zip(p.iter())
                                    .position(|(&a, &b)| a != b && a != 0);
                                assert_eq!(foreign, None, "copy {i}: a byte from nowhere: {rep:?}");
                            }
                        } else {
                            assert!(
                                prefix,
                                "copy {i}: the report says the size did not change, but the destination ({} bytes) is not the source's content: {rep:?}",
                                got.len()
                            );
                        }
                        if g0 == g1 && g0 % 2 == 0 {
                            // Nothing happened during the copy.
                            assert_eq!(rep.len, len_after, "a quiet copy is exact: {rep:?}");
                            assert!(!rep.size_changed, "a quiet copy changed nothing: {rep:?}");
                            st.unchanged_exact += 1;
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        assert!(
                            msg.contains("src") || msg.contains("dst"),
                            "the error names no path: {msg}"
                        );
                        st.errors.push(msg);
                    }
                }
                for n in fs::read_dir(&dir).unwrap() {
                    let n = n.unwrap().file_name().to_string_lossy().into_owned();
                    assert!(!n.contains(cow_copy::TEMP_MARKER), "leftover {n}");
                }
            }
            tx.send(st).unwrap();
        })
    };
    let st = rx.recv_timeout(Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let st = match st {
        Ok(st) => st,
        Err(_) => {
            if copier.is_finished() {
                // The copier panicked: show its message.
                copier.join().unwrap();
            }
            panic!("{label}: a copy of a changing source hung (no result in 120 s)");
        }
    };
    copier.join().unwrap();
    eprintln!(
        "{label}: {} copies of a changing source, {} said the size changed ({} of them not a prefix: cut and regrown while read), {} quiet copies exact, {} errors {:?}",
        st.copies,
        st.size_changed,
        st.mixed,
        st.unchanged_exact,
        st.errors.len(),
        st.errors.iter().take(3).collect::<Vec<_>>()
    );
    assert!(st.copies > 3, "{label}: too few copies ran");
}

fs_test!(changing_source, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    run(dir, fs.name());
});
