#!/usr/bin/env python3
"""qemu backend benchmark: prints figures, asserts nothing.

  bench/run-qemu             (builds the release binary and the test guest, then runs this)

Measures, with real guests (tests/guest/build, 128 MiB each) through the Xen-API door:
- time from VM.start to the guest's "up" line on its serial console (one guest alone);
- VM.suspend and VM.resume times, and the size of the suspend image;
- QEMU's resident memory per idle guest (several idle guests, after they settle);
- how many such idle guests the host holds before memory accounting refuses a start,
  computed from host_metrics.memory_free and one guest's reservation (VM_metrics and the
  backend's accounting), not by starting hundreds.
Also prints the accelerator the probe chose, since every figure depends on it.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("XENCIM_BIN", str(ROOT / "target" / "release" / "xencim"))
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from conftest import Daemon, make_vm  # noqa: E402

GUEST_MEMORY = 128 << 20
IDLE_GUESTS = int(os.environ.get("QEMU_BENCH_IDLE_GUESTS", "4"))
ROUNDS = int(os.environ.get("QEMU_BENCH_ROUNDS", "3"))


def guest_files():
    out = subprocess.run([str(ROOT / "tests" / "guest" / "build")], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return pathlib.Path(out) / "vmlinuz", pathlib.Path(out) / "initrd.cpio"


def console(daemon, x, vm):
    return daemon.state_dir / "qemu" / "console" / f"{x.VM.get_uuid(vm)}.log"


def wait_text(path, pos, needle, timeout=180):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if path.exists() and needle in path.read_text(errors="replace")[pos:]:
            return time.perf_counter()
        time.sleep(0.02)
    raise RuntimeError(f"{needle!r} not on {path} after {timeout} s")


def size(path):
    """A position in the console's text as read_text gives it (QEMU writes CRLF line ends,
    which read_text turns into one character)."""
    return len(path.read_text(errors="replace")) if path.exists() else 0


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pid_of(daemon, x, vm):
    return int((daemon.state_dir / "qemu" / "vms" / x.VM.get_uuid(vm) / "qemu.pid").read_text())


def fmt(values, unit="s"):
    return f"median {statistics.median(values):.2f} {unit} (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def main():
    kernel, ramdisk = guest_files()
    with tempfile.TemporaryDirectory(prefix="xencim-qemu-bench-") as tmp:
        d = Daemon(pathlib.Path(tmp) / "state", extra_config='hypervisor = "qemu"\n').start(timeout=90)
        try:
            x = d.session().xenapi
            probe = json.loads((d.state_dir / "qemu" / "accel-probe.json").read_text()) if (d.state_dir / "qemu" / "accel-probe.json").exists() else {}
            host = x.host.get_all()[0]
            sw = x.host.get_software_version(host)
            print(f"host: {sw.get('hypervisor', '')} {sw.get('hypervisor_version', '')}; accel probe: {probe.get('reason', 'not run (configured)')}")
            mk = lambda name: make_vm(x, name, memory=GUEST_MEMORY, PV_kernel=str(kernel), PV_ramdisk=str(ramdisk), PV_args="console=ttyS0 quiet")

            # Boot, suspend and resume of one guest alone, a few rounds.
            vm = mk("bench-one")
            log = console(d, x, vm)
            boots, suspends, resumes, images = [], [], [], []
            for _ in range(ROUNDS):
                pos = size(log)
                t0 = time.perf_counter()
                x.VM.start(vm, False, False)
                boots.append(wait_text(log, pos, "XENCIM-GUEST up") - t0)
                wait_text(log, pos, "XENCIM-GUEST heartbeat 2")
                t0 = time.perf_counter()
                x.VM.suspend(vm)
                suspends.append(time.perf_counter() - t0)
                images.append(pathlib.Path(x.VDI.get_location(x.VM.get_suspend_VDI(vm))).stat().st_size / (1 << 20))
                pos = size(log)
                t0 = time.perf_counter()
                x.VM.resume(vm, False, False)
                resumes.append(time.perf_counter() - t0)
                t_beat = wait_text(log, pos, "XENCIM-GUEST heartbeat") - t0
                x.VM.hard_shutdown(vm)
            print(f"VM.start to the guest's up line: {fmt(boots)}")
            print(f"VM.suspend (128 MiB guest, image {statistics.median(images):.0f} MiB): {fmt(suspends)}")
            print(f"VM.resume: {fmt(resumes)}; first heartbeat after resume {t_beat:.2f} s after the call")

            # Resident memory of idle guests, once booted and settled.
            idle = [mk(f"bench-idle-{i}") for i in range(IDLE_GUESTS)]
            marks = [(console(d, x, v), size(console(d, x, v))) for v in idle]
            for v in idle:
                x.VM.start(v, False, False)
            for path, pos in marks:
                wait_text(path, pos, "XENCIM-GUEST heartbeat 5", timeout=300)
            time.sleep(5)
            rss = [rss_mib(pid_of(d, x, v)) for v in idle]
            print(f"QEMU RSS per idle guest (128 MiB guest, TCG): {fmt(rss, 'MiB')}")

            # How many more such guests fit, from the accounting.
            time.sleep(6)  # host_metrics.memory_free is refreshed every 5 s
            metrics = x.host.get_metrics(host)
            total = int(x.host_metrics.get_memory_total(metrics))
            free = int(x.host_metrics.get_memory_free(metrics))
            per_vm = json.loads((d.state_dir / "qemu" / "vms" / x.VM.get_uuid(idle[0]) / "domain.json").read_text())
            reservation = per_vm["record"]["memory_static_max"] + (32 << 20) + ((64 << 20) if probe.get("accel", "tcg") == "tcg" else 0)
            fits = free // reservation
            print(
                f"memory accounting: host {total / (1 << 30):.1f} GiB, free for guests {free / (1 << 30):.2f} GiB with {IDLE_GUESTS} running; "
                f"one 128 MiB guest reserves {reservation >> 20} MiB -> {fits} more fit, {fits + IDLE_GUESTS} idle guests in all"
            )
            for v in idle:
                x.VM.clean_shutdown(v)
        finally:
            d.stop()


if __name__ == "__main__":
    main()
