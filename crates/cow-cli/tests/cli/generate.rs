//! `cow --generate`: completions and the man page come from the binary.

use std::process::Command;

fn generate(kind: &str) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(["--generate", kind])
        .output()
        .expect("run cow");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{kind}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "{kind}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

#[test]
fn completions_name_the_subcommands_and_cp_options() {
    for kind in ["complete-bash", "complete-zsh", "complete-fish"] {
        let text = String::from_utf8(generate(kind)).unwrap();
        for word in ["cp", "probe", "verify", "dedupe", "reflink", "no-clobber"] {
            assert!(text.contains(word), "{kind} lacks {word}");
        }
    }
}

#[cfg(unix)]
#[test]
fn bash_completion_is_valid_bash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cow.bash");
    std::fs::write(&file, generate("complete-bash")).unwrap();
    match Command::new("bash").arg("-n").arg(&file).status() {
        Ok(s) => assert!(s.success(), "bash -n rejects the completion script"),
        Err(e) => panic!("bash is needed for this test: {e}"),
    }
}

#[test]
fn man_page_is_roff_with_the_commands() {
    let text = String::from_utf8(generate("man")).unwrap();
    assert!(text.contains(".TH cow 1"), "{text}");
    for word in ["cp", "probe", "verify", "\\-\\-generate"] {
        assert!(text.contains(word), "man page lacks {word}");
    }
}

#[test]
fn generate_takes_no_subcommand() {
    let o = Command::new(env!("CARGO_BIN_EXE_cow"))
        .args(["--generate", "man", "cp"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
