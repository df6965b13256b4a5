"""Mixed load on both doors: N concurrent clients, half CIM (enumerations, associations, method
calls) and half Xen-API (reads, VM create/start/shutdown/destroy), for M minutes. Prints every
interval the calls done, unexpected errors, p50/p99 latency per door and the daemon's RSS; at
the end whether RSS stayed flat after warm-up. Exits 1 on any unexpected error."""

import argparse
import os
import pathlib
import random
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "interop"))

import pywbem  # noqa: E402
import XenAPI  # noqa: E402
from conftest import Daemon, make_vm  # noqa: E402

NS = "root/virt"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = {"cim": [], "xenapi": []}
        self.errors = []
        self.calls = 0

    def record(self, door, seconds):
        with self.lock:
            self.lat[door].append(seconds)
            self.calls += 1

    def error(self, what):
        with self.lock:
            self.errors.append(what)

    def take(self):
        with self.lock:
            lat, self.lat = self.lat, {"cim": [], "xenapi": []}
            return lat


def timed(stats, door, f, *a, **kw):
    t = time.perf_counter()
    r = f(*a, **kw)
    stats.record(door, time.perf_counter() - t)
    return r


def cim_client(d, stats, stop, seed):
    rng = random.Random(seed)
    c = d.wbem()
    while not stop.is_set():
        try:
            systems = [p for p in timed(stats, "cim", c.EnumerateInstanceNames, "Xen_ComputerSystem", NS) if p.classname == "Xen_ComputerSystem"]
            timed(stats, "cim", c.EnumerateInstances, "CIM_ResourceAllocationSettingData", NS)
            if systems:
                vm = rng.choice(systems)
                timed(stats, "cim", c.Associators, vm, AssocClass="CIM_SystemDevice")
                timed(stats, "cim", c.AssociatorNames, vm, AssocClass="CIM_SettingsDefineState")
                try:
                    # Start or stop: either may be refused for the VM's current state; that is expected.
                    timed(stats, "cim", c.InvokeMethod, "RequestStateChange", vm, RequestedState=pywbem.Uint16(rng.choice([2, 3])))
                except pywbem.CIMError as e:
                    if e.status_code not in (pywbem.CIM_ERR_FAILED, pywbem.CIM_ERR_NOT_FOUND, pywbem.CIM_ERR_INVALID_PARAMETER):
                        stats.error(f"cim RequestStateChange: {e}")
        except pywbem.CIMError as e:
            if e.status_code != pywbem.CIM_ERR_NOT_FOUND:  # a VM destroyed by another client meanwhile
                stats.error(f"cim: {e}")
        except Exception as e:  # noqa: BLE001
            stats.error(f"cim: {type(e).__name__}: {e}")


def xenapi_client(d, stats, stop, seed):
    rng = random.Random(seed)
    s = XenAPI.Session(d.url)
    s.xenapi.login_with_password("admin", d.admin_password, "2.21", "load")
    x = s.xenapi
    mine = []
    while not stop.is_set():
        try:
            timed(stats, "xenapi", x.VM.get_all_records)
            timed(stats, "xenapi", x.host.get_record, x.host.get_all()[0])
            if len(mine) < 2:
                mine.append(timed(stats, "xenapi", make_vm, x, f"load-{seed}-{len(mine)}", memory=32 << 20))
            vm = rng.choice(mine)
            state = timed(stats, "xenapi", x.VM.get_power_state, vm)
            if state == "Halted":
                timed(stats, "xenapi", x.VM.start, vm, False, True)
            elif state == "Running":
                timed(stats, "xenapi", x.VM.hard_shutdown, vm)
            if rng.random() < 0.05 and state == "Halted":
                timed(stats, "xenapi", x.VM.destroy, vm)
                mine.remove(vm)
        except XenAPI.Failure as e:
            # CIM clients change the same VMs' power states meanwhile.
            if e.details[0] not in ("VM_BAD_POWER_STATE", "OTHER_OPERATION_IN_PROGRESS", "HANDLE_INVALID", "HOST_NOT_ENOUGH_FREE_MEMORY"):
                stats.error(f"xenapi: {e.details}")
        except Exception as e:  # noqa: BLE001
            stats.error(f"xenapi: {type(e).__name__}: {e}")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--interval", type=float, default=30)
    args = ap.parse_args()
    import tempfile
    state = pathlib.Path(tempfile.mkdtemp(prefix="xencim-load-"))
    d = Daemon(state / "state", extra_config=f"sim_memory_mib = {64 * 1024}\nmax_connections_per_ip = {4 * args.clients}\n"
               "login_failures_per_address = 1000\n").start()
    stats, stop = Stats(), threading.Event()
    threads = [threading.Thread(target=(cim_client if i % 2 else xenapi_client), args=(d, stats, stop, i), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    end = time.time() + args.minutes * 60
    rss = []
    print(f"{args.clients} clients ({args.clients // 2} CIM, {args.clients - args.clients // 2} Xen-API), {args.minutes} min")
    print(f"{'t(s)':>6} {'calls/s':>8} {'cim p50':>8} {'cim p99':>8} {'xapi p50':>9} {'xapi p99':>9} {'RSS MiB':>8} {'errors':>7}")
    start = time.time()
    while time.time() < end:
        time.sleep(min(args.interval, max(0.1, end - time.time())))
        lat = stats.take()
        r = rss_kib(d.proc.pid) / 1024
        rss.append(r)
        n = len(lat["cim"]) + len(lat["xenapi"])
        print(f"{time.time() - start:6.0f} {n / args.interval:8.0f} {pct(lat['cim'], 50):8.1f} {pct(lat['cim'], 99):8.1f} "
              f"{pct(lat['xenapi'], 50):9.1f} {pct(lat['xenapi'], 99):9.1f} {r:8.1f} {len(stats.errors):7d}", flush=True)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    d.stop()
    warm = rss[len(rss) // 3:] or rss
    growth = (warm[-1] - warm[0]) / warm[0] * 100 if warm and warm[0] else 0
    print(f"calls: {stats.calls}; unexpected errors: {len(stats.errors)}; RSS after warm-up {warm[0]:.1f} -> {warm[-1]:.1f} MiB ({growth:+.1f}%)")
    for e in stats.errors[:20]:
        print("  ", e)
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
