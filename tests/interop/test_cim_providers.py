"""The virtualization providers against the real daemon with pywbem (and the xenapi SDK for the
other door): the walk a generic console makes with DMTF class names only, both doors seeing the
same VMs, jobs as tasks, and the refusals."""

import time

import pytest
import pywbem

from cimhelpers import (JOB_COMPLETED, JOB_EXCEPTION, NS, RETENTION, change_state, cim_daemon, conn, define, destroy,  # noqa: F401
                        disk, mem, mentions, nic, proc, random_mac, request_state, uuid_of, vsms_path, vssd, wait_job, xapi)
from conftest import make_vm


def values(conn, path, prop):
    return conn.GetInstance(path)[prop]


def same(a, b):
    """Two instance paths name the same instance (hosts and namespaces aside)."""
    return a.classname.lower() == b.classname.lower() and a.keybindings == b.keybindings


def among(path, paths):
    return any(same(path, p) for p in paths)


def test_generic_console_walk(conn):
    # 1. The interop namespace and the System Virtualization profile (pywbem's own discovery).
    server = pywbem.WBEMServer(conn)
    assert server.interop_ns in ("interop", "root/interop")
    [profile] = server.get_selected_profiles("DMTF", "System Virtualization")
    assert profile["RegisteredVersion"] == "1.0.0"
    interop = server.interop_ns

    # 2. The host through ElementConformsToProfile, across namespaces.
    [host] = conn.AssociatorNames(profile.path, AssocClass="CIM_ElementConformsToProfile", ResultRole="ManagedElement")
    assert host.namespace == NS
    host_instance = conn.GetInstance(host)
    assert host_instance["EnabledState"] == 2

    # 3. The management service through HostedService, and the capabilities.
    [vsms] = conn.AssociatorNames(host, AssocClass="CIM_HostedService", ResultClass="CIM_VirtualSystemManagementService")
    [vsmc] = conn.Associators(host, AssocClass="CIM_ElementCapabilities", ResultClass="CIM_VirtualSystemManagementCapabilities")
    assert "DMTF:Xen:PV" in vsmc["VirtualSystemTypesSupported"]
    for m in (2, 3, 5, 6, 7, 10):
        assert m in vsmc["SynchronousMethodsSupported"], m
    assert [c.path for c in conn.Associators(vsms, AssocClass="CIM_ElementCapabilities")] == [vsmc.path]

    # 4. The pools, their allocation capabilities and the template settings.
    pools = conn.Associators(host, AssocClass="CIM_HostedResourcePool", ResultClass="CIM_ResourcePool")
    by_type = {}
    for p in pools:
        by_type.setdefault(p["ResourceType"], []).append(p)
    assert set(by_type) >= {3, 4, 17, 10}, sorted(by_type)
    templates = {}
    for p in pools:
        [caps] = conn.Associators(p.path, AssocClass="CIM_ElementCapabilities", ResultClass="CIM_AllocationCapabilities")
        assert caps["ResourceType"] == p["ResourceType"]
        refs = conn.References(caps.path, ResultClass="CIM_SettingsDefineCapabilities")
        assert len(refs) == 4
        for r in refs:
            t = conn.GetInstance(r["PartComponent"])
            templates[(p["PoolID"], r["ValueRole"], r["ValueRange"])] = t
    memory_pool = by_type[4][0]
    default_mem = templates[(memory_pool["PoolID"], 0, 0)]
    assert default_mem["AllocationUnits"] == "byte*2^20" and default_mem["VirtualQuantity"] >= 16
    max_mem = templates[(memory_pool["PoolID"], 3, 2)]
    assert max_mem["VirtualQuantity"] == memory_pool["Capacity"]
    disk_pool = by_type[17][0]
    net_pool = by_type[10][0]

    # 5. DefineSystem with processor, memory, two disks and a network port, DMTF classes only.
    def cim_rasd(**props):
        return pywbem.CIMInstance("CIM_ResourceAllocationSettingData", properties=props)

    settings = pywbem.CIMInstance("CIM_VirtualSystemSettingData",
                                  properties={"ElementName": "console-walk", "VirtualSystemType": "DMTF:Xen:PV"})
    memory = default_mem.copy()
    memory.path = None
    memory["VirtualQuantity"] = pywbem.Uint64(256)
    memory["Reservation"] = pywbem.Uint64(256)
    memory["Limit"] = pywbem.Uint64(512)
    mac = random_mac()
    resources = [
        cim_rasd(ResourceType=pywbem.Uint16(3), VirtualQuantity=pywbem.Uint64(2)),
        memory,
        cim_rasd(ResourceType=pywbem.Uint16(17), VirtualQuantity=pywbem.Uint64(64), AllocationUnits="byte*2^20",
                 PoolID=disk_pool["PoolID"]),
        cim_rasd(ResourceType=pywbem.Uint16(17), VirtualQuantity=pywbem.Uint64(32), AllocationUnits="byte*2^20",
                 PoolID=disk_pool["PoolID"]),
        cim_rasd(ResourceType=pywbem.Uint16(10), Address=mac, PoolID=net_pool["PoolID"]),
    ]
    rv, out = conn.InvokeMethod("DefineSystem", vsms, SystemSettings=settings, ResourceSettings=resources)
    assert rv == 4096, "new disks: DefineSystem runs as a job"
    job = wait_job(conn, out["Job"])
    assert job["JobState"] == JOB_COMPLETED, job.tomof()
    [vm] = conn.AssociatorNames(out["Job"], AssocClass="CIM_AffectedJobElement", ResultClass="CIM_ComputerSystem")
    uuid = uuid_of(vm)
    [owner] = conn.AssociatorNames(out["Job"], AssocClass="CIM_OwningJobElement")
    assert same(owner, vsms)
    cs = conn.GetInstance(vm)
    assert cs["ElementName"] == "console-walk" and cs["EnabledState"] == 3
    assert among(vm, conn.AssociatorNames(host, AssocClass="CIM_HostedDependency", Role="Antecedent", ResultRole="Dependent"))
    [vs_profile] = server.get_selected_profiles("DMTF", "Virtual System")
    assert among(vm, conn.AssociatorNames(vs_profile.path, AssocClass="CIM_ElementConformsToProfile", ResultRole="ManagedElement"))
    [elec] = conn.Associators(vm, AssocClass="CIM_ElementCapabilities", ResultClass="CIM_EnabledLogicalElementCapabilities")
    assert 2 in elec["RequestedStatesSupported"] and 9 not in elec["RequestedStatesSupported"]

    # 6. Start it.
    rv, out = request_state(conn, vm, 2)
    assert rv == 4096
    assert wait_job(conn, out["Job"])["JobState"] == JOB_COMPLETED
    running = conn.GetInstance(vm)
    assert (running["EnabledState"], running["RequestedState"], running["TransitioningToState"]) == (2, 2, 12)
    [elec] = conn.Associators(vm, AssocClass="CIM_ElementCapabilities", ResultClass="CIM_EnabledLogicalElementCapabilities")
    assert {3, 4, 6, 9, 10, 11} <= set(elec["RequestedStatesSupported"])

    # 7. Walk SystemDevice, SettingsDefineState and VirtualSystemSettingDataComponent.
    devices = conn.Associators(vm, AssocClass="CIM_SystemDevice", ResultClass="CIM_LogicalDevice")
    kinds = sorted(d.classname for d in devices)
    assert kinds == ["Xen_LogicalDisk", "Xen_LogicalDisk", "Xen_Memory", "Xen_NetworkPort", "Xen_Processor", "Xen_Processor"]
    assert all(d["EnabledState"] == 2 for d in devices)
    [port] = [d for d in devices if d.classname == "Xen_NetworkPort"]
    assert port["PermanentAddress"] == mac.replace(":", "").upper()
    [state_vssd] = conn.Associators(vm, AssocClass="CIM_SettingsDefineState", ResultClass="CIM_VirtualSystemSettingData")
    assert state_vssd["InstanceID"] == f"Xen:{uuid}"
    rasds = conn.Associators(state_vssd.path, AssocClass="CIM_VirtualSystemSettingDataComponent", ResultClass="CIM_ResourceAllocationSettingData")
    # (1: the text console the running VM has.)
    assert sorted(r["ResourceType"] for r in rasds) == [1, 3, 4, 10, 17, 17]
    for d in devices:
        [setting] = conn.Associators(d.path, AssocClass="CIM_SettingsDefineState", ResultClass="CIM_ResourceAllocationSettingData")
        assert among(setting.path, [r.path for r in rasds])
        [pool] = conn.AssociatorNames(setting.path, AssocClass="CIM_ResourceAllocationFromPool")
        assert among(pool, [p.path for p in pools])
    [mem_rasd] = [r for r in rasds if r["ResourceType"] == 4]
    assert (mem_rasd["VirtualQuantity"], mem_rasd["Limit"], mem_rasd["AllocationUnits"]) == (256, 512, "byte*2^20")

    # 8. Pause, resume, suspend, resume.
    assert request_state(conn, vm, 9)[0] == 0
    assert values(conn, vm, "EnabledState") == 9
    assert request_state(conn, vm, 2)[0] == 0
    assert values(conn, vm, "EnabledState") == 2
    assert change_state(conn, vm, 6) == 4096
    assert values(conn, vm, "EnabledState") == 6
    assert change_state(conn, vm, 2) == 4096
    assert values(conn, vm, "EnabledState") == 2

    # 9. A disk added while it runs is plugged at once.
    rv, out = conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=state_vssd.path,
                                ResourceSettings=[cim_rasd(ResourceType=pywbem.Uint16(17), VirtualQuantity=pywbem.Uint64(16),
                                                           AllocationUnits="byte*2^20")])
    assert rv == 0, out
    [added] = out["ResultingResourceSettings"]
    assert conn.GetInstance(added)["VirtualQuantity"] == 16 << 20
    disks = [d for d in conn.Associators(vm, AssocClass="CIM_SystemDevice", ResultClass="CIM_LogicalDisk")]
    assert len(disks) == 3 and all(d["EnabledState"] == 2 for d in disks)

    # 10. Memory changes live within the dynamic range.
    memory = conn.GetInstance(mem_rasd.path)
    memory["VirtualQuantity"] = pywbem.Uint64(384)
    rv, out = conn.InvokeMethod("ModifyResourceSettings", vsms, ResourceSettings=[memory])
    assert rv == 0, out
    [changed] = out["ResultingResourceSettings"]
    assert same(changed, mem_rasd.path)
    assert conn.GetInstance(mem_rasd.path)["VirtualQuantity"] == 384
    [memdev] = [d for d in conn.Associators(vm, AssocClass="CIM_SystemDevice", ResultClass="CIM_Memory")]
    assert memdev["NumberOfBlocks"] * memdev["BlockSize"] == 384 << 20

    # 11. Shut down, destroy, and gone from every enumeration and association.
    assert change_state(conn, vm, 4) == 4096
    assert values(conn, vm, "EnabledState") == 3
    rv, _ = conn.InvokeMethod("DestroySystem", vsms, AffectedSystem=vm)
    assert rv == 0
    with pytest.raises(pywbem.CIMError) as e:
        conn.GetInstance(vm)
    assert e.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    for cls in ("CIM_ComputerSystem", "CIM_VirtualSystemSettingData", "CIM_ResourceAllocationSettingData", "CIM_LogicalDevice",
                "CIM_EnabledLogicalElementCapabilities"):
        assert not mentions(conn.EnumerateInstanceNames(cls, NS), uuid), cls
    assert not mentions(conn.AssociatorNames(host), uuid)
    assert not mentions(conn.AssociatorNames(vsms), uuid)
    for p in pools:
        assert not mentions(conn.ReferenceNames(p.path), uuid)
    assert not mentions(conn.AssociatorNames(vs_profile.path, AssocClass="CIM_ElementConformsToProfile"), uuid)
    assert not mentions(conn.EnumerateInstanceNames("CIM_ElementConformsToProfile", interop), uuid)


def test_both_doors_agree(conn, xapi, cim_daemon):
    # Made through the Xen-API: the same uuid and settings in CIM.
    ref = make_vm(xapi, "from-xenapi", memory=384 << 20, vcpus=2)
    uuid = xapi.VM.get_uuid(ref)
    sr = xapi.pool.get_default_SR(xapi.pool.get_all()[0])
    vdi = xapi.VDI.create({"name_label": "xd", "SR": sr, "virtual_size": str(8 << 20), "type": "user", "sharable": False,
                           "read_only": False, "other_config": {}})
    xapi.VBD.create({"VM": ref, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk", "empty": False,
                     "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    net = xapi.network.get_all()[0]
    vif = xapi.VIF.create({"device": "0", "network": net, "VM": ref, "MAC": "", "MTU": "1500", "other_config": {},
                           "qos_algorithm_type": "", "qos_algorithm_params": {}})
    mac = xapi.VIF.get_MAC(vif)
    vm = pywbem.CIMInstanceName("Xen_ComputerSystem", {"CreationClassName": "Xen_ComputerSystem", "Name": uuid}, namespace=NS)
    cs = conn.GetInstance(vm)
    assert (cs["ElementName"], cs["EnabledState"], cs["UUID"]) == ("from-xenapi", 3, uuid)
    [vssd_i] = conn.Associators(vm, AssocClass="CIM_SettingsDefineState", ResultClass="CIM_VirtualSystemSettingData")
    rasds = {r["ResourceType"]: r for r in conn.Associators(vssd_i.path, AssocClass="CIM_VirtualSystemSettingDataComponent")}
    assert rasds[4]["VirtualQuantity"] == 384 and rasds[3]["VirtualQuantity"] == 2
    assert rasds[17]["VirtualQuantity"] == 8 << 20 and rasds[17]["HostExtentName"] == xapi.VDI.get_uuid(vdi)
    assert rasds[10]["Address"] == mac

    # A state change through CIM is what the SDK reads next; so is a device added through CIM.
    change_state(conn, vm, 2)
    assert xapi.VM.get_power_state(ref) == "Running"
    mac2 = random_mac()
    rv, out = conn.InvokeMethod("AddResourceSettings", vsms_path(conn), AffectedConfiguration=vssd_i.path, ResourceSettings=[nic(mac2)])
    assert rv == 0, out
    macs = {xapi.VIF.get_MAC(v): xapi.VIF.get_currently_attached(v) for v in xapi.VM.get_VIFs(ref)}
    assert macs == {mac: True, mac2: True}
    assert request_state(conn, vm, 9)[0] == 0
    assert xapi.VM.get_power_state(ref) == "Paused"
    # And a change through the Xen-API is what CIM reads next.
    xapi.VM.unpause(ref)
    assert conn.GetInstance(vm)["EnabledState"] == 2
    xapi.VM.set_name_label(ref, "renamed")
    assert conn.GetInstance(vm)["ElementName"] == "renamed"

    # A CIM job is a Xen-API task, and a Xen-API task is a CIM job.
    rv, out = request_state(conn, vm, 4)
    assert rv == 4096
    task = xapi.task.get_by_uuid(out["Job"].keybindings["InstanceID"])
    assert xapi.task.get_name_label(task) == "Async.VM.clean_shutdown"
    wait_job(conn, out["Job"])
    assert xapi.task.get_status(task) == "success"
    assert xapi.VM.get_power_state(ref) == "Halted"
    task = xapi.Async.VM.start(ref, False, False)
    job = pywbem.CIMInstanceName("Xen_ConcreteJob", {"InstanceID": xapi.task.get_uuid(task)}, namespace=NS)
    assert wait_job(conn, job)["JobState"] == JOB_COMPLETED
    xapi.VM.hard_shutdown(ref)

    # Destroyed through the Xen-API: gone from CIM.
    xapi.VM.destroy(ref)
    with pytest.raises(pywbem.CIMError) as e:
        conn.GetInstance(vm)
    assert e.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    assert not mentions(conn.EnumerateInstanceNames("CIM_ComputerSystem", NS), uuid)

    # Destroyed through CIM: gone from the Xen-API.
    vm2 = define(conn, "from-cim", [proc(1), mem(128)])
    uuid2 = uuid_of(vm2)
    ref2 = xapi.VM.get_by_uuid(uuid2)
    assert xapi.VM.get_name_label(ref2) == "from-cim"
    assert xapi.VM.get_memory_dynamic_max(ref2) == str(128 << 20)
    destroy(conn, vm2)
    with pytest.raises(Exception) as e:
        xapi.VM.get_by_uuid(uuid2)
    assert "UUID_INVALID" in str(e.value) or "HANDLE_INVALID" in str(e.value)
    assert uuid2 not in [xapi.VM.get_uuid(r) for r in xapi.VM.get_all()]


def test_jobs_poll_get_error_and_go(conn):
    # Completed: GetError has no error.
    vm = define(conn, "jobs", [proc(1), mem(128)])
    rv, out = request_state(conn, vm, 2)
    assert rv == 4096
    job = out["Job"]
    done = wait_job(conn, job)
    assert (done["JobState"], done["PercentComplete"], done["ErrorCode"]) == (JOB_COMPLETED, 100, 0)
    assert done["DeleteOnCompletion"] is True
    assert done["TimeBeforeRemoval"].timedelta.total_seconds() == RETENTION
    rv, out = conn.InvokeMethod("GetError", job)
    assert rv == 0 and out.get("Error") is None
    change_state(conn, vm, 3)

    # Exception: a VM bigger than the host's free memory cannot start.
    big = define(conn, "too-big", [proc(1), mem(16000)])
    rv, out = request_state(conn, big, 2)
    assert rv == 4096
    failed = wait_job(conn, out["Job"])
    assert failed["JobState"] == JOB_EXCEPTION
    assert failed["ErrorCode"] == 4
    assert "HOST_NOT_ENOUGH_FREE_MEMORY" in failed["ErrorDescription"]
    rv, err = conn.InvokeMethod("GetError", out["Job"])
    assert rv == 0
    error = err["Error"]
    assert isinstance(error, pywbem.CIMInstance), repr(error)
    assert error["MessageID"] == "HOST_NOT_ENOUGH_FREE_MEMORY"
    assert error.classname == "CIM_Error"
    [affected] = conn.AssociatorNames(out["Job"], AssocClass="CIM_AffectedJobElement")
    assert same(affected, big)
    assert conn.GetInstance(big)["EnabledState"] == 3

    # Both jobs go TimeBeforeRemoval after they end (housekeeping runs every 5 s).
    deadline = time.time() + RETENTION + 15
    for j in (job, out["Job"]):
        while True:
            try:
                conn.GetInstance(j)
            except pywbem.CIMError as e:
                assert e.status_code == pywbem.CIM_ERR_NOT_FOUND
                break
            assert time.time() < deadline, "the job outlived TimeBeforeRemoval"
            time.sleep(0.5)
    destroy(conn, vm)
    destroy(conn, big)


def test_negative_cases(conn, cim_daemon):
    vsms = vsms_path(conn)
    made_up = pywbem.CIMInstanceName("Xen_ComputerSystem", {"CreationClassName": "Xen_ComputerSystem",
                                                            "Name": "6f1c9b1e-2a7d-4a34-9d5e-6b1c2f9e0a11"}, namespace=NS)
    with pytest.raises(pywbem.CIMError) as e:
        conn.GetInstance(made_up)
    assert e.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    with pytest.raises(pywbem.CIMError) as e:
        conn.InvokeMethod("DestroySystem", vsms, AffectedSystem=made_up)
    assert e.value.status_code == pywbem.CIM_ERR_NOT_FOUND

    vm = define(conn, "negative", [proc(1), mem(128), nic(random_mac())])
    # An unreachable state: 4097, and the model's reason in the job's error description.
    rv, out = request_state(conn, vm, 9)
    assert rv == 4097
    j = conn.GetInstance(out["Job"])
    assert j["JobState"] == JOB_EXCEPTION and "VM_BAD_POWER_STATE" in j["ErrorDescription"], j.tomof()
    assert "negative" in j["ErrorDescription"]
    with pytest.raises(pywbem.CIMError) as e:
        request_state(conn, vm, 8)
    assert e.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER

    # DestroySystem of a running VM: refused as the model refuses, the VM stays.
    change_state(conn, vm, 2)
    rv, out = conn.InvokeMethod("DestroySystem", vsms, AffectedSystem=vm)
    assert rv == 2
    assert "VM_BAD_POWER_STATE" in conn.GetInstance(out["Job"])["ErrorDescription"]
    assert conn.GetInstance(vm)["EnabledState"] == 2
    # vCPUs_max cannot change while it runs: a documented failure, nothing changes.
    [vssd_i] = conn.Associators(vm, AssocClass="CIM_SettingsDefineState", ResultClass="CIM_VirtualSystemSettingData")
    [p] = [r for r in conn.Associators(vssd_i.path, AssocClass="CIM_VirtualSystemSettingDataComponent") if r["ResourceType"] == 3]
    p["MaxVirtualQuantity"] = pywbem.Uint64(4)
    rv, out = conn.InvokeMethod("ModifyResourceSettings", vsms, ResourceSettings=[p])
    assert rv == 2 and "VM_BAD_POWER_STATE" in conn.GetInstance(out["Job"])["ErrorDescription"]
    destroy(conn, vm)

    before = len(conn.EnumerateInstanceNames("CIM_ComputerSystem", NS)), len(conn.EnumerateInstanceNames("CIM_ResourceAllocationSettingData", NS))

    def refused(settings, resources, property_name):
        with pytest.raises(pywbem.CIMError) as e:
            conn.InvokeMethod("DefineSystem", vsms, SystemSettings=settings, ResourceSettings=resources)
        assert e.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER, e.value
        assert property_name in e.value.status_description, e.value.status_description

    # Invalid settings, each naming the property.
    refused(vssd("bad"), [mem(128), disk(8, PoolID="DiskPool/no-such-pool")], "PoolID")
    refused(vssd("bad"), [mem(1 << 30)], "VirtualQuantity")
    refused(vssd("bad"), [mem(128), disk(1 << 40)], "VirtualQuantity")
    refused(vssd("bad"), [pywbem.CIMInstance("CIM_ResourceAllocationSettingData", properties={"VirtualQuantity": pywbem.Uint64(1)})],
            "ResourceType")
    refused(pywbem.CIMInstance("Xen_VirtualSystemSettingData", properties={"Kernel": "/k"}), [], "ElementName")
    # Malformed embedded instances, in CIM-XML and in MOF.
    refused('<INSTANCE CLASSNAME="Xen_VirtualSystemSettingData"><PROPERTY NAME="ElementName" TYPE="string"><VALUE>x',
            [], "embedded object")
    refused('instance of Xen_VirtualSystemSettingData { ElementName = ; };', [], "MOF")
    refused('instance of Xen_VirtualSystemSettingData { NoSuchProperty = "x"; };', [], "NoSuchProperty")
    refused(vssd("bad"), ['instance of Xen_MemResourceAllocationSettingData { VirtualQuantity = "lots"; };'], "MOF")
    refused(vssd("bad"), ['<INSTANCE CLASSNAME="Xen_MemResourceAllocationSettingData"></PROPERTY></INSTANCE>'], "embedded object")
    refused(vssd("bad"), ["neither XML nor MOF"], "ResourceSettings[0]")
    after = len(conn.EnumerateInstanceNames("CIM_ComputerSystem", NS)), len(conn.EnumerateInstanceNames("CIM_ResourceAllocationSettingData", NS))
    assert after == before, "no half-made VM is left behind"


def test_embedded_instances_in_both_encodings(conn, xapi):
    vsms = vsms_path(conn)
    # MOF text, as cimtest and libvirt-cim clients send it.
    settings = 'instance of Xen_VirtualSystemSettingData { ElementName = "mof-vm"; VirtualSystemType = "DMTF:Xen:PV"; Kernel = "/boot/vmlinuz"; };'
    resources = [
        'instance of Xen_ProcResourceAllocationSettingData { ResourceType = 3; VirtualQuantity = 2; };',
        'instance of Xen_MemResourceAllocationSettingData { ResourceType = 4; VirtualQuantity = 128; AllocationUnits = "byte*2^20"; };',
        'instance of Xen_NetResourceAllocationSettingData { ResourceType = 10; Address = "00:16:3e:12:34:56"; };',
    ]
    rv, out = conn.InvokeMethod("DefineSystem", vsms, SystemSettings=settings, ResourceSettings=resources)
    assert rv == 0, out
    ref = xapi.VM.get_by_uuid(uuid_of(out["ResultingSystem"]))
    assert (xapi.VM.get_name_label(ref), xapi.VM.get_PV_kernel(ref), xapi.VM.get_VCPUs_max(ref)) == ("mof-vm", "/boot/vmlinuz", "2")
    assert [xapi.VIF.get_MAC(v) for v in xapi.VM.get_VIFs(ref)] == ["00:16:3e:12:34:56"]
    destroy(conn, out["ResultingSystem"])
    # CIM-XML text in a string (older clients), and a real EmbeddedObject (pywbem above).
    xml = vssd("xml-vm").tocimxmlstr()
    rv, out = conn.InvokeMethod("DefineSystem", vsms, SystemSettings=xml, ResourceSettings=[mem(128).tocimxmlstr()])
    assert rv == 0, out
    assert conn.GetInstance(out["ResultingSystem"])["ElementName"] == "xml-vm"
    destroy(conn, out["ResultingSystem"])


def test_reference_configuration_and_system_settings(conn, xapi):
    vsms = vsms_path(conn)
    origin = define(conn, "origin", [proc(2), mem(128), disk(8, "xvda"), nic(random_mac())])
    [origin_vssd] = conn.AssociatorNames(origin, AssocClass="CIM_SettingsDefineState", ResultClass="CIM_VirtualSystemSettingData")
    rv, out = conn.InvokeMethod("DefineSystem", vsms, SystemSettings=vssd("copy"), ReferenceConfiguration=origin_vssd,
                                ResourceSettings=[mem(256)])
    assert rv == 4096, "the clone copies a disk"
    assert wait_job(conn, out["Job"])["JobState"] == JOB_COMPLETED
    [copy] = conn.AssociatorNames(out["Job"], AssocClass="CIM_AffectedJobElement")
    ref = xapi.VM.get_by_uuid(uuid_of(copy))
    assert (xapi.VM.get_name_label(ref), xapi.VM.get_VCPUs_at_startup(ref), xapi.VM.get_memory_dynamic_max(ref)) == ("copy", "2", str(256 << 20))
    assert len(xapi.VM.get_VBDs(ref)) == 1 and len(xapi.VM.get_VIFs(ref)) == 1
    [copy_vssd] = conn.Associators(copy, AssocClass="CIM_SettingsDefineState", ResultClass="CIM_VirtualSystemSettingData")
    copy_vssd["ElementName"] = "copy-renamed"
    copy_vssd["ActionAfterCrash"] = "preserve"
    rv, _ = conn.InvokeMethod("ModifySystemSettings", vsms, SystemSettings=copy_vssd)
    assert rv == 0
    assert xapi.VM.get_name_label(ref) == "copy-renamed" and xapi.VM.get_actions_after_crash(ref) == "preserve"
    destroy(conn, copy)
    destroy(conn, origin)


def test_read_only_users_read_but_do_not_act(cim_daemon):
    cim_daemon.add_user("watcher", "read-only", "watch-pw")
    ro = cim_daemon.wbem(user="watcher", password="watch-pw")
    [dom0] = [p for p in ro.EnumerateInstanceNames("CIM_ComputerSystem", NS) if p.keybindings.get("Name") == "00000000-0000-0000-0000-000000000000"]
    assert ro.GetInstance(dom0)["ElementName"] == "Domain-0"
    with pytest.raises(pywbem.CIMError) as e:
        ro.InvokeMethod("DefineSystem", vsms_path(ro), SystemSettings=vssd("nope"))
    assert e.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED
