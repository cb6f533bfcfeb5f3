//! The update measurement (`docs/updates.md`, "Measured"): 1,000 installed
//! files in a btrfs subvolume updated from a staging tree where 90 % are
//! identical, with each update policy. Not a criterion bench: one run of
//! minutes, printed as a table. It needs the real btrfs (and tmpfs) that
//! `cargo xtask with-mounts` provides:
//!
//! ```text
//! sudo cargo xtask with-mounts -- cargo bench -p cow-benches --bench update
//! ```

#[cfg(target_os = "linux")]
mod measure;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // must not start a run of minutes.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "update: not run (a measurement: use `cargo bench -p cow-benches --bench update`)"
        );
        return;
    }
    #[cfg(target_os = "linux")]
    measure::update_1000_files_256mib_90_percent_unchanged();
    #[cfg(not(target_os = "linux"))]
    eprintln!("update: not run: the measurement needs Linux (btrfs subvolumes and snapshots)");
}
