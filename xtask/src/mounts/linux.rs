//! Linux: sparse images on loop devices, a tmpfs, and their teardown.
//!
//! Only devices and mounts this run created are ever touched: a loop device
//! is detached only while its backing file is one of our images, and every
//! mount point lies inside our private work directory.

use super::{Kind, Spec};
use crate::util::{find_tool, human, run_capture};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A loop device we attached, and the image behind it.
#[derive(Debug)]
pub(super) struct LoopDev {
    dev: String,
    image: PathBuf,
}

/// What this run created, in creation order.
#[derive(Debug, Default)]
pub(super) struct State {
    mounts: Vec<PathBuf>,
    loops: Vec<LoopDev>,
}

fn tool(name: &str) -> Result<PathBuf, String> {
    find_tool(name).ok_or_else(|| format!("{name} not found"))
}

/// Mounts `spec` under `root`; returns the mount point and a description.
pub(super) fn mount(
    root: &Path,
    spec: Spec,
    state: &mut State,
) -> Result<(PathBuf, String), String> {
    if !rustix::process::geteuid().is_root() {
        return Err(super::NOT_ROOT.into());
    }
    let mount_bin = tool("mount")?;
    let mnt = root.join("mnt").join(spec.name);
    let fstype;
    let detail;
    match spec.kind {
        Kind::Loop { mkfs, args, size } => {
            let mkfs_bin = tool(mkfs)?;
            let losetup = tool("losetup")?;
            fstype = mkfs.trim_start_matches("mkfs.");
            let img_dir = root.join("img");
            std::fs::create_dir_all(&img_dir)
                .map_err(|e| format!("cannot create {}: {e}", img_dir.display()))?;
            let image = img_dir.join(format!("{}.img", spec.name));
            let f = std::fs::File::create(&image)
                .map_err(|e| format!("cannot create {}: {e}", image.display()))?;
            // Sparse: costs no space until the filesystem writes.
            f.set_len(size)
                .map_err(|e| format!("cannot size {}: {e}", image.display()))?;
            drop(f);
            run_capture(Command::new(&mkfs_bin).args(args).arg(&image))
                .map_err(|e| format!("mkfs failed: {e}"))?;
            if crate::signals::interrupted() {
                return Err("interrupted".into());
            }
            let dev = run_capture(
                Command::new(&losetup)
                    .args(["--find", "--show"])
                    .arg(&image),
            )
            .map_err(|e| format!("losetup failed: {e}"))?;
            if !dev.starts_with("/dev/loop") || dev.contains(char::is_whitespace) {
                return Err(format!("losetup printed an unexpected device name {dev:?}"));
            }
            state.loops.push(LoopDev {
                dev: dev.clone(),
                image,
            });
            std::fs::create_dir_all(&mnt)
                .map_err(|e| format!("cannot create {}: {e}", mnt.display()))?;
            run_capture(
                Command::new(&mount_bin)
                    .args(["-t", fstype])
                    .arg(&dev)
                    .arg(&mnt),
            )
            .map_err(|e| format!("mount failed: {e}"))?;
            state.mounts.push(mnt.clone());
            // Detach while mounted: the kernel then only marks the device
            // "autoclear", so it frees itself as soon as the filesystem is
            // unmounted, even after a lazy unmount or if this process dies
            // before its own cleanup. Cleanup still checks and detaches.
            let _ = run_capture(Command::new(&losetup).arg("-d").arg(&dev));
            detail = format!("{} image on {dev}", human(size));
        }
        Kind::Tmpfs { size } => {
            fstype = "tmpfs";
            std::fs::create_dir_all(&mnt)
                .map_err(|e| format!("cannot create {}: {e}", mnt.display()))?;
            run_capture(
                Command::new(&mount_bin)
                    .args(["-t", "tmpfs", "-o"])
                    .arg(format!("size={size},mode=1777"))
                    .arg("cow-xtask-tmpfs")
                    .arg(&mnt),
            )
            .map_err(|e| format!("mount failed: {e}"))?;
            state.mounts.push(mnt.clone());
            detail = format!("tmpfs size={size}");
        }
    }
    let found = mount_table()
        .into_iter()
        .rev()
        .find(|m| m.point == mnt)
        .map(|m| m.fstype);
    if found.as_deref() != Some(fstype) {
        return Err(format!(
            "mounted {} but the mount table says {:?}, not {fstype}",
            mnt.display(),
            found
        ));
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&mnt, std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| format!("cannot chmod 1777 {}: {e}", mnt.display()))?;
    Ok((mnt, detail))
}

/// Unmounts (newest first) and detaches what `state` recorded, plus anything
/// else mounted or attached under `root`. Returns what is left.
pub(super) fn cleanup(root: &Path, state: &mut State) -> Vec<String> {
    let mut problems = Vec::new();
    // Recorded mounts newest first, then anything else under root, deepest
    // first.
    let mut points: Vec<PathBuf> = state.mounts.drain(..).rev().collect();
    let mut extra = mounted_under(root);
    extra.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in extra {
        if !points.contains(&p) {
            points.push(p);
        }
    }
    for p in &points {
        if let Err(e) = unmount(p) {
            problems.push(e);
        }
    }
    let mut loops: Vec<LoopDev> = state.loops.drain(..).collect();
    for (dev, file) in loops_under(root) {
        if !loops.iter().any(|l| l.dev == dev) {
            loops.push(LoopDev {
                dev,
                image: PathBuf::from(file.trim_end_matches(" (deleted)")),
            });
        }
    }
    for l in &loops {
        if let Err(e) = detach(l) {
            problems.push(e);
        }
    }
    problems
}

fn unmount(point: &Path) -> Result<(), String> {
    let umount = tool("umount")?;
    let mut last = String::new();
    for attempt in 0..10 {
        if !is_mounted(point) {
            return Ok(());
        }
        if let Err(e) = run_capture(Command::new(&umount).arg(point)) {
            last = e;
            if attempt + 1 < 10 {
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
    if !is_mounted(point) {
        return Ok(());
    }
    eprintln!(
        "xtask: {} stays busy ({last}); unmounting lazily",
        point.display()
    );
    run_capture(Command::new(&umount).arg("-l").arg(point))
        .map_err(|e| format!("cannot unmount {}: {e}", point.display()))?;
    if is_mounted(point) {
        Err(format!("{} is still mounted", point.display()))
    } else {
        Ok(())
    }
}

/// Detaches `l` while (and only while) it is still backed by our image.
fn detach(l: &LoopDev) -> Result<(), String> {
    let losetup = tool("losetup")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    loop {
        if !backed_by(&l.dev, &l.image) {
            return Ok(());
        }
        if let Err(e) = run_capture(Command::new(&losetup).arg("-d").arg(&l.dev)) {
            last = e;
        }
        if !backed_by(&l.dev, &l.image) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "loop device {} ({}) is still attached: {last}; it is marked autoclear and \
                 detaches itself when its last user (a lazily unmounted filesystem) goes away",
                l.dev,
                l.image.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The backing file of loop device `dev` (`/dev/loopN`), if attached.
fn backing_file(dev: &str) -> Option<String> {
    let name = dev.strip_prefix("/dev/")?;
    let s = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(s.trim_end_matches('\n').to_owned())
}

fn backed_by(dev: &str, image: &Path) -> bool {
    backing_file(dev).is_some_and(|f| Path::new(f.trim_end_matches(" (deleted)")) == image)
}

/// Loop devices whose backing file lies under `dir`.
pub(super) fn loops_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let dev = format!("/dev/{name}");
        if let Some(f) = backing_file(&dev) {
            if Path::new(f.trim_end_matches(" (deleted)")).starts_with(dir) {
                out.push((dev, f));
            }
        }
    }
    out.sort();
    out
}

struct MountEntry {
    point: PathBuf,
    fstype: String,
}

/// Decodes the octal escapes (`\040` for a space, ...) of mountinfo fields.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mount_table() -> Vec<MountEntry> {
    let Ok(s) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    s.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some(MountEntry {
                point: PathBuf::from(unescape(point)),
                fstype: fstype.to_owned(),
            })
        })
        .collect()
}

fn is_mounted(point: &Path) -> bool {
    mount_table().iter().any(|m| m.point == point)
}

/// Mount points at or under `dir`.
pub(super) fn mounted_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = mount_table()
        .into_iter()
        .map(|m| m.point)
        .filter(|p| p.starts_with(dir))
        .collect();
    v.dedup();
    v
}

pub(super) fn process_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}
