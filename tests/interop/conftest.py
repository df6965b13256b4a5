"""The real daemon for the interop tests: started from the built binary on ephemeral ports in
a fresh state directory, driven through real sockets by the clients of the field."""

import json
import os
import pathlib
import signal
import subprocess
import time

import pytest
import XenAPI

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("XENCIM_BIN", ROOT / "target" / "debug" / "xencim"))


class Daemon:
    """One xencim process over a state directory; it can be stopped, killed and restarted
    over the same directory."""

    def __init__(self, state_dir, extra_config=""):
        self.state_dir = pathlib.Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config = self.state_dir / "test-config.toml"
        self.config.write_text(extra_config)
        self.proc = None
        self.log = self.state_dir / "daemon.log"

    def start(self, timeout=30):
        listeners = self.state_dir / "listeners.json"
        if listeners.exists():
            listeners.unlink()
        args = [
            str(BINARY), "serve", "--state-dir", str(self.state_dir), "--config", str(self.config),
            "--xenapi", "127.0.0.1:0", "--xenapi-tls", "127.0.0.1:0",
            "--cim-http", "127.0.0.1:0", "--cim-https", "127.0.0.1:0",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        deadline = time.time() + timeout
        while not listeners.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"xencim exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
            if time.time() > deadline:
                raise RuntimeError("xencim did not start in time:\n" + self.log.read_text()[-4000:])
            time.sleep(0.05)
        time.sleep(0.05)
        self.listeners = json.loads(listeners.read_text())
        return self

    @property
    def url(self):
        return f"http://{self.listeners['xenapi']}/"

    @property
    def tls_url(self):
        return f"https://{self.listeners['xenapi_tls']}/"

    @property
    def wbem_url(self):
        return f"http://{self.listeners['cim_http']}"

    @property
    def wbem_https_url(self):
        return f"https://{self.listeners['cim_https']}"

    def wbem(self, user="admin", password=None, namespace="root/virt", https=False):
        """A pywbem connection (imported here so the Xen-API tests do not need pywbem)."""
        import pywbem
        creds = (user, password if password is not None else self.admin_password)
        url = self.wbem_https_url if https else self.wbem_url
        return pywbem.WBEMConnection(url, creds, default_namespace=namespace, no_verification=https, timeout=60)

    @property
    def admin_password(self):
        return (self.state_dir / "initial-admin-password").read_text().strip()

    def session(self, user="admin", password=None):
        s = XenAPI.Session(self.url)
        s.xenapi.login_with_password(user, password if password is not None else self.admin_password, "2.21", "xencim-tests")
        return s

    def add_user(self, name, role, password):
        subprocess.run(
            [str(BINARY), "user", "add", name, "--role", role, "--password-stdin", "--state-dir", str(self.state_dir)],
            input=password + "\n", text=True, check=True, capture_output=True,
        )

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("state")).start()
    yield d
    d.stop()


@pytest.fixture
def fresh_daemon(tmp_path):
    d = Daemon(tmp_path / "state").start()
    yield d
    d.stop()


@pytest.fixture
def session(daemon):
    s = daemon.session()
    yield s
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


def make_vm(x, name, memory=256 << 20, vcpus=1, **extra):
    """A halted VM with the fields a real script sets; ints travel as strings like the SDK's
    users send them (xmlrpc.client cannot send ints above 2^31)."""
    record = {
        "name_label": name,
        "name_description": "made by the interop tests",
        "user_version": "1",
        "is_a_template": False,
        "affinity": "OpaqueRef:NULL",
        "memory_static_max": str(memory),
        "memory_dynamic_max": str(memory),
        "memory_dynamic_min": str(memory),
        "memory_static_min": str(min(memory, 16 << 20)),
        "VCPUs_params": {},
        "VCPUs_max": str(vcpus),
        "VCPUs_at_startup": str(vcpus),
        "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart",
        "actions_after_crash": "destroy",
        "PV_bootloader": "",
        "PV_kernel": "",
        "PV_ramdisk": "",
        "PV_args": "",
        "PV_bootloader_args": "",
        "PV_legacy_args": "",
        "HVM_boot_policy": "",
        "HVM_boot_params": {},
        "platform": {},
        "PCI_bus": "",
        "other_config": {},
        "recommendations": "",
    }
    record.update(extra)
    return x.VM.create(record)


@pytest.fixture(scope="module")
def wbem_daemon(tmp_path_factory):
    """A daemon serving the WBEM test fixture class with 5 instances."""
    d = Daemon(tmp_path_factory.mktemp("wbem"), extra_config="cim_test_instances = 5\n").start()
    yield d
    d.stop()


@pytest.fixture
def wbem_conn(wbem_daemon):
    return wbem_daemon.wbem()
