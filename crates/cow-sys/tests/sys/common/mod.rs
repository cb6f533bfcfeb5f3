//! Shared by the layout tests: compile and run a C probe against the
//! installed system headers.

use std::collections::HashMap;
use std::process::Command;

/// The start of a probe that prints sizes, offsets and constants in the
/// form [`run_c_probe`] parses: `SIZE(struct)`, `OFF(struct, field)`,
/// `CONST(expression)`. A probe is this, its own `#include`s, then `main`.
#[allow(dead_code)]
pub(crate) const PRELUDE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#define SIZE(t) printf("size %s %zu\n", #t, sizeof(struct t))
#define OFF(t, f) printf("offset %s.%s %zu\n", #t, #f, offsetof(struct t, f))
#define CONST(c) printf("const %s %llu\n", #c, (unsigned long long)(c))
"#;

/// Compiles `source` with `$CC` (default `cc`), runs it and parses its
/// `kind name value` lines into `"kind name" -> value`.
///
/// Returns `None` after printing a `SKIP` line when there is no C compiler
/// or one of `headers` is missing; any other failure panics, so a broken
/// probe never passes as a skip.
pub(crate) fn run_c_probe(source: &str, headers: &[&str]) -> Option<HashMap<String, u64>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("probe.c");
    let exe = dir.path().join("probe");
    std::fs::write(&src, source).expect("write probe.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = match Command::new(&cc)
        .arg("-std=c11")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "SKIP C layout probe: no C compiler `{cc}` ({e}); checking documented numbers only"
            );
            return None;
        }
        Err(e) => panic!("cannot run `{cc}`: {e}"),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some(h) = headers.iter().find(|h| stderr.contains(*h)) {
            eprintln!(
                "SKIP C layout probe: header <{h}> is missing; checking documented numbers only\n{stderr}"
            );
            return None;
        }
        panic!("the C layout probe does not compile:\n{stderr}");
    }
    let run = Command::new(&exe).output().expect("run the C probe");
    assert!(run.status.success(), "the C probe failed: {run:?}");
    let text = String::from_utf8(run.stdout).expect("probe output is UTF-8");
    let mut map = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(name), Some(value), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("bad probe line {line:?}");
        };
        let value: u64 = value.parse().expect("probe value is a number");
        map.insert(format!("{kind} {name}"), value);
    }
    Some(map)
}

/// Asserts every `(key, rust, documented)` fact: always against the
/// documented value, and against the C probe's value when there is one.
/// Returns how many facts were compared with C.
pub(crate) fn check_facts(facts: &[(&str, u64, u64)], c: Option<&HashMap<String, u64>>) -> usize {
    let mut from_c = 0;
    for &(key, rust, documented) in facts {
        assert_eq!(
            rust, documented,
            "{key}: Rust has {rust:#x}, documented {documented:#x}"
        );
        if let Some(c) = c {
            let Some(&v) = c.get(key) else {
                panic!("the C probe printed no `{key}`");
            };
            assert_eq!(
                rust, v,
                "{key}: Rust has {rust:#x}, the C headers have {v:#x}"
            );
            from_c += 1;
        }
    }
    from_c
}
