"""Mixed load on both doors: N concurrent clients, half CIM (enumerations, associations, method
calls) and half Xen-API (reads, VM create/start/shutdown/destroy), for M minutes. Prints every
interval the calls done, unexpected errors, p50/p99 latency per door, the daemon's RSS and the
CPU it used; at the end the figures after warm-up and whether RSS stayed flat. Exits 1 on any
unexpected error.

Each round is what a console or script does: list the VMs, look at one closely, change its
power state; one round in 20 (CIM) or 10 (Xen-API) also fetches everything. The clients run in
several processes (pywbem and xmlrpc.client parse in Python: one process
holding 200 clients measures its own GIL, not the daemon) and each pauses THINK seconds between
rounds, as a console or a script does. The daemon's CPU share is printed so that a reader can
tell a slow daemon from a saturated machine: on 2 cores the clients need most of the CPU."""

import argparse
import multiprocessing
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


def cim_client(d, stats, stop, seed, think):
    rng = random.Random(seed)
    c = d.wbem()
    while not stop.wait(rng.uniform(0, 2 * think)):
        try:
            systems = [p for p in timed(stats, "cim", c.EnumerateInstanceNames, "Xen_ComputerSystem", NS) if p.classname == "Xen_ComputerSystem"]
            if rng.random() < 0.05:
                # A console's full refresh: every RASD of every VM (hundreds of instances).
                timed(stats, "cim", c.EnumerateInstances, "CIM_ResourceAllocationSettingData", NS)
            if systems:
                vm = rng.choice(systems)
                timed(stats, "cim", c.GetInstance, vm)
                timed(stats, "cim", c.Associators, vm, AssocClass="CIM_SystemDevice")
                for vssd in timed(stats, "cim", c.AssociatorNames, vm, AssocClass="CIM_SettingsDefineState"):
                    timed(stats, "cim", c.Associators, vssd, AssocClass="CIM_VirtualSystemSettingDataComponent")
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


def xenapi_client(d, stats, stop, seed, think):
    rng = random.Random(seed)
    s = XenAPI.Session(d.url)
    s.xenapi.login_with_password("admin", d.admin_password, "2.21", "load")
    x = s.xenapi
    mine = []
    while not stop.wait(rng.uniform(0, 2 * think)):
        try:
            if rng.random() < 0.1:
                timed(stats, "xenapi", x.VM.get_all_records)  # a full refresh of hundreds of records
            else:
                timed(stats, "xenapi", x.VM.get_all)
            timed(stats, "xenapi", x.host.get_record, x.host.get_all()[0])
            if len(mine) < 2:
                mine.append(timed(stats, "xenapi", make_vm, x, f"load-{seed}-{len(mine)}", memory=32 << 20))
            vm = rng.choice(mine)
            timed(stats, "xenapi", x.VM.get_record, vm)
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


def client_process(d, seeds, think, out, stop):
    """Runs the clients `seeds` on threads; every second sends what they measured to `out`."""
    stats, halt = Stats(), threading.Event()
    threads = [threading.Thread(target=(cim_client if i % 2 else xenapi_client), args=(d, stats, halt, i, think), daemon=True)
               for i in seeds]
    for t in threads:
        t.start()
    while not stop.wait(1):
        with stats.lock:
            errors, stats.errors = stats.errors, []
        out.put((stats.take(), errors))
    halt.set()
    for t in threads:
        t.join(timeout=30)
    with stats.lock:
        errors, stats.errors = stats.errors, []
    out.put((stats.take(), errors))


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--procs", type=int, default=0, help="client processes (default: one per 25 clients)")
    ap.add_argument("--think", type=float, default=1.0, help="mean pause between a client's rounds, seconds")
    ap.add_argument("--interval", type=float, default=30)
    args = ap.parse_args()
    procs = args.procs or max(1, args.clients // 25)
    import tempfile
    state = pathlib.Path(tempfile.mkdtemp(prefix="xencim-load-"))
    d = Daemon(state / "state", extra_config=f"sim_memory_mib = {64 * 1024}\nmax_connections_per_ip = {4 * args.clients}\n"
               "login_failures_per_address = 1000\n").start()
    ctx = multiprocessing.get_context("fork")
    out, stop = ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=client_process, args=(d, range(k, args.clients, procs), args.think, out, stop), daemon=True)
               for k in range(procs)]
    for w in workers:
        w.start()
    end = time.time() + args.minutes * 60
    rows, errors = [], []
    print(f"{args.clients} clients ({args.clients // 2} CIM, {args.clients - args.clients // 2} Xen-API) in {procs} processes, "
          f"think {args.think} s, {args.minutes} min, {os.cpu_count()} CPUs")
    print(f"{'t(s)':>6} {'calls/s':>8} {'cim p50':>8} {'cim p99':>8} {'xapi p50':>9} {'xapi p99':>9} {'RSS MiB':>8} {'CPU %':>6} {'errors':>7}")
    start = last = time.time()
    cpu_last = cpu_seconds(d.proc.pid)
    lat = {"cim": [], "xenapi": []}

    def drain(block_until):
        while True:
            try:
                got, errs = out.get(timeout=max(0.01, block_until - time.time()))
            except Exception:  # noqa: BLE001 (queue.Empty)
                return
            for door, values in got.items():
                lat[door].extend(values)
            errors.extend(errs)

    while time.time() < end:
        drain(min(last + args.interval, end))
        now = time.time()
        cpu = cpu_seconds(d.proc.pid)
        row = {"t": now - start, "calls": len(lat["cim"]) + len(lat["xenapi"]), "secs": now - last, "cim": lat["cim"], "xenapi": lat["xenapi"],
               "rss": rss_kib(d.proc.pid) / 1024, "cpu": (cpu - cpu_last) / (now - last) * 100}
        rows.append(row)
        print(f"{row['t']:6.0f} {row['calls'] / row['secs']:8.0f} {pct(row['cim'], 50):8.1f} {pct(row['cim'], 99):8.1f} "
              f"{pct(row['xenapi'], 50):9.1f} {pct(row['xenapi'], 99):9.1f} {row['rss']:8.1f} {row['cpu']:6.0f} {len(errors):7d}", flush=True)
        lat = {"cim": [], "xenapi": []}
        last, cpu_last = now, cpu
    stop.set()
    drain(time.time() + 35)
    for w in workers:
        w.join(timeout=10)
    d.stop()
    warm = rows[len(rows) // 3:] or rows
    rss = [r["rss"] for r in warm]
    growth = (rss[-1] - rss[0]) / rss[0] * 100 if rss and rss[0] else 0
    both = {door: [v for r in warm for v in r[door]] for door in ("cim", "xenapi")}
    calls = sum(r["calls"] for r in rows)
    print(f"calls: {calls}; after warm-up: {sum(r['calls'] for r in warm) / sum(r['secs'] for r in warm):.0f} calls/s, "
          f"CIM p50 {pct(both['cim'], 50):.1f} ms p99 {pct(both['cim'], 99):.1f} ms, "
          f"Xen-API p50 {pct(both['xenapi'], 50):.1f} ms p99 {pct(both['xenapi'], 99):.1f} ms, "
          f"daemon CPU {sum(r['cpu'] for r in warm) / len(warm):.0f}%")
    print(f"unexpected errors: {len(errors)}; RSS after warm-up {rss[0]:.1f} -> {rss[-1]:.1f} MiB ({growth:+.1f}%), max {max(r['rss'] for r in rows):.1f} MiB")
    for e in errors[:20]:
        print("  ", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
