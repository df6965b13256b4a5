"""The WBEM door with sblim wbemcli (Debian package sblim-wbemcli) against the real daemon: the
operations ecn, ec, gc, ei, ein, gi, ai, ain, ri, rin and cm on the test fixture class, over HTTP
and over HTTPS with -noverify, with -cte (TE: trailers) on a response large enough to be chunked,
and the error exit codes. wbemcli's exit code and output are both checked."""

import os
import shutil
import socket
import subprocess

import pytest

from conftest import Daemon

WBEMCLI = shutil.which("wbemcli")
N = 5


@pytest.fixture(scope="module", autouse=True)
def need_wbemcli():
    # Not a skip: scripts/setup-test-env installs sblim-wbemcli, so its absence is a failure.
    assert WBEMCLI, "wbemcli is missing: run scripts/setup-test-env (installs sblim-wbemcli)"


def run(*args, check=True):
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    r = subprocess.run([WBEMCLI, *args], capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert r.returncode == 0, f"wbemcli {' '.join(a for a in args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def base(daemon, https):
    addr = daemon.listeners["cim_https" if https else "cim_http"]
    scheme = "https" if https else "http"
    return f"{scheme}://admin:{daemon.admin_password}@{addr}/root/virt"


def opts(https):
    return ["-noverify"] if https else []


def el(daemon, https, n):
    return f'{base(daemon, https)}:Xen_TestElement.InstanceID="Xen:test:{n}"'


@pytest.fixture(params=[False, True], ids=["http", "https"])
def https(request):
    return request.param


def test_ecn_ec_gc(wbem_daemon, https):
    out = run(*opts(https), "ecn", f"{base(wbem_daemon, https)}:CIM_LogicalElement").stdout
    assert "root/virt:Xen_TestElement" in out and "root/virt:CIM_EnabledLogicalElement" in out
    out = run(*opts(https), "ec", f"{base(wbem_daemon, https)}:CIM_LogicalElement").stdout
    assert "Xen_TestElement" in out and "Index=" in out
    out = run(*opts(https), "gc", f"{base(wbem_daemon, https)}:Xen_TestElement").stdout
    assert out.startswith(wbem_daemon.listeners["cim_https" if https else "cim_http"] + "/root/virt:Xen_TestElement")
    for prop in ("InstanceID=", "Index=", "Text=", "Tags=", "Created="):
        assert prop in out


def test_ei_ein_gi(wbem_daemon, https):
    out = run(*opts(https), "ei", f"{base(wbem_daemon, https)}:Xen_TestElement").stdout
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) >= N - 1
    assert 'Index=2,Text=' in out and 'Tags="even","test"' in out
    out = run(*opts(https), "ein", f"{base(wbem_daemon, https)}:CIM_ManagedElement").stdout
    assert 'root/virt:Xen_TestElement.InstanceID="Xen:test:3"' in out
    out = run(*opts(https), "gi", el(wbem_daemon, https, 3)).stdout
    assert 'InstanceID="Xen:test:3"' in out and "Index=3" in out and 'Caption="test fixture"' in out


def test_ai_ain_ri_rin(wbem_daemon, https):
    out = run(*opts(https), "ai", el(wbem_daemon, https, 3)).stdout
    assert 'InstanceID="Xen:test:2"' in out and 'InstanceID="Xen:test:4"' in out and "Index=4" in out
    out = run(*opts(https), "ain", "-ac", "Xen_TestAssociation", "-arr", "Dependent", el(wbem_daemon, https, 3)).stdout
    assert out.strip().endswith('Xen_TestElement.InstanceID="Xen:test:4"'), out
    assert 'Xen:test:2"' not in out
    out = run(*opts(https), "ri", el(wbem_daemon, https, 3)).stdout
    assert out.count("Xen_TestAssociation.") == 2 and "Antecedent=" in out
    out = run(*opts(https), "rin", "-ar", "Antecedent", el(wbem_daemon, https, 3)).stdout
    assert out.count("Xen_TestAssociation.") == 1


def test_cm(wbem_daemon, https):
    out = run(*opts(https), "cm", el(wbem_daemon, https, 1), "Echo.Text=\"hi\",Repeat=3").stdout
    assert "Echo: 0" in out and "hihihi" in out
    out = run(*opts(https), "cm", el(wbem_daemon, https, 1), "RequestStateChange.RequestedState=2").stdout
    assert "RequestStateChange: 0" in out


def test_error_exit_codes(wbem_daemon):
    r = run("gi", el(wbem_daemon, False, 99), check=False)
    assert r.returncode != 0 and "CIM_ERR_NOT_FOUND" in r.stderr + r.stdout
    r = run("ei", f"{base(wbem_daemon, False)}:Xen_NoSuchClass", check=False)
    assert r.returncode != 0 and "CIM_ERR_INVALID_CLASS" in r.stderr + r.stdout
    r = run("ei", f"{base(wbem_daemon, False)}".replace("root/virt", "root/nowhere") + ":Xen_TestElement", check=False)
    assert r.returncode != 0 and "CIM_ERR_INVALID_NAMESPACE" in r.stderr + r.stdout
    r = run("gi", f'{base(wbem_daemon, False)}:Xen_TestElement.Bogus="1"', check=False)
    assert r.returncode != 0 and "CIM_ERR_INVALID_PARAMETER" in r.stderr + r.stdout
    bad = f"http://admin:wrong-password@{wbem_daemon.listeners['cim_http']}/root/virt:Xen_TestElement"
    r = run("ei", bad, check=False)
    assert r.returncode != 0 and "username/password" in r.stderr + r.stdout


@pytest.fixture(scope="module")
def big_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("wbem-big"), extra_config="cim_test_instances = 2000\n").start()
    yield d
    d.stop()


def test_large_response_chunked_with_trailers(big_daemon):
    out = run("-cte", "ei", f"{base(big_daemon, False)}:Xen_TestElement").stdout
    assert len([l for l in out.splitlines() if l.strip()]) == 2000
    out = run("-noverify", "-cte", "ein", f"{base(big_daemon, True)}:Xen_TestElement").stdout
    assert len(out.splitlines()) == 2000
    # The raw response: chunked, declares and sends the CIMStatusCode trailer.
    host, port = big_daemon.listeners["cim_http"].rsplit(":", 1)
    body = ('<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0">'
            '<SIMPLEREQ><IMETHODCALL NAME="EnumerateInstances"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/>'
            '</LOCALNAMESPACEPATH><IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Xen_TestElement"/></IPARAMVALUE></IMETHODCALL>'
            '</SIMPLEREQ></MESSAGE></CIM>').encode()
    import base64
    auth = base64.b64encode(f"admin:{big_daemon.admin_password}".encode()).decode()
    head = (f"POST /cimom HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/xml\r\n"
            f"CIMOperation: MethodCall\r\nCIMMethod: EnumerateInstances\r\nCIMObject: root/virt\r\nTE: trailers\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(head + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    text = data.decode("utf-8", "replace")
    headers = text.split("\r\n\r\n", 1)[0].lower()
    assert "transfer-encoding: chunked" in headers and "trailer: cimstatuscode" in headers
    assert text.count("<VALUE.NAMEDINSTANCE>") == 2000
    assert "\r\ncimstatuscode: 0\r\n" in text.lower()
