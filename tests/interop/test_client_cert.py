"""TLS client certificates (tls_client_ca): a test CA made with the openssl command line issues
certificates for existing users, for a user that does not exist, an expired one; another CA
issues one the daemon does not trust. Driven by pywbem, sblim wbemcli (-clientcert/-clientkey)
and the xenapi SDK over both TLS doors."""

import json
import pathlib
import ssl
import subprocess
import xmlrpc.client

import pytest
import pywbem
import XenAPI

from conftest import Daemon
from test_tls import ca as server_ca, no_ca_bundle_override, port  # noqa: F401 (an autouse fixture)

CA_CONFIG = """\
[ca]
default_ca = ca_default
[ca_default]
database = {dir}/index.txt
new_certs_dir = {dir}/issued
serial = {dir}/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
{san}
"""


def openssl(*args, **kw):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, **kw)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


class CA:
    """A CA in a directory of its own, issuing EC client certificates with `openssl ca`."""

    def __init__(self, path, name):
        self.dir = pathlib.Path(path)
        (self.dir / "issued").mkdir(parents=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        self.cert, self.key = self.dir / "ca.pem", self.dir / "ca.key"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(self.key), "-out", str(self.cert), "-subj", f"/CN={name}", "-days", "30")

    def issue(self, label, cn, email=None, start=None, end=None):
        """`(cert, key)` for `cn` (and an e-mail address in the subjectAltName); valid for 30
        days from now, or from `start` to `end` (YYYYMMDDHHMMSSZ)."""
        key, csr, cert = (self.dir / f"{label}.{ext}" for ext in ("key", "csr", "pem"))
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
        config = self.dir / f"{label}.cnf"
        config.write_text(CA_CONFIG.format(dir=self.dir, san=f"subjectAltName = email:{email}" if email else ""))
        dates = ["-startdate", start, "-enddate", end] if start else ["-days", "30"]
        openssl("ca", "-batch", "-notext", "-config", str(config), "-extensions", "client", "-cert", str(self.cert),
                "-keyfile", str(self.key), "-in", str(csr), "-out", str(cert), *dates)
        return str(cert), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    base = tmp_path_factory.mktemp("pki")
    ca, other = CA(base / "ca", "xencim test client CA"), CA(base / "other", "Some other CA")
    return {
        "ca": str(ca.cert),
        "admin": ca.issue("admin", "admin"),
        "carol": ca.issue("carol", "carol", email="carol@example.com"),
        "ghost": ca.issue("ghost", "ghost"),
        "expired": ca.issue("expired", "admin", start="20200101000000Z", end="20200201000000Z"),
        "other-ca": other.issue("other", "admin"),
    }


@pytest.fixture(scope="module")
def cc(tmp_path_factory, pki):
    config = (f'tls_client_ca = "{pki["ca"]}"\n'
              "login_failures_per_user = 3\nlogin_failures_per_address = 1000\n")
    d = Daemon(tmp_path_factory.mktemp("client-cert"), extra_config=config).start()
    d.add_user("carol", "read-only", "carol-password")
    yield d
    d.stop()


def wbem(d, cert=None, creds=None):
    x509 = {"cert_file": cert[0], "key_file": cert[1]} if cert else None
    return pywbem.WBEMConnection(f"https://localhost:{port(d, 'cim_https')}", creds, default_namespace="root/interop",
                                 x509=x509, ca_certs=server_ca(d), timeout=30)


def xenapi(d, cert=None):
    ctx = ssl.create_default_context(cafile=server_ca(d))
    if cert:
        ctx.load_cert_chain(*cert)
    return XenAPI.Session(f"https://localhost:{port(d, 'xenapi_tls')}/", transport=xmlrpc.client.SafeTransport(context=ctx))


def login(s, user, password=""):
    s.xenapi.login_with_password(user, password, "2.21", "client-cert-tests")
    return s


def audit(d):
    return [json.loads(line) for line in (d.state_dir / "audit.log").read_text().splitlines()]


# --- the CIM door -----------------------------------------------------------------------------


def test_pywbem_with_a_good_certificate_needs_no_password(cc, pki):
    assert wbem(cc, pki["admin"]).EnumerateInstanceNames("CIM_Namespace")
    # An Authorization header for the certificate's own user is fine; its password is not checked.
    assert wbem(cc, pki["admin"], ("admin", "not-the-password")).EnumerateInstanceNames("CIM_Namespace")
    lines = [l for l in audit(cc) if l["door"] == "wbem" and l["action"] == "login" and l["user"] == "admin"]
    assert lines and lines[-1]["method"] == "client-cert" and lines[-1]["result"] == "ok", lines


def test_pywbem_the_role_comes_from_the_store(cc, pki):
    # carol is read-only: she reads, and changing anything is refused as for her password.
    c = wbem(cc, pki["carol"])
    ns = c.EnumerateInstanceNames("CIM_Namespace")
    assert ns
    with pytest.raises(pywbem.CIMError) as e:
        c.DeleteInstance(ns[0])
    assert e.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED


def test_pywbem_another_user_than_the_certificates_is_refused(cc, pki):
    # Even with that user's right password: the connection is bound to the certificate's user.
    with pytest.raises(pywbem.AuthError):
        wbem(cc, pki["admin"], ("carol", "carol-password")).EnumerateInstanceNames("CIM_Namespace")


def test_pywbem_a_certificate_of_an_unknown_user_is_refused(cc, pki):
    with pytest.raises(pywbem.AuthError):
        wbem(cc, pki["ghost"]).EnumerateInstanceNames("CIM_Namespace")
    lines = [l for l in audit(cc) if l["user"] == "ghost"]
    assert lines and all(l["method"] == "client-cert" and l["result"] == "error: bad credentials" for l in lines), lines


@pytest.mark.parametrize("which,alert", [("other-ca", "unknown ca"), ("expired", "certificate expired")])
def test_pywbem_an_untrusted_or_expired_certificate_fails_the_handshake(cc, pki, which, alert):
    with pytest.raises(pywbem.ConnectionError) as e:
        wbem(cc, pki[which], ("admin", cc.admin_password)).EnumerateInstanceNames("CIM_Namespace")
    assert alert in str(e.value).lower(), str(e.value)


def test_pywbem_without_a_certificate_uses_the_password(cc):
    assert wbem(cc, creds=("admin", cc.admin_password)).EnumerateInstanceNames("CIM_Namespace")
    with pytest.raises(pywbem.AuthError):
        wbem(cc).EnumerateInstanceNames("CIM_Namespace")


def wbemcli(d, cert, user=""):
    url = f"https://{user}localhost:{port(d, 'cim_https')}/root/interop:CIM_Namespace"
    args = ["wbemcli", "-cacert", server_ca(d)]
    if cert:
        args += ["-clientcert", cert[0], "-clientkey", cert[1]]
    return subprocess.run(args + ["ein", url], capture_output=True, text=True, timeout=60)


def test_wbemcli_with_a_client_certificate(cc, pki):
    r = wbemcli(cc, pki["admin"])
    assert r.returncode == 0 and "CIM_Namespace" in r.stdout, r.stdout + r.stderr
    # wbemcli words HTTP 401 so.
    r = wbemcli(cc, pki["ghost"])
    assert r.returncode != 0 and "Username/password required" in r.stderr, r.stdout + r.stderr
    # curl hears the alert only when it reads ("Failure when receiving data from the peer").
    r = wbemcli(cc, pki["other-ca"])
    assert r.returncode != 0 and "Http Exception" in r.stderr and "CIM_Namespace" not in r.stdout, r.stdout + r.stderr
    r = wbemcli(cc, None, user=f"admin:{cc.admin_password}@")
    assert r.returncode == 0 and "CIM_Namespace" in r.stdout, r.stdout + r.stderr


# --- the Xen-API door ---------------------------------------------------------------------------


def test_xenapi_login_with_a_good_certificate_and_any_password(cc, pki):
    s = login(xenapi(cc, pki["admin"]), "admin", "")
    assert s.xenapi.VM.get_all()
    assert s.xenapi.session.get_record(s._session)["auth_user_name"] == "admin"
    s.xenapi.session.logout()
    s = login(xenapi(cc, pki["admin"]), "admin", "whatever")
    s.xenapi.session.logout()
    lines = [l for l in audit(cc) if l["door"] == "xenapi" and l["action"] == "login" and l["user"] == "admin"]
    assert lines[-1]["method"] == "client-cert" and lines[-1]["result"] == "ok", lines


def test_xenapi_the_role_comes_from_the_store(cc, pki):
    s = login(xenapi(cc, pki["carol"]), "carol")
    assert s.xenapi.session.get_record(s._session)["other_config"]["role"] == "read-only"
    vm = s.xenapi.VM.get_all()[0]
    with pytest.raises(XenAPI.Failure) as e:
        s.xenapi.VM.set_name_label(vm, "not allowed")
    assert e.value.details[0] == "RBAC_PERMISSION_DENIED"
    s.xenapi.session.logout()


def test_xenapi_another_user_or_an_unknown_one_is_refused(cc, pki):
    # The right password of another user does not help on a certificate connection.
    with pytest.raises(XenAPI.Failure) as e:
        login(xenapi(cc, pki["admin"]), "carol", "carol-password")
    assert e.value.details[0] == "SESSION_AUTHENTICATION_FAILED"
    with pytest.raises(XenAPI.Failure) as e:
        login(xenapi(cc, pki["ghost"]), "ghost")
    assert e.value.details[0] == "SESSION_AUTHENTICATION_FAILED"


def test_xenapi_refusals_count_against_the_login_limit(cc, pki):
    cc.add_user("dave", "read-only", "dave-password")
    for _ in range(3):
        with pytest.raises(XenAPI.Failure) as e:
            login(xenapi(cc, pki["admin"]), "dave")
        assert "too many" not in e.value.details[2]
    # dave is locked now, by password too, while the certificate's own user carries on.
    with pytest.raises(XenAPI.Failure) as e:
        login(xenapi(cc), "dave", "dave-password")
    assert "too many failed logins" in e.value.details[2]
    login(xenapi(cc, pki["admin"]), "admin").xenapi.session.logout()
    results = [(l["method"], l["result"]) for l in audit(cc) if l["user"] == "dave"]
    assert results == [("client-cert", "error: bad credentials")] * 3 + [("password", "error: rate limited")], results


@pytest.mark.parametrize("which,alert", [("other-ca", "unknown ca"), ("expired", "certificate expired")])
def test_xenapi_an_untrusted_or_expired_certificate_fails_the_handshake(cc, pki, which, alert):
    with pytest.raises(ssl.SSLError) as e:
        login(xenapi(cc, pki[which]), "admin", cc.admin_password)
    assert alert in str(e.value).lower(), str(e.value)


def test_xenapi_without_a_certificate_uses_the_password(cc):
    login(xenapi(cc), "admin", cc.admin_password).xenapi.session.logout()
    with pytest.raises(XenAPI.Failure) as e:
        login(xenapi(cc), "admin", "")
    assert e.value.details[0] == "SESSION_AUTHENTICATION_FAILED"
    # The plain listener knows nothing of certificates either.
    cc.session().xenapi.session.logout()


# --- other settings -----------------------------------------------------------------------------


def test_a_certificate_is_required_when_configured(tmp_path, pki):
    config = f'tls_client_ca = "{pki["ca"]}"\ntls_client_cert_required = true\nno_plaintext = true\n'
    d = Daemon(tmp_path / "state", extra_config=config).start()
    try:
        with pytest.raises(pywbem.ConnectionError) as e:
            wbem(d, creds=("admin", d.admin_password)).EnumerateInstanceNames("CIM_Namespace")
        assert "certificate required" in str(e.value).lower(), str(e.value)
        with pytest.raises(ssl.SSLError) as e:
            login(xenapi(d), "admin", d.admin_password)
        assert "certificate required" in str(e.value).lower(), str(e.value)
        assert wbem(d, pki["admin"]).EnumerateInstanceNames("CIM_Namespace")
        login(xenapi(d, pki["admin"]), "admin").xenapi.session.logout()
    finally:
        d.stop()


def test_the_user_name_from_the_email_address(tmp_path, pki):
    d = Daemon(tmp_path / "state", extra_config=f'tls_client_ca = "{pki["ca"]}"\ntls_client_cert_user_field = "email"\n').start()
    try:
        d.add_user("carol@example.com", "read-only", "pw")
        assert wbem(d, pki["carol"]).EnumerateInstanceNames("CIM_Namespace")
        s = login(xenapi(d, pki["carol"]), "carol@example.com")
        s.xenapi.session.logout()
        # A certificate without an e-mail address names nobody: the handshake fails.
        with pytest.raises(pywbem.ConnectionError):
            wbem(d, pki["admin"]).EnumerateInstanceNames("CIM_Namespace")
    finally:
        d.stop()


def test_required_without_a_ca_is_a_config_error(tmp_path):
    d = Daemon(tmp_path / "state", extra_config="tls_client_cert_required = true\n")
    with pytest.raises(RuntimeError) as e:
        d.start()
    assert "tls_client_ca" in str(e.value)
