//! One loop filesystem for the power-cut harness: made, mounted, shut down
//! (FS_IOC_SHUTDOWN without a log flush, as xfstests simulates a power
//! cut), mounted again, and always detached and deleted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{find_tool, run_capture};

/// A filesystem the harness can cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fs {
    Xfs,
    Ext4,
    Btrfs,
}

impl Fs {
    pub(super) fn name(self) -> &'static str {
        match self {
            Fs::Xfs => "xfs",
            Fs::Ext4 => "ext4",
            Fs::Btrfs => "btrfs",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Fs> {
        [Fs::Xfs, Fs::Ext4, Fs::Btrfs]
            .into_iter()
            .find(|f| f.name() == s)
    }

    fn mkfs(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Fs::Xfs => ("mkfs.xfs", &["-q", "-f", "-m", "reflink=1"]),
            Fs::Ext4 => ("mkfs.ext4", &["-q", "-F", "-b", "4096"]),
            Fs::Btrfs => ("mkfs.btrfs", &["-q", "-f"]),
        }
    }

    /// Whether the filesystem clones (FICLONE).
    pub(super) fn clones(self) -> bool {
        self != Fs::Ext4
    }
}

fn tool(name: &str) -> Result<PathBuf, String> {
    find_tool(name).ok_or_else(|| format!("{name} not found"))
}

/// A mounted loop image.
pub(super) struct Image {
    fs: Fs,
    image: PathBuf,
    dev: Option<String>,
    mnt: PathBuf,
    mounted: bool,
}

const SIZE: u64 = 1 << 30;

impl Image {
    /// Makes, attaches and mounts an image of `fs` under `work`.
    pub(super) fn create(work: &Path, fs: Fs) -> Result<Image, String> {
        let image = work.join(format!("{}.img", fs.name()));
        let mnt = work.join(fs.name());
        std::fs::create_dir_all(&mnt)
            .map_err(|e| format!("cannot create {}: {e}", mnt.display()))?;
        let f = std::fs::File::create(&image)
            .map_err(|e| format!("cannot create {}: {e}", image.display()))?;
        f.set_len(SIZE)
            .map_err(|e| format!("cannot size {}: {e}", image.display()))?;
        drop(f);
        let mut img = Image {
            fs,
            image,
            dev: None,
            mnt,
            mounted: false,
        };
        let (mkfs, args) = fs.mkfs();
        run_capture(Command::new(tool(mkfs)?).args(args).arg(&img.image))?;
        let dev = run_capture(
            Command::new(tool("losetup")?)
                .args(["--find", "--show"])
                .arg(&img.image),
        )?;
        if !dev.starts_with("/dev/loop") || dev.contains(char::is_whitespace) {
            return Err(format!("losetup printed an unexpected device {dev:?}"));
        }
        img.dev = Some(dev);
        img.mount()?;
        Ok(img)
    }

    /// The mount point.
    pub(super) fn mnt(&self) -> &Path {
        &self.mnt
    }

    fn mount(&mut self) -> Result<(), String> {
        let dev = self.dev.as_deref().ok_or("no loop device")?;
        run_capture(
            Command::new(tool("mount")?)
                .args(["-t", self.fs.name()])
                .arg(dev)
                .arg(&self.mnt),
        )?;
        self.mounted = true;
        Ok(())
    }

    fn unmount(&mut self) -> Result<(), String> {
        if !self.mounted {
            return Ok(());
        }
        let umount = tool("umount")?;
        let mut last = String::new();
        for _ in 0..20 {
            match run_capture(Command::new(&umount).arg(&self.mnt)) {
                Ok(_) => {
                    self.mounted = false;
                    return Ok(());
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(last)
    }

    /// Shuts the filesystem down without flushing its log (a power cut:
    /// what reached the device stays, the rest is lost).
    pub(super) fn shutdown(&self) -> Result<(), String> {
        run_capture(
            Command::new(tool("xfs_io")?)
                .args(["-x", "-c", "shutdown"])
                .arg(&self.mnt),
        )
        .map(drop)
    }

    /// Unmounts and mounts again (the journal is replayed).
    pub(super) fn remount(&mut self) -> Result<(), String> {
        self.unmount()?;
        self.mount()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("xtask crash: cannot unmount {}: {e}", self.mnt.display());
            return;
        }
        if let Some(dev) = self.dev.take() {
            if let Ok(losetup) = tool("losetup") {
                if let Err(e) = run_capture(Command::new(losetup).arg("-d").arg(&dev)) {
                    eprintln!("xtask crash: cannot detach {dev}: {e}");
                }
            }
        }
        let _ = std::fs::remove_file(&self.image);
        let _ = std::fs::remove_dir(&self.mnt);
    }
}
