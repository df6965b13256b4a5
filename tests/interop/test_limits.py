"""Limits, each exceeded by one client while another carries on: body size, connections per
address and in total, header (slowloris) and idle timeouts, and the request-parsing limits on
every codec: XML depth, element count and attributes per element (CIM-XML and XML-RPC), JSON
depth (JSON-RPC), string length and array length (all three).

Every limit is set small in the config here: max_body_bytes, max_connections,
max_connections_per_ip, header_timeout_secs, idle_timeout_secs, xml_max_depth,
xml_max_elements, xml_max_attributes, json_max_depth, max_string_bytes, max_array_items. The
clients' own requests (XenAPI.py, pywbem) stay well inside them. A request beyond a parsing
limit gets the refusal its door gives malformed input, naming the config key and its value:
CIM-XML HTTP 400 with `CIMError: request-not-valid`, XML-RPC HTTP 500 with the reason as text
(as xapi answers a body that is not XML-RPC), JSON-RPC error -32700. The Xen-API requests are
VM.create calls with a real session, so that one let through would leave a VM behind."""

import base64
import http.client
import json
import socket
import threading
import time
import xmlrpc.client

import pytest
import XenAPI

from conftest import Daemon

CONFIG = """
max_body_bytes = 65536
max_connections = 12
max_connections_per_ip = 4
header_timeout_secs = 2
idle_timeout_secs = 2
xml_max_depth = 12
xml_max_elements = 400
xml_max_attributes = 4
json_max_depth = 6
max_string_bytes = 4096
max_array_items = 50
"""


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("limits"), extra_config=CONFIG).start()
    yield d
    d.stop()


def hostport(d, key):
    h, p = d.listeners[key].rsplit(":", 1)
    return h, int(p)


def post(d, key, body, path="/", headers=None, source="127.0.0.2"):
    """One request on a fresh connection from `source` (a loopback address of its own, so that
    the per-address limit of the client under test does not apply)."""
    h, p = hostport(d, key)
    c = http.client.HTTPConnection(h, p, timeout=30, source_address=(source, 0))
    c.request("POST", path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def cim_headers(d, method="EnumerateInstanceNames"):
    token = base64.b64encode(f"admin:{d.admin_password}".encode()).decode()
    return {"Content-Type": "application/xml; charset=utf-8", "CIMOperation": "MethodCall", "CIMMethod": method,
            "CIMObject": "root/interop", "Authorization": f"Basic {token}"}


def other_client_works(d):
    """A different client, through both doors, is served normally."""
    s = XenAPI.Session(d.url)
    s.xenapi.login_with_password("admin", d.admin_password, "2.21", "limits")
    assert s.xenapi.VM.get_all()
    s.xenapi.session.logout()
    assert d.wbem(namespace="root/interop").EnumerateInstanceNames("CIM_Namespace")


def cim_call(inner):
    return ('<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0">'
            '<SIMPLEREQ><IMETHODCALL NAME="EnumerateInstanceNames"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="interop"/>'
            f'</LOCALNAMESPACEPATH><IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="CIM_Namespace"/></IPARAMVALUE>{inner}'
            '</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>')


def xmlrpc_call(value):
    return f"<?xml version='1.0'?><methodCall><methodName>session.login_with_password</methodName><params><param>{value}</param></params></methodCall>"


@pytest.mark.parametrize("key", ["xenapi", "cim_http"])
def test_body_size(d, key):
    status, _, _ = post(d, key, b"x" * 70000, headers=cim_headers(d) if key == "cim_http" else {})
    assert status == 413
    other_client_works(d)


def test_connections_per_address(d):
    h, p = hostport(d, "xenapi")
    held = [socket.create_connection((h, p), source_address=("127.0.0.3", 0)) for _ in range(4)]
    try:
        time.sleep(0.2)
        extra = socket.create_connection((h, p), source_address=("127.0.0.3", 0), timeout=5)
        extra.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        try:
            data = extra.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"" or b" 503 " in data.split(b"\r\n")[0], data
        extra.close()
        other_client_works(d)
    finally:
        for s in held:
            s.close()


def test_connections_in_total(d):
    h, p = hostport(d, "cim_http")
    held = [socket.create_connection((h, p), source_address=(f"127.0.1.{i}", 0)) for i in range(1, 13)]
    try:
        time.sleep(0.2)
        extra = socket.create_connection((h, p), source_address=("127.0.2.1", 0), timeout=5)
        extra.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        try:
            data = extra.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"" or b" 503 " in data.split(b"\r\n")[0], data
        extra.close()
        # The limit is per listener: the other door carries on meanwhile.
        s = XenAPI.Session(d.url)
        s.xenapi.login_with_password("admin", d.admin_password, "2.21", "limits")
        assert s.xenapi.VM.get_all()
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    other_client_works(d)


@pytest.mark.parametrize("key", ["xenapi", "cim_http"])
def test_slowloris_head_is_cut(d, key):
    h, p = hostport(d, key)
    s = socket.create_connection((h, p), timeout=10)
    start = time.time()
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
    closed = False
    served = []
    t = threading.Thread(target=lambda: served.append(other_client_works(d) or True))
    t.start()
    try:
        for _ in range(40):
            s.sendall(b"X-Slow: a\r\n")
            time.sleep(0.25)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        s.settimeout(3)
        closed = s.recv(100) in (b"",) or True
    t.join()
    elapsed = time.time() - start
    s.close()
    assert closed and elapsed < 8, f"a dribbling head was allowed for {elapsed:.1f} s"
    assert served == [True]


@pytest.mark.parametrize("key", ["xenapi", "cim_http"])
def test_idle_connection_is_closed(d, key):
    h, p = hostport(d, key)
    s = socket.create_connection((h, p), timeout=10)
    start = time.time()
    assert s.recv(100) == b""
    assert time.time() - start < 6


def state(d):
    """What a request let through would change: the VMs (Xen-API) and the systems (CIM)."""
    s = d.session()
    vms = sorted((r["uuid"], r["name_label"]) for r in s.xenapi.VM.get_all_records().values())
    s.xenapi.session.logout()
    systems = sorted(str(p) for p in d.wbem().EnumerateInstanceNames("Xen_ComputerSystem", "root/virt"))
    return vms, systems


@pytest.fixture
def unchanged(d):
    """Asserts, after the test, that the state is what it was before, and that other clients
    are served through both doors."""
    before = state(d)
    yield
    other_client_works(d)
    assert state(d) == before


@pytest.mark.parametrize("inner,mention", [
    ("<VALUE.ARRAY>" * 13 + "</VALUE.ARRAY>" * 13, "elements nested deeper than 12 (xml_max_depth)"),
    ("<X/>" * 401, "more than 400 elements (xml_max_elements)"),
    ("<X " + " ".join(f'a{i}="1"' for i in range(5)) + "/>", "element X has more than 4 attributes (xml_max_attributes)"),
    ("<VALUE>" + "x" * 4097 + "</VALUE>", "the text of element VALUE is longer than 4096 bytes (max_string_bytes)"),
    ("<VALUE>" + "&amp;" * 4097 + "</VALUE>", "longer than 4096 bytes (max_string_bytes)"),
    ('<X a="' + "x" * 4097 + '"/>', "attribute a of element X is longer than 4096 bytes (max_string_bytes)"),
    ("<VALUE.ARRAY>" + "<VALUE>1</VALUE>" * 51 + "</VALUE.ARRAY>", "VALUE.ARRAY with more than 50 items (max_array_items)"),
    ("<VALUE.REFARRAY>" + "<VALUE.NULL/>" * 51 + "</VALUE.REFARRAY>", "VALUE.REFARRAY with more than 50 items (max_array_items)"),
], ids=["depth", "elements", "attributes", "string", "escaped-string", "attribute-value", "array", "refarray"])
def test_cim_xml_limits(d, unchanged, inner, mention):
    status, headers, body = post(d, "cim_http", cim_call(f'<IPARAMVALUE NAME="Junk">{inner}</IPARAMVALUE>').encode(), headers=cim_headers(d))
    assert status == 400 and headers.get("cimerror") == "request-not-valid", (status, headers, body[:300])
    assert mention.encode() in body, body[:300]


def vm_create(d):
    """A real session and the start of a VM.create record: a request let through would make a VM."""
    return d.session(), {"name_label": "limits: must not exist"}


@pytest.mark.parametrize("record,mention", [
    # methodCall, params, param, value, struct, member, value (other_config), then three per level.
    ({"other_config": {"a": {"b": {"c": "x"}}}}, "elements nested deeper than 12 (xml_max_depth)"),
    # Every array and struct within 50, but 400+ elements in all.
    ({"tags": ["t"] * 45, "other_config": {f"k{i}": "v" for i in range(45)}, "xenstore_data": {f"k{i}": "v" for i in range(45)}},
     "more than 400 elements (xml_max_elements)"),
    ("attributes", "<methodName> has more than 4 attributes (xml_max_attributes)"),
    ({"name_description": "x" * 4097}, "text of <string> longer than 4096 bytes (max_string_bytes)"),
    ({"name_description": "<" * 4097}, "longer than 4096 bytes (max_string_bytes)"),
    ({"tags": ["t"] * 51}, "array with more than 50 items (max_array_items)"),
    ({"other_config": {f"k{i}": "v" for i in range(51)}}, "struct with more than 50 members (max_array_items)"),
], ids=["depth", "elements", "attributes", "string", "escaped-string", "array", "struct"])
def test_xmlrpc_limits(d, unchanged, record, mention):
    s, base = vm_create(d)
    if record == "attributes":
        call = xmlrpc.client.dumps((s.handle, base), "VM.create")
        call = call.replace("<methodName>", "<methodName " + " ".join(f'a{i}="1"' for i in range(5)) + ">")
    else:
        call = xmlrpc.client.dumps((s.handle, dict(base, **record)), "VM.create")
    status, _, body = post(d, "xenapi", call.encode(), headers={"Content-Type": "text/xml"})
    s.xenapi.session.logout()
    # As xapi does, a body that is not XML-RPC gets HTTP 500 with the reason as text.
    assert status == 500 and body.startswith(b"malformed XML-RPC"), (status, body[:300])
    assert mention.encode() in body, body[:300]


@pytest.mark.parametrize("record,mention", [
    # The request object is level 1, params 2, the record 3, other_config 4: c's object is 7.
    ({"other_config": {"a": {"b": {"c": {}}}}}, "arrays and objects nested deeper than 6 (json_max_depth)"),
    ({"name_description": "x" * 4097}, "a string longer than 4096 bytes (max_string_bytes)"),
    # json.dumps sends each as a \u00e9 escape: 2 bytes once unescaped.
    ({"name_description": "\u00e9" * 2049}, "a string longer than 4096 bytes (max_string_bytes)"),
    ({"tags": ["t"] * 51}, "an array with more than 50 items (max_array_items)"),
    ({"other_config": {f"k{i}": "v" for i in range(51)}}, "an object with more than 50 members (max_array_items)"),
], ids=["depth", "string", "escaped-string", "array", "object"])
def test_jsonrpc_limits(d, unchanged, record, mention):
    s, base = vm_create(d)
    doc = {"jsonrpc": "2.0", "method": "VM.create", "params": [s.handle, dict(base, **record)], "id": 7}
    status, headers, body = post(d, "xenapi", json.dumps(doc).encode(), path="/jsonrpc",
                                 headers={"Content-Type": "application/json"})
    s.xenapi.session.logout()
    assert status == 200 and headers.get("content-type") == "application/json", (status, body[:300])
    reply = json.loads(body)
    assert reply["error"]["code"] == -32700 and reply["error"]["message"] == "Parse error", reply
    assert mention in reply["error"]["data"][0], reply
