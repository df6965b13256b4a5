"""TLS on both doors with the generated certificate as the CA: pywbem, wbemcli and the xenapi
SDK verify it; TLS 1.0/1.1 and plain HTTP on the TLS ports are refused; --no-plaintext leaves
no plain listener."""

import os
import socket
import ssl
import subprocess
import xmlrpc.client

import pytest
import pywbem
import XenAPI

from conftest import Daemon


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("tls"), extra_config="no_plaintext = true\n").start()
    yield d
    d.stop()


@pytest.fixture(autouse=True)
def no_ca_bundle_override(monkeypatch):
    # requests prefers these over the CA a test passes; the tests must verify against ours.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def ca(d):
    return str(d.state_dir / "tls" / "server.pem")


def port(d, key):
    return int(d.listeners[key].rsplit(":", 1)[1])


def test_no_plaintext_listeners(tls_daemon):
    assert set(tls_daemon.listeners) == {"xenapi_tls", "cim_https"}


def test_pywbem_verifies_the_generated_certificate(tls_daemon):
    url = f"https://localhost:{port(tls_daemon, 'cim_https')}"
    c = pywbem.WBEMConnection(url, ("admin", tls_daemon.admin_password), default_namespace="root/interop", ca_certs=ca(tls_daemon))
    assert c.EnumerateInstanceNames("CIM_Namespace")
    # Without our CA the same server is not trusted: the verification is real.
    c = pywbem.WBEMConnection(url, ("admin", tls_daemon.admin_password), default_namespace="root/interop")
    with pytest.raises(pywbem.ConnectionError) as e:
        c.EnumerateInstanceNames("CIM_Namespace")
    assert "certificate" in str(e.value).lower()


def test_wbemcli_with_the_ca(tls_daemon):
    url = f"https://admin:{tls_daemon.admin_password}@localhost:{port(tls_daemon, 'cim_https')}/root/interop:CIM_Namespace"
    r = subprocess.run(["wbemcli", "-cacert", ca(tls_daemon), "ein", url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "CIM_Namespace" in r.stdout, r.stdout + r.stderr


def test_xenapi_sdk_with_the_ca(tls_daemon):
    ctx = ssl.create_default_context(cafile=ca(tls_daemon))
    s = XenAPI.Session(f"https://localhost:{port(tls_daemon, 'xenapi_tls')}/", transport=xmlrpc.client.SafeTransport(context=ctx))
    s.xenapi.login_with_password("admin", tls_daemon.admin_password, "2.21", "tls")
    assert s.xenapi.VM.get_all()
    s.xenapi.session.logout()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("key", ["xenapi_tls", "cim_https"])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused(tls_daemon, key, version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Let this client offer the old versions (OpenSSL 3 refuses them at its default level), so
    # that the refusal seen is the server's.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", port(tls_daemon, key)), timeout=10) as raw:
        with pytest.raises(ssl.SSLError) as e:
            with ctx.wrap_socket(raw, server_hostname="localhost"):
                pass
    # The alert comes from the server: this client was willing.
    assert "alert protocol version" in str(e.value), str(e.value)
    # TLS 1.2 from the same client code is accepted.
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port(tls_daemon, key)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            assert t.version() == "TLSv1.2"


@pytest.mark.parametrize("key", ["xenapi_tls", "cim_https"])
def test_plain_http_on_the_tls_port_gets_no_answer(tls_daemon, key):
    with socket.create_connection(("127.0.0.1", port(tls_daemon, key)), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert not data.startswith(b"HTTP/"), data[:200]
    # The listener is still fine for TLS clients.
    ctx = ssl.create_default_context(cafile=ca(tls_daemon))
    with socket.create_connection(("localhost", port(tls_daemon, key)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            assert t.version() in ("TLSv1.2", "TLSv1.3")
