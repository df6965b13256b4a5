"""The VM power-state machine through the xenapi SDK: every legal transition, every illegal
one with xapi's exact error, and allowed_operations telling the truth."""

import time

import pytest
import XenAPI

from conftest import make_vm

ALL_STATES = ["Halted", "Running", "Paused", "Suspended"]


def state(x, vm):
    return x.VM.get_power_state(vm)


def test_every_legal_transition(session):
    x = session.xenapi
    vm = make_vm(x, "lifecycle")
    uuid = x.VM.get_uuid(vm)
    assert state(x, vm) == "Halted"
    x.VM.start(vm, False, False)
    assert state(x, vm) == "Running"
    domid = int(x.VM.get_domid(vm))
    assert domid > 0
    assert x.VM.get_resident_on(vm) == x.host.get_all()[0]
    x.VM.pause(vm)
    assert state(x, vm) == "Paused"
    x.VM.unpause(vm)
    assert state(x, vm) == "Running"
    x.VM.suspend(vm)
    assert state(x, vm) == "Suspended"
    assert x.VM.get_domid(vm) == "-1"
    suspend_vdi = x.VM.get_suspend_VDI(vm)
    assert x.VDI.get_type(suspend_vdi) == "suspend"
    x.VM.resume(vm, False, False)
    assert state(x, vm) == "Running"
    assert x.VM.get_uuid(vm) == uuid
    assert x.VM.get_suspend_VDI(vm) == "OpaqueRef:NULL"
    assert suspend_vdi not in x.VDI.get_all()
    x.VM.clean_reboot(vm)
    assert state(x, vm) == "Running"
    x.VM.hard_reboot(vm)
    assert state(x, vm) == "Running"
    assert int(x.VM.get_domid(vm)) > domid
    x.VM.clean_shutdown(vm)
    assert state(x, vm) == "Halted"
    # start paused, then hard shutdown from Paused
    x.VM.start(vm, True, False)
    assert state(x, vm) == "Paused"
    x.VM.hard_shutdown(vm)
    assert state(x, vm) == "Halted"
    # hard shutdown from Suspended discards the image
    x.VM.start(vm, False, False)
    x.VM.suspend(vm)
    image = x.VM.get_suspend_VDI(vm)
    x.VM.hard_shutdown(vm)
    assert state(x, vm) == "Halted"
    assert image not in x.VDI.get_all()
    # resume paused
    x.VM.start(vm, False, False)
    x.VM.suspend(vm)
    x.VM.resume(vm, True, False)
    assert state(x, vm) == "Paused"
    x.VM.shutdown(vm)
    assert state(x, vm) == "Halted"
    x.VM.destroy(vm)


def test_xend_two_argument_start_and_resume(session):
    x = session.xenapi
    vm = make_vm(x, "xend-arity")
    x.VM.start(vm, False)
    x.VM.suspend(vm)
    x.VM.resume(vm, False)
    assert state(x, vm) == "Running"
    x.VM.hard_shutdown(vm)
    x.VM.destroy(vm)


ILLEGAL = [
    # (state to reach, operation, args, expected allowed list)
    ("Halted", "pause", (), "running"),
    ("Halted", "unpause", (), "paused"),
    ("Halted", "suspend", (), "running"),
    ("Halted", "resume", (False, False), "suspended"),
    ("Halted", "clean_shutdown", (), "running"),
    ("Halted", "hard_shutdown", (), "paused, suspended, running"),
    ("Halted", "clean_reboot", (), "running"),
    ("Halted", "hard_reboot", (), "paused, running"),
    ("Running", "start", (False, False), "halted"),
    ("Running", "unpause", (), "paused"),
    ("Running", "resume", (False, False), "suspended"),
    ("Running", "destroy", (), "halted, suspended"),
    ("Paused", "pause", (), "running"),
    ("Paused", "suspend", (), "running"),
    ("Paused", "clean_shutdown", (), "running"),
    ("Paused", "start", (False, False), "halted"),
    ("Suspended", "start", (False, False), "halted"),
    ("Suspended", "pause", (), "running"),
    ("Suspended", "unpause", (), "paused"),
    ("Suspended", "clean_reboot", (), "running"),
    ("Suspended", "hard_reboot", (), "paused, running"),
]


def reach(x, vm, target):
    if target == "Halted":
        return
    x.VM.start(vm, target == "Paused", False)
    if target == "Suspended":
        x.VM.suspend(vm)


@pytest.mark.parametrize("target,op,args,expected", ILLEGAL)
def test_illegal_transition(session, target, op, args, expected):
    x = session.xenapi
    vm = make_vm(x, f"illegal-{op}")
    reach(x, vm, target)
    assert state(x, vm) == target
    with pytest.raises(XenAPI.Failure) as e:
        getattr(x.VM, op)(vm, *args)
    assert e.value.details == ["VM_BAD_POWER_STATE", vm, expected, target.lower()]
    assert state(x, vm) == target
    assert op not in x.VM.get_allowed_operations(vm)
    x.VM.power_state_reset(vm)
    x.VM.destroy(vm)


OPS = {
    "start": (False, False), "pause": (), "unpause": (), "suspend": (), "resume": (False, False),
    "clean_shutdown": (), "hard_shutdown": (), "clean_reboot": (), "hard_reboot": (),
}


@pytest.mark.parametrize("target", ALL_STATES)
def test_allowed_operations_match_what_succeeds(session, target):
    """For each state, every operation listed in allowed_operations succeeds and every other
    one fails with VM_BAD_POWER_STATE."""
    x = session.xenapi
    for op, args in OPS.items():
        vm = make_vm(x, f"allowed-{target}-{op}")
        reach(x, vm, target)
        allowed = x.VM.get_allowed_operations(vm)
        if op in allowed:
            getattr(x.VM, op)(vm, *args)
        else:
            with pytest.raises(XenAPI.Failure) as e:
                getattr(x.VM, op)(vm, *args)
            assert e.value.details[0] == "VM_BAD_POWER_STATE"
        x.VM.power_state_reset(vm)
        x.VM.destroy(vm)


def test_halted_vm_is_found_by_name_and_deleted(session):
    """The classic bug: a VM defined through the API but never started must be as findable
    and deletable as a running one."""
    x = session.xenapi
    vm = make_vm(x, "defined-never-started")
    assert x.VM.get_by_name_label("defined-never-started") == [vm]
    x.VM.destroy(vm)
    assert x.VM.get_by_name_label("defined-never-started") == []
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.get_record(vm)
    assert e.value.details[0] == "HANDLE_INVALID"


def test_destroy_of_running_vm_is_refused(session):
    x = session.xenapi
    vm = make_vm(x, "running-destroy")
    x.VM.start(vm, False, False)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.destroy(vm)
    assert e.value.details == ["VM_BAD_POWER_STATE", vm, "halted, suspended", "running"]
    assert vm in x.VM.get_all()
    x.VM.hard_shutdown(vm)
    x.VM.destroy(vm)


def test_dom0_exists_and_refuses_power_operations(session):
    x = session.xenapi
    dom0 = x.VM.get_by_uuid("00000000-0000-0000-0000-000000000000")
    rec = x.VM.get_record(dom0)
    assert rec["is_control_domain"] is True
    assert rec["domid"] == "0"
    assert rec["power_state"] == "Running"
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.clean_shutdown(dom0)
    assert e.value.details == ["OPERATION_NOT_ALLOWED", "This operation is not allowed on dom0"]


def test_templates_refuse_start(session):
    x = session.xenapi
    vm = make_vm(x, "a-template")
    x.VM.set_is_a_template(vm, True)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.start(vm, False, False)
    assert e.value.details == ["VM_IS_TEMPLATE", vm, "start"]
    clone = x.VM.clone(vm, "from-template")
    x.VM.set_is_a_template(clone, False)
    x.VM.start(clone, False, False)
    assert state(x, clone) == "Running"
    x.VM.hard_shutdown(clone)
    x.VM.destroy(clone)
    x.VM.destroy(vm)


def test_memory_accounting_refuses_a_vm_that_does_not_fit(session):
    x = session.xenapi
    huge = make_vm(x, "too-big", memory=1 << 40)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.start(huge, False, False)
    assert e.value.details[0] == "HOST_NOT_ENOUGH_FREE_MEMORY"
    assert int(e.value.details[1]) == 1 << 40
    assert state(x, huge) == "Halted"
    x.VM.destroy(huge)


def test_memory_and_vcpu_settings(session):
    x = session.xenapi
    vm = make_vm(x, "settings", memory=512 << 20, vcpus=1)
    x.VM.set_memory_limits(vm, str(64 << 20), str(1 << 30), str(256 << 20), str(512 << 20))
    rec = x.VM.get_record(vm)
    assert (rec["memory_static_min"], rec["memory_static_max"], rec["memory_dynamic_min"], rec["memory_dynamic_max"]) == (
        str(64 << 20), str(1 << 30), str(256 << 20), str(512 << 20))
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.set_memory_dynamic_range(vm, str(2 << 30), str(3 << 30))
    assert e.value.details[0] == "MEMORY_CONSTRAINT_VIOLATION"
    x.VM.set_memory_static_range(vm, str(32 << 20), str(2 << 30))
    x.VM.set_VCPUs_max(vm, "4")
    x.VM.set_VCPUs_at_startup(vm, "2")
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.set_VCPUs_at_startup(vm, "5")
    assert e.value.details[0] == "INVALID_VALUE"
    x.VM.start(vm, False, False)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.set_VCPUs_max(vm, "8")
    assert e.value.details[:2] == ["VM_BAD_POWER_STATE", vm]
    x.VM.set_VCPUs_number_live(vm, "3")
    assert x.VM_metrics.get_VCPUs_number(x.VM.get_metrics(vm)) == "3"
    x.VM.set_memory_dynamic_range(vm, str(128 << 20), str(384 << 20))
    assert x.VM_metrics.get_memory_actual(x.VM.get_metrics(vm)) == str(384 << 20)
    x.VM.hard_shutdown(vm)
    x.VM.destroy(vm)


def test_clone_copy_snapshot(session):
    x = session.xenapi
    vm = make_vm(x, "original")
    sr = x.pool.get_default_SR(x.pool.get_all()[0])
    vdi = x.VDI.create({"name_label": "disk", "SR": sr, "virtual_size": str(64 << 20), "type": "user",
                        "sharable": False, "read_only": False, "other_config": {}})
    x.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk",
                  "empty": False, "other_config": {}})
    clone = x.VM.clone(vm, "the-clone")
    copy = x.VM.copy(vm, "the-copy", sr)
    for new, name in [(clone, "the-clone"), (copy, "the-copy")]:
        rec = x.VM.get_record(new)
        assert rec["name_label"] == name and rec["uuid"] != x.VM.get_uuid(vm)
        (vbd,) = rec["VBDs"]
        assert x.VBD.get_VDI(vbd) != vdi
    x.VM.start(vm, False, False)
    snap = x.VM.snapshot(vm, "snap")
    rec = x.VM.get_record(snap)
    assert rec["is_a_snapshot"] is True and rec["is_a_template"] is True and rec["snapshot_of"] == vm
    assert snap in x.VM.get_snapshots(vm)
    x.VM.hard_shutdown(vm)
    for v in [snap, clone, copy, vm]:
        x.VM.destroy(v)


def test_async_start_returns_a_task_that_succeeds(session):
    x = session.xenapi
    vm = make_vm(x, "async")
    task = x.Async.VM.start(vm, False, False)
    assert task.startswith("OpaqueRef:")
    deadline = time.time() + 30
    while x.task.get_status(task) == "pending" and time.time() < deadline:
        time.sleep(0.05)
    rec = x.task.get_record(task)
    assert rec["status"] == "success"
    assert rec["name_label"] == "Async.VM.start"
    assert rec["result"] in ("<value></value>", "<value><string></string></value>", "")
    assert state(x, vm) == "Running"
    x.task.destroy(task)
    clone_task = x.Async.VM.clone(vm, "async-clone")
    while x.task.get_status(clone_task) == "pending":
        time.sleep(0.05)
    assert x.task.get_status(clone_task) == "failure"
    assert x.task.get_error_info(clone_task) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    x.VM.hard_shutdown(vm)
    task = x.Async.VM.clone(vm, "async-clone")
    while x.task.get_status(task) == "pending":
        time.sleep(0.05)
    assert x.task.get_status(task) == "success"
    new_vm = x.task.get_result(task).replace("<value>", "").replace("</value>", "").replace("<string>", "").replace("</string>", "")
    assert x.VM.get_name_label(new_vm) == "async-clone"
    for v in [new_vm, vm]:
        x.VM.destroy(v)


def test_guest_initiated_poweroff_reboot_and_crash(session):
    """The sim guest answers magic SysRq like Linux: o powers off, b reboots, c crashes."""
    x = session.xenapi

    def wait_for(pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return True
            time.sleep(0.05)
        return False

    vm = make_vm(x, "guest-actions", actions_after_shutdown="destroy", actions_after_reboot="restart", actions_after_crash="restart")
    x.VM.start(vm, False, False)
    domid = int(x.VM.get_domid(vm))
    x.VM.send_sysrq(vm, "b")
    assert wait_for(lambda: int(x.VM.get_domid(vm)) > domid and state(x, vm) == "Running")
    domid = int(x.VM.get_domid(vm))
    x.VM.send_sysrq(vm, "c")
    assert wait_for(lambda: int(x.VM.get_domid(vm)) > domid and state(x, vm) == "Running")
    x.VM.send_sysrq(vm, "o")
    assert wait_for(lambda: state(x, vm) == "Halted")
    x.VM.set_actions_after_crash(vm, "destroy")
    x.VM.start(vm, False, False)
    x.VM.send_sysrq(vm, "c")
    assert wait_for(lambda: state(x, vm) == "Halted")
    x.VM.destroy(vm)
