"""The WBEM door with pywbem and pywbemcli against the real daemon: every intrinsic operation
with and without its optional parameters, the pull operations to completion and closed early,
the interop namespace as pywbemcli sees it, error codes, authentication and authorization.

The daemon serves the test fixture class Xen_TestElement (5 instances, element n associated to
n+1 by Xen_TestAssociation, the last to the first)."""

import http.client
import os
import re
import subprocess

import pytest

import pywbem  # noqa: E402  (installed by scripts/setup-test-env)
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16, Uint32  # noqa: E402

N = 5
ROOT = os.path.dirname(os.path.abspath(__file__))
PYWBEMCLI = os.path.join(os.path.dirname(os.path.dirname(ROOT)), ".venv", "bin", "pywbemcli")


def element(n):
    return CIMInstanceName("Xen_TestElement", {"InstanceID": f"Xen:test:{n}"}, namespace="root/virt")


def ids(objs):
    out = []
    for o in objs:
        path = o.path if hasattr(o, "path") and not isinstance(o, CIMInstanceName) else o
        out.append(path.keybindings["InstanceID"])
    return sorted(out)


def status(exc_info):
    return exc_info.value.status_code_name


# ---- class and qualifier operations ------------------------------------------------------------


def test_enumerate_class_names(wbem_conn):
    top = wbem_conn.EnumerateClassNames()
    assert "CIM_ManagedElement" in top and "Xen_TestElement" not in top
    deep = wbem_conn.EnumerateClassNames(DeepInheritance=True)
    assert "Xen_TestElement" in deep and "Xen_TestAssociation" in deep
    sub = wbem_conn.EnumerateClassNames(ClassName="CIM_LogicalElement")
    assert "Xen_TestElement" in sub
    assert "Xen_TestElement" in wbem_conn.EnumerateClassNames(ClassName="CIM_ManagedElement", DeepInheritance=True)
    assert "Xen_TestElement" not in wbem_conn.EnumerateClassNames(ClassName="CIM_ManagedElement", DeepInheritance=False)


def test_enumerate_classes_defaults_and_options(wbem_conn):
    classes = {c.classname: c for c in wbem_conn.EnumerateClasses(ClassName="CIM_LogicalElement")}
    te = classes["Xen_TestElement"]
    # DSP0200 defaults: LocalOnly true (no inherited properties), qualifiers included, no origin.
    assert "Index" in te.properties and "Caption" not in te.properties
    assert te.qualifiers.get("Description") is not None
    assert te.properties["Index"].class_origin is None
    full = {c.classname: c for c in wbem_conn.EnumerateClasses(
        ClassName="CIM_LogicalElement", LocalOnly=False, IncludeQualifiers=False, IncludeClassOrigin=True, DeepInheritance=True)}
    te = full["Xen_TestElement"]
    assert "Caption" in te.properties and not te.qualifiers
    assert te.properties["Caption"].class_origin == "CIM_ManagedElement"


def test_get_class(wbem_conn):
    c = wbem_conn.GetClass("Xen_TestElement")
    assert c.superclass == "CIM_LogicalElement"
    assert "Caption" not in c.properties and "Echo" in c.methods
    assert c.qualifiers["Description"].value.startswith("TEST FIXTURE")
    c = wbem_conn.GetClass("Xen_TestElement", LocalOnly=False, IncludeQualifiers=False, IncludeClassOrigin=True,
                           PropertyList=["InstanceID", "Caption"])
    assert set(c.properties) == {"InstanceID", "Caption"}
    assert c.properties["Caption"].class_origin == "CIM_ManagedElement"
    assert not c.properties["InstanceID"].qualifiers
    with pytest.raises(CIMError) as e:
        wbem_conn.GetClass("Xen_NoSuchClass")
    assert status(e) == "CIM_ERR_NOT_FOUND"


def test_qualifiers(wbem_conn):
    key = wbem_conn.GetQualifier("Key")
    assert key.type == "boolean"
    names = [q.name for q in wbem_conn.EnumerateQualifiers()]
    assert "Key" in names and "Description" in names
    with pytest.raises(CIMError) as e:
        wbem_conn.GetQualifier("NoSuchQualifier")
    assert status(e) == "CIM_ERR_NOT_FOUND"


# ---- instance operations -----------------------------------------------------------------------


def test_enumerate_instances_with_and_without_options(wbem_conn):
    insts = wbem_conn.EnumerateInstances("Xen_TestElement")
    assert ids(insts) == sorted(f"Xen:test:{n}" for n in range(1, N + 1))
    i = insts[0]
    assert i["Caption"] == "test fixture" and i.properties["Caption"].class_origin is None
    assert i.path.namespace == "root/virt"
    # Deep inheritance from a CIM_ superclass finds the Xen_ instances.
    deep = wbem_conn.EnumerateInstances("CIM_LogicalElement")
    assert len([d for d in deep if d.classname == "Xen_TestElement"]) == N
    shallow = wbem_conn.EnumerateInstances("CIM_ManagedElement", DeepInheritance=False)
    te = [s for s in shallow if s.classname == "Xen_TestElement"][0]
    assert "Index" not in te.properties and "Caption" in te.properties
    some = wbem_conn.EnumerateInstances("Xen_TestElement", PropertyList=["Index"], IncludeClassOrigin=True,
                                        IncludeQualifiers=False, LocalOnly=False)
    assert set(some[0].properties) == {"Index"}
    assert some[0].properties["Index"].class_origin == "Xen_TestElement"
    local = wbem_conn.EnumerateInstances("Xen_TestElement", LocalOnly=True)
    assert "Index" in local[0].properties and "Caption" not in local[0].properties
    assert wbem_conn.EnumerateInstances("Xen_TestElement", PropertyList=[])[0].properties == {}


def test_enumerate_instance_names(wbem_conn):
    assert ids(wbem_conn.EnumerateInstanceNames("Xen_TestElement")) == sorted(f"Xen:test:{n}" for n in range(1, N + 1))
    assert len(wbem_conn.EnumerateInstanceNames("Xen_TestAssociation")) == N


def test_get_instance(wbem_conn):
    i = wbem_conn.GetInstance(element(2))
    assert i["Index"] == 2 and i["Tags"] == ["even", "test"] and i["Flag"] is True
    assert isinstance(i["Created"], pywbem.CIMDateTime)
    i = wbem_conn.GetInstance(element(2), PropertyList=["Text"], IncludeClassOrigin=True, IncludeQualifiers=True, LocalOnly=False)
    assert list(i.properties) == ["Text"] and i.properties["Text"].class_origin == "Xen_TestElement"
    assert i.properties["Text"].qualifiers["Write"].value is True


def test_create_modify_delete_instance(wbem_conn):
    new = CIMInstance("Xen_TestElement", {"InstanceID": "Xen:test:created", "Text": "made by pywbem"})
    path = wbem_conn.CreateInstance(new)
    assert path.keybindings["InstanceID"] == "Xen:test:created"
    with pytest.raises(CIMError) as e:
        wbem_conn.CreateInstance(new)
    assert status(e) == "CIM_ERR_ALREADY_EXISTS"
    inst = wbem_conn.GetInstance(path)
    inst["Text"] = "modified"
    wbem_conn.ModifyInstance(inst)
    assert wbem_conn.GetInstance(path)["Text"] == "modified"
    inst["Text"] = "ignored"
    wbem_conn.ModifyInstance(inst, PropertyList=[])
    assert wbem_conn.GetInstance(path)["Text"] == "modified"
    wbem_conn.DeleteInstance(path)
    with pytest.raises(CIMError) as e:
        wbem_conn.GetInstance(path)
    assert status(e) == "CIM_ERR_NOT_FOUND"


def test_exec_query(wbem_conn):
    rows = wbem_conn.ExecQuery("WQL", "SELECT * FROM Xen_TestElement WHERE Index >= 4")
    assert ids(rows) == ["Xen:test:4", "Xen:test:5"]
    rows = wbem_conn.ExecQuery("WQL", "SELECT Index FROM CIM_LogicalElement WHERE Text LIKE 'test element _' AND NOT Flag")
    assert sorted(r["Index"] for r in rows) == [1, 3, 5] and set(rows[0].properties) == {"Index"}
    rows = wbem_conn.ExecQuery("DMTF:CQL", "SELECT * FROM Xen_TestElement WHERE Xen_TestElement ISA CIM_ManagedElement")
    assert len(rows) == N
    with pytest.raises(CIMError) as e:
        wbem_conn.ExecQuery("WQL", "SELECT * FROM Xen_TestElement WHERE")
    assert status(e) == "CIM_ERR_INVALID_QUERY" and "column" in str(e.value)
    with pytest.raises(CIMError) as e:
        wbem_conn.ExecQuery("XPath", "//x")
    assert status(e) == "CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED"


# ---- associations ------------------------------------------------------------------------------


def test_associators_and_names(wbem_conn):
    assert ids(wbem_conn.Associators(element(2))) == ["Xen:test:1", "Xen:test:3"]
    assert ids(wbem_conn.AssociatorNames(element(2))) == ["Xen:test:1", "Xen:test:3"]
    assert ids(wbem_conn.Associators(element(2), AssocClass="CIM_Dependency", ResultClass="CIM_ManagedElement",
                                     Role="Antecedent", ResultRole="Dependent")) == ["Xen:test:3"]
    assert ids(wbem_conn.AssociatorNames(element(2), Role="Dependent")) == ["Xen:test:1"]
    assert wbem_conn.AssociatorNames(element(2), AssocClass="CIM_HostedDependency") == []
    assert wbem_conn.AssociatorNames(element(2), Role="Antecedent", ResultRole="Antecedent") == []
    one = wbem_conn.Associators(element(2), Role="Antecedent", PropertyList=["Index"], IncludeClassOrigin=True,
                                IncludeQualifiers=False)
    assert set(one[0].properties) == {"Index"} and one[0]["Index"] == 3


def test_references_and_names(wbem_conn):
    refs = wbem_conn.References(element(2))
    assert sorted(r["Antecedent"].keybindings["InstanceID"] for r in refs) == ["Xen:test:1", "Xen:test:2"]
    names = wbem_conn.ReferenceNames(element(2), ResultClass="Xen_TestAssociation", Role="Dependent")
    assert len(names) == 1 and names[0].keybindings["Antecedent"].keybindings["InstanceID"] == "Xen:test:1"
    assert wbem_conn.References(element(2), ResultClass="CIM_HostedDependency") == []


def test_class_level_associations(wbem_conn):
    names = [p.classname for p in wbem_conn.ReferenceNames("Xen_TestElement", ResultClass="Xen_TestAssociation")]
    assert names == ["Xen_TestAssociation"]
    assoc = wbem_conn.Associators("Xen_TestElement", AssocClass="Xen_TestAssociation")
    assert [c[1].classname for c in assoc] == ["Xen_TestElement"]


# ---- methods -----------------------------------------------------------------------------------


def test_invoke_method(wbem_conn):
    rc, out = wbem_conn.InvokeMethod("Echo", element(1), Text="ab", Repeat=Uint32(3))
    assert rc == 0 and out["Echoed"] == "ababab"
    rc, out = wbem_conn.InvokeMethod("Echo", element(1), Text="x")
    assert out["Echoed"] == "x"
    rc, _ = wbem_conn.InvokeMethod("RequestStateChange", element(1), RequestedState=Uint16(2))
    assert rc == 0 and wbem_conn.GetInstance(element(1))["State"] == 2
    with pytest.raises(CIMError) as e:
        wbem_conn.InvokeMethod("NoSuchMethod", element(1))
    assert status(e) == "CIM_ERR_METHOD_NOT_FOUND"
    with pytest.raises(CIMError) as e:
        wbem_conn.InvokeMethod("Echo", element(1), Bogus="x")
    assert status(e) == "CIM_ERR_INVALID_PARAMETER"
    with pytest.raises(CIMError) as e:
        wbem_conn.InvokeMethod("Echo", element(1), Repeat="many")
    assert status(e) == "CIM_ERR_INVALID_PARAMETER"
    with pytest.raises(CIMError) as e:
        wbem_conn.InvokeMethod("Echo", element(99), Text="x")
    assert status(e) == "CIM_ERR_NOT_FOUND"


# ---- pull operations ---------------------------------------------------------------------------


def test_pull_enumeration_to_completion(wbem_conn):
    r = wbem_conn.OpenEnumerateInstances("Xen_TestElement", MaxObjectCount=2)
    got = list(r.instances)
    assert len(got) == 2 and not r.eos
    while not r.eos:
        r = wbem_conn.PullInstancesWithPath(r.context, MaxObjectCount=2)
        got.extend(r.instances)
    assert ids(got) == sorted(f"Xen:test:{n}" for n in range(1, N + 1))
    r = wbem_conn.OpenEnumerateInstancePaths("Xen_TestElement", MaxObjectCount=0)
    assert r.paths == [] and not r.eos
    paths = []
    while not r.eos:
        r = wbem_conn.PullInstancePaths(r.context, MaxObjectCount=3)
        paths.extend(r.paths)
    assert len(paths) == N
    # Defaults (no MaxObjectCount: 0 objects in the open response).
    r = wbem_conn.OpenEnumerateInstances("Xen_TestElement")
    assert r.instances == [] and not r.eos
    wbem_conn.CloseEnumeration(r.context)
    # Everything in one go ends the sequence at once.
    r = wbem_conn.OpenEnumerateInstances("Xen_TestElement", MaxObjectCount=100, DeepInheritance=False,
                                         IncludeClassOrigin=True, PropertyList=["Index"], OperationTimeout=30)
    assert r.eos and r.context is None and len(r.instances) == N
    assert set(r.instances[0].properties) == {"Index"}


def test_pull_associations_and_queries(wbem_conn):
    assert ids(wbem_conn.IterAssociatorInstances(element(3), MaxObjectCount=1)) == ["Xen:test:2", "Xen:test:4"]
    assert ids(wbem_conn.IterAssociatorInstancePaths(element(3), Role="Antecedent", MaxObjectCount=1)) == ["Xen:test:4"]
    assert len(list(wbem_conn.IterReferenceInstances(element(3), MaxObjectCount=1))) == 2
    assert len(list(wbem_conn.IterReferenceInstancePaths(element(3), ResultClass="Xen_TestAssociation", MaxObjectCount=1))) == 2
    r = wbem_conn.OpenQueryInstances("WQL", "SELECT * FROM Xen_TestElement WHERE Index < 3", MaxObjectCount=1)
    got = list(r.instances)
    while not r.eos:
        r = wbem_conn.PullInstances(r.context, MaxObjectCount=1)
        got.extend(r.instances)
    assert sorted(i["Index"] for i in got) == [1, 2]


def test_pull_early_close_and_bad_contexts(wbem_conn):
    r = wbem_conn.OpenEnumerateInstances("Xen_TestElement", MaxObjectCount=1)
    assert not r.eos
    wbem_conn.CloseEnumeration(r.context)
    for call in (lambda: wbem_conn.PullInstancesWithPath(r.context, MaxObjectCount=1), lambda: wbem_conn.CloseEnumeration(r.context)):
        with pytest.raises(CIMError) as e:
            call()
        assert status(e) == "CIM_ERR_INVALID_ENUMERATION_CONTEXT"
    with pytest.raises(CIMError) as e:
        wbem_conn.PullInstancesWithPath(("no-such-context", "root/virt"), MaxObjectCount=1)
    assert status(e) == "CIM_ERR_INVALID_ENUMERATION_CONTEXT"
    r = wbem_conn.OpenEnumerateInstancePaths("Xen_TestElement", MaxObjectCount=1)
    with pytest.raises(CIMError) as e:
        wbem_conn.PullInstancesWithPath(r.context, MaxObjectCount=1)
    assert status(e) == "CIM_ERR_INVALID_ENUMERATION_CONTEXT"
    wbem_conn.CloseEnumeration(r.context)
    with pytest.raises(CIMError) as e:
        wbem_conn.OpenEnumerateInstances("Xen_TestElement", ContinueOnError=True)
    assert status(e) == "CIM_ERR_CONTINUATION_ON_ERROR_NOT_SUPPORTED"
    with pytest.raises(CIMError) as e:
        wbem_conn.OpenEnumerateInstances("Xen_TestElement", FilterQueryLanguage="DMTF:FQL", FilterQuery="Index = 1")
    assert status(e) == "CIM_ERR_FILTERED_ENUMERATION_NOT_SUPPORTED"
    with pytest.raises(CIMError) as e:
        wbem_conn.OpenEnumerateInstances("Xen_TestElement", OperationTimeout=0)
    assert status(e) == "CIM_ERR_INVALID_OPERATION_TIMEOUT"


def test_pull_context_belongs_to_its_user(wbem_daemon, wbem_conn):
    wbem_daemon.add_user("reader2", "read-only", "reader2-password")
    other = wbem_daemon.wbem("reader2", "reader2-password")
    r = wbem_conn.OpenEnumerateInstances("Xen_TestElement", MaxObjectCount=1)
    with pytest.raises(CIMError) as e:
        other.PullInstancesWithPath(r.context, MaxObjectCount=1)
    assert status(e) == "CIM_ERR_INVALID_ENUMERATION_CONTEXT"
    assert len(wbem_conn.PullInstancesWithPath(r.context, MaxObjectCount=10).instances) == N - 1


# ---- GetProperty / SetProperty (pywbem has no API for them: raw CIM-XML) ------------------------


def raw(daemon, method, body_params, user="admin", password=None, headers=None, cimobject="root%2Fvirt"):
    host, port = daemon.listeners["cim_http"].rsplit(":", 1)
    body = ('<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="7" PROTOCOLVERSION="1.0">'
            f'<SIMPLEREQ><IMETHODCALL NAME="{method}"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/>'
            f'</LOCALNAMESPACEPATH>{body_params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>')
    import base64
    auth = base64.b64encode(f"{user}:{password or daemon.admin_password}".encode()).decode()
    h = {"Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall", "CIMMethod": method,
         "CIMObject": cimobject, "Authorization": "Basic " + auth}
    h.update(headers or {})
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", "/cimom", body.encode(), {k: v for k, v in h.items() if v is not None})
    resp = conn.getresponse()
    data = resp.read().decode()
    conn.close()
    return resp, data


INSTANCE_NAME_2 = ('<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="Xen_TestElement"><KEYBINDING NAME="InstanceID">'
                   '<KEYVALUE VALUETYPE="string">Xen:test:4</KEYVALUE></KEYBINDING></INSTANCENAME></IPARAMVALUE>')


def test_get_and_set_property(wbem_daemon, wbem_conn):
    _, data = raw(wbem_daemon, "GetProperty", INSTANCE_NAME_2 + '<IPARAMVALUE NAME="PropertyName"><VALUE>Tags</VALUE></IPARAMVALUE>')
    assert "<VALUE.ARRAY><VALUE>even</VALUE><VALUE>test</VALUE></VALUE.ARRAY>" in data
    _, data = raw(wbem_daemon, "SetProperty", INSTANCE_NAME_2 + '<IPARAMVALUE NAME="PropertyName"><VALUE>Text</VALUE></IPARAMVALUE>'
                  '<IPARAMVALUE NAME="NewValue"><VALUE>set by SetProperty</VALUE></IPARAMVALUE>')
    assert "<ERROR" not in data, data
    assert wbem_conn.GetInstance(element(4))["Text"] == "set by SetProperty"
    _, data = raw(wbem_daemon, "GetProperty", INSTANCE_NAME_2 + '<IPARAMVALUE NAME="PropertyName"><VALUE>Nope</VALUE></IPARAMVALUE>')
    assert 'CODE="12"' in data  # CIM_ERR_NO_SUCH_PROPERTY


def test_unsupported_operations(wbem_daemon):
    for op in ("CreateClass", "DeleteQualifier", "Frobnicate"):
        _, data = raw(wbem_daemon, op, "")
        assert 'CODE="7"' in data, data  # CIM_ERR_NOT_SUPPORTED


def test_protocol_errors(wbem_daemon):
    resp, _ = raw(wbem_daemon, "EnumerateClassNames", "", headers={"CIMMethod": "GetClass"})
    assert resp.status == 400 and resp.getheader("CIMError") == "header-mismatch"
    resp, _ = raw(wbem_daemon, "EnumerateClassNames", "", headers={"CIMOperation": "Bogus"})
    assert resp.status == 400 and resp.getheader("CIMError") == "unsupported-operation"
    resp, _ = raw(wbem_daemon, "EnumerateClassNames", "", cimobject="root%2Finterop")
    assert resp.status == 400 and resp.getheader("CIMError") == "header-mismatch"
    resp, _ = raw(wbem_daemon, "EnumerateClassNames", "", headers={"CIMMethod": None})
    assert resp.status == 400 and resp.getheader("CIMError") == "header-mismatch"
    resp, data = raw(wbem_daemon, "EnumerateClassNames", "<BOGUS/>")
    assert resp.status == 400 and resp.getheader("CIMError") == "request-not-valid"
    resp, data = raw(wbem_daemon, "EnumerateClassNames", "")
    assert resp.status == 200 and resp.getheader("CIMOperation") == "MethodResponse"
    assert resp.getheader("Content-Type").startswith("application/xml")


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,code", [
    (lambda c: c.EnumerateInstances("Xen_TestElement", namespace="root/nowhere"), "CIM_ERR_INVALID_NAMESPACE"),
    (lambda c: c.EnumerateInstanceNames("Xen_NoSuchClass"), "CIM_ERR_INVALID_CLASS"),
    (lambda c: c.GetInstance(CIMInstanceName("Xen_NoSuchClass", {"InstanceID": "x"})), "CIM_ERR_INVALID_CLASS"),
    (lambda c: c.GetInstance(element(99)), "CIM_ERR_NOT_FOUND"),
    (lambda c: c.GetInstance(CIMInstanceName("Xen_TestElement", {"Bogus": "x"})), "CIM_ERR_INVALID_PARAMETER"),
    (lambda c: c.GetInstance(CIMInstanceName("Xen_TestElement", {})), "CIM_ERR_INVALID_PARAMETER"),
    (lambda c: c.Associators(CIMInstanceName("Xen_TestElement", {"Bogus": "x"})), "CIM_ERR_INVALID_PARAMETER"),
    (lambda c: c.DeleteInstance(CIMInstanceName("Xen_TestAssociation", {
        "Antecedent": element(1), "Dependent": element(2)})), "CIM_ERR_NOT_SUPPORTED"),
])
def test_error_codes(wbem_conn, call, code):
    with pytest.raises(CIMError) as e:
        call(wbem_conn)
    assert status(e) == code


def test_interop_alias_and_namespaces(wbem_daemon):
    for ns in ("interop", "root/interop", "ROOT/Interop"):
        names = wbem_daemon.wbem(namespace=ns).EnumerateInstanceNames("CIM_Namespace")
        assert {p.keybindings["Name"] for p in names} >= {"root/virt", "root/interop", "root/cimv2"}
    server = pywbem.WBEMServer(wbem_daemon.wbem())
    assert server.brand == "xencim" and server.version
    assert {"root/virt", "root/interop"} <= set(server.namespaces)
    profiles = server.get_selected_profiles("DMTF", "Profile Registration")
    assert profiles and profiles[0]["RegisteredVersion"] == "1.0.0"
    central = server.get_central_instances(profiles[0].path, central_class="CIM_ObjectManager", reference_direction="dmtf")
    assert [p.classname for p in central] == ["CIM_ObjectManager"]


# ---- authentication and authorization ----------------------------------------------------------


def test_wrong_password_is_401_and_not_logged(wbem_daemon):
    secret = "Wr0ng-Secret-pa55word"
    with pytest.raises(pywbem.Error) as e:
        wbem_daemon.wbem(password=secret).EnumerateClassNames()
    assert "401" in str(e.value)
    resp, _ = raw(wbem_daemon, "EnumerateClassNames", "", password=secret)
    assert resp.status == 401 and resp.getheader("WWW-Authenticate") == 'Basic realm="xencim"'
    resp, _ = raw(wbem_daemon, "EnumerateClassNames", "", headers={"Authorization": None})
    assert resp.status == 401
    log = wbem_daemon.log.read_text()
    assert secret not in log and wbem_daemon.admin_password not in log
    assert "authentication failed" in log


def test_read_only_user(wbem_daemon):
    wbem_daemon.add_user("viewer", "read-only", "viewer-password")
    c = wbem_daemon.wbem("viewer", "viewer-password")
    assert len(c.EnumerateInstances("Xen_TestElement")) >= N - 1
    for call in (
        lambda: c.InvokeMethod("Echo", element(1), Text="x"),
        lambda: c.CreateInstance(CIMInstance("Xen_TestElement", {"InstanceID": "Xen:test:ro"})),
        lambda: c.DeleteInstance(element(1)),
        lambda: c.ModifyInstance(CIMInstance("Xen_TestElement", {"Text": "x"}, path=element(1))),
    ):
        with pytest.raises(CIMError) as e:
            call()
        assert status(e) == "CIM_ERR_ACCESS_DENIED"


# ---- TLS ---------------------------------------------------------------------------------------


def test_https(wbem_daemon):
    env_backup = {k: os.environ.pop(k) for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if k in os.environ}
    try:
        c = wbem_daemon.wbem(https=True)
        assert len(c.EnumerateInstanceNames("Xen_TestElement")) >= N - 1
    finally:
        os.environ.update(env_backup)


# ---- pywbemcli ---------------------------------------------------------------------------------


def cli(daemon, *args, namespace="root/interop"):
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    cmd = [PYWBEMCLI, "-s", daemon.wbem_url, "-u", "admin", "-p", daemon.admin_password, "-d", namespace, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stdout}\n{r.stderr}"
    return r.stdout


def test_pywbemcli_server_info(wbem_daemon):
    out = cli(wbem_daemon, "server", "info")
    assert re.search(r"xencim\s+\d+\.\d+\.\d+\s+interop", out), out
    assert "root/virt" in out


def test_pywbemcli_namespace_list(wbem_daemon):
    out = cli(wbem_daemon, "namespace", "list")
    for ns in ("root/interop", "root/virt", "root/cimv2"):
        assert ns in out


def test_pywbemcli_profile_list(wbem_daemon):
    out = cli(wbem_daemon, "profile", "list")
    assert re.search(r"DMTF\s+Profile Registration\s+1\.0\.0", out), out
    assert "System Virtualization" in out


def test_pywbemcli_class_tree(wbem_daemon):
    out = cli(wbem_daemon, "class", "tree")
    assert "CIM_ManagedElement" in out and "CIM_RegisteredProfile" in out
    out = cli(wbem_daemon, "class", "tree", "CIM_LogicalElement", namespace="root/virt")
    assert "Xen_TestElement" in out


def test_pywbemcli_instance_enumerate(wbem_daemon):
    out = cli(wbem_daemon, "instance", "enumerate", "CIM_Namespace")
    assert 'Name = "root/virt"' in out
    out = cli(wbem_daemon, "instance", "enumerate", "CIM_ObjectManager")
    assert 'ElementName = "xencim"' in out
    out = cli(wbem_daemon, "instance", "enumerate", "Xen_TestElement", namespace="root/virt")
    assert out.count("instance of Xen_TestElement") >= N - 1
