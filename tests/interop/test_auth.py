"""Authentication through both doors: PAM logins (a real pam_unix stack and a real local
account), roles of PAM users, the login rate limit and the audit log."""

import json
import os
import secrets
import subprocess

import pytest
import pywbem
import XenAPI

from conftest import BINARY, Daemon, make_vm

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="PAM tests create a system account and /etc/pam.d/ file: they need root"
)


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def pam_setup():
    """A local account with a password and a PAM service using pam_unix, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("PAM tests create a system account and /etc/pam.d/ file: they need root")
    tag = secrets.token_hex(3)
    service = f"xencim-test-{tag}"
    users = {f"xcpam{tag}": "Pam-pass-" + secrets.token_hex(4), f"xcnorole{tag}": "NoRole-" + secrets.token_hex(4)}
    pam_file = f"/etc/pam.d/{service}"
    with open(pam_file, "w") as f:
        f.write("auth required pam_unix.so\naccount required pam_unix.so\n")
    for name, password in users.items():
        run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
        run("chpasswd", input=f"{name}:{password}\n")
    yield service, users
    for name in users:
        subprocess.run(["userdel", name], capture_output=True)
    os.unlink(pam_file)


def pam_daemon(tmp_path, service, users, extra=""):
    d = Daemon(tmp_path / "state", extra_config=f'auth = "pam"\npam_service = "{service}"\nlogin_failures_per_user = 3\n' + extra)
    d.state_dir.mkdir(parents=True, exist_ok=True)
    role_user = next(iter(users))
    run(str(BINARY), "user", "add", role_user, "--pam", "--role", "vm-operator", "--state-dir", str(d.state_dir))
    return d.start()


def xenapi_login(d, user, password):
    s = XenAPI.Session(d.url)
    s.xenapi.login_with_password(user, password, "2.21", "xencim-tests")
    return s


def audit_lines(d):
    return [json.loads(line) for line in (d.state_dir / "audit.log").read_text().splitlines()]


@needs_root
def test_pam_logins_through_both_doors(pam_setup, tmp_path):
    service, users = pam_setup
    (user, password), (norole, norole_password) = users.items()
    d = pam_daemon(tmp_path, service, users)
    try:
        s = xenapi_login(d, user, password)
        assert s.xenapi.session.get_record(s.handle)["other_config"]["role"] == "vm-operator"
        vm = make_vm(s.xenapi, "pam-made")
        with pytest.raises(XenAPI.Failure) as e:
            s.xenapi.network.create({"name_label": "n"})
        assert e.value.details[0] == "RBAC_PERMISSION_DENIED"

        with pytest.raises(XenAPI.Failure) as e:
            xenapi_login(d, user, "not-" + password)
        assert e.value.details[0] == "SESSION_AUTHENTICATION_FAILED"
        with pytest.raises(XenAPI.Failure) as e:
            xenapi_login(d, norole, norole_password)
        assert e.value.details[0] == "SESSION_AUTHORIZATION_FAILED"
        # The role-only entry made before the first start means no initial admin is made.
        assert not (d.state_dir / "initial-admin-password").exists()

        c = d.wbem(user, password, namespace="root/interop")
        assert c.EnumerateInstanceNames("CIM_Namespace") is not None
        for who, pw in [(user, "not-" + password), (norole, norole_password)]:
            with pytest.raises(pywbem.Error) as e:
                d.wbem(who, pw, namespace="root/interop").EnumerateInstanceNames("CIM_Namespace")
            assert "401" in str(e.value)

        lines = audit_lines(d)
        logins = [(l["door"], l["user"], l["result"]) for l in lines if l["action"] == "login"]
        assert ("xenapi", user, "ok") in logins and ("wbem", user, "ok") in logins
        assert ("xenapi", user, "error: bad credentials") in logins
        assert ("xenapi", norole, "error: no role") in logins and ("wbem", norole, "error: no role") in logins
        changes = [l for l in lines if l["action"] == "VM.create"]
        assert changes and changes[0]["user"] == user and changes[0]["result"] == "ok" and changes[0]["peer"] == "127.0.0.1"
        denied = [l for l in lines if l["action"] == "network.create"]
        assert denied and denied[0]["result"] == "error: RBAC_PERMISSION_DENIED"
        assert not any(l["action"].endswith(("get_record", "get_all")) for l in lines), "reads are not audited"
        text = (d.state_dir / "audit.log").read_text()
        assert password not in text and norole_password not in text
        s.xenapi.VM.destroy(vm)
    finally:
        d.stop()


@needs_root
def test_pam_default_role(pam_setup, tmp_path):
    service, users = pam_setup
    norole, norole_password = list(users.items())[1]
    d = pam_daemon(tmp_path, service, users, extra='pam_default_role = "read-only"\n')
    try:
        s = xenapi_login(d, norole, norole_password)
        assert s.xenapi.VM.get_all()
        with pytest.raises(XenAPI.Failure) as e:
            make_vm(s.xenapi, "not-allowed")
        assert e.value.details[0] == "RBAC_PERMISSION_DENIED"
    finally:
        d.stop()


def test_failed_logins_are_rate_limited_per_user_without_slowing_others(tmp_path):
    d = Daemon(tmp_path / "state", extra_config="login_failures_per_user = 3\nlogin_failures_per_address = 50\n").start()
    try:
        d.add_user("victim", "read-only", "victim-password")
        for _ in range(3):
            with pytest.raises(XenAPI.Failure) as e:
                xenapi_login(d, "victim", "guess")
            assert "too many" not in e.value.details[2]
        # Locked now: even the right password is refused at once, through either door.
        with pytest.raises(XenAPI.Failure) as e:
            xenapi_login(d, "victim", "victim-password")
        assert e.value.details[0] == "SESSION_AUTHENTICATION_FAILED"
        assert "too many failed logins" in e.value.details[2]
        with pytest.raises(pywbem.Error) as e:
            d.wbem("victim", "victim-password", namespace="root/interop").EnumerateInstanceNames("CIM_Namespace")
        assert "403" in str(e.value)
        # Another user from the same address carries on.
        s = d.session()
        assert s.xenapi.VM.get_all()
        assert d.wbem(namespace="root/interop").EnumerateInstanceNames("CIM_Namespace") is not None
        results = [l["result"] for l in audit_lines(d) if l["user"] == "victim"]
        assert results.count("error: rate limited") == 2
    finally:
        d.stop()


def test_address_rate_limit(tmp_path):
    d = Daemon(tmp_path / "state", extra_config="login_failures_per_address = 4\n").start()
    try:
        for i in range(4):
            with pytest.raises(XenAPI.Failure):
                xenapi_login(d, f"nobody{i}", "guess")
        with pytest.raises(XenAPI.Failure) as e:
            xenapi_login(d, "admin", d.admin_password)
        assert "too many failed logins" in e.value.details[2]
    finally:
        d.stop()


def test_cim_changes_are_audited(tmp_path):
    d = Daemon(tmp_path / "state", extra_config="cim_test_instances = 2\n").start()
    try:
        c = d.wbem()
        with pytest.raises(pywbem.Error):
            c.DeleteInstance(pywbem.CIMInstanceName("Xen_TestElement", keybindings={"InstanceID": "no-such"}, namespace="root/virt"))
        c.EnumerateInstanceNames("Xen_TestElement")
        lines = [l for l in audit_lines(d) if l["door"] == "wbem" and l["action"] != "login"]
        assert [l["action"] for l in lines] == ["DeleteInstance"], lines
        assert lines[0]["user"] == "admin" and lines[0]["result"].startswith("error: CIM_ERR_")
    finally:
        d.stop()


def test_user_add_pam_makes_a_role_only_entry(tmp_path):
    state = tmp_path / "state"
    run(str(BINARY), "user", "add", "pamonly", "--pam", "--role", "read-only", "--state-dir", str(state))
    listing = run(str(BINARY), "user", "list", "--state-dir", str(state)).stdout
    assert "pamonly\tread-only" in listing
    run(str(BINARY), "user", "role", "pamonly", "pool-admin", "--state-dir", str(state))
    assert "pamonly\tpool-admin" in run(str(BINARY), "user", "list", "--state-dir", str(state)).stdout
    missing = subprocess.run([str(BINARY), "user", "role", "ghost", "read-only", "--state-dir", str(state)], capture_output=True, text=True)
    assert missing.returncode != 0 and "--pam" in missing.stderr
    # The entry has no local password: under local auth it never logs in.
    d = Daemon(state).start()
    try:
        for pw in ["", "!pam", "x"]:
            with pytest.raises(XenAPI.Failure) as e:
                xenapi_login(d, "pamonly", pw)
            assert e.value.details[0] == "SESSION_AUTHENTICATION_FAILED"
    finally:
        d.stop()
