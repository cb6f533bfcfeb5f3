//! `cargo xtask test-windows`: the workspace's tests built for
//! x86_64-pc-windows-gnu with mingw and run under Wine, one test
//! executable after another.
//!
//! Nothing here is optional: a missing target, linker or Wine loader, a
//! build failure, a test executable that crashes, hangs or prints no
//! `test result:` line is a failure, never a skip.

use crate::signals;
use crate::util::{cargo, find_tool, run_capture, show};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Rust target the Windows tests are built for.
const TARGET: &str = "x86_64-pc-windows-gnu";
/// mingw's C compiler: the linker, and the compiler of the shim.
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";
/// Where Debian's `wine64` package installs its loader (not on `PATH`).
const DEBIAN_WINE64: &str = "/usr/lib/wine/wine64";
/// One test executable gets this long under Wine before it is killed.
const TIMEOUT: Duration = Duration::from_secs(600);
/// The shim's source, relative to the workspace root.
const SHIM_SOURCE: &str = "xtask/shim/bcryptprimitives.c";

/// One test executable from the build.
struct TestExe {
    /// `crate/target-name` as cargo names it, for the summary.
    name: String,
    path: PathBuf,
    /// The package directory: cargo runs tests there, so do we.
    cwd: PathBuf,
}

/// What one executable's run came to.
struct Outcome {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Why the run itself failed (exit status, timeout, no result line).
    broken: Option<String>,
}

/// Runs `cargo xtask test-windows [-- TEST ARGS]`. Returns the exit code.
pub(crate) fn run(test_args: &[String]) -> i32 {
    signals::install();
    match run_all(test_args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("xtask test-windows: FAILED: {msg}");
            1
        }
    }
}

fn run_all(test_args: &[String]) -> Result<i32, String> {
    let root = workspace_root()?;
    let wine = wine_loader().ok_or(
        "no Wine loader: install the wine64 and wine packages (apt-get install wine64 wine); \
         looked for `wine64` on PATH and /usr/lib/wine/wine64",
    )?;
    let gcc = find_tool(MINGW_GCC).ok_or(
        "no x86_64-w64-mingw32-gcc: install gcc-mingw-w64-x86-64 (apt-get install \
         gcc-mingw-w64-x86-64)",
    )?;
    ensure_target()?;
    let exes = build_tests(&gcc)?;
    if exes.is_empty() {
        return Err("the build produced no test executable".into());
    }
    let target_dir = root.join("target");
    let shim = target_dir.join("wine").join("bcryptprimitives.dll");
    build_shim(&gcc, &root.join(SHIM_SOURCE), &shim)?;
    // Beside every test executable and beside the binaries the CLI tests
    // start (target/TRIPLE/debug/cow.exe).
    let mut dirs: Vec<PathBuf> = exes
        .iter()
        .filter_map(|e| e.path.parent().map(Path::to_path_buf))
        .collect();
    dirs.extend(
        dirs.clone()
            .iter()
            .filter_map(|d| d.parent().map(Path::to_path_buf)),
    );
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        let to = d.join("bcryptprimitives.dll");
        std::fs::copy(&shim, &to).map_err(|e| format!("copy the shim to {}: {e}", to.display()))?;
    }
    let prefix = target_dir.join("wine").join("prefix");
    std::fs::create_dir_all(&prefix)
        .map_err(|e| format!("create the Wine prefix {}: {e}", prefix.display()))?;
    eprintln!(
        "xtask: Wine {} ({}), prefix {}",
        run_capture(Command::new(&wine).arg("--version")).unwrap_or_else(|e| e),
        wine.display(),
        prefix.display()
    );
    let mut total = Outcome {
        passed: 0,
        failed: 0,
        ignored: 0,
        broken: None,
    };
    let mut lines = Vec::new();
    let mut broken = 0usize;
    for exe in &exes {
        if signals::interrupted() {
            eprintln!("xtask: interrupted");
            return Ok(crate::test::EXIT_INTERRUPTED);
        }
        let mut o = run_one(&wine, &prefix, exe, test_args)?;
        if lost_wineserver(&prefix, exe, &o) {
            // Wine's own server went away before any test ran: that is
            // Wine failing, not a test. Once more, said out loud; a second
            // loss counts as broken.
            println!(
                "xtask: {}: the wineserver connection was lost before any test ran; running it once more",
                exe.name
            );
            o = run_one(&wine, &prefix, exe, test_args)?;
        }
        total.passed += o.passed;
        total.failed += o.failed;
        total.ignored += o.ignored;
        let line = match &o.broken {
            Some(why) => {
                broken += 1;
                format!(
                    "FAILED  {:<40} {} passed, {} failed: {why}",
                    exe.name, o.passed, o.failed
                )
            }
            None if o.failed > 0 => format!(
                "FAILED  {:<40} {} passed, {} failed, {} ignored",
                exe.name, o.passed, o.failed, o.ignored
            ),
            None => format!(
                "ok      {:<40} {} passed, {} failed, {} ignored",
                exe.name, o.passed, o.failed, o.ignored
            ),
        };
        println!("xtask: {line}");
        lines.push(line);
    }
    wait_for_wineserver(&wine, &prefix);
    println!();
    println!("xtask: ---- test-windows summary (under Wine, {TARGET}) ----");
    for l in &lines {
        println!("xtask: {l}");
    }
    if broken > 0 {
        println!("xtask: {broken} test executable(s) did not finish cleanly");
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(if total.failed > 0 || broken > 0 { 1 } else { 0 })
}

fn workspace_root() -> Result<PathBuf, String> {
    // xtask/Cargo.toml lives one level below the root.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "cannot find the workspace root".into())
}

/// `wine64` on PATH (other distributions), else Debian's loader.
fn wine_loader() -> Option<PathBuf> {
    find_tool("wine64").or_else(|| {
        let p = PathBuf::from(DEBIAN_WINE64);
        p.is_file().then_some(p)
    })
}

fn ensure_target() -> Result<(), String> {
    let installed = run_capture(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    eprintln!("xtask: rust target {TARGET} missing; running `rustup target add {TARGET}`");
    run_capture(Command::new("rustup").args(["target", "add", TARGET])).map(|_| ())
}

/// `cargo test --no-run` for the target; returns the test executables.
fn build_tests(gcc: &Path) -> Result<Vec<TestExe>, String> {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--workspace",
        // Its library has no tests and criterion is the slowest build.
        "--exclude",
        "cow-benches",
        "--no-run",
        "--target",
        TARGET,
        "--message-format=json-render-diagnostics",
    ]);
    let linker_var = "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER";
    if std::env::var_os(linker_var).is_none() {
        cmd.env(linker_var, gcc);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    eprintln!("xtask: running: {}", show(&cmd));
    let out = cmd
        .spawn()
        .and_then(|c| c.wait_with_output())
        .map_err(|e| format!("`{}` could not start: {e}", show(&cmd)))?;
    if !out.status.success() {
        return Err(format!("the Windows build failed ({})", out.status));
    }
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true {
            continue;
        }
        let Some(path) = msg["executable"].as_str() else {
            continue;
        };
        let manifest = PathBuf::from(msg["manifest_path"].as_str().unwrap_or_default());
        let package = msg["package_id"]
            .as_str()
            .and_then(package_name)
            .unwrap_or("?")
            .to_owned();
        let target = msg["target"]["name"].as_str().unwrap_or("?");
        let kind = msg["target"]["kind"][0].as_str().unwrap_or("?");
        exes.push(TestExe {
            name: format!("{package} {kind} {target}"),
            path: PathBuf::from(path),
            cwd: manifest.parent().map(Path::to_path_buf).unwrap_or_default(),
        });
    }
    Ok(exes)
}

/// The package name in a cargo package id (`path+file:///...#name@0.1.0`
/// or the older `name 0.1.0 (path+...)`).
fn package_name(id: &str) -> Option<&str> {
    match id.rsplit_once('#') {
        Some((url, rest)) => {
            let name = rest.split('@').next()?;
            // `#0.1.0` alone: the name is the last path component.
            if name.chars().next()?.is_ascii_digit() {
                url.rsplit('/').next()
            } else {
                Some(name)
            }
        }
        None => id.split(' ').next(),
    }
}

/// Compiles the `ProcessPrng` shim (see its source) into `out`.
fn build_shim(gcc: &Path, source: &Path, out: &Path) -> Result<(), String> {
    if let Some(d) = out.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let mut cmd = Command::new(gcc);
    cmd.args(["-shared", "-O2", "-s", "-o"])
        .arg(out)
        .arg(source)
        .arg("-ladvapi32");
    run_capture(&mut cmd).map(|_| ())
}

/// Where the output of `exe` goes.
fn log_path(prefix: &Path, exe: &TestExe) -> PathBuf {
    prefix
        .with_file_name("logs")
        .join(format!("{}.log", exe.name.replace(' ', "-")))
}

/// Whether `exe` ended broken with no test run because the Wine client
/// lost its wineserver (`wine client error`; seen once in CI, on an
/// executable that had passed in every run before).
fn lost_wineserver(prefix: &Path, exe: &TestExe, o: &Outcome) -> bool {
    o.broken.is_some()
        && o.passed + o.failed + o.ignored == 0
        && std::fs::read_to_string(log_path(prefix, exe))
            .is_ok_and(|log| log.contains("wine client error"))
}

/// Runs one test executable under Wine and reads its libtest summary.
fn run_one(wine: &Path, prefix: &Path, exe: &TestExe, args: &[String]) -> Result<Outcome, String> {
    let log_path = log_path(prefix, exe);
    let logs = prefix.with_file_name("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("create {}: {e}", logs.display()))?;
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("create {}: {e}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("duplicate {}: {e}", log_path.display()))?;
    let mut cmd = Command::new(wine);
    cmd.arg(&exe.path)
        .args(args)
        .current_dir(&exe.cwd)
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        // No "install Mono/Gecko?" dialogs while the prefix is created.
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    eprintln!("xtask: running: {}", show(&cmd));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("`{}` could not start: {e}", show(&cmd)))?;
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(e) => return Err(format!("wait for {}: {e}", exe.name)),
        }
        if signals::interrupted() || start.elapsed() > TIMEOUT {
            timed_out = !signals::interrupted();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    print!("{text}");
    let mut o = parse_results(&text);
    o.broken = match status {
        _ if timed_out => Some(format!("killed after {} s", TIMEOUT.as_secs())),
        None => Some("interrupted".into()),
        Some(s) if !s.success() && o.failed == 0 => Some(format!("exited with {s}")),
        Some(_) if !text.contains("test result:") => Some("printed no `test result:` line".into()),
        Some(_) => None,
    };
    Ok(o)
}

/// Sums the `test result: ok. N passed; N failed; N ignored; ...` lines.
fn parse_results(text: &str) -> Outcome {
    let mut o = Outcome {
        passed: 0,
        failed: 0,
        ignored: 0,
        broken: None,
    };
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let (Some(n), Some(what)) = (
                words
                    .iter()
                    .rev()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok()),
                words.last(),
            ) else {
                continue;
            };
            match *what {
                "passed" => o.passed += n,
                "failed" => o.failed += n,
                "ignored" => o.ignored += n,
                _ => {}
            }
        }
    }
    o
}

/// Lets this prefix's wineserver (started by our first run) exit on its
/// own once the last Windows process is gone, so none is left behind.
fn wait_for_wineserver(wine: &Path, prefix: &Path) {
    let server = wine.with_file_name(if wine.file_name().is_some_and(|n| n == "wine64") {
        "wineserver64"
    } else {
        "wineserver"
    });
    let server = if server.is_file() {
        server
    } else {
        match find_tool("wineserver") {
            Some(s) => s,
            None => return,
        }
    };
    let _ = Command::new(server)
        .arg("-w")
        .env("WINEPREFIX", prefix)
        .stdin(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::{package_name, parse_results};

    #[test]
    fn results_are_summed() {
        let o = parse_results(
            "running 3 tests\n\
             test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.1s\n\
             test result: FAILED. 4 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n",
        );
        assert_eq!((o.passed, o.failed, o.ignored), (6, 2, 1));
    }

    #[test]
    fn package_names() {
        assert_eq!(
            package_name("path+file:///w/crates/cow-copy#0.1.0"),
            Some("cow-copy")
        );
        assert_eq!(
            package_name("path+file:///w/x#cow-sys@0.1.0"),
            Some("cow-sys")
        );
        assert_eq!(
            package_name("cow-cli 0.1.0 (path+file:///w)"),
            Some("cow-cli")
        );
    }
}
