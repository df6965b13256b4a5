"""Helpers of the CIM provider tests (test_cim_*.py): a daemon whose finished tasks go after
a few seconds, and the steps a CIM console repeats (poll a job, change a VM's state, define a
VM). Fixtures are imported by the test modules that use them."""

import time
import uuid as uuidlib

import pytest
import pywbem

from conftest import Daemon

NS = "root/virt"
# Finished tasks (and so finished jobs) are removed this long after they end; the daemon's
# housekeeping runs every 5 seconds on top.
RETENTION = 2

JOB_COMPLETED = 7
JOB_EXCEPTION = 10


@pytest.fixture(scope="module")
def cim_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("cim"), extra_config=f"task_retention_secs = {RETENTION}\n").start()
    yield d
    d.stop()


@pytest.fixture
def conn(cim_daemon):
    return cim_daemon.wbem()


@pytest.fixture
def xapi(cim_daemon):
    s = cim_daemon.session()
    yield s.xenapi
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


def wait_job(conn, job, timeout=30):
    """Polls a job until it ends (Completed, Terminated, Killed or Exception)."""
    deadline = time.time() + timeout
    while True:
        j = conn.GetInstance(job)
        if j["JobState"] in (7, 8, 9, 10):
            return j
        assert time.time() < deadline, f"job did not end: {j.tomof()}"
        time.sleep(0.05)


def request_state(conn, vm, state):
    return conn.InvokeMethod("RequestStateChange", vm, RequestedState=pywbem.Uint16(state))


def change_state(conn, vm, state):
    """RequestStateChange that must succeed, waiting for its job when it starts one."""
    rv, out = request_state(conn, vm, state)
    assert rv in (0, 4096), (rv, out)
    if rv == 4096:
        j = wait_job(conn, out["Job"])
        assert j["JobState"] == JOB_COMPLETED, j.tomof()
    return rv


def host_path(conn):
    [h] = [p for p in conn.EnumerateInstanceNames("CIM_ComputerSystem", NS) if p.classname == "Xen_HostSystem"]
    return h


def vsms_path(conn):
    [s] = conn.EnumerateInstanceNames("CIM_VirtualSystemManagementService", NS)
    return s


def vssd(name, **props):
    i = pywbem.CIMInstance("Xen_VirtualSystemSettingData", properties={"ElementName": name, "VirtualSystemType": "DMTF:Xen:PV"})
    for k, v in props.items():
        i[k] = v
    return i


def rasd(classname, **props):
    return pywbem.CIMInstance(classname, properties=props)


def proc(n):
    return rasd("Xen_ProcResourceAllocationSettingData", ResourceType=pywbem.Uint16(3), VirtualQuantity=pywbem.Uint64(n))


def mem(mib, limit=None):
    r = rasd("Xen_MemResourceAllocationSettingData", ResourceType=pywbem.Uint16(4), VirtualQuantity=pywbem.Uint64(mib),
             AllocationUnits="byte*2^20")
    if limit is not None:
        r["Limit"] = pywbem.Uint64(limit)
    return r


def disk(mib, device=None, **props):
    r = rasd("Xen_DiskResourceAllocationSettingData", ResourceType=pywbem.Uint16(17), VirtualQuantity=pywbem.Uint64(mib),
             AllocationUnits="byte*2^20", **props)
    if device:
        r["VirtualDevice"] = device
    return r


def nic(mac=None, **props):
    r = rasd("Xen_NetResourceAllocationSettingData", ResourceType=pywbem.Uint16(10), **props)
    if mac:
        r["Address"] = mac
    return r


def random_mac():
    b = uuidlib.uuid4().bytes
    return "00:16:3e:%02x:%02x:%02x" % (b[0] & 0x7F, b[1], b[2])


def define(conn, name, resources, **vssd_props):
    """DefineSystem that must succeed; returns the new VM's path."""
    rv, out = conn.InvokeMethod("DefineSystem", vsms_path(conn), SystemSettings=vssd(name, **vssd_props), ResourceSettings=resources)
    if rv == 4096:
        j = wait_job(conn, out["Job"])
        assert j["JobState"] == JOB_COMPLETED, j.tomof()
        [vm] = conn.AssociatorNames(out["Job"], AssocClass="CIM_AffectedJobElement")
        return vm
    assert rv == 0, (rv, out)
    return out["ResultingSystem"]


def uuid_of(path):
    return path.keybindings["Name"]


def destroy(conn, vm):
    """Shuts a VM down hard if needed and destroys it."""
    state = conn.GetInstance(vm)["EnabledState"]
    if state != 3:
        change_state(conn, vm, 3)
    rv, out = conn.InvokeMethod("DestroySystem", vsms_path(conn), AffectedSystem=vm)
    assert rv == 0, (rv, out)


def mentions(paths, uuid):
    return [p for p in paths if uuid in str(p)]
