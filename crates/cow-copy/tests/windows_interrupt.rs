//! `remove_temporaries` on Windows (and Wine): an atomic copy's temporary is
//! listed while it is written, so an interrupt deletes it mid-copy and the
//! destination keeps its old content. One test in its own executable: the
//! call closes the list for the whole process.
#![cfg(windows)]

use std::fs;
use std::time::{Duration, Instant};

use cow_copy::{CopyOptions, TEMP_MARKER};
use cow_test_support::names_in;

#[test]
fn an_interrupt_removes_the_temporary_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("big"), dir.path().join("dst"));
    // Large enough that the copy is still writing when the temporary shows.
    let mut data = vec![0u8; 256 << 20];
    for (i, b) in data.iter_mut().enumerate().step_by(4096) {
        *b = (i >> 12) as u8 | 1;
    }
    fs::write(&src, &data).unwrap();
    drop(data);
    fs::write(&dst, b"old").unwrap();
    let copy = std::thread::spawn({
        let (src, dst) = (src.clone(), dst.clone());
        move || CopyOptions::new().atomic(true).copy(&src, &dst)
    });
    let start = Instant::now();
    let temp = loop {
        if let Some(n) = names_in(dir.path())
            .into_iter()
            .find(|n| n.contains(TEMP_MARKER))
        {
            break n;
        }
        assert!(
            !copy.is_finished(),
            "the copy ended before its temporary was seen"
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no temporary appeared"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    let removed = cow_copy::remove_temporaries();
    assert_eq!(removed, 1, "{temp} was not removed");
    let result = copy.join().unwrap();
    let e = result.expect_err("the interrupted copy succeeded");
    assert!(e.to_string().contains("dst"), "{e}");
    assert_eq!(fs::read(&dst).unwrap(), b"old", "the destination changed");
    // Gone once the copy closed it; new temporaries are refused.
    assert_eq!(names_in(dir.path()), ["big", "dst"]);
    let e = CopyOptions::new()
        .atomic(true)
        .copy(&src, dir.path().join("other"))
        .unwrap_err();
    assert!(e.to_string().contains("interrupted"), "{e}");
    assert!(!dir.path().join("other").exists());
}
