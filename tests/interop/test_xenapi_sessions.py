"""Sessions, protocol errors and roles, through the PyPI xenapi SDK."""

import http.client
import json
import time
import xmlrpc.client

import pytest
import XenAPI

from conftest import make_vm


def failure(excinfo):
    return excinfo.value.details


def test_login_right_and_wrong(daemon):
    s = daemon.session()
    assert s.xenapi.session.get_this_host(s.handle).startswith("OpaqueRef:")
    assert s.xenapi.session.get_record(s.handle)["auth_user_name"] == "admin"
    bad = XenAPI.Session(daemon.url)
    with pytest.raises(XenAPI.Failure) as e:
        bad.xenapi.login_with_password("admin", "not the password")
    assert failure(e)[0] == "SESSION_AUTHENTICATION_FAILED"
    assert failure(e)[1] == "admin"
    with pytest.raises(XenAPI.Failure) as e:
        bad.xenapi.login_with_password("nobody", "x")
    assert failure(e)[0] == "SESSION_AUTHENTICATION_FAILED"


def test_two_argument_login_of_libxen_and_xend(daemon):
    s = XenAPI.Session(daemon.url)
    s.xenapi.login_with_password("admin", daemon.admin_password)
    assert s.xenapi.pool.get_all()


def test_logout_then_call_gives_session_invalid(daemon):
    s = daemon.session()
    handle = s.handle
    s.xenapi.session.logout()
    raw = xmlrpc.client.ServerProxy(daemon.url)
    answer = raw.VM.get_all(handle)
    assert answer["Status"] == "Failure"
    assert answer["ErrorDescription"] == ["SESSION_INVALID", handle]


def test_sdk_logs_in_again_on_session_invalid(daemon):
    s = daemon.session()
    # Kill the session behind the SDK's back; its next call must succeed by logging in again.
    other = daemon.session()
    other.xenapi.session.logout  # keep a reference for clarity
    raw = xmlrpc.client.ServerProxy(daemon.url)
    assert raw.session.logout(s.handle)["Status"] == "Success"
    old = s.handle
    assert s.xenapi.VM.get_all() is not None
    assert s.handle != old


def test_made_up_ref_gives_handle_invalid(session):
    with pytest.raises(XenAPI.Failure) as e:
        session.xenapi.VM.get_record("OpaqueRef:00000000-1111-2222-3333-444444444444")
    assert failure(e) == ["HANDLE_INVALID", "VM", "OpaqueRef:00000000-1111-2222-3333-444444444444"]


def test_unknown_uuid_gives_uuid_invalid(session):
    with pytest.raises(XenAPI.Failure) as e:
        session.xenapi.VM.get_by_uuid("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d")
    assert failure(e) == ["UUID_INVALID", "VM", "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"]


def test_wrong_parameter_count(session):
    with pytest.raises(XenAPI.Failure) as e:
        session.xenapi.VM.start()
    assert failure(e) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "3", "0"]
    with pytest.raises(XenAPI.Failure) as e:
        session.xenapi.VM.get_record("a", "b")
    assert failure(e)[0] == "MESSAGE_PARAMETER_COUNT_MISMATCH"
    assert failure(e)[1:] == ["VM.get_record", "1", "2"]


def test_unknown_method(session):
    with pytest.raises(XenAPI.Failure) as e:
        session.xenapi.VM.fly_to_the_moon("x")
    assert failure(e) == ["MESSAGE_METHOD_UNKNOWN", "VM.fly_to_the_moon"]
    with pytest.raises(XenAPI.Failure) as e:
        session.xenapi.NoSuchClass.get_all()
    assert failure(e) == ["MESSAGE_METHOD_UNKNOWN", "NoSuchClass.get_all"]


def test_underscore_aliases_and_list_methods(daemon, session):
    raw = xmlrpc.client.ServerProxy(daemon.url)
    via_alias = raw.VM_get_all(session.handle)
    assert via_alias["Status"] == "Success"
    assert sorted(via_alias["Value"]) == sorted(session.xenapi.VM.get_all())
    methods = raw.system.listMethods()
    assert "VM.start" in methods and "event.from" in methods and "VM.get_record" in methods


def test_ints_travel_as_strings_and_envelope_has_two_members(daemon, session):
    host_ref = session.xenapi.host.get_all()[0]
    body = xmlrpc.client.dumps((session.handle, host_ref), "host.get_API_version_major")
    host, port = daemon.listeners["xenapi"].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("POST", "/", body, {"Content-Type": "text/xml"})
    resp = conn.getresponse()
    text = resp.read().decode()
    assert resp.status == 200
    assert "<name>Value</name><value><string>2</string></value>" in text
    (result,), _ = xmlrpc.client.loads(text)
    assert set(result) == {"Status", "Value"}


def test_malformed_xml_is_an_http_error_not_a_success(daemon):
    host, port = daemon.listeners["xenapi"].rsplit(":", 1)
    for body in ["<methodCall><methodName>VM.get_all</methodName><params>", "not xml at all",
                 '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><methodCall><methodName>&a;</methodName></methodCall>']:
        conn = http.client.HTTPConnection(host, int(port))
        conn.request("POST", "/", body, {"Content-Type": "text/xml"})
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        assert resp.status >= 400, (body, resp.status, text)
        assert "Success" not in text


def test_jsonrpc_v1_and_v2(daemon):
    host, port = daemon.listeners["xenapi"].rsplit(":", 1)

    def call(payload):
        conn = http.client.HTTPConnection(host, int(port))
        conn.request("POST", "/jsonrpc", json.dumps(payload), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())

    v2 = call({"jsonrpc": "2.0", "method": "session.login_with_password", "params": ["admin", daemon.admin_password], "id": 1})
    session = v2["result"]
    assert session.startswith("OpaqueRef:")
    v1 = call({"method": "VM.get_all", "params": [session], "id": 2})
    assert v1["error"] is None and isinstance(v1["result"], list)
    err = call({"jsonrpc": "2.0", "method": "VM.get_record", "params": [session, "OpaqueRef:nope"], "id": 3})
    assert err["error"]["message"] == "HANDLE_INVALID"
    assert err["error"]["data"] == ["VM", "OpaqueRef:nope"]


def test_read_only_user_reads_everything_and_cannot_start(daemon):
    daemon.add_user("reader", "read-only", "reader-pass")
    admin = daemon.session()
    vm = make_vm(admin.xenapi, "ro-target")
    ro = daemon.session("reader", "reader-pass")
    assert vm in ro.xenapi.VM.get_all()
    assert ro.xenapi.VM.get_record(vm)["name_label"] == "ro-target"
    assert ro.xenapi.host.get_all_records()
    with pytest.raises(XenAPI.Failure) as e:
        ro.xenapi.VM.start(vm, False, False)
    assert failure(e)[0] == "RBAC_PERMISSION_DENIED"
    assert failure(e)[1] == "VM.start"
    assert admin.xenapi.VM.get_power_state(vm) == "Halted"
    admin.xenapi.VM.destroy(vm)


def test_vm_operator_starts_vms_but_cannot_create_users_or_networks(daemon):
    daemon.add_user("operator", "vm-operator", "op-pass")
    op = daemon.session("operator", "op-pass")
    vm = make_vm(op.xenapi, "op-vm")
    op.xenapi.VM.start(vm, False, False)
    assert op.xenapi.VM.get_power_state(vm) == "Running"
    op.xenapi.VM.hard_shutdown(vm)
    op.xenapi.VM.destroy(vm)
    with pytest.raises(XenAPI.Failure) as e:
        op.xenapi.user.create({"short_name": "mallory", "fullname": "M", "other_config": {}})
    assert failure(e)[0] == "RBAC_PERMISSION_DENIED"
    with pytest.raises(XenAPI.Failure) as e:
        op.xenapi.network.create({"name_label": "n", "name_description": "", "MTU": "1500", "other_config": {}})
    assert failure(e)[0] == "RBAC_PERMISSION_DENIED"


def test_idle_sessions_expire_and_finished_tasks_are_collected(tmp_path):
    from conftest import Daemon
    d = Daemon(tmp_path / "state", extra_config="session_idle_timeout_secs = 2\ntask_retention_secs = 2\n").start()
    try:
        busy = d.session()
        idle = d.session()
        vm = make_vm(busy.xenapi, "gc")
        task = busy.xenapi.Async.VM.start(vm, False, False)
        # Housekeeping runs every 5 s: after 11 s the idle session and the finished task are gone,
        # while a session in use every half second stays.
        deadline = time.time() + 11
        while time.time() < deadline:
            busy.xenapi.VM.get_power_state(vm)
            time.sleep(0.5)
        raw = xmlrpc.client.ServerProxy(d.url)
        assert raw.VM.get_all(idle.handle)["ErrorDescription"] == ["SESSION_INVALID", idle.handle]
        assert raw.VM.get_all(busy.handle)["Status"] == "Success"
        answer = raw.task.get_status(busy.handle, task)
        assert answer["Status"] == "Failure" and answer["ErrorDescription"][0] == "HANDLE_INVALID"
    finally:
        d.stop()
