"""Persistence across restarts and kill -9, and many concurrent SDK clients."""

import random
import threading
import time

import XenAPI

from conftest import make_vm


def define_vm_with_devices(x, name, sr, net):
    vm = make_vm(x, name)
    vdi = x.VDI.create({"name_label": f"{name}-disk", "SR": sr, "virtual_size": str(8 << 20), "type": "user",
                        "sharable": False, "read_only": False, "other_config": {}})
    x.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk",
                  "empty": False, "other_config": {}})
    x.VIF.create({"VM": vm, "network": net, "device": "0", "MAC": "", "MTU": "1500", "other_config": {}})
    x.VM.add_to_other_config(vm, "index", name)
    return vm


def snapshot_state(x):
    vms = x.VM.get_all_records()
    vbds = x.VBD.get_all_records()
    vifs = x.VIF.get_all_records()
    return {
        ref: (r["uuid"], r["name_label"], r["other_config"], sorted(vbds[b]["VDI"] for b in r["VBDs"]),
              sorted(vifs[v]["MAC"] for v in r["VIFs"]), r["memory_static_max"])
        for ref, r in vms.items() if not r["is_control_domain"]
    }


def test_restart_keeps_fifty_vms_with_devices(fresh_daemon):
    s = fresh_daemon.session()
    x = s.xenapi
    sr = x.pool.get_default_SR(x.pool.get_all()[0])
    net = x.network.get_all()[0]
    for i in range(50):
        define_vm_with_devices(x, f"persist-{i}", sr, net)
    running = x.VM.get_by_name_label("persist-0")[0]
    x.VM.start(running, False, False)
    suspended = x.VM.get_by_name_label("persist-1")[0]
    x.VM.start(suspended, False, False)
    x.VM.suspend(suspended)
    before = snapshot_state(x)
    host_uuid = x.host.get_uuid(x.host.get_all()[0])
    fresh_daemon.restart()
    s = fresh_daemon.session()
    x = s.xenapi
    after = snapshot_state(x)
    assert after == before
    assert x.host.get_uuid(x.host.get_all()[0]) == host_uuid
    # The sim's domains died with the process: a running VM comes back Halted, a suspended
    # one keeps its image and resumes.
    assert x.VM.get_power_state(running) == "Halted"
    assert x.VM.get_power_state(suspended) == "Suspended"
    x.VM.resume(suspended, False, False)
    assert x.VM.get_power_state(suspended) == "Running"
    assert len(after) == 50


def test_kill_dash_nine_leaves_whole_vms(fresh_daemon):
    s = fresh_daemon.session()
    x = s.xenapi
    sr = x.pool.get_default_SR(x.pool.get_all()[0])
    net = x.network.get_all()[0]
    stop = threading.Event()
    errors = []
    in_progress = {}

    def churn():
        try:
            local = fresh_daemon.session().xenapi
            i = 0
            while not stop.is_set():
                in_progress["name"] = f"churn-{i}"
                vm = define_vm_with_devices(local, f"churn-{i}", sr, net)
                if i % 2:
                    for vbd in local.VM.get_VBDs(vm):
                        vdi = local.VBD.get_VDI(vbd)
                        local.VM.destroy(vm)
                        local.VDI.destroy(vdi)
                        break
                i += 1
        except Exception as e:  # the kill ends the loop with a connection error
            errors.append(e)

    t = threading.Thread(target=churn)
    t.start()
    time.sleep(1.5 + random.random())
    fresh_daemon.kill()
    stop.set()
    t.join(30)
    fresh_daemon.start()
    x = fresh_daemon.session().xenapi
    vms = x.VM.get_all_records()
    vbds = x.VBD.get_all_records()
    vifs = x.VIF.get_all_records()
    vdis = x.VDI.get_all_records()
    assert any(r["name_label"].startswith("churn-") for r in vms.values())
    for ref, r in vms.items():
        if r["is_control_domain"]:
            continue
        # Every device a VM lists exists and points back at it (each call was one transaction).
        for b in r["VBDs"]:
            assert vbds[b]["VM"] == ref and vbds[b]["VDI"] in vdis
        for v in r["VIFs"]:
            assert vifs[v]["VM"] == ref
        # Only the VM the client was defining (over several calls) when the kill came may lack devices.
        if r["name_label"] != in_progress.get("name"):
            assert len(r["VBDs"]) == 1 and len(r["VIFs"]) == 1, r["name_label"]
    for ref, b in vbds.items():
        assert b["VM"] in vms, "a VBD outlived its VM"
    for ref, v in vifs.items():
        assert v["VM"] in vms, "a VIF outlived its VM"


def test_sixty_four_concurrent_clients(fresh_daemon):
    duration = 30.0
    clients = 64
    results = [None] * clients
    unexpected = []

    def worker(n):
        x = fresh_daemon.session().xenapi
        mine = []
        deadline = time.time() + duration
        rng = random.Random(n)
        try:
            while time.time() < deadline:
                action = rng.random()
                if action < 0.4 or not mine:
                    mine.append(make_vm(x, f"c{n}-{len(mine)}", memory=32 << 20))
                elif action < 0.7:
                    vm = rng.choice(mine)
                    try:
                        if x.VM.get_power_state(vm) == "Halted":
                            x.VM.start(vm, False, False)
                        else:
                            x.VM.hard_shutdown(vm)
                    except XenAPI.Failure as e:
                        # Memory running out is the state machine's own answer under load.
                        if e.details[0] != "HOST_NOT_ENOUGH_FREE_MEMORY":
                            raise
                else:
                    vm = mine.pop(rng.randrange(len(mine)))
                    if x.VM.get_power_state(vm) != "Halted":
                        x.VM.hard_shutdown(vm)
                    x.VM.destroy(vm)
            results[n] = {vm: x.VM.get_power_state(vm) for vm in mine}
        except Exception as e:
            unexpected.append((n, repr(e)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 120)
    assert not unexpected, unexpected[:5]
    x = fresh_daemon.session().xenapi
    records = x.VM.get_all_records()
    mine = {vm: st for r in results for vm, st in r.items()}
    others = {ref for ref, r in records.items() if not r["is_control_domain"]}
    assert others == set(mine)
    for vm, st in mine.items():
        assert records[vm]["power_state"] == st
