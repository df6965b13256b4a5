"""The virtualization providers through sblim wbemcli (Debian package sblim-wbemcli): `ei` of
Xen_ComputerSystem and `cm` RequestStateChange, `gi`, `ain` and `cm` DestroySystem, each checked by
exit code and output."""

import os
import re
import shutil
import subprocess
import time

import pytest

from cimhelpers import cim_daemon, define, mem, proc, uuid_of, wait_job  # noqa: F401

WBEMCLI = shutil.which("wbemcli")


@pytest.fixture(scope="module", autouse=True)
def need_wbemcli():
    # Not a skip: scripts/setup-test-env installs sblim-wbemcli, so its absence is a failure.
    assert WBEMCLI, "wbemcli is missing: run scripts/setup-test-env (installs sblim-wbemcli)"


def run(*args, fails=False):
    """wbemcli, which must succeed (exit 0), or fail (a non-zero exit; its value depends on the
    operation, not on the CIM status, so the status is read from the message)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    r = subprocess.run([WBEMCLI, *args], capture_output=True, text=True, timeout=120, env=env)
    ok = r.returncode != 0 if fails else r.returncode == 0
    assert ok, f"wbemcli {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def base(d):
    return f"http://admin:{d.admin_password}@{d.listeners['cim_http']}/root/virt"


def vm_uri(d, uuid):
    return f'{base(d)}:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="{uuid}"'


def test_ei_and_cm_request_state_change(cim_daemon):
    d = cim_daemon
    conn = d.wbem()
    vm = define(conn, "wbemcli-vm", [proc(1), mem(128)])
    uuid = uuid_of(vm)

    out = run("ei", f"{base(d)}:Xen_ComputerSystem").stdout
    [line] = [l for l in out.splitlines() if f'Name="{uuid}"' in l.split(" ", 1)[0]]
    assert 'ElementName="wbemcli-vm"' in line and "EnabledState=3," in line and f'UUID="{uuid}"' in line, line
    assert 'ElementName="Domain-0"' in out

    # Start: a job, which wbemcli prints as the Job reference; the VM runs once it completes.
    out = run("cm", vm_uri(d, uuid), "RequestStateChange.RequestedState=2").stdout
    m = re.search(r'RequestStateChange: 4096, Job \(reference\): (\S+):Xen_ConcreteJob\.InstanceID="([0-9a-f-]+)"', out)
    assert m, out
    job = f'{base(d)}:Xen_ConcreteJob.InstanceID="{m.group(2)}"'
    deadline = time.time() + 30
    while "JobState=7" not in run("gi", job).stdout:
        assert time.time() < deadline
        time.sleep(0.1)
    assert "EnabledState=2," in run("gi", vm_uri(d, uuid)).stdout

    # Pause finishes within the call: 0.
    out = run("cm", vm_uri(d, uuid), "RequestStateChange.RequestedState=9").stdout
    assert out.strip().endswith("RequestStateChange: 0"), out
    assert "EnabledState=9," in run("gi", vm_uri(d, uuid)).stdout
    devices = run("ain", "-ac", "Xen_SystemDevice", vm_uri(d, uuid)).stdout
    assert f'Xen_Processor.CreationClassName="Xen_Processor",DeviceID="{uuid}/0"' in devices
    assert f'DeviceID="{uuid}/mem"' in devices

    # Reboot from paused is not a transition the model allows: 4097 and a job with the reason.
    out = run("cm", vm_uri(d, uuid), "RequestStateChange.RequestedState=10").stdout
    m = re.search(r'RequestStateChange: 4097, Job \(reference\): \S+\.InstanceID="([0-9a-f-]+)"', out)
    assert m, out
    assert "VM_BAD_POWER_STATE" in run("gi", f'{base(d)}:Xen_ConcreteJob.InstanceID="{m.group(1)}"').stdout

    # A state that is not a state: CIM_ERR_INVALID_PARAMETER with the reason.
    r = run("cm", vm_uri(d, uuid), "RequestStateChange.RequestedState=77", fails=True)
    assert "CIM_ERR_INVALID_PARAMETER" in r.stderr and "RequestedState 77" in r.stderr

    # Hard shutdown, then DestroySystem by wbemcli as well.
    assert run("cm", vm_uri(d, uuid), "RequestStateChange.RequestedState=3").stdout.strip().endswith("RequestStateChange: 0")
    host = conn.EnumerateInstanceNames("Xen_HostSystem")[0].keybindings["Name"]
    vsms = (f'{base(d)}:Xen_VirtualSystemManagementService.CreationClassName="Xen_VirtualSystemManagementService",'
            f'Name="Management Service",SystemCreationClassName="Xen_HostSystem",SystemName="{host}"')
    affected = f'root/virt:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="{uuid}"'
    out = run("cm", vsms, f"DestroySystem.AffectedSystem={affected}").stdout
    assert out.strip().endswith("DestroySystem: 0"), out
    r = run("gi", vm_uri(d, uuid), fails=True)
    assert "CIM_ERR_NOT_FOUND" in r.stderr



def test_define_and_start_with_wbemcli_as_documented(cim_daemon):
    """The wbemcli sequence of docs/cim-example.md: DefineSystem with MOF text (one instance per
    array parameter: wbemcli drops a second element that contains '='), start, poll the job,
    read the VM and its settings, hard shutdown, DestroySystem."""
    d = cim_daemon
    conn = d.wbem()
    host = conn.EnumerateInstanceNames("Xen_HostSystem")[0].keybindings["Name"]
    vsms = (f'{base(d)}:Xen_VirtualSystemManagementService.CreationClassName="Xen_VirtualSystemManagementService",'
            f'Name="Management Service",SystemCreationClassName="Xen_HostSystem",SystemName="{host}"')
    system = 'instance of Xen_VirtualSystemSettingData { ElementName = "cli-vm"; VirtualSystemType = "DMTF:Xen:PV"; Kernel = "/boot/vmlinuz"; };'
    memory = 'instance of Xen_MemResourceAllocationSettingData { ResourceType = 4; VirtualQuantity = 512; AllocationUnits = "byte*2^20"; };'
    out = run("cm", vsms, f'DefineSystem.SystemSettings="{system}",ResourceSettings="{memory}"').stdout
    m = re.search(r'DefineSystem: 0, ResultingSystem \(reference\): \S+Name="([0-9a-f-]+)"', out)
    assert m, out
    uuid = m.group(1)
    vm = vm_uri(d, uuid)

    out = run("cm", vm, "RequestStateChange.RequestedState=2").stdout
    m = re.search(r'RequestStateChange: 4096, Job \(reference\): \S+\.InstanceID="([0-9a-f-]+)"', out)
    assert m, out
    deadline = time.time() + 30
    while "JobState=7" not in run("gi", f'{base(d)}:Xen_ConcreteJob.InstanceID="{m.group(1)}"').stdout:
        assert time.time() < deadline
        time.sleep(0.1)
    info = run("gi", vm).stdout
    assert 'ElementName="cli-vm"' in info and "EnabledState=2," in info, info
    settings = run("ai", "-ac", "Xen_VirtualSystemSettingDataComponent", f'{base(d)}:Xen_VirtualSystemSettingData.InstanceID="Xen:{uuid}"').stdout
    assert f'InstanceID="{uuid}/mem"' in settings and "VirtualQuantity=512," in settings, settings
    assert f'InstanceID="{uuid}/proc"' in settings

    assert run("cm", vm, "RequestStateChange.RequestedState=3").stdout.strip().endswith("RequestStateChange: 0")
    affected = f'root/virt:Xen_ComputerSystem.CreationClassName="Xen_ComputerSystem",Name="{uuid}"'
    assert run("cm", vsms, f"DestroySystem.AffectedSystem={affected}").stdout.strip().endswith("DestroySystem: 0")
