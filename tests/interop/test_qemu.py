"""The qemu backend with real guests under QEMU, driven through the daemon's front doors: the
Xen-API with the xenapi SDK, and WBEM (RequestStateChange) with pywbem.

The guest (tests/guest/build: a Debian kernel and a busybox initramfs) speaks on its serial
console, which the backend appends to <state>/qemu/console/<vm-uuid>.log: "up" once booted, a
numbered heartbeat every second, its block devices when they change, and a line before it
powers off. On this kind of machine KVM opens but runs nothing, so the accelerator probe of
`--accel auto` picks TCG, and TCG is the path these tests exercise.

They skip only where QEMU cannot run at all (no qemu-system-x86_64, or the guest cannot be
built for want of Debian's archive); under CI (CI=true) either is a failure, since
scripts/setup-test-env installs QEMU.
"""

import os
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
import XenAPI

from conftest import ROOT, Daemon, make_vm

GUEST_MEMORY = 128 << 20  # the least the Debian kernel boots in
BOOT_TIMEOUT = 120  # TCG on two cores, with up to ten guests booting at once


def _unavailable(reason):
    if os.environ.get("CI"):
        pytest.fail(f"qemu backend tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def guest():
    if shutil.which("qemu-system-x86_64") is None:
        _unavailable("qemu-system-x86_64 is not installed (scripts/setup-test-env installs it)")
    build = subprocess.run([str(ROOT / "tests" / "guest" / "build")], capture_output=True, text=True)
    if build.returncode != 0:
        _unavailable(f"the test guest could not be built: {build.stderr[-2000:]}")
    out = pathlib.Path(build.stdout.strip().splitlines()[-1])
    return {"kernel": str(out / "vmlinuz"), "ramdisk": str(out / "initrd.cpio")}


@pytest.fixture(scope="module")
def qemu_daemon(tmp_path_factory, guest):
    d = Daemon(tmp_path_factory.mktemp("qemu") / "state", extra_config='hypervisor = "qemu"\nclean_shutdown_timeout_secs = 60\n').start(timeout=90)
    yield d
    try:
        x = d.session().xenapi
        for vm, rec in x.VM.get_all_records().items():
            if rec["power_state"] in ("Running", "Paused") and not rec["is_control_domain"]:
                x.VM.hard_shutdown(vm)
    finally:
        d.stop()
        # A test that failed half-way must not leave guests running behind the next one.
        for pidfile in (d.state_dir / "qemu" / "vms").glob("*/qemu.pid"):
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


@pytest.fixture
def x(qemu_daemon):
    s = qemu_daemon.session()
    yield s.xenapi
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


class Console:
    """The serial log of one VM, read from a position on."""

    def __init__(self, daemon, x, vm):
        self.path = daemon.state_dir / "qemu" / "console" / f"{x.VM.get_uuid(vm)}.log"
        self.mark()

    def text(self):
        return self.path.read_text(errors="replace") if self.path.exists() else ""

    def mark(self):
        self.pos = len(self.text())

    def since(self):
        return self.text()[self.pos:]

    def wait_for(self, pattern, timeout=BOOT_TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.since())
            if m:
                return m
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} did not appear on the console within {timeout} s; it says:\n{self.text()[-1500:]}")

    def heartbeats(self):
        return [int(n) for n in re.findall(r"XENCIM-GUEST heartbeat (\d+)", self.text())]

    def last_heartbeat(self):
        beats = self.heartbeats()
        return beats[-1] if beats else 0

    def wait_heartbeat_after(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.last_heartbeat() > n:
                return self.last_heartbeat()
            time.sleep(0.1)
        raise AssertionError(f"no heartbeat after {n} within {timeout} s:\n{self.text()[-800:]}")


def guest_vm(x, guest, name, args="", vcpus=1, vcpus_max=None, **extra):
    vm = make_vm(
        x, name, memory=GUEST_MEMORY, vcpus=vcpus_max or vcpus,
        PV_kernel=guest["kernel"], PV_ramdisk=guest["ramdisk"], PV_args=f"console=ttyS0 quiet {args}".strip(), **extra,
    )
    if vcpus_max:
        x.VM.set_VCPUs_at_startup(vm, str(vcpus))
    return vm


def qemu_pid(daemon, x, vm):
    return int((daemon.state_dir / "qemu" / "vms" / x.VM.get_uuid(vm) / "qemu.pid").read_text())


def process_gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def wait_power_state(x, vm, state, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if x.VM.get_power_state(vm) == state:
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"VM is {x.VM.get_power_state(vm)}, not {state}, after {timeout} s")


def test_guest_lifecycle_with_disk_hotplug(qemu_daemon, x, guest):
    vm = guest_vm(x, guest, "lifecycle", vcpus=1, vcpus_max=2)
    con = Console(qemu_daemon, x, vm)
    started = time.time()
    x.VM.start(vm, False, False)
    assert x.VM.get_power_state(vm) == "Running"
    con.wait_for(r"XENCIM-GUEST up")
    print(f"boot to the up line: {time.time() - started:.1f} s")
    con.wait_heartbeat_after(0)
    pid = qemu_pid(qemu_daemon, x, vm)

    # Pause stops the heartbeat; unpause brings it back where it stopped.
    x.VM.pause(vm)
    assert x.VM.get_power_state(vm) == "Paused"
    time.sleep(0.5)
    frozen = con.last_heartbeat()
    time.sleep(3)
    assert con.last_heartbeat() == frozen, "the guest kept beating while paused"
    x.VM.unpause(vm)
    assert x.VM.get_power_state(vm) == "Running"
    assert con.wait_heartbeat_after(frozen) == frozen + 1

    # A disk plugged into the running guest shows up in its /sys/block, and goes again.
    sr = x.pool.get_default_SR(x.pool.get_all()[0])
    vdi = x.VDI.create({"name_label": "hotplug", "SR": sr, "virtual_size": str(16 << 20), "type": "user",
                        "sharable": False, "read_only": False, "other_config": {}})
    vbd = x.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "1", "bootable": False, "mode": "RW", "type": "Disk",
                        "empty": False, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    con.mark()
    x.VBD.plug(vbd)
    assert x.VBD.get_currently_attached(vbd) is True
    con.wait_for(r"XENCIM-GUEST blocks vda\s", timeout=30)

    # A vCPU hot-plugged (pc machine, ACPI CPU hot-plug) is part of what suspend saves.
    x.VM.set_VCPUs_number_live(vm, "2")

    # Suspend saves the guest to a file and ends its process ...
    before = con.last_heartbeat()
    x.VM.suspend(vm)
    assert x.VM.get_power_state(vm) == "Suspended"
    image = pathlib.Path(x.VDI.get_location(x.VM.get_suspend_VDI(vm)))
    assert image.is_file() and image.stat().st_size > (1 << 20)
    assert process_gone(pid)
    saved = con.last_heartbeat()
    assert saved >= before
    time.sleep(2)
    assert con.last_heartbeat() == saved

    # ... and resume continues the same guest: the next heartbeat, no new boot.
    con.mark()
    x.VM.resume(vm, False, False)
    assert x.VM.get_power_state(vm) == "Running"
    assert not image.exists(), "the model removes the image once the guest runs again"
    assert con.wait_heartbeat_after(saved) == saved + 1
    assert "XENCIM-GUEST up" not in con.since()

    # The disk came back with the guest, and can be unplugged from it.
    con.mark()
    x.VBD.unplug(vbd)
    con.wait_for(r"XENCIM-GUEST blocks\s*\n", timeout=30)
    assert x.VBD.get_currently_attached(vbd) is False
    x.VBD.destroy(vbd)

    # Clean shutdown is the ACPI power button, which the guest answers by powering off.
    con.mark()
    x.VM.clean_shutdown(vm)
    assert x.VM.get_power_state(vm) == "Halted"
    assert "XENCIM-GUEST power-button" in con.since()
    assert process_gone(qemu_pid_or_none(qemu_daemon, x, vm) or pid)
    x.VM.destroy(vm)
    x.VDI.destroy(vdi)


def qemu_pid_or_none(daemon, x, vm):
    try:
        return qemu_pid(daemon, x, vm)
    except (FileNotFoundError, ValueError):
        return None


def test_reboots_balloon_and_nic_hotplug(qemu_daemon, x, guest):
    vm = guest_vm(x, guest, "reboots")
    con = Console(qemu_daemon, x, vm)
    x.VM.start(vm, False, False)
    con.wait_for(r"XENCIM-GUEST heartbeat 2")
    first = x.VM.get_domid(vm)

    # Balloon within the dynamic range, and a NIC in and out of the running guest.
    x.VM.set_memory_dynamic_range(vm, str(112 << 20), str(112 << 20))
    net = x.network.get_all()[0]
    vif = x.VIF.create({"VM": vm, "network": net, "device": "0", "MAC": "", "MTU": "1500", "other_config": {},
                        "qos_algorithm_type": "", "qos_algorithm_params": {}})
    x.VIF.plug(vif)
    assert x.VIF.get_currently_attached(vif) is True
    x.VIF.unplug(vif)
    assert x.VIF.get_currently_attached(vif) is False
    x.VIF.destroy(vif)

    # A hard reboot resets the guest in place: it boots again under a new domid.
    con.mark()
    x.VM.hard_reboot(vm)
    second = x.VM.get_domid(vm)
    assert x.VM.get_power_state(vm) == "Running" and second != first
    con.wait_for(r"XENCIM-GUEST up")
    con.wait_for(r"XENCIM-GUEST heartbeat 2")

    # A clean reboot is answered by the guest, then a new process boots it.
    con.mark()
    x.VM.clean_reboot(vm)
    third = x.VM.get_domid(vm)
    assert x.VM.get_power_state(vm) == "Running" and third not in (first, second)
    assert "XENCIM-GUEST power-button" in con.since()
    con.wait_for(r"XENCIM-GUEST up")
    con.wait_for(r"XENCIM-GUEST heartbeat 1\s")

    # A reboot the guest asks for (SysRq b) ends the process; actions_after_reboot = restart
    # makes the model start it again.
    con.mark()
    x.VM.send_sysrq(vm, "b")
    con.wait_for(r"XENCIM-GUEST up")
    assert x.VM.get_power_state(vm) == "Running"
    assert x.VM.get_domid(vm) not in (first, second, third)
    x.VM.hard_shutdown(vm)
    assert x.VM.get_power_state(vm) == "Halted"
    x.VM.destroy(vm)


def test_guest_initiated_poweroff_sysrq_and_kill9(qemu_daemon, x, guest):
    selfoff = guest_vm(x, guest, "heartbeats-3", args="heartbeats=3")
    sysrq = guest_vm(x, guest, "sysrq")
    killed = guest_vm(x, guest, "killed")
    consoles = {vm: Console(qemu_daemon, x, vm) for vm in (selfoff, sysrq, killed)}
    token = x.event_from(["vm"], "", 0.0)["token"]
    for vm in (selfoff, sysrq, killed):
        x.VM.start(vm, False, False)
    for vm in (sysrq, killed):
        consoles[vm].wait_for(r"XENCIM-GUEST heartbeat")

    # kill -9 of the QEMU process: the VM is Halted (actions_after_crash = destroy) within 2 s.
    pid = qemu_pid(qemu_daemon, x, killed)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    halted_at = wait_power_state(x, killed, "Halted", timeout=2)
    print(f"kill -9 to Halted: {halted_at - killed_at:.3f} s")

    # SysRq o: the guest kernel powers off at once.
    x.VM.send_sysrq(sysrq, "o")
    wait_power_state(x, sysrq, "Halted", timeout=30)

    # heartbeats=3: the guest powers itself off after its third heartbeat.
    consoles[selfoff].wait_for(r"XENCIM-GUEST heartbeats-done 3")
    wait_power_state(x, selfoff, "Halted", timeout=30)

    # Each change reached the event stream as a VM modification to Halted.
    halted = set()
    deadline = time.time() + 10
    while time.time() < deadline and halted != {selfoff, sysrq, killed}:
        batch = x.event_from(["vm"], token, 1.0)
        token = batch["token"]
        halted |= {e["ref"] for e in batch["events"] if e["operation"] == "mod" and e["snapshot"]["power_state"] == "Halted"}
    assert halted == {selfoff, sysrq, killed}
    for vm in (selfoff, sysrq, killed):
        assert x.VM.get_domid(vm) == "-1"
        x.VM.destroy(vm)


def test_daemon_restart_readopts_running_guests(qemu_daemon, guest):
    x = qemu_daemon.session().xenapi
    a, b = guest_vm(x, guest, "adopt-a"), guest_vm(x, guest, "adopt-b")
    ca, cb = Console(qemu_daemon, x, a), Console(qemu_daemon, x, b)
    x.VM.start(a, False, False)
    x.VM.start(b, False, False)
    ca.wait_for(r"XENCIM-GUEST heartbeat")
    cb.wait_for(r"XENCIM-GUEST heartbeat")
    domids = {vm: x.VM.get_domid(vm) for vm in (a, b)}
    pids = {vm: qemu_pid(qemu_daemon, x, vm) for vm in (a, b)}

    qemu_daemon.restart()
    x = qemu_daemon.session().xenapi
    for vm in (a, b):
        assert x.VM.get_power_state(vm) == "Running"
        assert x.VM.get_domid(vm) == domids[vm]
        assert qemu_pid(qemu_daemon, x, vm) == pids[vm], "the same QEMU process, not a new one"
    beat = ca.last_heartbeat()
    assert ca.wait_heartbeat_after(beat) > beat

    # Still under control: pause stops the adopted guest, unpause resumes it ...
    x.VM.pause(a)
    time.sleep(0.5)
    frozen = ca.last_heartbeat()
    time.sleep(2.5)
    assert ca.last_heartbeat() == frozen
    x.VM.unpause(a)
    assert ca.wait_heartbeat_after(frozen) == frozen + 1

    # ... a clean shutdown reaches its guest, a hard shutdown ends the other ...
    ca.mark()
    x.VM.clean_shutdown(a)
    assert "XENCIM-GUEST power-button" in ca.since()
    x.VM.hard_shutdown(b)
    for vm in (a, b):
        assert x.VM.get_power_state(vm) == "Halted"
        assert process_gone(pids[vm])
        x.VM.destroy(vm)


def test_a_dead_guest_is_halted_after_restart(qemu_daemon, guest):
    x = qemu_daemon.session().xenapi
    vm = guest_vm(x, guest, "dies-while-down")
    con = Console(qemu_daemon, x, vm)
    x.VM.start(vm, False, False)
    con.wait_for(r"XENCIM-GUEST up")
    pid = qemu_pid(qemu_daemon, x, vm)
    qemu_daemon.stop()
    os.kill(pid, signal.SIGKILL)
    qemu_daemon.start(timeout=90)
    x = qemu_daemon.session().xenapi
    assert x.VM.get_power_state(vm) == "Halted"
    assert not (qemu_daemon.state_dir / "qemu" / "vms" / x.VM.get_uuid(vm)).exists()
    x.VM.destroy(vm)


def test_ten_guests_run_at_once_and_shut_down_cleanly(qemu_daemon, x, guest):
    vms = [guest_vm(x, guest, f"fleet-{i}") for i in range(10)]
    consoles = [Console(qemu_daemon, x, vm) for vm in vms]
    started = time.time()
    for vm in vms:
        x.VM.start(vm, False, False)
    for con in consoles:
        con.wait_for(r"XENCIM-GUEST heartbeat", timeout=240)
    print(f"ten guests up in {time.time() - started:.1f} s")
    assert len([v for v in x.VM.get_all_records().values() if v["power_state"] == "Running"]) >= 10
    for con in consoles:
        con.mark()
    errors = []

    def shutdown(vm):
        try:
            x2 = qemu_daemon.session().xenapi
            x2.VM.clean_shutdown(vm)
        except XenAPI.Failure as e:
            errors.append(e.details)

    threads = [threading.Thread(target=shutdown, args=(vm,)) for vm in vms]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    for vm, con in zip(vms, consoles):
        assert x.VM.get_power_state(vm) == "Halted"
        assert "XENCIM-GUEST power-button" in con.since()
        x.VM.destroy(vm)


def test_memory_accounting_refuses_a_start_that_does_not_fit(qemu_daemon, x, guest):
    metrics = x.host.get_metrics(x.host.get_all()[0])
    total, free = int(x.host_metrics.get_memory_total(metrics)), int(x.host_metrics.get_memory_free(metrics))
    assert GUEST_MEMORY < free < total
    too_big = guest_vm(x, guest, "too-big")
    big = str(total)
    x.VM.set_memory_limits(too_big, str(16 << 20), big, big, big)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.start(too_big, False, False)
    assert e.value.details[0] == "HOST_NOT_ENOUGH_FREE_MEMORY"
    assert int(e.value.details[1]) > total > int(e.value.details[2])
    assert x.VM.get_power_state(too_big) == "Halted"
    x.VM.destroy(too_big)


def test_cim_request_state_change_drives_the_same_guest(qemu_daemon, x, guest):
    """RequestStateChange on Xen_ComputerSystem (DSP1057): 2 Enabled, 9 Quiesce, 6 Offline,
    4 Shut Down, 3 Disabled, through pywbem against the daemon's WBEM door."""
    import pywbem

    vm = guest_vm(x, guest, "cim-driven")
    uuid = x.VM.get_uuid(vm)
    con = Console(qemu_daemon, x, vm)
    conn = qemu_daemon.wbem()
    path = next(p for p in conn.EnumerateInstanceNames("Xen_ComputerSystem") if p.keybindings.get("Name") == uuid)

    def request(state, expect_power, timeout=60):
        rc, out = conn.InvokeMethod("RequestStateChange", path, RequestedState=pywbem.Uint16(state))
        assert rc in (0, 4096), (state, rc, out)
        if rc == 4096:
            assert out.get("Job") is not None
        wait_power_state(x, vm, expect_power, timeout)

    request(2, "Running")
    con.wait_for(r"XENCIM-GUEST heartbeat")
    request(9, "Paused")
    time.sleep(0.5)
    frozen = con.last_heartbeat()
    time.sleep(2.5)
    assert con.last_heartbeat() == frozen
    request(2, "Running")
    assert con.wait_heartbeat_after(frozen) == frozen + 1
    request(6, "Suspended")
    saved = con.last_heartbeat()
    con.mark()
    request(2, "Running")
    assert con.wait_heartbeat_after(saved) == saved + 1
    assert "XENCIM-GUEST up" not in con.since()
    con.mark()
    request(4, "Halted")
    assert "XENCIM-GUEST power-button" in con.since()
    request(2, "Running")
    con.wait_for(r"XENCIM-GUEST up")
    pid = qemu_pid(qemu_daemon, x, vm)
    request(3, "Halted")
    assert process_gone(pid)
    x.VM.destroy(vm)
