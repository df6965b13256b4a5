"""CIM indications (DSP1054) end to end: subscriptions created in root/interop with pywbem, changes
made through the Xen-API, through CIM and by the guest, delivered to real listeners (pywbem's
WBEMListener in this process, pywbemlistener from pywbemtools as a separate process)."""

import os
import re
import socket
import subprocess
import threading
import time

import pytest
import pywbem
from pywbem import CIMInstance, Uint16, Uint32

from conftest import Daemon, make_vm, ROOT

INTEROP = "root/interop"
SMALL = 16 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """pywbem's WBEMListener on a port of its own; remembers what arrived and when."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.received = []
        self.cv = threading.Condition()
        self.listener = None

    def start(self):
        self.listener = pywbem.WBEMListener("127.0.0.1", http_port=self.port, https_port=None)
        self.listener.add_callback(self._arrived)
        self.listener.start()
        return self

    def stop(self):
        if self.listener:
            self.listener.stop()
            self.listener = None

    def _arrived(self, indication, host):
        with self.cv:
            self.received.append((time.monotonic(), indication))
            self.cv.notify_all()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, predicate, timeout=5.0, start=0):
        """The first indication from position `start` on that satisfies `predicate`, with its
        arrival time; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for i, (t, ind) in enumerate(self.received[start:]):
                    if predicate(ind):
                        return t, ind
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [(ind.classname, src(ind).get("ElementName")) for _, ind in self.received]
                    raise AssertionError(f"no matching indication within {timeout} s; received {names}")
                self.cv.wait(left)

    def indications(self):
        with self.cv:
            return [ind for _, ind in self.received]


def src(ind, name="SourceInstance"):
    v = ind.properties[name].value if name in ind.properties else None
    return v if v is not None else {}


def about(vm_uuid, classname=None):
    def pred(ind):
        return src(ind).get("Name") == vm_uuid and (classname is None or ind.classname.lower() == classname.lower())
    return pred


def subscribe(conn, name, query, url, lang="WQL", **extra):
    f = conn.CreateInstance(CIMInstance("CIM_IndicationFilter", properties={
        "Name": name, "Query": query, "QueryLanguage": lang, "SourceNamespaces": ["root/virt"]}), namespace=INTEROP)
    d = conn.CreateInstance(CIMInstance("CIM_ListenerDestinationCIMXML", properties={
        "Name": name + "-dest", "Destination": url}), namespace=INTEROP)
    props = {"Filter": f, "Handler": d}
    props.update(extra)
    s = conn.CreateInstance(CIMInstance("CIM_IndicationSubscription", properties=props), namespace=INTEROP)
    return f, d, s


def unsubscribe(conn, paths):
    f, d, s = paths
    for p in (s, f, d):
        conn.DeleteInstance(p)


def vm_path(uuid):
    return pywbem.CIMInstanceName("Xen_ComputerSystem", keybindings={"CreationClassName": "Xen_ComputerSystem", "Name": uuid},
                                  namespace="root/virt")


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("ind"), extra_config="sim_memory_mib = 65536\n").start()
    yield daemon
    daemon.stop()


@pytest.fixture
def x(d):
    s = d.session()
    yield s.xenapi
    s.xenapi.session.logout()


def test_lifecycle_through_both_doors_with_pywbem_listener(d, x):
    conn = d.wbem()
    lis = Listener().start()
    paths = subscribe(conn, "life", "SELECT * FROM CIM_InstIndication WHERE SourceInstance ISA CIM_ComputerSystem", lis.url)
    try:
        t0 = time.monotonic()
        vm = make_vm(x, "ind-life", memory=SMALL)
        uuid = x.VM.get_uuid(vm)
        t, ind = lis.wait_for(about(uuid, "Xen_ComputerSystemCreatedIndication"))
        assert t - t0 < 1.0
        assert src(ind)["ElementName"] == "ind-life"
        assert src(ind)["EnabledState"] == 3
        # SourceInstance is what GetInstance serves.
        served = conn.GetInstance(vm_path(uuid))
        for p in ("Name", "ElementName", "EnabledState", "RequestedState", "CreationClassName"):
            assert src(ind)[p] == served[p], p
        assert ind["IndicationIdentifier"] and ind["SequenceContext"] and ind["SequenceNumber"] is not None
        assert ind["IndicationFilterName"] == "life"

        # Start through CIM.
        mark = len(lis.indications())
        t0 = time.monotonic()
        rc, _ = conn.InvokeMethod("RequestStateChange", vm_path(uuid), RequestedState=Uint16(2))
        assert rc in (0, 4096)

        def running(ind):
            return about(uuid, "Xen_ComputerSystemModifiedIndication")(ind) and src(ind)["EnabledState"] == 2
        t, ind = lis.wait_for(running, start=mark)
        assert t - t0 < 1.0
        assert src(ind, "PreviousInstance")["EnabledState"] in (3, 10)

        # Destroy through the Xen-API.
        x.VM.hard_shutdown(vm)
        t0 = time.monotonic()
        x.VM.destroy(vm)
        t, ind = lis.wait_for(about(uuid, "Xen_ComputerSystemDeletedIndication"))
        assert t - t0 < 1.0
        assert src(ind)["ElementName"] == "ind-life"

        # Sequence numbers of one destination are consecutive.
        seqs = [i["SequenceNumber"] for i in lis.indications()]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert len({i["SequenceContext"] for i in lis.indications()}) == 1
    finally:
        unsubscribe(conn, paths)
        lis.stop()


def test_pywbemlistener_over_https(d, x, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    port = free_port()
    out = tmp_path / "indications.txt"
    name = f"xencim{port}"
    # Not pipes: the background listener it leaves running would keep them open.
    cli_log = open(tmp_path / "pywbemlistener.log", "wb")
    cli = str(ROOT / ".venv" / "bin" / "pywbemlistener")
    # `start` runs `pywbemlistener run` from PATH in the background.
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run([cli, "start", name, "--port", str(port), "--scheme", "https", "--bind-addr", "127.0.0.1",
                    "--certfile", str(cert), "--keyfile", str(key), "--indi-file", str(out),
                    "--indi-format", "{i_mof}"], check=True, timeout=60, env=env,
                   stdin=subprocess.DEVNULL, stdout=cli_log, stderr=cli_log)
    conn = d.wbem()
    paths = subscribe(conn, "cli", "SELECT * FROM Xen_ComputerSystemCreatedIndication", f"https://127.0.0.1:{port}")
    try:
        vm = make_vm(x, "ind-cli", memory=SMALL)
        deadline = time.time() + 5
        while time.time() < deadline and not (out.exists() and "ind-cli" in out.read_text()):
            time.sleep(0.05)
        text = out.read_text() if out.exists() else ""
        assert "Xen_ComputerSystemCreatedIndication" in text and "ind-cli" in text, text
        x.VM.destroy(vm)
    finally:
        unsubscribe(conn, paths)
        subprocess.run([cli, "stop", name], timeout=60, env=env, stdin=subprocess.DEVNULL, stdout=cli_log, stderr=cli_log)


def test_filters_select_and_each_subscription_gets_its_own_set(d, x):
    conn = d.wbem()
    created, running, nothing = Listener().start(), Listener().start(), Listener().start()
    subs = [
        subscribe(conn, "created", "SELECT * FROM CIM_InstCreation WHERE SourceInstance ISA Xen_ComputerSystem", created.url),
        subscribe(conn, "running", "SELECT SourceInstance, PreviousInstance FROM CIM_InstModification "
                  "WHERE SourceInstance ISA CIM_ComputerSystem AND SourceInstance.CIM_ComputerSystem::EnabledState = 2 "
                  "AND NOT PreviousInstance.EnabledState = 2",
                  running.url, lang="DMTF:CQL"),
        subscribe(conn, "nothing", "SELECT * FROM CIM_InstIndication WHERE SourceInstance.ElementName LIKE 'no-such-vm%'", nothing.url),
    ]
    try:
        vm = make_vm(x, "ind-filter", memory=SMALL)
        uuid = x.VM.get_uuid(vm)
        x.VM.start(vm, False, False)
        running.wait_for(about(uuid))
        created.wait_for(about(uuid))
        x.VM.hard_shutdown(vm)
        x.VM.destroy(vm)
        time.sleep(1.0)
        got_created = [i for i in created.indications() if src(i).get("Name") == uuid]
        got_running = [i for i in running.indications() if src(i).get("Name") == uuid]
        assert [i.classname for i in got_created] == ["Xen_ComputerSystemCreatedIndication"]
        assert [i.classname for i in got_running] == ["Xen_ComputerSystemModifiedIndication"]
        assert src(got_running[0])["EnabledState"] == 2
        # The projection: only the selected properties (and the DSP1054 sequence ones).
        assert "IndicationTime" not in got_running[0].properties
        assert "SequenceNumber" in got_running[0].properties
        assert nothing.indications() == []
    finally:
        for s in subs:
            unsubscribe(conn, s)
        for lis in (created, running, nothing):
            lis.stop()


def test_guest_initiated_power_off_is_indicated(d, x):
    conn = d.wbem()
    lis = Listener().start()
    paths = subscribe(conn, "guest", "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA CIM_ComputerSystem", lis.url)
    try:
        vm = make_vm(x, "ind-guest", memory=SMALL, actions_after_shutdown="destroy")
        uuid = x.VM.get_uuid(vm)
        x.VM.start(vm, False, False)
        lis.wait_for(lambda i: about(uuid)(i) and src(i)["EnabledState"] == 2)
        mark = len(lis.indications())
        t0 = time.monotonic()
        x.VM.send_sysrq(vm, "o")
        t, ind = lis.wait_for(lambda i: about(uuid)(i) and src(i)["EnabledState"] == 3, start=mark)
        assert t - t0 < 1.0
        assert src(ind, "PreviousInstance")["EnabledState"] == 2
        assert x.VM.get_power_state(vm) == "Halted"
        x.VM.destroy(vm)
    finally:
        unsubscribe(conn, paths)
        lis.stop()


def test_listener_down_for_10_s_gets_the_backlog_in_order(d, x):
    conn = d.wbem()
    lis = Listener().start()
    paths = subscribe(conn, "backlog", "SELECT * FROM CIM_InstIndication WHERE SourceInstance ISA CIM_ComputerSystem", lis.url)
    try:
        first = make_vm(x, "ind-backlog-0", memory=SMALL)
        lis.wait_for(about(x.VM.get_uuid(first)))
        lis.stop()
        vms = [make_vm(x, f"ind-backlog-{n}", memory=SMALL) for n in range(1, 6)]
        uuids = [x.VM.get_uuid(v) for v in vms]
        time.sleep(10)
        lis.start()
        lis.wait_for(about(uuids[-1]), timeout=15)
        got = lis.indications()
        names = [src(i)["ElementName"] for i in got]
        assert names == [f"ind-backlog-{n}" for n in range(6)], names
        seqs = [i["SequenceNumber"] for i in got]
        assert seqs == list(range(seqs[0], seqs[0] + 6)), seqs
        for v in [first] + vms:
            x.VM.destroy(v)
    finally:
        unsubscribe(conn, paths)
        lis.stop()


def test_errors_and_interop_objects(d):
    conn = d.wbem()
    with pytest.raises(pywbem.CIMError) as e:
        conn.CreateInstance(CIMInstance("CIM_IndicationFilter", properties={
            "Name": "bad", "Query": "SELECT * FROM Xen_NoSuchIndication", "QueryLanguage": "WQL"}), namespace=INTEROP)
    assert e.value.status_code == pywbem.CIM_ERR_INVALID_QUERY and "column 15" in e.value.status_description
    with pytest.raises(pywbem.CIMError) as e:
        conn.CreateInstance(CIMInstance("CIM_IndicationFilter", properties={
            "Name": "bad", "Query": "SELECT * FROM CIM_InstCreation WHERE (", "QueryLanguage": "WQL"}), namespace=INTEROP)
    assert e.value.status_code == pywbem.CIM_ERR_INVALID_QUERY and "column" in e.value.status_description

    # The older handler class works as a destination too; a used filter or handler stays.
    f = conn.CreateInstance(CIMInstance("CIM_IndicationFilter", properties={
        "Name": "used", "Query": "SELECT * FROM Xen_ComputerSystemCreatedIndication", "QueryLanguage": "WQL",
        "SourceNamespace": "root/virt"}), namespace=INTEROP)
    h = conn.CreateInstance(CIMInstance("CIM_IndicationHandlerCIMXML", properties={
        "Name": "old-handler", "Destination": "http://127.0.0.1:9"}), namespace=INTEROP)
    s = conn.CreateInstance(CIMInstance("CIM_IndicationSubscription", properties={"Filter": f, "Handler": h}), namespace=INTEROP)
    for p in (f, h):
        with pytest.raises(pywbem.CIMError) as e:
            conn.DeleteInstance(p)
        assert e.value.status_code == pywbem.CIM_ERR_FAILED and p["Name"] in e.value.status_description
    sub = conn.GetInstance(s)
    assert sub["SubscriptionState"] == 2
    assert [i["Name"] for i in conn.EnumerateInstances("CIM_ListenerDestination", namespace=INTEROP)] == ["old-handler"]

    # Read-only users cannot subscribe.
    d.add_user("watcher", "read-only", "watcher-pw")
    ro = d.wbem(user="watcher", password="watcher-pw")
    with pytest.raises(pywbem.CIMError) as e:
        ro.CreateInstance(CIMInstance("CIM_IndicationFilter", properties={
            "Name": "ro", "Query": "SELECT * FROM CIM_InstCreation", "QueryLanguage": "WQL"}), namespace=INTEROP)
    assert e.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED
    for p in (s, f, h):
        conn.DeleteInstance(p)

    # The service, its capabilities and the Indications profile.
    [svc] = conn.EnumerateInstances("CIM_IndicationService", namespace=INTEROP)
    assert svc["DeliveryRetryAttempts"] >= 1 and svc["DeliveryRetryInterval"] >= 1
    [caps] = conn.Associators(svc.path, AssocClass="CIM_ElementCapabilities")
    assert caps.classname == "CIM_IndicationServiceCapabilities" and caps["SubscriptionsPersisted"] is True
    profiles = [p for p in conn.EnumerateInstances("CIM_RegisteredProfile", namespace=INTEROP) if p["RegisteredName"] == "Indications"]
    assert len(profiles) == 1
    conformant = conn.AssociatorNames(profiles[0].path, AssocClass="CIM_ElementConformsToProfile")
    assert [p.classname for p in conformant] == ["CIM_IndicationService"]


def test_subscriptions_survive_a_restart(tmp_path):
    daemon = Daemon(tmp_path / "state").start()
    lis = Listener().start()
    try:
        conn = daemon.wbem()
        subscribe(conn, "durable", "SELECT * FROM CIM_InstCreation", lis.url, OnFatalErrorPolicy=Uint16(3))
        daemon.restart()
        conn = daemon.wbem()
        [sub] = conn.EnumerateInstances("CIM_IndicationSubscription", namespace=INTEROP)
        assert sub["OnFatalErrorPolicy"] == 3 and sub["Filter"]["Name"] == "durable"
        s = daemon.session()
        vm = make_vm(s.xenapi, "ind-after-restart", memory=SMALL)
        lis.wait_for(about(s.xenapi.VM.get_uuid(vm)))
    finally:
        lis.stop()
        daemon.stop()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_dead_listener_ends_disabled_and_memory_stays_bounded(tmp_path):
    daemon = Daemon(tmp_path / "state", extra_config="sim_memory_mib = 65536\nindication_queue_limit = 200\n").start()
    try:
        conn = daemon.wbem()
        [svc] = conn.EnumerateInstances("CIM_IndicationService", namespace=INTEROP)
        svc["DeliveryRetryAttempts"] = Uint16(2)
        svc["DeliveryRetryInterval"] = Uint32(3)
        conn.ModifyInstance(svc, PropertyList=["DeliveryRetryAttempts", "DeliveryRetryInterval"])
        dead = free_port()
        _, _, sub = subscribe(conn, "dead", "SELECT * FROM CIM_InstIndication", f"http://127.0.0.1:{dead}",
                              OnFatalErrorPolicy=Uint16(3))
        s = daemon.session()
        x = s.xenapi
        before = rss_kib(daemon.proc.pid)
        t0 = time.monotonic()
        vms = [make_vm(x, f"bulk-{n}", memory=SMALL) for n in range(1000)]
        for v in vms:
            x.VM.start(v, False, False)
        grown_mib = (rss_kib(daemon.proc.pid) - before) / 1024
        # 1,000 VMs (records, CIM views, domains) fit in far less; an unbounded queue of several
        # thousand indications with embedded instances would not.
        assert grown_mib < 120, grown_mib
        log = daemon.log.read_text()
        assert "indication queue full" in log
        deadline = time.monotonic() + 20
        while conn.GetInstance(sub)["SubscriptionState"] != 4 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert conn.GetInstance(sub)["SubscriptionState"] == 4
        assert "subscription disabled" in daemon.log.read_text()
        assert time.monotonic() - t0 < 60
    finally:
        daemon.stop()


def test_pywbemcli_subscription_commands(d, x):
    lis = Listener().start()
    cli = [str(ROOT / ".venv" / "bin" / "pywbemcli"), "-s", d.wbem_url, "-u", "admin", "-p", d.admin_password]

    def run(*args):
        r = subprocess.run(cli + list(args), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    try:
        run("subscription", "add-destination", "clidest", "-l", lis.url, "--permanent")
        run("subscription", "add-filter", "clifilter", "-q",
            "SELECT * FROM CIM_InstCreation WHERE SourceInstance ISA CIM_ComputerSystem",
            "--query-language", "DMTF:CQL", "--source-namespaces", "root/virt", "--permanent")
        listing = run("subscription", "list-destinations")
        assert "clidest" in listing, listing
        dests = d.wbem().EnumerateInstances("CIM_ListenerDestinationCIMXML", namespace=INTEROP)
        filters = d.wbem().EnumerateInstances("CIM_IndicationFilter", namespace=INTEROP)
        dest = [i for i in dests if "clidest" in i["Name"]][0]
        filt = [i for i in filters if "clifilter" in i["Name"]][0]
        run("subscription", "add-subscription", dest["Name"], filt["Name"], "--permanent")
        assert "clifilter" in run("subscription", "list-subscriptions")
        vm = make_vm(x, "ind-pywbemcli", memory=SMALL)
        lis.wait_for(about(x.VM.get_uuid(vm)))
        x.VM.destroy(vm)
    finally:
        conn = d.wbem()
        for cls in ("CIM_IndicationSubscription", "CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML"):
            for p in conn.EnumerateInstanceNames(cls, namespace=INTEROP):
                conn.DeleteInstance(p)
        lis.stop()


def test_job_modifications(d, x):
    conn = d.wbem()
    lis = Listener().start()
    paths = subscribe(conn, "jobs", "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA CIM_ConcreteJob", lis.url)
    try:
        vm = make_vm(x, "ind-job", memory=SMALL)
        task = x.Async.VM.start(vm, False, False)
        task_uuid = x.task.get_uuid(task)
        t, ind = lis.wait_for(lambda i: src(i).get("InstanceID") == task_uuid and src(i)["JobState"] == 7)
        assert ind.classname == "Xen_ConcreteJobModifiedIndication"
        assert src(ind)["PercentComplete"] == 100
        assert all(src(i).classname == "Xen_ConcreteJob" for i in lis.indications())
        x.VM.hard_shutdown(vm)
        x.VM.destroy(vm)
    finally:
        unsubscribe(conn, paths)
        lis.stop()
