"""The role table of docs/roles.md walked through both doors: for each role, what it may do and
what it may not, on the Xen-API and on CIM. A refusal is RBAC_PERMISSION_DENIED on the Xen-API
and CIM_ERR_ACCESS_DENIED on CIM; an allowed call may still fail for other reasons, never those."""

import pytest
import pywbem
import XenAPI

from conftest import Daemon, make_vm

NS = "root/virt"
ROLES = ["read-only", "vm-operator", "pool-admin"]
RANK = {r: i for i, r in enumerate(ROLES)}


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("roles")).start()
    for r in ROLES:
        d.add_user(f"u-{r}", r, f"pw-{r}")
    yield d
    d.stop()


def admin(d):
    return d.session().xenapi


def vm_path(vm_uuid):
    return pywbem.CIMInstanceName("Xen_ComputerSystem", {"CreationClassName": "Xen_ComputerSystem", "Name": vm_uuid}, namespace=NS)


# Each case: (door, what, least role, action(daemon, xenapi-as-user, cim-as-user)).
def x_read(d, x, c):
    x.VM.get_all_records()


def x_create_vm(d, x, c):
    x.VM.destroy(make_vm(x, "role-made"))


def x_start_vm(d, x, c):
    vm = make_vm(admin(d), "role-start")
    x.VM.start(vm, False, True)
    admin(d).VM.hard_shutdown(vm)


def x_set_vm_setting(d, x, c):
    vm = make_vm(admin(d), "role-set")
    x.VM.set_name_description(vm, "changed")


def x_create_network(d, x, c):
    x.network.destroy(x.network.create({"name_label": "role-net", "name_description": "", "MTU": "1500", "other_config": {}}))


def x_host_setting(d, x, c):
    host = x.host.get_all()[0]
    x.host.set_name_description(host, x.host.get_name_description(host))


def x_introduce_vdi(d, x, c):
    x.VDI.introduce("", "role-vdi", "", admin(d).SR.get_all()[0], "user", False, False, {}, "/nonexistent/role.img")


def c_enumerate(d, x, c):
    c.EnumerateInstances("Xen_ComputerSystem", NS)
    c.Associators(c.EnumerateInstanceNames("Xen_HostSystem", NS)[0], AssocClass="CIM_HostedDependency")


def c_start_vm(d, x, c):
    vm = make_vm(admin(d), "cim-start")
    uuid = admin(d).VM.get_uuid(vm)
    c.InvokeMethod("RequestStateChange", vm_path(uuid), RequestedState=pywbem.Uint16(2))


def c_destroy_vm(d, x, c):
    vm = make_vm(admin(d), "cim-destroy")
    [vsms] = c.EnumerateInstanceNames("CIM_VirtualSystemManagementService", NS)
    c.InvokeMethod("DestroySystem", vsms, AffectedSystem=vm_path(admin(d).VM.get_uuid(vm)))


def c_host_state(d, x, c):
    host = c.EnumerateInstanceNames("Xen_HostSystem", NS)[0]
    # A state no host takes: the role check comes first; past it the request fails harmlessly.
    c.InvokeMethod("RequestStateChange", host, RequestedState=pywbem.Uint16(32767))


CASES = [
    ("xenapi", "read records", "read-only", x_read),
    ("xenapi", "VM.create/destroy", "vm-operator", x_create_vm),
    ("xenapi", "VM.start", "vm-operator", x_start_vm),
    ("xenapi", "VM settings", "vm-operator", x_set_vm_setting),
    ("xenapi", "network.create", "pool-admin", x_create_network),
    ("xenapi", "host settings", "pool-admin", x_host_setting),
    ("xenapi", "VDI.introduce", "pool-admin", x_introduce_vdi),
    ("cim", "enumerate and associate", "read-only", c_enumerate),
    ("cim", "RequestStateChange of a VM", "vm-operator", c_start_vm),
    ("cim", "DestroySystem", "vm-operator", c_destroy_vm),
    ("cim", "RequestStateChange of the host", "pool-admin", c_host_state),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("door,what,least,action", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_role_table(d, role, door, what, least, action):
    s = XenAPI.Session(d.url)
    s.xenapi.login_with_password(f"u-{role}", f"pw-{role}", "2.21", "roles")
    c = d.wbem(f"u-{role}", f"pw-{role}")
    allowed = RANK[role] >= RANK[least]
    denied = None
    try:
        action(d, s.xenapi, c)
    except XenAPI.Failure as e:
        if e.details[0] == "RBAC_PERMISSION_DENIED":
            denied = e.details
        elif not allowed:
            raise
    except pywbem.CIMError as e:
        if e.status_code == pywbem.CIM_ERR_ACCESS_DENIED:
            denied = str(e)
        elif not allowed or door != "cim":
            raise
    finally:
        s.xenapi.session.logout()
    if allowed:
        assert denied is None, f"{role} was refused {what}: {denied}"
    else:
        assert denied is not None, f"{role} was allowed {what}"
