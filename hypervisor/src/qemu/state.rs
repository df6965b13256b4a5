//! What the backend keeps on disk about a running domain, so that a restarted daemon can adopt
//! its QEMU process: `vms/<uuid>/domain.json` (this record), beside QEMU's pidfile and QMP
//! socket. The same record, minus the runtime facts, heads a suspend image so that resume
//! rebuilds exactly the devices the image was saved with.

use super::config::Accel;
use crate::{DiskConfig, DiskKind, DomId, NicConfig};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKindRec {
    Disk,
    Cdrom,
    Floppy,
}

impl From<DiskKind> for DiskKindRec {
    fn from(k: DiskKind) -> Self {
        match k {
            DiskKind::Disk => DiskKindRec::Disk,
            DiskKind::Cdrom => DiskKindRec::Cdrom,
            DiskKind::Floppy => DiskKindRec::Floppy,
        }
    }
}

/// A disk as QEMU has it. `slot` is the PCI slot of a virtio disk, the IDE position
/// (bus * 2 + unit) of a CD drive, or the unit of a floppy drive; it is fixed for the life of
/// the device, so that a domain resumed from an image has its devices where they were saved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRec {
    pub device: String,
    pub path: Option<PathBuf>,
    pub read_only: bool,
    pub kind: DiskKindRec,
    pub bootable: bool,
    pub slot: u8,
}

impl DiskRec {
    pub fn new(disk: &DiskConfig, slot: u8) -> Self {
        DiskRec {
            device: disk.device.clone(),
            path: disk.path.clone(),
            read_only: disk.read_only,
            kind: disk.kind.into(),
            bootable: disk.bootable,
            slot,
        }
    }

    fn tag(&self) -> &'static str {
        match self.kind {
            DiskKindRec::Disk => "disk",
            DiskKindRec::Cdrom => "cd",
            DiskKindRec::Floppy => "fd",
        }
    }

    /// QEMU's id of the device.
    pub fn id(&self) -> String {
        format!("{}{}", self.tag(), self.slot)
    }

    /// Node names of the image's format and protocol layers (`-blockdev`).
    pub fn format_node(&self) -> String {
        format!("fmt-{}{}", self.tag(), self.slot)
    }

    pub fn file_node(&self) -> String {
        format!("file-{}{}", self.tag(), self.slot)
    }

    /// Images are raw unless their name says qcow2: probing the content would let a guest
    /// that writes a qcow2 header into its raw disk make QEMU open files of its choosing.
    pub fn format(&self) -> &'static str {
        match &self.path {
            Some(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("qcow2")) => "qcow2",
            _ => "raw",
        }
    }
}

/// How a NIC reaches the network, decided when it is plugged and kept for its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NetBackend {
    User,
    Bridge { bridge: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicRec {
    pub device: String,
    pub mac: String,
    pub mtu: u32,
    pub backend: NetBackend,
    pub slot: u8,
}

impl NicRec {
    pub fn new(nic: &NicConfig, backend: NetBackend, slot: u8) -> Self {
        NicRec { device: nic.device.clone(), mac: nic.mac.to_ascii_lowercase(), mtu: nic.mtu, backend, slot }
    }

    pub fn id(&self) -> String {
        format!("nic{}", self.slot)
    }

    pub fn netdev(&self) -> String {
        format!("net{}", self.slot)
    }
}

/// A vCPU added after boot, as `device_add` made it; a resumed domain gets it back with
/// `-device` so that the saved CPU state finds its CPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSlot {
    pub id: String,
    pub driver: String,
    pub socket_id: i64,
    pub core_id: i64,
    pub thread_id: i64,
}

/// Everything needed to build (or rebuild) a domain's QEMU command line and to describe it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainRecord {
    pub uuid: Uuid,
    pub name: String,
    pub memory_static_max: u64,
    pub memory_target: u64,
    pub vcpus_max: u32,
    /// vCPUs present from power-on (`-smp cpus=`).
    pub boot_vcpus: u32,
    pub hotplugged_cpus: Vec<CpuSlot>,
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    pub cmdline: String,
    pub disks: Vec<DiskRec>,
    pub nics: Vec<NicRec>,
    pub machine: String,
    pub cpu_model: Option<String>,
    pub accel: Accel,
}

impl DomainRecord {
    pub fn vcpus(&self) -> u32 {
        self.boot_vcpus + self.hotplugged_cpus.len() as u32
    }
}

/// The runtime facts of a live domain, beside its record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    pub record: DomainRecord,
    pub domid: DomId,
    pub pid: i32,
    pub start_time: i64,
}

pub const RECORD_FILE: &str = "domain.json";
pub const PID_FILE: &str = "qemu.pid";
pub const QMP_SOCKET: &str = "qmp.sock";

/// Writes `bytes` to `path` through a temporary file and a rename, so that a crash leaves the
/// old content or the new, never a torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

pub fn save(dir: &Path, p: &Persisted) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(p).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(RECORD_FILE), &bytes)
}

pub fn load(dir: &Path) -> std::io::Result<Persisted> {
    let bytes = std::fs::read(dir.join(RECORD_FILE))?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

/// The pid QEMU wrote, if the file holds one.
pub fn read_pidfile(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(PID_FILE)).ok()?.trim().parse().ok().filter(|p| *p > 0)
}

/// Suspend images: a header of [`HEADER_SIZE`] bytes (a magic line, then the domain record as
/// JSON, then zeros) and QEMU's migration stream from that offset on (`file:PATH,offset=`).
pub const HEADER_SIZE: u64 = 64 * 1024;
const MAGIC: &[u8] = b"XENCIM-QEMU-SUSPEND 1\n";

pub fn encode_header(record: &DomainRecord) -> Result<Vec<u8>, String> {
    let mut out = MAGIC.to_vec();
    out.extend(serde_json::to_vec(record).map_err(|e| e.to_string())?);
    out.push(b'\n');
    if out.len() as u64 > HEADER_SIZE {
        return Err(format!("the domain record takes {} bytes, more than the {HEADER_SIZE} of an image header", out.len()));
    }
    out.resize(HEADER_SIZE as usize, 0);
    Ok(out)
}

pub fn decode_header(bytes: &[u8]) -> Result<DomainRecord, String> {
    let body = bytes.strip_prefix(MAGIC).ok_or("not a xencim qemu suspend image")?;
    let end = body.iter().position(|b| *b == b'\n').ok_or("the image header is truncated")?;
    serde_json::from_slice(&body[..end]).map_err(|e| format!("the image header does not parse: {e}"))
}

pub fn read_header(image: &Path) -> Result<DomainRecord, String> {
    let mut f = std::fs::File::open(image).map_err(|e| format!("cannot open {}: {e}", image.display()))?;
    let mut buf = vec![0; HEADER_SIZE as usize];
    f.read_exact(&mut buf).map_err(|e| format!("cannot read the header of {}: {e}", image.display()))?;
    decode_header(&buf)
}

/// Writes the header into the first [`HEADER_SIZE`] bytes, which QEMU left untouched.
pub fn write_header(image: &Path, record: &DomainRecord) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let header = encode_header(record)?;
    let f = std::fs::OpenOptions::new().write(true).open(image).map_err(|e| format!("cannot open {}: {e}", image.display()))?;
    f.write_all_at(&header, 0).and_then(|_| f.sync_all()).map_err(|e| format!("cannot write the header of {}: {e}", image.display()))
}
