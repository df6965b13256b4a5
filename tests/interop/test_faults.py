"""Faults: SIGKILL at random moments during a mixed workload through both doors, a corrupt or
foreign state file, and a full disk under the state directory.

The workload: VMs created, started, stopped and destroyed through the Xen-API; VMs enumerated,
associated and started or stopped through CIM; and indication filters, listener destinations
and subscriptions created, disabled and deleted in root/interop through CIM. After each restart:
the VMs and their devices are one consistent state, agreeing between the doors, with every VM
whose creation returned and none whose destruction returned; the subscriptions are intact: the
ones made before the first kill are there with the same paths and properties (and one of them
still delivers at the end), every churned filter, destination or subscription whose
CreateInstance (or ModifyInstance) returned is there as it was made, none whose DeleteInstance
returned, only calls in flight at the kill may go either way, and no subscription references a
missing filter or handler. (A filter, its destination and its subscription are three
CreateInstance calls; a kill between them leaves the ones that returned.) Objects loaded at a
start are used again: a spare filter and destination made before the first kill are subscribed
and unsubscribed in turn, and sets left by earlier rounds get their subscription or are deleted.
No subscription call may be refused (a CIM error or an HTTP error status).

XENCIM_FAULT_KILLS sets the number of kills (CI: 50; the issue's full run: 200);
XENCIM_FAULT_SEED replays a run's random choices."""

import hashlib
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import threading
import time

import pytest
import pywbem
import XenAPI

from conftest import BINARY, Daemon, make_vm

NS = "root/virt"
INTEROP = "root/interop"
KILLS = int(os.environ.get("XENCIM_FAULT_KILLS", "50"))
POWER_STATES = {"Halted", "Running", "Paused", "Suspended"}
FILTER, DESTINATION, HANDLER, SUBSCRIPTION = (
    "CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML", "CIM_IndicationHandlerCIMXML", "CIM_IndicationSubscription")
# Churned filters select nothing the workload raises, so their subscriptions stay as made.
NO_MATCH = "SELECT * FROM CIM_InstIndication WHERE SourceInstance.ElementName LIKE 'no-such-vm%'"
# Of the churned sets earlier rounds left, those beyond this many are deleted first in a round.
CHURN_KEPT = 12


class Ledger:
    """What the clients know for sure: VMs whose creation returned (ref and uuid) and VMs whose
    destruction returned; VMs with a destroy in flight may be either way after a kill."""

    def __init__(self):
        self.lock = threading.Lock()
        self.created = {}  # uuid -> ref
        self.destroyed = set()
        self.destroying = set()
        self.cim_calls = 0


class SubLedger:
    """What the subscription client knows for sure about each churned object, keyed by
    (kind, name) with kind filter, destination or subscription and name the set's name:
    "creating" or "deleting" while the call is in flight (either way after a kill), "present"
    once CreateInstance returned, "absent" once DeleteInstance returned or CreateInstance was
    refused. `state` is the SubscriptionState a subscription was made or last modified with
    (None while a ModifyInstance is in flight)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status = {}
        self.paths = {}
        self.state = {}
        self.sets_made = 0
        self.sets_deleted = 0
        self.refused = []  # refusals, and the worker's own mistakes: none are expected

    def mark(self, key, status, path=None):
        with self.lock:
            self.status[key] = status
            if path is not None:
                self.paths[key] = path

    def leftovers(self):
        with self.lock:
            return sorted({name for (kind, name), st in self.status.items() if st == "present" and name.startswith("churn-")})


def strip_host(path):
    p = path.copy()
    p.host = None
    return p


class Listener:
    """pywbem's listener for the stable subscription that delivers."""

    def __init__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.names = set()
        self.cv = threading.Condition()
        self.listener = pywbem.WBEMListener("127.0.0.1", http_port=self.port, https_port=None)
        self.listener.add_callback(self._arrived)
        self.listener.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def _arrived(self, indication, host):
        source = indication.properties.get("SourceInstance")
        if source is not None and source.value is not None:
            with self.cv:
                self.names.add(source.value.get("ElementName"))
                self.cv.notify_all()

    def wait_for(self, name, timeout):
        with self.cv:
            return self.cv.wait_for(lambda: name in self.names, timeout)

    def stop(self):
        self.listener.stop()


def xenapi_worker(d, ledger, stop, rng, round_no):
    try:
        s = XenAPI.Session(d.url)
        s.xenapi.login_with_password("admin", d.admin_password, "2.21", "faults")
        x = s.xenapi
        sr = x.SR.get_all()[0]
        n = 0
        while not stop.is_set():
            n += 1
            vm = make_vm(x, f"fault-{round_no}-{n}", memory=64 << 20)
            uuid = x.VM.get_uuid(vm)
            with ledger.lock:
                ledger.created[uuid] = vm
            vdi = x.VDI.create({"SR": sr, "virtual_size": str(8 << 20), "type": "user", "sharable": False, "read_only": False,
                                "other_config": {}, "name_label": f"d-{round_no}-{n}"})
            x.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk", "empty": False,
                          "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
            x.VM.start(vm, False, True)
            if rng.random() < 0.5:
                x.VM.hard_shutdown(vm)
                with ledger.lock:
                    ledger.destroying.add(uuid)
                x.VM.destroy(vm)
                with ledger.lock:
                    ledger.destroyed.add(uuid)
    except Exception:
        pass  # the kill ends the worker


def cim_worker(d, ledger, stop, rng):
    try:
        c = d.wbem()
        while not stop.is_set():
            systems = [p for p in c.EnumerateInstanceNames("Xen_ComputerSystem", NS) if p.classname == "Xen_ComputerSystem"]
            with ledger.lock:
                ledger.cim_calls += 1
            if systems:
                vm = rng.choice(systems)
                c.Associators(vm, AssocClass="CIM_SystemDevice")
                # Start or stop it through the CIM door (a job or an error; either is fine).
                try:
                    c.InvokeMethod("RequestStateChange", vm, RequestedState=pywbem.Uint16(rng.choice([2, 3])))
                except pywbem.CIMError:
                    pass
    except Exception:
        pass


# A refusal is a CIM error or an HTTP error status (a failing provider); a kill shows as a
# connection error instead, which ends the worker.
REFUSED = (pywbem.CIMError, pywbem.HTTPError)


def refused(subs, kind, name, e):
    with subs.lock:
        subs.refused.append((kind, name, f"{type(e).__name__}: {e}"))


def create(c, subs, kind, name, instance):
    """CreateInstance of a churned object, in the ledger; its path, or None when refused."""
    subs.mark((kind, name), "creating")
    try:
        path = strip_host(c.CreateInstance(instance, namespace=INTEROP))
    except REFUSED as e:
        subs.mark((kind, name), "absent")
        refused(subs, kind, name, e)
        return None
    subs.mark((kind, name), "present", path)
    return path


def subscribe(c, subs, name, filter_path, handler_path, rng):
    """A churned subscription (some made disabled, some disabled afterwards with ModifyInstance)."""
    state = rng.choice([2, 2, 4])
    with subs.lock:
        subs.state[name] = state
    path = create(c, subs, "subscription", name, pywbem.CIMInstance(SUBSCRIPTION, properties={
        "Filter": filter_path, "Handler": handler_path, "SubscriptionState": pywbem.Uint16(state),
        "OnFatalErrorPolicy": pywbem.Uint16(2)}))
    if path is None or rng.random() >= 0.3:
        return path
    with subs.lock:
        subs.state[name] = None
    try:
        c.ModifyInstance(pywbem.CIMInstance(SUBSCRIPTION, properties={"SubscriptionState": pywbem.Uint16(4)}, path=path),
                         PropertyList=["SubscriptionState"])
    except REFUSED as e:
        refused(subs, "subscription", name, e)
        return path
    with subs.lock:
        subs.state[name] = 4
    return path


def create_set(c, subs, name, rng, url):
    """A churned filter, destination and subscription."""
    f = create(c, subs, "filter", name, pywbem.CIMInstance(FILTER, properties={
        "Name": name, "Query": NO_MATCH, "QueryLanguage": "WQL", "SourceNamespaces": [NS]}))
    h = f and create(c, subs, "destination", name, pywbem.CIMInstance(DESTINATION, properties={
        "Name": name + "-dest", "Destination": url}))
    if h and subscribe(c, subs, name, f, h, rng):
        with subs.lock:
            subs.sets_made += 1


def delete_set(c, subs, name):
    """Deletes what is there of a churned set: the subscription first, then what it used."""
    for kind in ("subscription", "filter", "destination"):
        with subs.lock:
            if subs.status.get((kind, name)) != "present":
                continue
            path = subs.paths[(kind, name)]
        subs.mark((kind, name), "deleting")
        try:
            c.DeleteInstance(path)
        except REFUSED as e:
            subs.mark((kind, name), "present")
            refused(subs, kind, name, e)
            return
        subs.mark((kind, name), "absent")
    with subs.lock:
        subs.sets_deleted += 1


def subscription_worker(d, subs, stable, stop, rng, round_no, url):
    try:
        c = d.wbem(namespace=INTEROP)
        # The spare filter and destination, made before the first kill, subscribed and
        # unsubscribed in turn: objects loaded at a start are used as much as new ones.
        with subs.lock:
            spare = subs.status.get(("subscription", "stable-spare"))
            spare_path = subs.paths.get(("subscription", "stable-spare"))
        if spare == "present":
            subs.mark(("subscription", "stable-spare"), "deleting")
            try:
                c.DeleteInstance(spare_path)
                subs.mark(("subscription", "stable-spare"), "absent")
            except REFUSED as e:
                subs.mark(("subscription", "stable-spare"), "present")
                refused(subs, "subscription", "stable-spare", e)
        else:
            subscribe(c, subs, "stable-spare", strip_host(stable[("filter", "stable-spare")].path),
                      strip_host(stable[("destination", "stable-spare")].path), rng)
        # What earlier rounds left: sets missing only their subscription may get one; others are
        # deleted now or later (all of them beyond CHURN_KEPT now).
        leftovers = subs.leftovers()
        for i, name in enumerate(leftovers):
            if stop.is_set():
                return
            with subs.lock:
                status = {kind: subs.status.get((kind, name)) for kind in ("filter", "destination", "subscription")}
                paths = (subs.paths.get(("filter", name)), subs.paths.get(("destination", name)))
            if len(leftovers) - i > CHURN_KEPT:
                delete_set(c, subs, name)
            elif status["filter"] == status["destination"] == "present" and status["subscription"] != "present" and rng.random() < 0.5:
                subscribe(c, subs, name, *paths, rng)
            elif rng.random() < 0.5:
                delete_set(c, subs, name)
        n = 0
        while not stop.is_set():
            n += 1
            name = f"churn-{round_no}-{n}"
            create_set(c, subs, name, rng, url)
            if rng.random() < 0.7:
                delete_set(c, subs, name)
    except (pywbem.Error, OSError):
        pass  # the kill ends the worker
    except Exception as e:  # a mistake of the test's own: fails the next check
        refused(subs, "worker", "", e)


def make_stable_subscriptions(d, listener_url):
    """Made before the first kill: one that delivers to a live listener, one disabled to an older
    CIM_IndicationHandlerCIMXML, and a spare filter and destination that the workload subscribes
    and unsubscribes. Returns what EnumerateInstances serves of them."""
    c = d.wbem(namespace=INTEROP)
    for name, query, dest_class, url, extra in (
        ("stable-live", "SELECT * FROM CIM_InstCreation WHERE SourceInstance ISA CIM_ComputerSystem", DESTINATION, listener_url,
         {"OnFatalErrorPolicy": pywbem.Uint16(2)}),
        ("stable-quiet", NO_MATCH, HANDLER, "http://127.0.0.1:9/quiet",
         {"SubscriptionState": pywbem.Uint16(4), "OnFatalErrorPolicy": pywbem.Uint16(3)}),
    ):
        f = c.CreateInstance(pywbem.CIMInstance(FILTER, properties={
            "Name": name, "Query": query, "QueryLanguage": "DMTF:CQL" if name == "stable-quiet" else "WQL",
            "SourceNamespaces": [NS]}), namespace=INTEROP)
        h = c.CreateInstance(pywbem.CIMInstance(dest_class, properties={"Name": name + "-dest", "Destination": url}), namespace=INTEROP)
        c.CreateInstance(pywbem.CIMInstance(SUBSCRIPTION, properties=dict({"Filter": f, "Handler": h}, **extra)), namespace=INTEROP)
    c.CreateInstance(pywbem.CIMInstance(FILTER, properties={"Name": "stable-spare", "Query": NO_MATCH, "QueryLanguage": "WQL"}),
                     namespace=INTEROP)
    c.CreateInstance(pywbem.CIMInstance(DESTINATION, properties={"Name": "stable-spare-dest", "Destination": "127.0.0.1:9"}),
                     namespace=INTEROP)
    return interop_objects(c)


def interop_objects(c):
    """{(kind, name): instance} of every filter, destination and subscription in root/interop;
    a subscription is named by its filter (the sets name destinations <filter name>-dest)."""
    out = {}
    for i in c.EnumerateInstances(FILTER, namespace=INTEROP):
        assert i.classname == FILTER
        assert ("filter", i["Name"]) not in out, f"filter {i['Name']} twice"
        out[("filter", i["Name"])] = i
    for cls in (DESTINATION, HANDLER):
        for i in c.EnumerateInstances(cls, namespace=INTEROP):
            if i.classname != cls:
                continue  # a subclass's instance, served once more under it
            name = i["Name"]
            assert name.endswith("-dest"), name
            assert ("destination", name[:-5]) not in out, f"destination {name} twice"
            out[("destination", name[:-5])] = i
    for i in c.EnumerateInstances(SUBSCRIPTION, namespace=INTEROP):
        fname, hname = i["Filter"].keybindings["Name"], i["Handler"].keybindings["Name"]
        assert ("subscription", fname) not in out, f"filter {fname} subscribed twice"
        assert hname == fname + "-dest", f"subscription of filter {fname} to {hname}, which it was not made with"
        out[("subscription", fname)] = i
    return out


def same_instance(a, b):
    return (strip_host(a.path) == strip_host(b.path) and a.classname == b.classname
            and {k: v.value for k, v in a.properties.items()} == {k: v.value for k, v in b.properties.items()})


def check_subscriptions(d, subs, stable):
    c = d.wbem(namespace=INTEROP)
    found = interop_objects(c)
    # No subscription references a missing filter or handler, and it references them by the
    # paths they are served under.
    for (kind, name), i in found.items():
        if kind == "subscription":
            assert ("filter", name) in found and ("destination", name) in found, f"subscription {name} references a missing filter or handler"
            assert strip_host(i["Filter"]) == strip_host(found[("filter", name)].path), name
            assert strip_host(i["Handler"]) == strip_host(found[("destination", name)].path), name
    for key, i in stable.items():
        assert key in found, f"stable {key[0]} {key[1]} lost"
        assert same_instance(found[key], i), f"stable {key[0]} {key[1]} changed:\n{found[key].tomof()}\nwas\n{i.tomof()}"
    with subs.lock:
        assert not subs.refused, f"calls refused: {subs.refused}"
        for key in found:
            if key not in stable:
                assert subs.status.get(key) in ("present", "creating", "deleting"), f"{key[0]} {key[1]} is there after {subs.status.get(key)}"
        for key, st in list(subs.status.items()):
            kind, name = key
            if st == "present":
                assert key in found, f"{kind} {name} was made and is lost"
            elif st == "absent":
                assert key not in found, f"{kind} {name} was deleted (or refused) and is back"
            # What a call in flight did is now known: the next rounds go on from there.
            subs.status[key] = "present" if key in found else "absent"
            if key in found:
                i = found[key]
                subs.paths[key] = strip_host(i.path)
                if kind == "filter":
                    assert i["Query"] == NO_MATCH and i["QueryLanguage"] == "WQL", i.tomof()
                elif kind == "destination":
                    assert i.classname == DESTINATION and i["Destination"], i.tomof()
                else:
                    expected = subs.state.get(name)
                    assert i["SubscriptionState"] in ((2, 4) if expected is None else (expected,)), (name, i["SubscriptionState"], expected)
                    subs.state[name] = i["SubscriptionState"]
                    assert i["OnFatalErrorPolicy"] == 2, i.tomof()
    return found


def check_invariants(d, ledger):
    s = XenAPI.Session(d.url)
    s.xenapi.login_with_password("admin", d.admin_password, "2.21", "faults-check")
    x = s.xenapi
    try:
        vms = x.VM.get_all_records()
        vbds = x.VBD.get_all_records()
        uuids = [v["uuid"] for v in vms.values()]
        assert len(uuids) == len(set(uuids)), "a uuid appears twice"
        by_uuid = {v["uuid"]: r for r, v in vms.items()}
        for ref, v in vms.items():
            assert v["power_state"] in POWER_STATES, (ref, v["power_state"])
            # One state: the domain id agrees with the power state, and no operation is left
            # marked as in progress by a process that died.
            assert (v["power_state"] == "Halted") == (int(v["domid"]) == -1), (v["name_label"], v["power_state"], v["domid"])
            assert v["current_operations"] == {}, (v["name_label"], v["current_operations"])
            x.VM_metrics.get_record(v["metrics"])
            for vbd in v["VBDs"]:
                assert vbd in vbds and vbds[vbd]["VM"] == ref, "a VM lists a VBD that is not its own"
        for ref, b in vbds.items():
            assert b["VM"] in vms and ref in vms[b["VM"]]["VBDs"], "a VBD of a VM that is not there"
        with ledger.lock:
            for uuid, ref in ledger.created.items():
                if uuid in ledger.destroyed:
                    assert uuid not in by_uuid, f"destroyed VM {uuid} came back"
                elif uuid not in ledger.destroying:
                    assert by_uuid.get(uuid) == ref, f"VM {uuid} lost or changed its ref"
                elif uuid in by_uuid:
                    assert by_uuid[uuid] == ref
        cim = {p.keybindings["Name"] for p in d.wbem().EnumerateInstanceNames("Xen_ComputerSystem", NS) if p.classname == "Xen_ComputerSystem"}
        api = {v["uuid"] for v in vms.values() if not v["is_a_template"] and not v["is_a_snapshot"] and not v["is_control_domain"]}
        assert cim - {v["uuid"] for v in vms.values() if v["is_control_domain"]} == api, "the CIM and Xen-API views of the VMs differ"
    finally:
        s.xenapi.session.logout()


def test_sigkill_during_a_mixed_workload(tmp_path):
    seed = int(os.environ.get("XENCIM_FAULT_SEED", time.time()))
    print(f"XENCIM_FAULT_SEED={seed}")
    rng = random.Random(seed)
    d = Daemon(tmp_path / "state").start()
    ledger = Ledger()
    subs = SubLedger()
    listener = Listener()
    started = time.time()
    try:
        stable = make_stable_subscriptions(d, listener.url)
        assert len(stable) == 8
        for round_no in range(KILLS):
            stop = threading.Event()
            workers = [threading.Thread(target=xenapi_worker, args=(d, ledger, stop, random.Random(rng.random()), round_no)),
                       threading.Thread(target=cim_worker, args=(d, ledger, stop, random.Random(rng.random()))),
                       threading.Thread(target=subscription_worker, args=(d, subs, stable, stop, random.Random(rng.random()), round_no, listener.url))]
            for w in workers:
                w.start()
            time.sleep(rng.uniform(0.02, 0.6))
            d.kill()
            stop.set()
            for w in workers:
                w.join(timeout=30)
            d.start()
            check_invariants(d, ledger)
            check_subscriptions(d, subs, stable)
        assert ledger.cim_calls >= KILLS // 2, f"the CIM workload made too little progress ({ledger.cim_calls} calls)"
        assert len(ledger.created) >= KILLS // 2, f"the workload made too little progress ({len(ledger.created)} VMs in {KILLS} rounds)"
        assert subs.sets_made >= KILLS // 2 and subs.sets_deleted >= KILLS // 4, \
            f"the subscription workload made too little progress ({subs.sets_made} sets made, {subs.sets_deleted} deleted)"
        # The stable subscription that delivers still does after the last restart.
        vm = make_vm(d.session().xenapi, "fault-after-the-kills", memory=64 << 20)
        assert listener.wait_for("fault-after-the-kills", 10), "the stable subscription no longer delivers"
        assert vm
    finally:
        d.stop()
        listener.stop()
    print(f"{KILLS} kills, {len(ledger.created)} VMs made, {len(ledger.destroyed)} destroyed, {ledger.cim_calls} CIM enumerations, "
          f"{subs.sets_made} subscription sets made, {subs.sets_deleted} deleted, {time.time() - started:.0f} s")


def refused_at_start(state_dir):
    p = subprocess.run([str(BINARY), "serve", "--state-dir", str(state_dir), "--xenapi", "127.0.0.1:0", "--xenapi-tls", "127.0.0.1:0",
                        "--cim-http", "127.0.0.1:0", "--cim-https", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    return p.stderr


# Each of the daemon's SQLite files, and what the refusal of a file that is not one says.
STORE_FILES = {"xencim.db": "is not a xencim store", "indications.db": "is not a xencim indications store"}


def checksum(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_only_checked(state, name):
    """A bad indications.db is refused before the model's store or anything else is made."""
    if name == "indications.db":
        made = sorted(p.name for p in state.iterdir() if p.name != name)
        assert made == [], f"the refused start wrote {made}"


@pytest.mark.parametrize("name", STORE_FILES)
def test_a_corrupt_store_is_refused_and_left_alone(tmp_path, name):
    state = tmp_path / "state"
    state.mkdir()
    garbage = bytes(random.Random(7).getrandbits(8) for _ in range(64 * 1024))
    (state / name).write_bytes(garbage)
    before = checksum(state / name)
    err = refused_at_start(state)
    assert STORE_FILES[name] in err and f"{state}/{name}" in err and "SQLite cannot read it" in err, err
    assert checksum(state / name) == before
    assert (state / name).read_bytes() == garbage
    assert_only_checked(state, name)


@pytest.mark.parametrize("name", STORE_FILES)
def test_a_foreign_database_is_refused_and_left_alone(tmp_path, name):
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / name)
    db.execute("CREATE TABLE moz_bookmarks (id INTEGER PRIMARY KEY, title TEXT)")
    db.execute("INSERT INTO moz_bookmarks (title) VALUES ('keep me')")
    db.commit()
    db.close()
    before = checksum(state / name)
    err = refused_at_start(state)
    assert "another program" in err and "moz_bookmarks" in err and f"{state}/{name}" in err, err
    assert checksum(state / name) == before
    assert_only_checked(state, name)


@pytest.fixture(scope="module")
def real_stores(tmp_path_factory):
    """The xencim.db and indications.db of a daemon that ran (with a subscription filter made)."""
    state = tmp_path_factory.mktemp("real") / "state"
    d = Daemon(state)
    d.start()
    try:
        d.wbem(namespace=INTEROP).CreateInstance(pywbem.CIMInstance(FILTER, properties={
            "Name": "kept", "Query": NO_MATCH, "QueryLanguage": "DMTF:CQL", "SourceNamespaces": [NS]}), namespace=INTEROP)
    finally:
        assert d.stop() == 0
    return state


@pytest.mark.parametrize("name,other,says", [
    ("indications.db", "xencim.db", "is not a xencim indications store: it is the model's store (xencim.db)"),
    ("xencim.db", "indications.db", "is not a xencim store: it is the subscriptions' store (indications.db)"),
])
def test_a_foreign_xencim_file_copied_over_a_store_is_refused_and_left_alone(tmp_path, real_stores, name, other, says):
    state = tmp_path / "state"
    state.mkdir()
    shutil.copyfile(real_stores / other, state / name)
    before = checksum(state / name)
    err = refused_at_start(state)
    assert says in err and f"{state}/{name}" in err, err
    assert checksum(state / name) == before
    assert_only_checked(state, name)


@pytest.mark.parametrize("name", STORE_FILES)
def test_a_store_of_a_newer_schema_is_refused_and_left_alone(tmp_path, real_stores, name):
    state = tmp_path / "state"
    shutil.copytree(real_stores, state)
    db = sqlite3.connect(state / name)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    before = checksum(state / name)
    err = refused_at_start(state)
    assert "written by a newer xencim" in err and "schema 99" in err and f"{state}/{name}" in err, err
    assert checksum(state / name) == before


def test_an_indications_db_from_before_the_store_identity_is_adopted(tmp_path, real_stores):
    """A deployment's indications.db made before the file carried an identity (no application id,
    no meta table) is stamped and served, not refused."""
    state = tmp_path / "state"
    shutil.copytree(real_stores, state)
    db = sqlite3.connect(state / "indications.db")
    db.execute("DROP TABLE meta")
    db.execute("PRAGMA application_id = 0")
    db.commit()
    db.close()
    d = Daemon(state)
    d.start()
    try:
        names = [i["Name"] for i in d.wbem(namespace=INTEROP).EnumerateInstances(FILTER)]
        assert "kept" in names, names
    finally:
        assert d.stop() == 0
    db = sqlite3.connect(state / "indications.db")
    assert db.execute("PRAGMA application_id").fetchone()[0] == 0x78636931
    assert db.execute("SELECT value FROM meta WHERE key = 'store'").fetchone()[0] == "xencim indications"
    db.close()


def test_a_full_disk_fails_calls_cleanly_and_recovers(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the state directory needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    d = None
    try:
        d = Daemon(mnt / "state")
        d.log = tmp_path / "daemon.log"  # outside the filesystem that fills up
        d.start()
        s = d.session()
        x = s.xenapi
        kept = make_vm(x, "before-full")
        filler = mnt / "filler"
        # Fill the filesystem to the last block.
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                try:
                    while os.write(fd, b"\1" * size):
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        failures = 0
        for i in range(30):
            try:
                make_vm(x, f"while-full-{i}", other_config={"pad": "x" * 20000})
            except XenAPI.Failure as e:
                failures += 1
                assert e.details[0] == "INTERNAL_ERROR" or "disk" in " ".join(e.details).lower() or "full" in " ".join(e.details).lower(), e.details
        assert failures > 0, "no call failed on a full disk"
        # Reads go on; the daemon is still up.
        assert kept in x.VM.get_all()
        assert d.proc.poll() is None
        filler.unlink()
        after = make_vm(x, "after-space-returns")
        assert after in x.VM.get_all() and kept in x.VM.get_all()
        names = {v["name_label"] for v in x.VM.get_all_records().values()}
        d.restart()
        x = d.session().xenapi
        assert {v["name_label"] for v in x.VM.get_all_records().values()} == names, "what the calls answered is what the store kept"
    finally:
        if d:
            d.stop()
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
