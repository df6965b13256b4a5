"""Every association of the virtualization profiles, traversed forward and backward, with and
without the Role, ResultRole and ResultClass filters, against what the model says (read through
the xenapi SDK)."""

import pytest
import pywbem

from cimhelpers import NS, change_state, define, disk, mem, nic, proc, random_mac, request_state, uuid_of, wait_job
from conftest import Daemon

INTEROP = "root/interop"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    # Jobs must outlive the checks here: a long retention.
    d = Daemon(tmp_path_factory.mktemp("assoc"), extra_config="task_retention_secs = 600\n").start()
    conn = d.wbem()
    s = d.session()
    vm = define(conn, "assoc-running", [proc(2), mem(256, limit=512), disk(16, "xvda"), disk(8, "xvdb"), nic(random_mac())])
    change_state(conn, vm, 2)
    halted = define(conn, "assoc-halted", [proc(1), mem(128), nic(random_mac())])
    rv, out = request_state(conn, vm, 6)
    assert rv == 4096
    wait_job(conn, out["Job"])
    change_state(conn, vm, 2)
    yield d, conn, s.xenapi, vm, halted, out["Job"]
    s.xenapi.session.logout()
    d.stop()


def key(p):
    return (p.classname.lower(), tuple(sorted((k.lower(), str(v).lower() if not isinstance(v, pywbem.CIMInstanceName) else str(key(v)))
                                              for k, v in p.keybindings.items())))


def keys(paths):
    return {key(p) for p in paths}


def path(classname, **kb):
    return pywbem.CIMInstanceName(classname, kb, namespace=NS)


class Model:
    """What the model says, as CIM paths built by the documented key formats."""

    def __init__(self, x):
        self.x = x
        host = x.host.get_all()[0]
        self.host_name = x.host.get_hostname(host)
        self.host = path("Xen_HostSystem", CreationClassName="Xen_HostSystem", Name=self.host_name)
        self.vsms = path("Xen_VirtualSystemManagementService", CreationClassName="Xen_VirtualSystemManagementService",
                         Name="Management Service", SystemCreationClassName="Xen_HostSystem", SystemName=self.host_name)
        self.vsmc = path("Xen_VirtualSystemManagementCapabilities", InstanceID="ManagementCapabilities")
        self.pools = [("Xen_ProcessorPool", "ProcessorPool/0"), ("Xen_MemoryPool", "MemoryPool/0")]
        self.pools += [("Xen_DiskPool", f"DiskPool/{x.SR.get_uuid(s)}") for s in x.SR.get_all()]
        self.pools += [("Xen_NetworkPool", f"NetworkPool/{x.network.get_uuid(n)}") for n in x.network.get_all()]

    def pool(self, pid):
        cls = dict((p, c) for c, p in self.pools)[pid]
        return path(cls, InstanceID=pid)

    def caps(self, pid):
        return path("Xen_AllocationCapabilities", InstanceID=pid)

    def systems(self):
        return [self.x.VM.get_uuid(r) for r, v in self.x.VM.get_all_records().items() if not v["is_a_template"] and not v["is_a_snapshot"]]

    def vm(self, uuid):
        ref = self.x.VM.get_by_uuid(uuid)
        rec = self.x.VM.get_record(ref)
        running = rec["power_state"] in ("Running", "Paused")
        n = int(self.x.VM_metrics.get_VCPUs_number(rec["metrics"])) if running else int(rec["VCPUs_at_startup"])
        cs = path("Xen_ComputerSystem", CreationClassName="Xen_ComputerSystem", Name=uuid)

        def dev(cls, suffix):
            return path(cls, CreationClassName=cls, DeviceID=f"{uuid}/{suffix}", SystemCreationClassName="Xen_ComputerSystem", SystemName=uuid)

        def setting(cls, suffix):
            return path(cls, InstanceID=f"{uuid}/{suffix}")

        proc_rasd = setting("Xen_ProcResourceAllocationSettingData", "proc")
        devices = []  # (device, its setting, its pool id)
        for i in range(n):
            devices.append((dev("Xen_Processor", i), proc_rasd, "ProcessorPool/0"))
        devices.append((dev("Xen_Memory", "mem"), setting("Xen_MemResourceAllocationSettingData", "mem"), "MemoryPool/0"))
        for b in rec["VBDs"]:
            vbd = self.x.VBD.get_record(b)
            sr = self.x.VDI.get_SR(vbd["VDI"])
            devices.append((dev("Xen_LogicalDisk", vbd["device"]), setting("Xen_DiskResourceAllocationSettingData", vbd["device"]),
                            f"DiskPool/{self.x.SR.get_uuid(sr)}"))
        for v in rec["VIFs"]:
            vif = self.x.VIF.get_record(v)
            devices.append((dev("Xen_NetworkPort", vif["MAC"]), setting("Xen_NetResourceAllocationSettingData", vif["MAC"]),
                            f"NetworkPool/{self.x.network.get_uuid(vif['network'])}"))
        return cs, path("Xen_VirtualSystemSettingData", InstanceID=f"Xen:{uuid}"), path(
            "Xen_EnabledLogicalElementCapabilities", InstanceID=uuid), devices


def check_pair(conn, assoc, a, role_a, b, role_b):
    """One association instance, traversed every way. ResultClass filters are used only where
    the far end's class exists in the namespace of the call (not across to root/interop)."""
    def names(obj, **kw):
        return keys(conn.AssociatorNames(obj, AssocClass=assoc, **kw))

    def same_ns(x, y):
        return (x.namespace or NS) == (y.namespace or NS)

    other_class = "CIM_ConcreteJob" if not b.classname.endswith("Job") else "CIM_ResourcePool"
    assert key(b) in names(a), (assoc, a, b)
    assert key(b) in names(a, Role=role_a, ResultRole=role_b), (assoc, a, b)
    assert key(b) not in names(a, Role=role_b), (assoc, a, b)
    assert key(b) not in names(a, ResultRole=role_a), (assoc, a, b)
    assert key(b) not in names(a, ResultClass=other_class), (assoc, a, b)
    if same_ns(a, b):
        assert key(b) in names(a, ResultClass=b.classname), (assoc, a, b)
        assert key(a) in names(b, Role=role_b, ResultRole=role_a, ResultClass=a.classname), (assoc, b, a)
    assert key(a) in names(b), (assoc, b, a)
    assert key(a) in names(b, Role=role_b, ResultRole=role_a), (assoc, b, a)
    refs = conn.ReferenceNames(a, ResultClass=assoc, Role=role_a)
    assert any(key(r.keybindings[role_b]) == key(b) for r in refs), (assoc, a, b)
    back = conn.References(b, ResultClass=assoc, Role=role_b)
    assert any(key(r[role_a]) == key(a) for r in back), (assoc, b, a)
    assert not conn.ReferenceNames(a, ResultClass=assoc, Role=role_b), (assoc, a, role_b)
    assert not conn.ReferenceNames(b, ResultClass=assoc, Role=role_a), (assoc, b, role_a)


def test_a_vms_associations(world):
    d, conn, x, vm, halted, job = world
    m = Model(x)
    for target in (vm, halted):
        cs, vssd, elec, devices = m.vm(uuid_of(target))
        assert keys(conn.AssociatorNames(cs, AssocClass="CIM_SystemDevice")) == keys(d for d, _, _ in devices)
        settings = keys({s for _, s, _ in devices})
        console = path("Xen_ConsoleResourceAllocationSettingData", InstanceID=f"{uuid_of(target)}/console")
        if x.VM.get_consoles(x.VM.get_by_uuid(uuid_of(target))):
            settings.add(key(console))
            check_pair(conn, "CIM_VirtualSystemSettingDataComponent", vssd, "GroupComponent", console, "PartComponent")
            assert conn.GetInstance(console)["Protocol"] == "vt100"
        assert keys(conn.AssociatorNames(vssd, AssocClass="CIM_VirtualSystemSettingDataComponent")) == settings
        assert keys(conn.AssociatorNames(cs, AssocClass="CIM_SettingsDefineState")) == {key(vssd)}
        assert keys(conn.AssociatorNames(cs, AssocClass="CIM_ElementCapabilities")) == {key(elec)}
        check_pair(conn, "CIM_SettingsDefineState", cs, "ManagedElement", vssd, "SettingData")
        check_pair(conn, "CIM_ElementSettingData", cs, "ManagedElement", vssd, "SettingData")
        check_pair(conn, "CIM_ElementCapabilities", cs, "ManagedElement", elec, "Capabilities")
        check_pair(conn, "CIM_HostedDependency", m.host, "Antecedent", cs, "Dependent")
        check_pair(conn, "CIM_ServiceAffectsElement", m.vsms, "AffectingElement", cs, "AffectedElement")
        for dev, setting, pid in devices:
            check_pair(conn, "CIM_SystemDevice", cs, "GroupComponent", dev, "PartComponent")
            check_pair(conn, "CIM_SettingsDefineState", dev, "ManagedElement", setting, "SettingData")
            check_pair(conn, "CIM_ElementAllocatedFromPool", m.pool(pid), "Antecedent", dev, "Dependent")
        for _, setting, pid in {(None, s, p) for _, s, p in devices}:
            check_pair(conn, "CIM_VirtualSystemSettingDataComponent", vssd, "GroupComponent", setting, "PartComponent")
            check_pair(conn, "CIM_ResourceAllocationFromPool", m.pool(pid), "Antecedent", setting, "Dependent")
    # What the host and the service lead to is every virtual system of the model.
    systems = {key(path("Xen_ComputerSystem", CreationClassName="Xen_ComputerSystem", Name=u)) for u in m.systems()}
    # (CIM_HostedService is a CIM_HostedDependency too: the service comes along without ResultClass.)
    assert keys(conn.AssociatorNames(m.host, AssocClass="CIM_HostedDependency", ResultRole="Dependent")) == systems | {key(m.vsms)}
    assert keys(conn.AssociatorNames(m.host, AssocClass="CIM_HostedDependency", ResultClass="CIM_ComputerSystem")) == systems
    assert keys(conn.AssociatorNames(m.vsms, AssocClass="CIM_ServiceAffectsElement")) == systems
    # The host is never a Dependent: DMTF direction.
    assert not conn.AssociatorNames(m.host, AssocClass="CIM_HostedDependency", Role="Dependent")


def test_the_hosts_associations(world):
    d, conn, x, vm, halted, job = world
    m = Model(x)
    check_pair(conn, "CIM_HostedService", m.host, "Antecedent", m.vsms, "Dependent")
    check_pair(conn, "CIM_ElementCapabilities", m.host, "ManagedElement", m.vsmc, "Capabilities")
    check_pair(conn, "CIM_ElementCapabilities", m.vsms, "ManagedElement", m.vsmc, "Capabilities")
    assert keys(conn.AssociatorNames(m.host, AssocClass="CIM_HostedResourcePool")) == keys(m.pool(p) for _, p in m.pools)
    for _, pid in m.pools:
        check_pair(conn, "CIM_HostedResourcePool", m.host, "GroupComponent", m.pool(pid), "PartComponent")
        check_pair(conn, "CIM_ElementCapabilities", m.pool(pid), "ManagedElement", m.caps(pid), "Capabilities")
        refs = conn.References(m.caps(pid), ResultClass="CIM_SettingsDefineCapabilities")
        roles = sorted((r["ValueRole"], r["ValueRange"]) for r in refs)
        assert roles == [(0, 0), (3, 1), (3, 2), (3, 3)]
        for r in refs:
            check_pair(conn, "CIM_SettingsDefineCapabilities", m.caps(pid), "GroupComponent", r["PartComponent"], "PartComponent")


def test_a_jobs_associations(world):
    d, conn, x, vm, halted, job = world
    check_pair(conn, "CIM_AffectedJobElement", job, "AffectingElement", vm, "AffectedElement")
    check_pair(conn, "CIM_OwningJobElement", vm, "OwningElement", job, "OwnedElement")
    [effects] = [r["ElementEffects"] for r in conn.References(job, ResultClass="CIM_AffectedJobElement")]
    assert effects == [1]


def test_profiles_across_namespaces(world):
    d, conn, x, vm, halted, job = world
    m = Model(x)

    def profile(name):
        [p] = [p for p in conn.EnumerateInstances("CIM_RegisteredProfile", INTEROP) if p["RegisteredName"] == name]
        return p.path

    sv = profile("System Virtualization")
    vs = profile("Virtual System")
    check_pair(conn, "CIM_ElementConformsToProfile", sv, "ConformantStandard", m.host, "ManagedElement")
    systems = {key(path("Xen_ComputerSystem", CreationClassName="Xen_ComputerSystem", Name=u)) for u in m.systems()}
    assert keys(conn.AssociatorNames(vs, AssocClass="CIM_ElementConformsToProfile", ResultRole="ManagedElement")) == systems
    check_pair(conn, "CIM_ElementConformsToProfile", vs, "ConformantStandard", vm, "ManagedElement")
    for name, cls in [("Processor Resource Virtualization", "Xen_ProcessorPool"), ("Memory Resource Virtualization", "Xen_MemoryPool"),
                      ("Storage Resource Virtualization", "Xen_DiskPool"), ("Ethernet Port Resource Virtualization", "Xen_NetworkPool")]:
        expected = {key(m.pool(p)) for c, p in m.pools if c == cls}
        assert keys(conn.AssociatorNames(profile(name), AssocClass="CIM_ElementConformsToProfile")) == expected, name
        # The scoping-class path: the component profile leads to System Virtualization.
        assert key(sv) in keys(conn.AssociatorNames(profile(name), AssocClass="CIM_ReferencedProfile", ResultRole="Dependent"))
    caps = {key(m.caps(p)) for _, p in m.pools}
    assert keys(conn.AssociatorNames(profile("Allocation Capabilities"), AssocClass="CIM_ElementConformsToProfile")) == caps
    assert keys(conn.AssociatorNames(profile("Resource Allocation"), AssocClass="CIM_ElementConformsToProfile")) == keys(m.pool(p) for _, p in m.pools)
    # Scoping class methodology from Virtual System: up to the scoping profile, its host, down the scoping path.
    [scoping] = conn.AssociatorNames(vs, AssocClass="CIM_ReferencedProfile", ResultRole="Dependent")
    [host] = conn.AssociatorNames(scoping, AssocClass="CIM_ElementConformsToProfile", ResultRole="ManagedElement")
    down = conn.AssociatorNames(host, AssocClass="CIM_HostedDependency", Role="Antecedent", ResultRole="Dependent", ResultClass="CIM_ComputerSystem")
    assert keys(down) == systems
