//! The races (items 1, 2, 4 and 5 of the security issue): root works in a
//! directory the attacker can write while the attacker loops; nothing
//! outside the destination may change.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use cow_copy::tree::{Dereference, TreeOptions};
use cow_copy::{CopyError, CopyOptions, Preserve};

use super::harness::{
    ATTACKER, Attacker, GNU_RACE, RACE, Snapshot, Sysctl, arena, cow, file_owned, for_a_while,
    gnu_cp, mkdir_owned, record_gnu,
};

/// `cow cp -a` as library options: everything preserved, hard links kept,
/// devices and sockets recreated, symlinks copied as symlinks.
fn archive() -> TreeOptions {
    TreeOptions::new()
        .copy_options(CopyOptions::new().preserve(Preserve::all()))
        .preserve_hard_links(true)
        .copy_special(true)
        .dereference(Dereference::Never)
}

/// Runs GNU `cp ARGS` (in `cwd`) for [`GNU_RACE`] while `victim` is
/// watched; returns after how many runs it changed, if it did, and puts it
/// back with `restore`.
fn gnu_race(cwd: &Path, args: &[&str], victim: &Path, restore: impl Fn()) -> (u64, Option<u64>) {
    let Some(cp) = gnu_cp() else {
        return (0, None);
    };
    let before = Snapshot::of(victim);
    let mut hit = None;
    let runs = for_a_while(GNU_RACE, || {
        let _ = std::process::Command::new(&cp)
            .args(args)
            .current_dir(cwd)
            .stderr(Stdio::null())
            .status();
        if Snapshot::of(victim) != before {
            hit = Some(());
            return false;
        }
        true
    });
    if hit.is_some() {
        restore();
        (runs, Some(runs))
    } else {
        (runs, None)
    }
}

fn say_gnu(test: &str, (runs, hit): (u64, Option<u64>)) {
    match hit {
        Some(n) => record_gnu(test, &format!("the victim CHANGED after {n} runs")),
        None if runs > 0 => record_gnu(test, &format!("victim unchanged in {runs} runs")),
        None => record_gnu(test, "not run (no GNU cp here)"),
    }
}

/// Item 1: the attacker swaps the sockets, FIFOs and symlinks root just
/// made in the attacker's directory for a symlink to a root file, or a hard
/// link of it; root's metadata calls must never reach it.
fn special_files(symlinks: u8, hardlinks: u8) {
    let test = format!("special_files_{symlinks}{hardlinks}");
    let Some(t) = arena(&test) else { return };
    let _sysctl = Sysctl::set(symlinks, hardlinks);
    let t = t.path();
    mkdir_owned(&t.join("victim"), 0, 0o755);
    let victim = t.join("victim/secret");
    file_owned(&victim, b"root secret", 0, 0o600);
    // A root socket others may link (rw for all), like /tmp/.X11-unix/X0.
    let sock = t.join("victim/sock");
    drop(UnixListener::bind(&sock).unwrap());
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).unwrap();
    let src = t.join("src");
    mkdir_owned(&src, ATTACKER, 0o755);
    let mut names = Vec::new();
    for i in 0..4 {
        let p = src.join(format!("s{i}"));
        drop(UnixListener::bind(&p).unwrap());
        std::os::unix::fs::lchown(&p, Some(ATTACKER), Some(ATTACKER)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o6777)).unwrap();
        names.push(format!("s{i}"));
    }
    for i in 0..2 {
        let p = src.join(format!("p{i}"));
        cow_test_support::mkfifo(&p);
        std::os::unix::fs::lchown(&p, Some(ATTACKER), Some(ATTACKER)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o6777)).unwrap();
        names.push(format!("p{i}"));
    }
    symlink("x", src.join("l0")).unwrap();
    std::os::unix::fs::lchown(src.join("l0"), Some(ATTACKER), Some(ATTACKER)).unwrap();
    names.push("l0".into());
    mkdir_owned(&t.join("pub"), 0, 0o1777);
    mkdir_owned(&t.join("pub/backup/src"), ATTACKER, 0o755);
    std::os::unix::fs::chown(t.join("pub/backup"), Some(ATTACKER), Some(ATTACKER)).unwrap();
    let before = Snapshot::of(&victim);
    let sock_before = Snapshot::of(&sock);
    let victim_abs = victim.to_str().unwrap().to_owned();
    let mut args = vec![
        "special",
        "pub/backup/src",
        &victim_abs,
        "victim/secret,victim/sock",
    ];
    args.extend(names.iter().map(String::as_str));
    let dst = t.join("pub/backup/src");
    let mut ok = 0u64;
    let copies = {
        let _attacker = Attacker::start(t, ATTACKER, &args);
        let opts = archive();
        for_a_while(RACE, || {
            if opts.copy(&src, &dst).is_ok() {
                ok += 1;
            }
            Snapshot::of(&victim) == before && Snapshot::of(&sock) == sock_before
        })
    };
    assert_eq!(Snapshot::of(&sock), sock_before, "root's socket changed");
    assert_eq!(
        Snapshot::of(&victim),
        before,
        "the victim changed during {copies} copies (fs.protected_symlinks={symlinks}, \
         fs.protected_hardlinks={hardlinks})"
    );
    eprintln!("{test}: {copies} copies ({ok} without any error), victim unchanged");
    assert!(copies > 10, "the race ran only {copies} copies");
    let _attacker = Attacker::start(t, ATTACKER, &args);
    let restore = || {
        let _ = fs::set_permissions(&victim, fs::Permissions::from_mode(0o600));
        let _ = std::os::unix::fs::chown(&victim, Some(0), Some(0));
        let _ = fs::write(&victim, b"root secret");
    };
    let t_str = t.to_str().unwrap();
    let (src_s, dst_s) = (format!("{t_str}/src"), format!("{t_str}/pub/backup/"));
    say_gnu(
        &test,
        gnu_race(t, &["-a", &src_s, &dst_s], &victim, restore),
    );
}

#[test]
fn special_files_symlinks0_hardlinks0() {
    special_files(0, 0);
}

#[test]
fn special_files_symlinks1_hardlinks1() {
    special_files(1, 1);
}

/// Item 2: the attacker re-creates `pub/out -> victim/RACED` whenever it
/// is gone while root loops `rm -f pub/out; cow cp payload pub/out`: the
/// victim file must never be created.
fn dangling(symlinks: u8) {
    let test = format!("dangling_symlinks{symlinks}");
    let Some(t) = arena(&test) else { return };
    let _sysctl = Sysctl::set(symlinks, 1);
    let t = t.path();
    mkdir_owned(&t.join("victim"), 0, 0o755);
    mkdir_owned(&t.join("pub"), 0, 0o1777);
    let payload = t.join("payload");
    file_owned(&payload, b"payload", 0, 0o644);
    let (out, raced) = (t.join("pub/out"), t.join("victim/RACED"));
    let raced_abs = raced.to_str().unwrap().to_owned();
    let copy = CopyOptions::new()
        .preserve(Preserve::none())
        .write_through_dangling(false);
    let (mut written, mut refused) = (0u64, 0u64);
    let runs = {
        let _attacker = Attacker::start(t, ATTACKER, &["dangling", "pub/out", &raced_abs]);
        let runs = for_a_while(RACE, || {
            let _ = fs::remove_file(&out);
            match copy.copy(&payload, &out) {
                Ok(_) => {
                    written += 1;
                    let m = fs::symlink_metadata(&out).unwrap();
                    assert!(m.is_file() && m.uid() == 0, "wrote somewhere else: {m:?}");
                }
                Err(
                    CopyError::DanglingDestination { .. } | CopyError::DestinationChanged { .. },
                ) => refused += 1,
                Err(_) => {}
            }
            !raced.exists()
        });
        // The CLI, end to end, for a while.
        for_a_while(Duration::from_secs(1), || {
            let _ = fs::remove_file(&out);
            let _ = cow()
                .arg("cp")
                .arg(&payload)
                .arg(&out)
                .stderr(Stdio::null())
                .status();
            !raced.exists()
        });
        runs
    };
    assert!(
        !raced.exists(),
        "root created {} (fs.protected_symlinks={symlinks})",
        raced.display()
    );
    eprintln!("{test}: {runs} copies, {written} written, {refused} refused a planted symlink");
    assert!(runs > 100, "the race ran only {runs} copies");
    let _attacker = Attacker::start(t, ATTACKER, &["dangling", "pub/out", &raced_abs]);
    let Some(cp) = gnu_cp() else {
        return say_gnu(&test, (0, None));
    };
    let mut hit = None;
    let gnu_runs = for_a_while(GNU_RACE, || {
        let _ = fs::remove_file(&out);
        let _ = std::process::Command::new(&cp)
            .arg(&payload)
            .arg(&out)
            .stderr(Stdio::null())
            .status();
        hit = raced.exists().then_some(());
        hit.is_none()
    });
    say_gnu(&test, (gnu_runs, hit.map(|()| gnu_runs)));
}

#[test]
fn dangling_destination_symlinks0() {
    dangling(0);
}

#[test]
fn dangling_destination_symlinks1() {
    dangling(1);
}

/// Item 4: the attacker plants hard links of root files under the names
/// `cow cp -a` writes in its directory; the root files keep their content,
/// mode and owner.
fn hard_links(hardlinks: u8) {
    let test = format!("hard_links_hardlinks{hardlinks}");
    let Some(t) = arena(&test) else { return };
    let _sysctl = Sysctl::set(1, hardlinks);
    let t = t.path();
    mkdir_owned(&t.join("victim"), 0, 0o755);
    // One the attacker may link with protected_hardlinks=1 (writable), one
    // only without it.
    let (shared, secret) = (t.join("victim/shared"), t.join("victim/secret"));
    file_owned(&shared, b"root shared", 0, 0o666);
    file_owned(&secret, b"root secret", 0, 0o600);
    let src = t.join("src");
    mkdir_owned(&src, ATTACKER, 0o755);
    let mut names = Vec::new();
    for i in 0..4 {
        file_owned(
            &src.join(format!("f{i}")),
            b"attacker data",
            ATTACKER,
            0o644,
        );
        names.push(format!("f{i}"));
    }
    mkdir_owned(&t.join("pub"), 0, 0o1777);
    mkdir_owned(&t.join("pub/backup/src"), ATTACKER, 0o755);
    let dst = t.join("pub/backup/src");
    let before = (Snapshot::of(&shared), Snapshot::of(&secret));
    // Planted before the copy (no race): replaced, not written through.
    if fs::hard_link(&shared, dst.join("f0")).is_ok() {
        archive().copy(&src, &dst).unwrap();
        let m = fs::symlink_metadata(dst.join("f0")).unwrap();
        assert_eq!((m.nlink(), m.uid()), (1, ATTACKER), "f0 is a new file");
    }
    let mut args = vec![
        "hardlink",
        "pub/backup/src",
        "-",
        "victim/shared,victim/secret",
    ];
    args.extend(names.iter().map(String::as_str));
    let copies = {
        let _attacker = Attacker::start(t, ATTACKER, &args);
        let opts = archive();
        for_a_while(RACE, || {
            let _ = opts.copy(&src, &dst);
            (Snapshot::of(&shared), Snapshot::of(&secret)) == before
        })
    };
    assert_eq!(
        (Snapshot::of(&shared), Snapshot::of(&secret)),
        before,
        "a root file changed during {copies} copies (fs.protected_hardlinks={hardlinks})"
    );
    eprintln!("{test}: {copies} copies, root files unchanged");
    assert!(copies > 10, "the race ran only {copies} copies");
    let _attacker = Attacker::start(t, ATTACKER, &args);
    let t_str = t.to_str().unwrap();
    let (src_s, dst_s) = (format!("{t_str}/src"), format!("{t_str}/pub/backup/"));
    let restore = || {
        let _ = std::os::unix::fs::chown(&shared, Some(0), Some(0));
        let _ = fs::write(&shared, b"root shared");
    };
    say_gnu(
        &test,
        gnu_race(t, &["-a", &src_s, &dst_s], &shared, restore),
    );
}

#[test]
fn hard_links_hardlinks0() {
    hard_links(0);
}

#[test]
fn hard_links_hardlinks1() {
    hard_links(1);
}

/// Item 5: a two-hour-old temporary in the attacker's directory is
/// exchanged (`RENAME_EXCHANGE`) with a symlink to a root directory
/// holding a temporary of the same name while root runs `cow clean -r`:
/// root's file survives.
fn clean(symlinks: u8) {
    let test = format!("clean_symlinks{symlinks}");
    let Some(t) = arena(&test) else { return };
    let _sysctl = Sysctl::set(symlinks, 1);
    let t = t.path();
    let name = ".shadow.cow-tmp-abc123";
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    mkdir_owned(&t.join("rootdir"), 0, 0o755);
    let root_file = t.join("rootdir").join(name);
    file_owned(&root_file, b"root data", 0, 0o600);
    cow_test_support::set_mtime(&root_file, old);
    mkdir_owned(&t.join("pub"), 0, 0o1777);
    mkdir_owned(&t.join("pub/a/d"), ATTACKER, 0o755);
    std::os::unix::fs::chown(t.join("pub/a"), Some(ATTACKER), Some(ATTACKER)).unwrap();
    let mine = t.join("pub/a/d").join(name);
    file_owned(&mine, b"leftover", ATTACKER, 0o644);
    cow_test_support::set_mtime(&mine, old);
    symlink(t.join("rootdir"), t.join("pub/a/l")).unwrap();
    std::os::unix::fs::lchown(t.join("pub/a/l"), Some(ATTACKER), Some(ATTACKER)).unwrap();
    let before = Snapshot::of(&root_file);
    let mut removed = 0u64;
    let runs = {
        let _attacker = Attacker::start(t, ATTACKER, &["clean", "pub/a", name]);
        let runs = for_a_while(RACE, || {
            if let Ok(found) = cow_copy::leftovers::find(&t.join("pub"), true) {
                for tmp in found.temporaries {
                    if tmp.open_by.is_none()
                        && tmp.age >= Duration::from_secs(60)
                        && tmp.remove().is_ok()
                    {
                        removed += 1;
                    }
                }
            }
            Snapshot::of(&root_file) == before
        });
        for_a_while(Duration::from_secs(1), || {
            let _ = cow()
                .args(["clean", "-r"])
                .arg(t.join("pub"))
                .stdout(Stdio::null())
                .status();
            Snapshot::of(&root_file) == before
        });
        runs
    };
    assert_eq!(
        Snapshot::of(&root_file),
        before,
        "root's file was removed or changed"
    );
    eprintln!("{test}: {runs} cleans, {removed} leftovers of the attacker removed, root's kept");
    assert!(
        removed > 0,
        "no clean removed the attacker's own leftover: the race did not run"
    );
    record_gnu(&test, "GNU coreutils has no such command (not compared)");
}

#[test]
fn clean_symlinks0() {
    clean(0);
}

#[test]
fn clean_symlinks1() {
    clean(1);
}
