"""A one-node Ceph cluster with the RADOS Gateway (a production S3 engine) on 127.0.0.1.

Used by ``nox -s rgw`` (tests against a real S3 engine) and by the benchmarks.
Needs Debian's ``radosgw ceph-mon ceph-osd`` packages (``install()`` gets
them). Every daemon started is recorded and exactly those are stopped.

    python tests/rgw.py install          # apt-get the packages (root)
    python tests/rgw.py start DIR        # prints "ENDPOINT ACCESS_KEY SECRET_KEY"
    python tests/rgw.py stop DIR
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

# The test suite's credentials (tests/conftest.py), so it runs unchanged on RGW.
ACCESS_KEY = "AKIATESTACCESSKEY123"
SECRET_KEY = "TestSecretKey/DoNotLeak+abcdefghijklmnop"
PACKAGES = ["radosgw", "ceph-mon", "ceph-osd"]

CONF = """\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon_port}]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
run dir = {dir}/run
admin socket = {dir}/run/$name.asok
log file = {dir}/log/$name.log
mon data = {dir}/mon-$id
osd data = {dir}/osd-$id
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
osd max object name len = 460
osd max object namespace len = 64

[mon]
paxos propose interval = 0.05
paxos min wait = 0.01

[client.rgw.a]
ms mon client mode = secure crc
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw data = {dir}/rgw
# Free overwritten and aborted data quickly: the OSD keeps it in RAM (memstore).
rgw gc obj min wait = 2
rgw gc processor period = 5
rgw gc processor max time = 5
"""


def install() -> None:
    """Install Ceph's mon, osd and gateway from Debian's packages (needs root)."""
    if all(shutil.which(b) for b in ("radosgw", "ceph-mon", "ceph-osd", "radosgw-admin")):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(conf: str, *args: str, timeout: float = 60) -> str:
    out = subprocess.run(
        [*args, "-c", conf], check=True, capture_output=True, text=True, timeout=timeout
    )
    return out.stdout


def _spawn(workdir: str, conf: str, *args: str) -> None:
    log = open(os.path.join(workdir, "log", f"{os.path.basename(args[0])}.out"), "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [*args, "-f", "-c", conf], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    with open(os.path.join(workdir, "pids"), "a") as f:
        f.write(f"{proc.pid}\n")


def start(workdir: str, memstore_gib: int = 4) -> tuple[str, str, str]:
    """Start mon, osd and gateway under ``workdir``; return (endpoint, access, secret)."""
    workdir = os.path.abspath(workdir)
    for sub in ("run", "log", "rgw"):
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    mon_port, rgw_port = _free_port(), _free_port()
    fsid = str(uuid.uuid4())
    conf = os.path.join(workdir, "ceph.conf")
    with open(conf, "w") as f:
        f.write(
            CONF.format(
                fsid=fsid,
                dir=workdir,
                mon_port=mon_port,
                rgw_port=rgw_port,
                memstore_bytes=memstore_gib * 1024**3,
            )
        )
    monmap = os.path.join(workdir, "monmap")
    subprocess.run(
        [
            "monmaptool",
            "--create",
            "--fsid",
            fsid,
            "--addv",
            "a",
            f"[v2:127.0.0.1:{mon_port}]",
            monmap,
        ],
        check=True,
        capture_output=True,
    )
    _run(conf, "ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
    _spawn(workdir, conf, "ceph-mon", "-i", "a")
    osd_uuid = str(uuid.uuid4())
    osd_id = _run(
        conf, "timeout", "60", "ceph", "--connect-timeout", "30", "osd", "new", osd_uuid
    ).strip()
    os.makedirs(os.path.join(workdir, f"osd-{osd_id}"), exist_ok=True)
    _run(conf, "ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
    store = open(os.path.join(workdir, f"osd-{osd_id}", "type")).read().strip()  # noqa: SIM115
    if store != "memstore":
        raise RuntimeError(f"ceph-osd fell back to {store!r} instead of memstore")
    _spawn(workdir, conf, "ceph-osd", "-i", osd_id)
    _spawn(workdir, conf, "radosgw", "-n", "client.rgw.a")
    endpoint = f"http://127.0.0.1:{rgw_port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # any HTTP answer means the gateway is up
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"radosgw did not answer on {endpoint}; see {workdir}/log"
                ) from None
            time.sleep(0.2)
    _run(
        conf,
        "radosgw-admin",
        "user",
        "create",
        "--uid",
        "aiokeg",
        "--display-name",
        "aiokeg",
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
    )
    return endpoint, ACCESS_KEY, SECRET_KEY


def stop(workdir: str) -> None:
    """Stop exactly the daemons ``start`` recorded, then remove ``workdir``."""
    pids_file = os.path.join(workdir, "pids")
    if os.path.exists(pids_file):
        pids = [int(p) for p in open(pids_file).read().split()]  # noqa: SIM115
        for pid in reversed(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for pid in pids:
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "install":
        install()
    elif command == "start":
        print(*start(sys.argv[2]), flush=True)
    elif command == "stop":
        stop(sys.argv[2])
    else:
        raise SystemExit(__doc__)
