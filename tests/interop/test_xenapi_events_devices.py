"""Events, maps and devices through the xenapi SDK."""

import threading
import time

import pytest
import XenAPI

from conftest import make_vm


def test_event_from_empty_token_is_a_snapshot(session):
    x = session.xenapi
    vm = make_vm(x, "snapshot-me")
    batch = x.event_from(["vm"], "", 1.0)
    ops = {(e["ref"], e["operation"]) for e in batch["events"]}
    assert (vm, "add") in ops
    assert all(e["class"] == "vm" for e in batch["events"])
    assert int(batch["valid_ref_counts"]["vm"]) == len(x.VM.get_all())
    snapshot = next(e["snapshot"] for e in batch["events"] if e["ref"] == vm)
    assert snapshot["name_label"] == "snapshot-me"
    x.VM.destroy(vm)


def test_event_from_add_mod_del_in_order(session):
    x = session.xenapi
    token = x.event_from(["vm"], "", 0.0)["token"]
    vm = make_vm(x, "evented")
    x.VM.set_name_label(vm, "evented-2")
    x.VM.destroy(vm)
    seen = []
    deadline = time.time() + 10
    while time.time() < deadline and not any(op == "del" for op in seen):
        batch = x.event_from(["vm"], token, 5.0)
        token = batch["token"]
        seen += [e["operation"] for e in batch["events"] if e["ref"] == vm]
    # Coalesced like xapi: the object was created and deleted after the token.
    assert seen[-1] == "del"
    token = x.event_from(["vm"], "", 0.0)["token"]
    vm = make_vm(x, "evented-3")
    batch = x.event_from(["vm"], token, 5.0)
    assert [e["operation"] for e in batch["events"] if e["ref"] == vm] == ["add"]
    token = batch["token"]
    x.VM.set_name_label(vm, "evented-4")
    batch = x.event_from(["vm"], token, 5.0)
    mods = [e for e in batch["events"] if e["ref"] == vm]
    assert [e["operation"] for e in mods] == ["mod"]
    assert mods[0]["snapshot"]["name_label"] == "evented-4"
    token = batch["token"]
    x.VM.destroy(vm)
    batch = x.event_from(["vm"], token, 5.0)
    assert [e["operation"] for e in batch["events"] if e["ref"] == vm] == ["del"]


def test_event_from_blocks_until_timeout_or_change(daemon, session):
    x = session.xenapi
    waiter = daemon.session().xenapi
    token = x.event_from(["vm"], "", 0.0)["token"]
    started = time.time()
    batch = x.event_from(["vm"], token, 1.0)
    assert batch["events"] == []
    assert time.time() - started >= 0.9
    result = {}

    def wait():
        result["batch"] = waiter.event_from(["vm"], token, 20.0)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    vm = make_vm(x, "wakes-the-waiter")
    t.join(10)
    assert not t.is_alive()
    assert any(e["ref"] == vm for e in result["batch"]["events"])
    x.VM.destroy(vm)


def test_event_bad_token_and_subscription(session):
    x = session.xenapi
    with pytest.raises(XenAPI.Failure) as e:
        x.event_from(["vm"], "not-a-token", 0.0)
    assert e.value.details == ["EVENT_FROM_TOKEN_PARSE_FAILURE", "not-a-token"]
    with pytest.raises(XenAPI.Failure) as e:
        x.event_from(["nonsense"], "", 0.0)
    assert e.value.details == ["EVENT_SUBSCRIPTION_PARSE_FAILURE", "nonsense"]


def test_legacy_register_next(daemon):
    s = daemon.session()
    x = s.xenapi
    with pytest.raises(XenAPI.Failure) as e:
        x.event.next()
    assert e.value.details[0] == "SESSION_NOT_REGISTERED"
    x.event.register(["vm"])
    vm = make_vm(x, "legacy-events")
    events = x.event.next()
    assert any(ev["ref"] == vm and ev["operation"] == "add" and ev["class"] == "vm" for ev in events)
    x.VM.destroy(vm)
    events = x.event.next()
    assert any(ev["ref"] == vm and ev["operation"] == "del" for ev in events)
    x.event.unregister(["vm"])


def test_a_slow_event_next_client_gets_events_lost(tmp_path):
    from conftest import Daemon
    d = Daemon(tmp_path / "state", extra_config="event_queue_limit = 5\n").start()
    try:
        x = d.session().xenapi
        x.event.register(["vm"])
        for i in range(8):
            make_vm(x, f"flood-{i}")
        with pytest.raises(XenAPI.Failure) as e:
            x.event.next()
        assert e.value.details == ["EVENTS_LOST"]
        # After EVENTS_LOST the client resynchronises and the queue works again.
        vm = make_vm(x, "after-loss")
        assert any(ev["ref"] == vm for ev in x.event.next())
    finally:
        d.stop()


def test_other_config_round_trip(session):
    x = session.xenapi
    vm = make_vm(x, "maps")
    x.VM.add_to_other_config(vm, "owner", "alice")
    assert x.VM.get_other_config(vm) == {"owner": "alice"}
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.add_to_other_config(vm, "owner", "bob")
    assert e.value.details == ["MAP_DUPLICATE_KEY", "VM", "other_config", x.VM.get_uuid(vm), "owner"]
    x.VM.remove_from_other_config(vm, "owner")
    assert x.VM.get_other_config(vm) == {}
    x.VM.add_tags(vm, "blue")
    x.VM.add_tags(vm, "blue")
    assert x.VM.get_tags(vm) == ["blue"]
    x.VM.remove_tags(vm, "blue")
    assert x.VM.get_tags(vm) == []
    x.VM.destroy(vm)


def test_devices_plug_into_a_running_vm(session):
    x = session.xenapi
    vm = make_vm(x, "devices")
    sr = x.pool.get_default_SR(x.pool.get_all()[0])
    net = x.network.create({"name_label": "test-net", "name_description": "", "MTU": "1500", "other_config": {}})
    assert x.network.get_bridge(net)
    vdi = x.VDI.create({"name_label": "d0", "SR": sr, "virtual_size": str(32 << 20), "type": "user",
                        "sharable": False, "read_only": False, "other_config": {}})
    assert vdi in x.SR.get_VDIs(sr)
    vbd0 = x.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk",
                         "empty": False, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    assert x.VBD.get_device(vbd0) == "xvda"
    with pytest.raises(XenAPI.Failure) as e:
        x.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": False, "mode": "RW", "type": "Disk",
                      "empty": False, "other_config": {}})
    assert e.value.details[0] == "DEVICE_ALREADY_EXISTS"
    x.VM.start(vm, False, False)
    assert x.VBD.get_currently_attached(vbd0) is True
    vdi2 = x.VDI.create({"name_label": "d1", "SR": sr, "virtual_size": str(16 << 20), "type": "user",
                         "sharable": False, "read_only": False, "other_config": {}})
    vbd1 = x.VBD.create({"VM": vm, "VDI": vdi2, "userdevice": "1", "bootable": False, "mode": "RW", "type": "Disk",
                         "empty": False, "other_config": {}})
    assert x.VBD.get_currently_attached(vbd1) is False
    assert "1" not in x.VM.get_allowed_VBD_devices(vm)
    x.VBD.plug(vbd1)
    assert x.VBD.get_currently_attached(vbd1) is True
    with pytest.raises(XenAPI.Failure) as e:
        x.VBD.plug(vbd1)
    assert e.value.details[0] == "DEVICE_ALREADY_ATTACHED"
    vif = x.VIF.create({"VM": vm, "network": net, "device": "0", "MAC": "", "MTU": "1500", "other_config": {},
                        "qos_algorithm_type": "", "qos_algorithm_params": {}})
    mac = x.VIF.get_MAC(vif)
    assert mac.startswith("00:16:3e:")
    x.VIF.plug(vif)
    assert x.VIF.get_currently_attached(vif) is True
    assert vif in x.network.get_VIFs(net)
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.destroy(vdi2)
    assert e.value.details == ["VDI_IN_USE", vdi2, "destroy"]
    with pytest.raises(XenAPI.Failure) as e:
        x.network.destroy(net)
    assert e.value.details[0] == "NETWORK_CONTAINS_VIF"
    x.VIF.unplug(vif)
    x.VBD.unplug(vbd1)
    assert x.VBD.get_currently_attached(vbd1) is False
    x.VBD.destroy(vbd1)
    x.VDI.resize(vdi2, str(48 << 20))
    assert x.VDI.get_virtual_size(vdi2) == str(48 << 20)
    x.VDI.destroy(vdi2)
    x.VM.hard_shutdown(vm)
    assert x.VBD.get_currently_attached(vbd0) is False
    x.VM.destroy(vm)
    assert vbd0 not in x.VBD.get_all()
    assert vdi in x.VDI.get_all()  # disks outlive their VM, as in xapi
    x.VDI.destroy(vdi)
    assert x.network.get_VIFs(net) == []
    x.network.destroy(net)


def test_records_are_complete(session):
    x = session.xenapi
    vm = make_vm(x, "complete")
    rec = x.VM.get_record(vm)
    for field in ["uuid", "allowed_operations", "current_operations", "power_state", "memory_static_max", "VCPUs_max",
                  "actions_after_crash", "PV_kernel", "HVM_boot_policy", "platform", "other_config", "domid", "metrics",
                  "is_control_domain", "snapshots", "blocked_operations", "domain_type", "NVRAM", "pending_guidances"]:
        assert field in rec, field
    metrics = x.VM_metrics.get_record(rec["metrics"])
    assert "memory_actual" in metrics and "VCPUs_utilisation" in metrics
    host = x.host.get_record(x.host.get_all()[0])
    assert host["API_version_major"] == "2"
    assert x.pool.get_master(x.pool.get_all()[0]) == x.host.get_all()[0]
    assert len(x.host_cpu.get_all()) >= 1
    assert x.SR.get_all() and x.network.get_all() and x.PIF.get_all() and x.PBD.get_all()
    assert {x.role.get_name_label(r) for r in x.role.get_all()} >= {"read-only", "vm-operator", "pool-admin"}
    x.VM.destroy(vm)
