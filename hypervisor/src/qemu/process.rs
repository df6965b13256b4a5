//! QEMU processes: spawning one so that it outlives the daemon, reaching its QMP socket,
//! watching it end, and killing it.

use super::metrics;
use super::qmp::{Negotiated, QmpError};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A QEMU process we started. It runs in a session of its own, so that a daemon restart (or
/// a signal to the daemon's process group) leaves it running; the daemon re-adopts it through
/// its QMP socket. Its stdout and stderr go to `log`.
pub fn spawn(binary: &Path, args: &[String], cwd: &Path, log: &Path) -> std::io::Result<i32> {
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut cmd = Command::new(binary);
    cmd.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // The child is reaped by `reap` (from the thread that sees its QMP connection end), not by
    // a `Child` handle: an adopted QEMU from an earlier daemon has no such handle either.
    Ok(child.id() as i32)
}

/// Collects the exit status of our own child `pid` if it has ended; true once it is gone.
/// A pid that is not our child (adopted after a restart) is judged by /proc alone.
pub fn reap(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid only writes the status integer we pass.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r == pid {
        return true;
    }
    !metrics::alive(pid)
}

/// Waits up to `limit` for `pid` to end; true if it did.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if reap(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn kill(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: kill has no memory effects; a stale pid at worst gets ESRCH.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Kills `pid` outright and waits for it to go.
pub fn kill_and_wait(pid: i32, limit: Duration) -> bool {
    kill(pid, libc::SIGKILL);
    wait_gone(pid, limit)
}

/// Whether `pid` is the QEMU of VM `uuid`: pids are reused, and a stale pidfile must not make
/// the daemon adopt (or kill) an unrelated process.
pub fn is_qemu_of(pid: i32, uuid: &uuid::Uuid) -> bool {
    let args = metrics::cmdline(pid);
    let wanted = uuid.to_string();
    metrics::alive(pid) && args.windows(2).any(|w| w[0] == "-uuid" && w[1] == wanted)
}

/// Connects to a unix socket in `dir` by a path that is always short: through the directory's
/// descriptor under /proc/self/fd, so that deep state directories do not hit the 107-byte
/// limit of socket addresses.
pub fn connect_in(dir: &Path, name: &str) -> std::io::Result<UnixStream> {
    let full = dir.join(name);
    if full.as_os_str().len() < 100 {
        return UnixStream::connect(full);
    }
    let handle = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    UnixStream::connect(format!("/proc/self/fd/{}/{name}", handle.as_raw_fd()))
}

/// Waits for QEMU to open its QMP socket and completes the handshake. Gives up when `pid`
/// ends first (its log says why) or `limit` passes.
pub fn connect_qmp(dir: &Path, name: &str, pid: i32, limit: Duration, qmp_timeout: Duration) -> Result<Negotiated, String> {
    let deadline = Instant::now() + limit;
    loop {
        match connect_in(dir, name) {
            Ok(stream) => return Negotiated::handshake(stream, qmp_timeout).map_err(|e: QmpError| e.to_string()),
            Err(e) => {
                if !metrics::alive(pid) {
                    reap(pid);
                    return Err("QEMU exited during start".into());
                }
                if Instant::now() >= deadline {
                    return Err(format!("QEMU's QMP socket did not open in {} s: {e}", limit.as_secs()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The last lines of a log, for error messages.
pub fn log_tail(log: &Path, max_lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

/// The version QEMU reports, e.g. "10.0.2 (Debian 1:10.0.2+ds-2)"; an error if it cannot run.
pub fn version(binary: &Path) -> Result<String, String> {
    let out = Command::new(binary).arg("--version").stdin(Stdio::null()).output().map_err(|e| format!("{}: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!("{} --version failed: {}", binary.display(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("");
    Ok(first.strip_prefix("QEMU emulator version ").unwrap_or(first).trim().to_owned())
}

/// The leading "major.minor" of a version string.
pub fn parse_major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}
