#!/usr/bin/env python3
"""WBEM (CIM-XML) benchmark: prints figures, asserts nothing.

  bench/run-wbem             (builds the release binary, then runs this)

Against the real daemon over loopback, with the test fixture class Xen_TestElement
(cim_test_instances = 10, 1,000, 10,000):
- EnumerateInstances: requests/s, p50/p99 latency (to the last byte), bytes/s of CIM-XML;
- OpenEnumerateInstances + PullInstancesWithPath (MaxObjectCount 1000) to the end: the same;
- GetInstance requests/s at 1, 8 and 64 concurrent keep-alive connections;
- daemon RSS idle, and its peak during the 10,000-instance EnumerateInstances and pull
  enumerations (the pull one with MaxObjectCount 100 too).
Clients are raw http.client connections (pywbem's parsing would dominate the timings).
"""

import base64
import http.client
import os
import pathlib
import re
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("XENCIM_BIN", str(ROOT / "target" / "release" / "xencim"))
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from conftest import Daemon  # noqa: E402

ENVELOPE = ('<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0">'
            '<SIMPLEREQ><IMETHODCALL NAME="{op}"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virt"/>'
            '</LOCALNAMESPACEPATH>{params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>')


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    def __init__(self, daemon):
        host, port = daemon.listeners["cim_http"].rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)
        self.auth = "Basic " + base64.b64encode(f"admin:{daemon.admin_password}".encode()).decode()

    def call(self, op, params):
        body = ENVELOPE.format(op=op, params=params).encode()
        headers = {"Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall", "CIMMethod": op,
                   "CIMObject": "root/virt", "Authorization": self.auth}
        started = time.perf_counter()
        self.conn.request("POST", "/cimom", body, headers)
        resp = self.conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - started
        if resp.status != 200 or b"<ERROR" in data[:4096]:
            raise RuntimeError(f"{op}: HTTP {resp.status}: {data[:500]!r}")
        return elapsed, data


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(label, times, nbytes):
    total = sum(times)
    print(f"  {label:<42} {len(times) / total:8.1f} req/s   p50 {pct(times, 50) * 1000:8.1f} ms   "
          f"p99 {pct(times, 99) * 1000:8.1f} ms   {nbytes * len(times) / total / 1e6:7.1f} MB/s ({nbytes / 1e6:.2f} MB/response)")


def enumerate_all(client):
    return client.call("EnumerateInstances", '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Xen_TestElement"/></IPARAMVALUE>')


CONTEXT = re.compile(rb'<PARAMVALUE NAME="EnumerationContext"[^>]*><VALUE>([^<]+)</VALUE>')


def pull_all(client, max_objects):
    elapsed, data = client.call("OpenEnumerateInstances", '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Xen_TestElement"/></IPARAMVALUE>'
                                f'<IPARAMVALUE NAME="MaxObjectCount"><VALUE>{max_objects}</VALUE></IPARAMVALUE>')
    total, count = len(data), data.count(b"<VALUE.INSTANCEWITHPATH>")
    while (m := CONTEXT.search(data)) is not None:
        e, data = client.call("PullInstancesWithPath", f'<IPARAMVALUE NAME="EnumerationContext"><VALUE>{m.group(1).decode()}</VALUE></IPARAMVALUE>'
                              f'<IPARAMVALUE NAME="MaxObjectCount"><VALUE>{max_objects}</VALUE></IPARAMVALUE>')
        elapsed += e
        total += len(data)
        count += data.count(b"<VALUE.INSTANCEWITHPATH>")
    return elapsed, total, count


def peak_rss_during(pid, work):
    peak = [rss_mib(pid)]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.002)

    t = threading.Thread(target=sample)
    t.start()
    try:
        work()
    finally:
        done.set()
        t.join()
    return peak[0]


def get_instance_rate(daemon, connections, seconds=4.0):
    params = ('<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="Xen_TestElement"><KEYBINDING NAME="InstanceID">'
              '<KEYVALUE VALUETYPE="string">Xen:test:{n}</KEYVALUE></KEYBINDING></INSTANCENAME></IPARAMVALUE>')
    counts = [0] * connections
    latencies = [[] for _ in range(connections)]
    stop = time.perf_counter() + seconds

    def work(i):
        c = Client(daemon)
        n = 0
        while time.perf_counter() < stop:
            e, _ = c.call("GetInstance", params.format(n=n % 10 + 1))
            latencies[i].append(e)
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=work, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    lat = [x for l in latencies for x in l]
    print(f"  GetInstance, {connections:>2} connections: {sum(counts) / elapsed:8.1f} req/s   p50 {pct(lat, 50) * 1000:6.2f} ms   "
          f"p99 {pct(lat, 99) * 1000:6.2f} ms")


def main():
    print(f"binary: {os.environ['XENCIM_BIN']}   cores: {os.cpu_count()}")
    for n, reps in ((10, 300), (1000, 40), (10000, 8)):
        with tempfile.TemporaryDirectory() as tmp:
            d = Daemon(pathlib.Path(tmp) / "state", extra_config=f"cim_test_instances = {n}\n").start()
            try:
                c = Client(d)
                enumerate_all(c)  # warm up (and the credential cache)
                idle = rss_mib(d.proc.pid)
                print(f"{n} instances (daemon RSS idle {idle:.1f} MiB)")
                times, size = [], 0
                for _ in range(reps):
                    e, data = enumerate_all(c)
                    times.append(e)
                    size = len(data)
                assert data.count(b"<VALUE.NAMEDINSTANCE>") == n
                report("EnumerateInstances", times, size)
                times = []
                for _ in range(reps):
                    e, size, count = pull_all(c, 1000)
                    times.append(e)
                assert count == n
                report("OpenEnumerateInstances+Pull (1000/response)", times, size)
                if n == 10:
                    for conns in (1, 8, 64):
                        get_instance_rate(d, conns)
                if n == 10000:
                    peak = peak_rss_during(d.proc.pid, lambda: enumerate_all(Client(d)))
                    print(f"  RSS peak during EnumerateInstances of 10,000: {peak:.1f} MiB (+{peak - idle:.1f})")
                    for m in (1000, 100):
                        peak = peak_rss_during(d.proc.pid, lambda: pull_all(Client(d), m))
                        print(f"  RSS peak during a pull enumeration of 10,000, MaxObjectCount {m}: {peak:.1f} MiB (+{peak - idle:.1f})")
            finally:
                d.stop()


if __name__ == "__main__":
    main()
