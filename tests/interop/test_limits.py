"""Limits, each exceeded by one client while another carries on: body size, connections per
address and in total, header (slowloris) and idle timeouts, XML depth, element count and
attributes per element on both doors.

The body, connection and timeout limits are set in the config here (max_body_bytes,
max_connections, max_connections_per_ip, header_timeout_secs, idle_timeout_secs); the XML
limits are built in (CIM-XML: depth 100, 250000 elements, 32 attributes; XML-RPC: depth 64,
1000000 elements)."""

import base64
import http.client
import socket
import threading
import time

import pytest
import XenAPI

from conftest import Daemon

CONFIG = """
max_body_bytes = 65536
max_connections = 12
max_connections_per_ip = 4
header_timeout_secs = 2
idle_timeout_secs = 2
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


@pytest.mark.parametrize("what,inner", [
    ("depth", "<VALUE.ARRAY>" * 150 + "</VALUE.ARRAY>" * 150),
    ("elements", "<X/>" * 260_000),
    ("attributes", "<X " + " ".join(f'a{i}="1"' for i in range(40)) + "/>"),
], ids=["depth", "elements", "attributes"])
def test_cim_xml_limits(tmp_path, what, inner):
    d = Daemon(tmp_path / "state").start()
    try:
        status, headers, body = post(d, "cim_http", cim_call(f'<IPARAMVALUE NAME="Junk">{inner}</IPARAMVALUE>').encode(), headers=cim_headers(d))
        assert status == 400 and headers.get("cimerror") == "request-not-valid", (status, headers, body[:300])
        other_client_works(d)
    finally:
        d.stop()


@pytest.mark.parametrize("what,value", [
    ("depth", "<value><array><data>" * 70 + "</data></array></value>" * 70),
    ("elements", "<value><array><data>" + "<value/>" * 1_000_001 + "</data></array></value>"),
], ids=["depth", "elements"])
def test_xmlrpc_limits(tmp_path, what, value):
    d = Daemon(tmp_path / "state").start()
    try:
        status, _, body = post(d, "xenapi", xmlrpc_call(value).encode())
        # As xapi does, a body that is not XML-RPC gets HTTP 500 with the reason as text.
        assert status == 500 and body.startswith(b"malformed XML-RPC"), (status, body[:300])
        assert (b"too deeply" if what == "depth" else b"elements") in body, body[:300]
        other_client_works(d)
    finally:
        d.stop()
