//! Suspend images: the saved state of a simulated guest, as a file.
//!
//! Layout (integers little-endian):
//!
//! | offset | size | content                                  |
//! |--------|------|------------------------------------------|
//! | 0      | 8    | magic `XCSIMSAV`                         |
//! | 8      | 4    | format version                           |
//! | 12     | 8    | payload length in bytes                  |
//! | 20     | 8    | FNV-1a 64 checksum of the payload        |
//! | 28     | ...  | payload: [`SavedState`] as JSON          |
//!
//! The explicit length catches truncation, the checksum catches corruption that still parses.

use crate::{DiskConfig, DiskKind, DomainConfig, HypervisorError, NicConfig, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

use super::domain::{validate_devices, HEARTBEAT_PERIOD_NS};

pub const MAGIC: &[u8; 8] = b"XCSIMSAV";
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 28;

/// The guest's state as a suspend image carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedState {
    pub uuid: Uuid,
    pub name: String,
    pub memory_static_max: u64,
    pub memory_target: u64,
    pub vcpus_max: u32,
    pub vcpus: u32,
    /// One entry per possible vCPU, online or not.
    pub vcpu_time_ns: Vec<u64>,
    pub guest_uptime_ns: u64,
    /// Derived from the uptime; stored so that a reader of the image sees the guest's counter.
    pub heartbeat: u64,
    pub disks: Vec<SavedDisk>,
    pub nics: Vec<SavedNic>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDisk {
    pub device: String,
    pub path: Option<PathBuf>,
    pub read_only: bool,
    pub kind: SavedDiskKind,
    pub bootable: bool,
}

/// Mirrors [`DiskKind`] so that the image format does not change when the trait's enum does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SavedDiskKind {
    Disk,
    Cdrom,
    Floppy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedNic {
    pub device: String,
    pub mac: String,
    pub bridge: String,
    pub mtu: u32,
}

impl From<&DiskConfig> for SavedDisk {
    fn from(disk: &DiskConfig) -> Self {
        SavedDisk {
            device: disk.device.clone(),
            path: disk.path.clone(),
            read_only: disk.read_only,
            kind: match disk.kind {
                DiskKind::Disk => SavedDiskKind::Disk,
                DiskKind::Cdrom => SavedDiskKind::Cdrom,
                DiskKind::Floppy => SavedDiskKind::Floppy,
            },
            bootable: disk.bootable,
        }
    }
}

impl From<SavedDisk> for DiskConfig {
    fn from(disk: SavedDisk) -> Self {
        DiskConfig {
            device: disk.device,
            path: disk.path,
            read_only: disk.read_only,
            kind: match disk.kind {
                SavedDiskKind::Disk => DiskKind::Disk,
                SavedDiskKind::Cdrom => DiskKind::Cdrom,
                SavedDiskKind::Floppy => DiskKind::Floppy,
            },
            bootable: disk.bootable,
        }
    }
}

impl From<&NicConfig> for SavedNic {
    fn from(nic: &NicConfig) -> Self {
        SavedNic { device: nic.device.clone(), mac: nic.mac.clone(), bridge: nic.bridge.clone(), mtu: nic.mtu }
    }
}

impl From<SavedNic> for NicConfig {
    fn from(nic: SavedNic) -> Self {
        NicConfig { device: nic.device, mac: nic.mac, bridge: nic.bridge, mtu: nic.mtu }
    }
}

fn image_error(message: impl Into<String>) -> HypervisorError {
    HypervisorError::Image(message.into())
}

impl SavedState {
    /// An image is only usable for the VM it was made from, and only if the VM's current limits
    /// still hold the guest as it was saved.
    pub fn check_against(&self, config: &DomainConfig) -> Result<()> {
        if self.uuid != config.uuid {
            return Err(image_error(format!("the image holds VM {}, not VM {}", self.uuid, config.uuid)));
        }
        if self.vcpus_max == 0
            || self.vcpu_time_ns.len() != self.vcpus_max as usize
            || self.vcpus == 0
            || self.vcpus > self.vcpus_max
            || self.memory_target == 0
            || self.memory_target > self.memory_static_max
            || self.heartbeat != self.guest_uptime_ns / HEARTBEAT_PERIOD_NS
        {
            return Err(image_error("the saved state is inconsistent"));
        }
        if self.memory_target > config.memory_static_max {
            return Err(image_error(format!(
                "the guest was saved with {} bytes, above the VM's maximum of {}",
                self.memory_target, config.memory_static_max
            )));
        }
        if self.vcpus > config.vcpus_max {
            return Err(image_error(format!(
                "the guest was saved with {} vCPUs, above the VM's maximum of {}",
                self.vcpus, config.vcpus_max
            )));
        }
        let disks: Vec<DiskConfig> = self.disks.iter().cloned().map(DiskConfig::from).collect();
        let nics: Vec<NicConfig> = self.nics.iter().cloned().map(NicConfig::from).collect();
        validate_devices(&disks, &nics).map_err(|e| image_error(format!("the saved devices are not valid: {e}")))
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

pub fn encode(state: &SavedState) -> Vec<u8> {
    let payload = serde_json::to_vec(state).expect("SavedState always serialises");
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&fnv1a64(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

pub fn decode(bytes: &[u8]) -> Result<SavedState> {
    if bytes.len() < HEADER_LEN {
        return Err(image_error(format!("truncated: {} bytes, shorter than the header", bytes.len())));
    }
    let (header, payload) = bytes.split_at(HEADER_LEN);
    if &header[0..8] != MAGIC {
        return Err(image_error("bad magic: not a sim suspend image"));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(image_error(format!("format version {version} is not supported")));
    }
    let length = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    if length != payload.len() as u64 {
        return Err(image_error(format!("truncated or padded: header says {length} payload bytes, file has {}", payload.len())));
    }
    let checksum = u64::from_le_bytes(header[20..28].try_into().expect("8 bytes"));
    if checksum != fnv1a64(payload) {
        return Err(image_error("checksum mismatch: the image is corrupted"));
    }
    serde_json::from_slice(payload).map_err(|e| image_error(format!("unreadable state: {e}")))
}

pub fn read(path: &Path) -> Result<SavedState> {
    let bytes = fs::read(path).map_err(|e| image_error(format!("cannot read {}: {e}", path.display())))?;
    decode(&bytes)
}

/// Write `bytes` to `path` so that `path` holds either its old content or all of the new one,
/// whenever the process or the machine stops.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Distinguishes concurrent writers within this process; the pid covers other processes.
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);

    let name = path.file_name().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the image path has no file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp-{}-{}", std::process::id(), SEQUENCE.fetch_add(1, Ordering::Relaxed)));
    let temp = dir.join(temp_name);

    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        // Data must be on disk before the rename makes it visible under the final name.
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
        return written;
    }
    // Persist the rename itself; a failure here leaves a complete image, so it is not fatal.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
