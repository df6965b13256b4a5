"""A corpus of malformed and hostile requests for each door (generated from templates, at least
200 per door): each gets a clean error and none changes the state of the daemon."""

import base64
import http.client
import json
import random
import xmlrpc.client

import pytest

from conftest import Daemon, make_vm

NS = "root/virt"


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("hostile")).start()
    yield d
    d.stop()


def send(d, key, body, path="/", headers=None):
    h, p = d.listeners[key].rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=30)
    c.request("POST", path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def state(d):
    s = d.session()
    x = s.xenapi
    snap = {cls: getattr(x, cls).get_all_records() for cls in ("VM", "VDI", "VBD", "VIF", "network", "SR", "host", "pool")}
    for recs in snap.values():
        for r in recs.values():
            # Fields that move by themselves.
            for k in ("last_updated", "memory_free", "host_CPUs", "metrics", "guest_metrics", "current_operations", "physical_utilisation"):
                r.pop(k, None)
    snap["cim"] = sorted(str(p) for p in d.wbem().EnumerateInstanceNames("Xen_ComputerSystem", NS))
    s.xenapi.session.logout()
    return snap


def xenapi_corpus(d, session, vm):
    rng = random.Random(8)
    good = xmlrpc.client.dumps((session, {"name_label": "hostile", "VCPUs_max": "1"}), "VM.create").encode()
    bodies = []
    # Truncated at every few bytes: never a whole call.
    for cut in range(10, len(good) - 20, max(1, len(good) // 60)):
        bodies.append(("/", good[:cut]))
    forged = "OpaqueRef:" + "0" * 8 + "-forged"
    for method, params in [
        ("VM.destroy", (forged, vm)), ("VM.start", (forged, vm, False, True)), ("VM.destroy", (session, forged)),
        ("VM.start", (session, vm)), ("VM.create", (session, 42)), ("VM.create", (session, ["a"])),
        ("VM.set_name_label", (session, vm)), ("VM.set_memory_static_max", (session, vm, "lots")),
        ("VM.set_VCPUs_max", (session, vm, "-1e999")), ("network.create", (forged, {})), ("SR.destroy", (forged, "OpaqueRef:NULL")),
        ("host.shutdown", (forged, "x")), ("VM.destroy\x00", (session, vm)), ("VM.destroy;VM.start", (session, vm)),
        ("../../VM.destroy", (session, vm)), ("VM." + "A" * 5000, (session,)), ("Async.VM.destroy", (forged, vm)),
        ("session.login_with_password", ("admin", "wrong", "1.0", "x")), ("session.login_with_password", ("' OR 1=1 --", "x")),
        ("VM.get_by_uuid", (session, "'; DROP TABLE objects; --")), ("VM.set_name_label", (session, "'; DROP TABLE objects; --", "x")),
        ("VM.add_to_other_config", (session, forged, "k", "v")), ("VM.destroy", ()), ("VM.destroy", (session, vm, vm, vm)),
    ]:
        bodies.append(("/", xmlrpc.client.dumps(params, method, allow_none=True).encode()))
    templates = [
        b"<?xml version='1.0'?><!DOCTYPE m [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>]><methodCall><methodName>&b;</methodName></methodCall>",
        b"<?xml version='1.0'?><!DOCTYPE m [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><methodCall><methodName>&x;</methodName></methodCall>",
        b"<methodCall><methodName>VM.destroy</methodName><params><param><value><i4>99999999999999999999</i4></value></param></params></methodCall>",
        b"<methodCall><methodName>VM.destroy</methodName><params><param><value><double>nan</double></value></param></params></methodCall>",
        b"<methodCall><methodName>VM.destroy</methodName><params><param><value><base64>!!!</base64></value></param></params></methodCall>",
        b"<methodCall><methodName>VM.destroy</methodName><params><param><value><dateTime.iso8601>never</dateTime.iso8601></value></param></params></methodCall>",
        b"<methodCall><methodName>VM.destroy</methodName><params><param><value><struct><member><value/></member></struct></value></param></params></methodCall>",
        b"<methodCall><methodName>VM.destroy</methodName><params><param><value><unknown/></value></param></params></methodCall>",
        b"<methodCall><methodName>\xff\xfe</methodName></methodCall>",
        b"\xef\xbb\xbf\x00\x00<methodCall>",
        b"", b"<", b"<methodCall/>", b"<methodResponse><params/></methodResponse>", b"<?xml version='1.1'?><methodCall><methodName>a</methodName></methodCall>",
        b"<methodCall><methodName>VM.destroy</methodName><params><param><value><array><data>" * 3,
        b"<methodCall><methodName>VM.destroy</methodName></methodCall><methodCall><methodName>VM.start</methodName></methodCall>",
    ]
    bodies += [("/", t) for t in templates]
    # JSON-RPC: malformed documents and calls that must fail.
    jgood = json.dumps({"jsonrpc": "2.0", "method": "VM.destroy", "params": [forged, vm], "id": 1}).encode()
    for cut in range(1, len(jgood) - 1, max(1, len(jgood) // 40)):
        bodies.append(("/jsonrpc", jgood[:cut]))
    for doc in [
        {"jsonrpc": "2.0", "method": "VM.destroy", "params": {"session": session}, "id": 1},
        {"jsonrpc": "2.0", "method": 7, "params": [], "id": 1},
        {"jsonrpc": "2.0", "method": "VM.destroy", "params": [session, {"$ref": vm}], "id": [1]},
        # Any "jsonrpc" other than "2.0" is answered in 1.0 form (as documented), so a whole
        # call with another version is a call: forged session.
        {"jsonrpc": "3.0", "method": "VM.destroy", "params": [forged, vm], "id": 1},
        {"method": "VM.destroy", "params": "x", "id": None},
        {"jsonrpc": "2.0", "method": "VM.destroy", "params": [forged, vm]},
        {"jsonrpc": "2.0", "method": "VM.set_name_label", "params": [session, vm, 1e400 if False else 1.5], "id": 2},
        {"jsonrpc": "2.0", "method": "VM.set_name_label", "params": [session, vm, None], "id": 2},
        {"jsonrpc": "2.0", "method": "VM.set_name_label", "params": [session, vm, ["x"]], "id": 2},
        {"jsonrpc": "2.0", "method": "network.create", "params": [session, {"name_label": 5}], "id": 2},
        [], [1, 2, 3], "VM.destroy", None, 12,
    ]:
        bodies.append(("/jsonrpc", json.dumps(doc).encode()))
    bodies += [("/jsonrpc", b'{"jsonrpc":"2.0","method":"VM.destroy","params":[' + b"[" * 10000 + b"]" * 10000 + b'],"id":1}'),
               ("/jsonrpc", b'{"a":1e99999999}'), ("/jsonrpc", b"\xff\xfe{}"), ("/jsonrpc", b'{"method":"\\ud800"}')]
    # Byte-level mutations of the good call.
    while len(bodies) < 240:
        b = bytearray(good if rng.random() < 0.6 else jgood)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] = rng.choice(b"<>&/\"'\x00\xff;") if rng.random() < 0.7 else rng.randrange(256)
        # A mutation could leave a whole, valid call; send it with a forged session then.
        bodies.append(("/jsonrpc" if b.startswith(b"{") else "/", bytes(b).replace(session.encode(), forged.encode())))
    return bodies


def test_xenapi_hostile_corpus(d):
    s = d.session()
    vm = make_vm(s.xenapi, "target")
    session = s.handle
    corpus = xenapi_corpus(d, session, vm)
    assert len(corpus) >= 200
    before = state(d)
    for path, body in corpus:
        status, headers, data = send(d, "xenapi", body, path=path, headers={"Content-Type": "text/xml"})
        if status == 200 and path == "/":
            assert b"<name>Status</name><value>Failure</value>" in data or b"Failure" in data, (body[:200], data[:300])
        elif status == 200:
            doc = json.loads(data)
            items = doc if isinstance(doc, list) else [doc]
            assert all(i.get("error") is not None or (isinstance(i.get("result"), dict) and i["result"].get("Status") == "Failure")
                       for i in items), (body[:200], data[:300])
        else:
            # XML-RPC that is not XML-RPC gets xapi's 500 with the reason as text; otherwise 4xx.
            assert 400 <= status < 500 or (status == 500 and data.startswith(b"malformed")), (status, body[:200], data[:300])
    assert state(d) == before
    assert d.proc.poll() is None
    s.xenapi.VM.destroy(vm)
    s.xenapi.session.logout()


def cim_envelope(method_xml):
    return ('<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="7" PROTOCOLVERSION="1.0">'
            f'<SIMPLEREQ>{method_xml}</SIMPLEREQ></MESSAGE></CIM>')


def ns_xml(ns=NS):
    return "<LOCALNAMESPACEPATH>" + "".join(f'<NAMESPACE NAME="{p}"/>' for p in ns.split("/")) + "</LOCALNAMESPACEPATH>"


def cim_corpus(vm_uuid):
    rng = random.Random(9)
    cs_path = ('<INSTANCENAME CLASSNAME="Xen_ComputerSystem"><KEYBINDING NAME="CreationClassName"><KEYVALUE>Xen_ComputerSystem</KEYVALUE>'
               f'</KEYBINDING><KEYBINDING NAME="Name"><KEYVALUE>{vm_uuid}</KEYVALUE></KEYBINDING></INSTANCENAME>')
    delete = f'<IMETHODCALL NAME="DeleteInstance">{ns_xml()}<IPARAMVALUE NAME="InstanceName">{cs_path}</IPARAMVALUE></IMETHODCALL>'
    good_delete = cim_envelope(delete).encode()
    items = []
    # Truncations of a DeleteInstance (a whole one would be a change: it never goes whole).
    for cut in range(10, len(good_delete) - 10, max(1, len(good_delete) // 70)):
        items.append(("DeleteInstance", "root/virt", good_delete[:cut]))
    forged = cs_path.replace(vm_uuid, "00000000-dead-beef-0000-000000000000")
    bad_ns = ns_xml("root/../../etc")
    for method, obj, xml in [
        ("DeleteInstance", "root/virt", cim_envelope(delete.replace(cs_path, forged))),
        ("DeleteInstance", "root/nowhere", cim_envelope(delete.replace(ns_xml(), ns_xml("root/nowhere")))),
        ("DeleteInstance", "root/../../etc", cim_envelope(delete.replace(ns_xml(), bad_ns))),
        ("ModifyInstance", "root/virt", cim_envelope(f'<IMETHODCALL NAME="ModifyInstance">{ns_xml()}<IPARAMVALUE NAME="ModifiedInstance"><VALUE.NAMEDINSTANCE>{forged}<INSTANCE CLASSNAME="Xen_ComputerSystem"/></VALUE.NAMEDINSTANCE></IPARAMVALUE></IMETHODCALL>')),
        ("CreateInstance", "root/virt", cim_envelope(f'<IMETHODCALL NAME="CreateInstance">{ns_xml()}<IPARAMVALUE NAME="NewInstance"><INSTANCE CLASSNAME="Xen_NoSuchClass"/></IPARAMVALUE></IMETHODCALL>')),
        ("CreateInstance", "root/virt", cim_envelope(f'<IMETHODCALL NAME="CreateInstance">{ns_xml()}<IPARAMVALUE NAME="NewInstance"><INSTANCE CLASSNAME="Xen_ComputerSystem"><PROPERTY NAME="Name" TYPE="string"><VALUE>x</VALUE></PROPERTY></INSTANCE></IPARAMVALUE></IMETHODCALL>')),
        ("DeleteClass", "root/virt", cim_envelope(f'<IMETHODCALL NAME="DeleteClass">{ns_xml()}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Xen_ComputerSystem"/></IPARAMVALUE></IMETHODCALL>')),
        ("SetQualifier", "root/virt", cim_envelope(f'<IMETHODCALL NAME="SetQualifier">{ns_xml()}<IPARAMVALUE NAME="QualifierDeclaration"><QUALIFIER.DECLARATION NAME="Key" TYPE="string"/></IPARAMVALUE></IMETHODCALL>')),
        ("RequestStateChange", "root/virt", cim_envelope(f'<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH>{ns_xml()}{forged}</LOCALINSTANCEPATH><PARAMVALUE NAME="RequestedState" PARAMTYPE="uint16"><VALUE>2</VALUE></PARAMVALUE></METHODCALL>')),
        ("RequestStateChange", "root/virt", cim_envelope(f'<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH>{ns_xml()}{cs_path}</LOCALINSTANCEPATH><PARAMVALUE NAME="RequestedState" PARAMTYPE="uint16"><VALUE>99999999</VALUE></PARAMVALUE></METHODCALL>')),
        ("RequestStateChange", "root/virt", cim_envelope(f'<METHODCALL NAME="RequestStateChange"><LOCALINSTANCEPATH>{ns_xml()}{cs_path}</LOCALINSTANCEPATH><PARAMVALUE NAME="RequestedState" PARAMTYPE="uint16"><VALUE>two</VALUE></PARAMVALUE></METHODCALL>')),
        ("DestroySystem", "root/virt", cim_envelope(f'<METHODCALL NAME="DestroySystem"><LOCALCLASSPATH>{ns_xml()}<CLASSNAME NAME="Xen_VirtualSystemManagementService"/></LOCALCLASSPATH><PARAMVALUE NAME="AffectedSystem" PARAMTYPE="reference"><VALUE.REFERENCE>{forged}</VALUE.REFERENCE></PARAMVALUE></METHODCALL>')),
        ("DefineSystem", "root/virt", cim_envelope(f'<METHODCALL NAME="DefineSystem"><LOCALCLASSPATH>{ns_xml()}<CLASSNAME NAME="Xen_VirtualSystemManagementService"/></LOCALCLASSPATH><PARAMVALUE NAME="SystemSettings" PARAMTYPE="string"><VALUE>&lt;INSTANCE CLASSNAME=&quot;</VALUE></PARAMVALUE></METHODCALL>')),
        ("DefineSystem", "root/virt", cim_envelope(f'<METHODCALL NAME="DefineSystem"><LOCALCLASSPATH>{ns_xml()}<CLASSNAME NAME="Xen_VirtualSystemManagementService"/></LOCALCLASSPATH><PARAMVALUE NAME="SystemSettings" PARAMTYPE="string"><VALUE>instance of Xen_VirtualSystemSettingData {{ ElementName = </VALUE></PARAMVALUE></METHODCALL>')),
        ("NoSuchOperation", "root/virt", cim_envelope(f'<IMETHODCALL NAME="NoSuchOperation">{ns_xml()}</IMETHODCALL>')),
        ("EnumerateInstances", "root/virt", '<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><CIM>&b;</CIM>'),
        ("EnumerateInstances", "root/virt", '<?xml version="1.0"?><!DOCTYPE CIM [<!ENTITY x SYSTEM "file:///etc/passwd">]><CIM>&x;</CIM>'),
        ("ExportIndication", "root/virt", cim_envelope('<EXPMETHODCALL NAME="ExportIndication"/>').replace("SIMPLEREQ", "SIMPLEEXPREQ")),
    ]:
        items.append((method, obj, xml.encode()))
    for junk in [b"", b"<", b"\xff\xfe\x00", b"<CIM/>", b"<CIM CIMVERSION='9'/>", b"not xml at all", b"<CIM>" * 200]:
        items.append(("DeleteInstance", "root/virt", junk))
    # Byte-level mutations of the DeleteInstance, with a key of a VM that does not exist, so
    # that a mutation that stays well-formed still deletes nothing.
    base = cim_envelope(delete.replace(cs_path, forged)).encode()
    while len(items) < 230:
        b = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(b))
            b[i] = rng.choice(b"<>&/\"'\x00\xff=") if rng.random() < 0.7 else rng.randrange(256)
        items.append(("DeleteInstance", "root/virt", bytes(b)))
    return items


def test_cim_hostile_corpus(d):
    x = d.session().xenapi
    vm_uuid = x.VM.get_uuid(make_vm(x, "cim-target"))
    corpus = cim_corpus(vm_uuid)
    assert len(corpus) >= 200
    token = base64.b64encode(f"admin:{d.admin_password}".encode()).decode()
    before = state(d)
    header_sets = 0
    for i, (method, obj, body) in enumerate(corpus):
        headers = {"Content-Type": "application/xml; charset=utf-8", "CIMOperation": "MethodCall", "CIMMethod": method,
                   "CIMObject": obj, "Authorization": f"Basic {token}"}
        # Every seventh request also has hostile headers.
        if i % 7 == 3:
            header_sets += 1
            headers.update([("CIMMethod", "EnumerateInstances\r\nX-Injected: 1"[:18]), ("CIMProtocolVersion", "9.9")][i % 2:i % 2 + 1])
        status, rh, data = send(d, "cim_http", body, path="/cimom", headers=headers)
        if status == 200:
            assert b"<ERROR" in data, (method, body[:300], data[:300])
        else:
            assert status in (400, 401, 403, 413, 501), (status, body[:200], data[:300])
            assert "cimerror" in rh or status in (401, 403, 413), (status, rh)
    assert header_sets > 20
    assert state(d) == before
    assert d.proc.poll() is None
