//! Host and per-process figures from /proc: host memory and CPUs, a QEMU process's resident
//! memory, and the CPU time of its vCPU threads.

use std::path::Path;

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The lines of /proc/meminfo that matter here, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub available: u64,
}

pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut info = MemInfo::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else { continue };
        let kib: u64 = value.parse().unwrap_or(0);
        match key {
            "MemTotal:" => info.total = kib * 1024,
            "MemAvailable:" => info.available = kib * 1024,
            _ => {}
        }
    }
    info
}

pub fn meminfo() -> MemInfo {
    std::fs::read_to_string("/proc/meminfo").map(|t| parse_meminfo(&t)).unwrap_or_default()
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuInfo {
    pub count: u32,
    pub vendor: String,
    pub model_name: String,
    pub mhz: u64,
    pub flags: String,
}

/// The first processor's description, and how many processors there are.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => info.count += 1,
            _ if info.count > 1 => {}
            "vendor_id" => info.vendor = value.to_owned(),
            "model name" => info.model_name = value.to_owned(),
            "cpu MHz" => info.mhz = value.parse::<f64>().map(|m| m.round() as u64).unwrap_or(0),
            "flags" => info.flags = value.to_owned(),
            _ => {}
        }
    }
    info
}

pub fn cpuinfo() -> CpuInfo {
    let mut info = std::fs::read_to_string("/proc/cpuinfo").map(|t| parse_cpuinfo(&t)).unwrap_or_default();
    // Online CPUs are what guests can be given; /proc/cpuinfo may list fewer on some kernels.
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online > 0 {
        info.count = online as u32;
    }
    info
}

/// User plus system time of a task, from the text of /proc/PID/task/TID/stat, in clock ticks.
/// The command name in parentheses may itself contain spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_task_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the whole line, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The scheduler state letter of a process (`R`, `S`, `Z`, ...) from its stat line.
pub fn parse_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// CPU time of one thread of `pid`, in nanoseconds; 0 when it cannot be read (the thread is
/// gone, or is not ours to see).
pub fn thread_cpu_ns(pid: i32, tid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
        .ok()
        .and_then(|s| parse_task_ticks(&s))
        .map(|ticks| ticks.saturating_mul(1_000_000_000 / ticks_per_second()))
        .unwrap_or(0)
}

/// Resident memory of a process in bytes (0 when it is gone).
pub fn rss_bytes(pid: i32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/statm")) else { return 0 };
    let pages: u64 = text.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages.saturating_mul(if page > 0 { page as u64 } else { 4096 })
}

/// Whether `pid` is a running (not dead, not zombie) process.
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(parse_state(&stat), Some('Z' | 'X' | 'x') | None),
        Err(_) => false,
    }
}

/// The NUL-separated arguments of a process.
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
        .unwrap_or_default()
}

/// The identity of this boot of the host: results measured on it (the accelerator probe) hold
/// until the next boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_owned()).unwrap_or_default()
}

pub fn bridge_exists(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && Path::new("/sys/class/net").join(name).join("bridge").is_dir()
}
