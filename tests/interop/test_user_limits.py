"""Per-user bounds (issue 8): Xen-API sessions per user (`max_sessions_per_user`) and CIM pull
enumeration contexts per user (`max_enumeration_contexts_per_user`; CIM-XML has no sessions, so
the authenticated user stands for one). Each is exceeded by one client and refused cleanly
(TOO_MANY_SESSIONS [user, limit]; CIM_ERR_SERVER_LIMITS_EXCEEDED naming the bound) while other
users, and the same user's existing sessions and contexts, carry on; freeing one frees a slot."""

import http.client
import json
import time
import xmlrpc.client

import pytest
import pywbem
import XenAPI

from conftest import Daemon
from test_auth import audit_lines, pam_daemon, pam_setup  # noqa: F401 (a fixture)

SESSIONS = 3
CONTEXTS = 2


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = Daemon(
        tmp_path_factory.mktemp("user-limits"),
        extra_config=f"max_sessions_per_user = {SESSIONS}\nmax_enumeration_contexts_per_user = {CONTEXTS}\ncim_test_instances = 5\n",
    ).start()
    d.add_user("limited", "vm-operator", "limited-pw")
    d.add_user("other", "read-only", "other-pw")
    d.add_user("cimuser", "read-only", "cimuser-pw")
    d.add_user("cimother", "read-only", "cimother-pw")
    yield d
    d.stop()


def login(d, user, password):
    s = XenAPI.Session(d.url)
    s.xenapi.login_with_password(user, password, "2.21", "user-limits")
    return s


def refused(d, user, password):
    with pytest.raises(XenAPI.Failure) as e:
        login(d, user, password)
    return e.value.details


def jsonrpc(d, payload):
    host, port = d.listeners["xenapi"].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/jsonrpc", json.dumps(payload), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    return json.loads(resp.read())


def test_sessions_per_user(d):
    held = [login(d, "limited", "limited-pw") for _ in range(SESSIONS)]
    assert refused(d, "limited", "limited-pw") == ["TOO_MANY_SESSIONS", "limited", str(SESSIONS)]
    # The other login paths are refused the same way: slave_local over XML-RPC, JSON-RPC.
    proxy = xmlrpc.client.ServerProxy(d.url)
    r = proxy.session.slave_local_login_with_password("limited", "limited-pw")
    assert r["Status"] == "Failure" and r["ErrorDescription"] == ["TOO_MANY_SESSIONS", "limited", str(SESSIONS)]
    j = jsonrpc(d, {"jsonrpc": "2.0", "method": "session.login_with_password", "params": ["limited", "limited-pw"], "id": 1})
    assert j["error"]["message"] == "TOO_MANY_SESSIONS" and j["error"]["data"] == ["limited", str(SESSIONS)]
    # The audit log shows these logins as refused, not as the successful credential checks
    # that preceded the refusal.
    refusals = [l for l in audit_lines(d) if l["user"] == "limited" and l["result"] == "error: TOO_MANY_SESSIONS"]
    assert len(refusals) == 3 and all(l["action"] == "login" and l["door"] == "xenapi" for l in refusals)
    # A wrong password is still a wrong password: the bound is checked after the credentials.
    assert refused(d, "limited", "wrong")[0] == "SESSION_AUTHENTICATION_FAILED"
    # The user's sessions carry on, and so do other users'.
    for s in held:
        assert s.xenapi.VM.get_all()
    other = login(d, "other", "other-pw")
    assert other.xenapi.VM.get_all()
    # Logging one out frees a slot, for one login only (so no refusal above made a session).
    held.pop().xenapi.session.logout()
    held.append(login(d, "limited", "limited-pw"))
    assert refused(d, "limited", "limited-pw")[0] == "TOO_MANY_SESSIONS"
    for s in held + [other]:
        s.xenapi.session.logout()
    held = [login(d, "limited", "limited-pw") for _ in range(SESSIONS)]
    for s in held:
        s.xenapi.session.logout()


def test_expired_sessions_do_not_count(tmp_path):
    d = Daemon(tmp_path / "state", extra_config="max_sessions_per_user = 2\nsession_idle_timeout_secs = 1\n").start()
    try:
        [d.session() for _ in range(2)]
        with pytest.raises(XenAPI.Failure) as e:
            d.session()
        assert e.value.details == ["TOO_MANY_SESSIONS", "admin", "2"]
        time.sleep(1.5)
        s = d.session()
        assert s.xenapi.VM.get_all()
    finally:
        d.stop()


def test_pam_users_sessions_count_too(pam_setup, tmp_path):  # noqa: F811
    service, users = pam_setup
    user = next(iter(users))
    d = pam_daemon(tmp_path, service, users, extra="max_sessions_per_user = 2\n")
    try:
        held = [login(d, user, users[user]) for _ in range(2)]
        assert refused(d, user, users[user]) == ["TOO_MANY_SESSIONS", user, "2"]
        held.pop().xenapi.session.logout()
        held.append(login(d, user, users[user]))
    finally:
        d.stop()


def open_one(conn, **kw):
    r = conn.OpenEnumerateInstances("Xen_TestElement", MaxObjectCount=1, **kw)
    assert not r.eos and r.context
    return r


def limits_exceeded(conn):
    with pytest.raises(pywbem.CIMError) as e:
        conn.OpenEnumerateInstances("Xen_TestElement", MaxObjectCount=1)
    assert e.value.status_code == pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED
    assert "max_enumeration_contexts_per_user" in e.value.status_description
    return e.value


def test_enumeration_contexts_per_user(d):
    mine = d.wbem("cimuser", "cimuser-pw")
    # Two connections of the same user share the bound.
    second = d.wbem("cimuser", "cimuser-pw")
    contexts = [open_one(mine).context, open_one(second).context]
    limits_exceeded(mine)
    limits_exceeded(second)
    # Another user opens and drains an enumeration meanwhile; the open contexts still pull.
    other = d.wbem("cimother", "cimother-pw")
    r = open_one(other)
    got = list(r.instances)
    while not r.eos:
        r = other.PullInstancesWithPath(r.context, MaxObjectCount=2)
        got.extend(r.instances)
    assert len(got) == 5
    assert len(mine.PullInstancesWithPath(contexts[0], MaxObjectCount=1).instances) == 1
    # Closing one frees a slot, for one only.
    mine.CloseEnumeration(contexts.pop(0))
    contexts.append(open_one(mine).context)
    limits_exceeded(mine)
    # An exhausted enumeration frees its slot too.
    r = mine.PullInstancesWithPath(contexts.pop(0), MaxObjectCount=100)
    assert r.eos
    contexts.append(open_one(mine).context)
    limits_exceeded(mine)
    for c in contexts:
        mine.CloseEnumeration(c)


def test_timed_out_contexts_free_their_slot(d):
    conn = d.wbem("cimuser", "cimuser-pw")
    held = [open_one(conn, OperationTimeout=1).context for _ in range(CONTEXTS)]
    limits_exceeded(conn)
    time.sleep(1.5)
    fresh = [open_one(conn).context for _ in range(CONTEXTS)]
    limits_exceeded(conn)
    with pytest.raises(pywbem.CIMError) as e:
        conn.PullInstancesWithPath(held[0], MaxObjectCount=1)
    assert e.value.status_code == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    for c in fresh:
        conn.CloseEnumeration(c)
