#!/usr/bin/env python3
"""Xen-API benchmark: prints figures, asserts nothing.

  bench/run-xenapi           (builds the release binary, then runs this)

Measures, against the real daemon over loopback:
- VM.get_all_records latency (time to the last byte of the response) at 10, 1,000, 10,000 VMs;
- login + VM.get_record requests/s at 1 and 16 concurrent clients;
- daemon RSS idle and with 10,000 VMs;
- time from process start to listening with 10,000 VMs in the store.
"""

import http.client
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time
import xmlrpc.client

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("XENCIM_BIN", str(ROOT / "target" / "release" / "xencim"))
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from conftest import Daemon, make_vm  # noqa: E402


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raw_call(daemon, method, params):
    host, port = daemon.listeners["xenapi"].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    body = xmlrpc.client.dumps(tuple(params), method)
    started = time.perf_counter()
    conn.request("POST", "/", body, {"Content-Type": "text/xml"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, data


def populate(daemon, total, threads=8):
    have = len(daemon.session().xenapi.VM.get_all()) - 1
    need = total - have
    if need <= 0:
        return
    per = (need + threads - 1) // threads

    def work(n):
        x = daemon.session().xenapi
        for i in range(per):
            if n * per + i >= need:
                break
            make_vm(x, f"bench-{have + n * per + i}")

    ts = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def get_all_records_latency(daemon, repeats):
    s = daemon.session()
    times = []
    size = 0
    for _ in range(repeats):
        elapsed, data = raw_call(daemon, "VM.get_all_records", [s.handle])
        times.append(elapsed)
        size = len(data)
    return statistics.median(times), max(times), size


def login_get_record_rate(daemon, clients, seconds=5.0):
    vm = daemon.session().xenapi.VM.get_all()[0]
    counts = [0] * clients
    stop = time.time() + seconds

    def work(n):
        while time.time() < stop:
            s = xmlrpc.client.ServerProxy(daemon.url)
            handle = s.session.login_with_password("admin", daemon.admin_password)["Value"]
            s.VM.get_record(handle, vm)
            s.session.logout(handle)
            counts[n] += 1

    ts = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / seconds


def get_record_rate(daemon, clients, seconds=5.0):
    vm = daemon.session().xenapi.VM.get_all()[0]
    counts = [0] * clients
    stop = time.time() + seconds

    def work(n):
        x = daemon.session().xenapi
        while time.time() < stop:
            x.VM.get_record(vm)
            counts[n] += 1

    ts = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / seconds


def main():
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(pathlib.Path(tmp) / "state").start()
        time.sleep(0.5)
        print(f"daemon RSS idle: {rss_mib(d.proc.pid):.1f} MiB")
        for clients in (1, 16):
            print(f"login + VM.get_record + logout, {clients} client(s): {login_get_record_rate(d, clients):.0f} /s")
            print(f"VM.get_record on one session each, {clients} client(s): {get_record_rate(d, clients):.0f} /s")
        for total in (10, 1000, 10000):
            t0 = time.time()
            populate(d, total)
            made = time.time() - t0
            p50, worst, size = get_all_records_latency(d, 5 if total < 10000 else 3)
            print(f"{total:>6} VMs: VM.get_all_records p50 {p50 * 1000:.1f} ms, max {worst * 1000:.1f} ms, "
                  f"{size / 1e6:.1f} MB ({size / p50 / 1e6:.0f} MB/s); created in {made:.1f} s")
        print(f"daemon RSS with 10,000 VMs, just after get_all_records: {rss_mib(d.proc.pid):.1f} MiB")
        time.sleep(6)  # housekeeping hands freed memory back every 5 s
        print(f"daemon RSS with 10,000 VMs, idle: {rss_mib(d.proc.pid):.1f} MiB")
        d.stop()
        t0 = time.perf_counter()
        d.start(timeout=300)
        print(f"start with 10,000 VMs in the store: {(time.perf_counter() - t0) * 1000:.0f} ms to listening")
        print(f"daemon RSS after restart with 10,000 VMs: {rss_mib(d.proc.pid):.1f} MiB")
        p50, worst, size = get_all_records_latency(d, 3)
        print(f"after restart: VM.get_all_records p50 {p50 * 1000:.1f} ms")
        d.stop()


if __name__ == "__main__":
    main()
