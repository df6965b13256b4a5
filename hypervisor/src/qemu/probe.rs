//! Choosing the accelerator: `auto` takes KVM only where a probe guest actually runs under it.
//!
//! Opening /dev/kvm proves little: under some nested hypervisors KVM opens, creates vCPUs and
//! then runs guests so slowly (or not at all) that TCG is the faster choice by far. So the
//! probe boots a real guest, a boot sector (`probe.S` beside this file) that needs the BIOS,
//! timer interrupts and port I/O, under TCG first (which measures what "runs" means on this
//! host) and then under KVM, and takes KVM only if it finishes within twice TCG's time (at
//! least 1.5 s). The outcome is cached per host boot and QEMU binary.

use super::config::{Accel, AccelChoice};
use super::metrics;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `probe.S` assembled (see the rebuild line there); a test checks the two agree.
pub const BOOT_SECTOR_CODE: [u8; 64] = [
    0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xfb, 0x8b, 0x1e, 0x6c, 0x04, 0x83, 0xc3, 0x05, 0xf4, 0x3b, 0x1e, 0x6c,
    0x04, 0x79, 0xf9, 0xbe, 0x30, 0x7c, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xba, 0xf4, 0x00, 0xb0, 0x21,
    0xee, 0xf4, 0xeb, 0xfd, 0x58, 0x45, 0x4e, 0x43, 0x49, 0x4d, 0x2d, 0x50, 0x52, 0x4f, 0x42, 0x45, 0x20, 0x6f, 0x6b, 0x0a,
];

const PROBE_LINE: &str = "XENCIM-PROBE ok";
/// isa-debug-exit turns the probe's write of 0x21 into exit status (0x21 << 1) | 1.
const PROBE_EXIT: i32 = 0x43;
const TCG_LIMIT: Duration = Duration::from_secs(20);
const KVM_FLOOR: Duration = Duration::from_millis(1500);

pub fn boot_sector() -> Vec<u8> {
    let mut sector = BOOT_SECTOR_CODE.to_vec();
    sector.resize(510, 0);
    sector.extend([0x55, 0xaa]);
    sector
}

/// How one probe run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Ran(Duration),
    Failed(String),
}

/// Boots the probe guest under `accel` and waits up to `limit` for it to finish.
pub fn run(qemu: &Path, work: &Path, accel: Accel, limit: Duration) -> Outcome {
    let image = work.join("accel-probe.img");
    let serial = work.join(format!("accel-probe-{}.log", accel.name()));
    if let Err(e) = std::fs::write(&image, boot_sector()) {
        return Outcome::Failed(format!("cannot write {}: {e}", image.display()));
    }
    let _ = std::fs::remove_file(&serial);
    let started = Instant::now();
    let child = Command::new(qemu)
        .args(["-accel", accel.name(), "-machine", "pc", "-m", "16", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-drive")
        .arg(format!("file={},format=raw,if=ide", super::cmdline::escape(&image.to_string_lossy())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot run {}: {e}", qemu.display())),
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Failed(format!("the probe guest did not finish within {:.1} s", limit.as_secs_f64()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    };
    let elapsed = started.elapsed();
    let printed = std::fs::read_to_string(&serial).unwrap_or_default();
    if status.code() == Some(PROBE_EXIT) && printed.contains(PROBE_LINE) {
        Outcome::Ran(elapsed)
    } else {
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        Outcome::Failed(format!("the probe guest ended with {status}: {}", stderr.trim()))
    }
}

fn kvm_openable() -> Result<(), String> {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").map(|_| ()).map_err(|e| format!("/dev/kvm: {e}"))
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cached {
    boot_id: String,
    qemu: String,
    qemu_mtime: u64,
    qemu_size: u64,
    accel: Accel,
    reason: String,
}

fn binary_identity(qemu: &Path) -> (String, u64, u64) {
    let resolved = which(qemu).unwrap_or_else(|| qemu.to_path_buf());
    let meta = std::fs::metadata(&resolved).ok();
    let mtime = meta.as_ref().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    (resolved.display().to_string(), mtime.map_or(0, |d| d.as_secs()), meta.map_or(0, |m| m.len()))
}

/// The file `qemu` names, looked up in PATH when it has no slash.
pub fn which(qemu: &Path) -> Option<std::path::PathBuf> {
    if qemu.components().count() > 1 {
        return qemu.is_file().then(|| qemu.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(qemu)).find(|p| p.is_file())
}

/// Resolves the configured choice into the accelerator to use, and says why.
pub fn choose(choice: AccelChoice, qemu: &Path, work: &Path) -> Result<(Accel, String), String> {
    match choice {
        AccelChoice::Tcg => Ok((Accel::Tcg, "configured".into())),
        AccelChoice::Kvm => {
            kvm_openable().map_err(|e| format!("--accel kvm, but {e}"))?;
            Ok((Accel::Kvm, "configured".into()))
        }
        AccelChoice::Auto => {
            if let Err(e) = kvm_openable() {
                return Ok((Accel::Tcg, e));
            }
            let cache = work.join("accel-probe.json");
            let (path, qemu_mtime, qemu_size) = binary_identity(qemu);
            let boot_id = metrics::boot_id();
            if let Some(cached) = std::fs::read(&cache).ok().and_then(|b| serde_json::from_slice::<Cached>(&b).ok()) {
                if cached.boot_id == boot_id && cached.qemu == path && cached.qemu_mtime == qemu_mtime && cached.qemu_size == qemu_size {
                    return Ok((cached.accel, format!("{} (probed earlier in this boot)", cached.reason)));
                }
            }
            let (accel, reason) = probe(qemu, work);
            let cached = Cached { boot_id, qemu: path, qemu_mtime, qemu_size, accel, reason: reason.clone() };
            if let Ok(bytes) = serde_json::to_vec_pretty(&cached) {
                let _ = super::state::write_atomic(&cache, &bytes);
            }
            Ok((accel, reason))
        }
    }
}

fn probe(qemu: &Path, work: &Path) -> (Accel, String) {
    let tcg = match run(qemu, work, Accel::Tcg, TCG_LIMIT) {
        Outcome::Ran(t) => t,
        // Nothing runs at all; starts will fail with QEMU's own words, which say more.
        Outcome::Failed(e) => return (Accel::Tcg, format!("the TCG probe failed too: {e}")),
    };
    let limit = (tcg * 2).max(KVM_FLOOR);
    match run(qemu, work, Accel::Kvm, limit) {
        Outcome::Ran(kvm) => {
            (Accel::Kvm, format!("the probe guest ran under KVM in {:.2} s (TCG {:.2} s)", kvm.as_secs_f64(), tcg.as_secs_f64()))
        }
        Outcome::Failed(e) => (Accel::Tcg, format!("KVM opens but {e} (TCG took {:.2} s)", tcg.as_secs_f64())),
    }
}
