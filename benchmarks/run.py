"""Benchmarks: aiokeg and its peers side by side, interleaved, on the same servers.

    nox -s bench                 # full run: RGW and moto, 0 and 20 ms, 3 rounds
    nox -s bench -- --quick      # a small smoke run (CI): checks results, asserts no time

Each (client, workload) measurement runs in its own process (benchmarks/clients.py)
so that its wall time, CPU seconds and peak RSS are its own. Rounds interleave
clients (A B C … A B C) and the report gives medians with min–max. Results go
to ``docs/benchmarks/`` as JSON, a markdown table and a PNG chart.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

CLIENTS = ["aiokeg", "obstore", "boto3", "aiobotocore", "s3fs", "aioboto3"]
WORKLOADS = [
    "upload",
    "download",
    "download_file",
    "stream",
    "random",
    "small_up",
    "small_down",
    "tree_up",
    "tree_down",
]
MiB = 1024 * 1024


class LatencyProxy:
    """Adds ``delay`` seconds before each request (a turn of the conversation) is forwarded."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(self.target)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        turn = {"new_request": True}

        def up() -> None:
            with contextlib.suppress(OSError):
                while data := client.recv(1 << 18):
                    if turn["new_request"]:
                        time.sleep(self.delay)
                        turn["new_request"] = False
                    server.sendall(data)
                server.shutdown(socket.SHUT_WR)

        threading.Thread(target=up, daemon=True).start()
        with contextlib.suppress(OSError):
            while data := server.recv(1 << 18):
                turn["new_request"] = True
                client.sendall(data)
        for s in (client, server):
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        self.sock.close()


def start_server(kind: str, workdir: str) -> tuple[str, str, str, Any]:
    """Start moto (own process) or Ceph RGW; return endpoint, keys and a stop function."""
    if kind == "moto":
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "s3server.py")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        port = proc.stdout.readline().split()[1]
        return f"http://127.0.0.1:{port}", "bench-access", "bench-secret", proc.terminate
    import rgw

    rgw.install()
    # 12 GiB of RAM-backed store: repeated 256 MiB-1 GiB uploads outpace garbage collection.
    endpoint, access, secret = rgw.start(workdir, memstore_gib=12)
    return endpoint, access, secret, lambda: rgw.stop(workdir)


def seed(
    endpoint: str, access: str, secret: str, bucket: str, size: int, count: int, tree: bool
) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    sys.path.insert(0, HERE)
    from clients import SMALL, data_of, tree_files, tree_root

    c = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
    )
    with contextlib.suppress(
        c.exceptions.BucketAlreadyOwnedByYou, c.exceptions.BucketAlreadyExists
    ):
        c.create_bucket(Bucket=bucket)
    c.upload_fileobj(__import__("io").BytesIO(data_of(size)), bucket, f"big-{size}")
    for i in range(count):
        c.put_object(Bucket=bucket, Key=f"small/{i}", Body=data_of(SMALL, i))
    if tree:
        root = tree_root()
        with create_transfer_manager(c, TransferConfig(max_concurrency=16)) as tm:
            for future in [
                tm.upload(os.path.join(root, rel), bucket, "tree/" + rel) for rel, _ in tree_files()
            ]:
                future.result()


def python_for(client: str, venvs: str) -> str:
    if client != "aioboto3":
        return sys.executable
    # aioboto3 pins an older aiobotocore: it gets a virtualenv of its own.
    path = os.path.join(venvs, "aioboto3")
    py = os.path.join(path, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "aioboto3"], check=True)
    return py


def measure(
    py: str,
    client: str,
    workload: str,
    endpoint: str,
    bucket: str,
    size_mib: int,
    count: int,
    access: str,
    secret: str,
) -> dict[str, Any]:
    env = dict(os.environ, BENCH_ACCESS_KEY=access, BENCH_SECRET_KEY=secret)
    out = subprocess.run(
        [
            py,
            os.path.join(HERE, "clients.py"),
            client,
            workload,
            endpoint,
            bucket,
            str(size_mib),
            str(count),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if out.returncode != 0:
        return {
            "client": client,
            "workload": workload,
            "ok": False,
            "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed",
        }
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def summarize(
    rows: list[dict[str, Any]], size: int, count: int, tree_bytes: int = 0, reads: int = 500
) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["server"], r["latency_ms"], r["workload"], r["client"]), []).append(r)
    table = []
    for (server, latency, workload, client), runs in sorted(groups.items()):
        good = [r for r in runs if r.get("ok")]
        entry: dict[str, Any] = {
            "server": server,
            "latency_ms": latency,
            "workload": workload,
            "client": client,
            "runs": len(runs),
            "failed": len(runs) - len(good),
        }
        if good:
            moved = {
                "random": reads * 256 * 1024,
                "small_up": count * 64 * 1024,
                "small_down": count * 64 * 1024,
                "tree_up": tree_bytes,
                "tree_down": tree_bytes,
            }.get(workload, size)
            mbps = [moved / MiB / r["wall"] for r in good]
            for name, values in (
                ("mib_s", mbps),
                ("wall", [r["wall"] for r in good]),
                ("cpu", [r["cpu"] for r in good]),
                ("rss_mib", [r["rss_mib"] for r in good]),
                ("lag_ms", [r["lag_ms"] for r in good]),
                ("setup_cpu", [r.get("setup_cpu", 0.0) for r in good]),
            ):
                entry[name] = statistics.median(values)
                entry[name + "_min"], entry[name + "_max"] = min(values), max(values)
        else:
            entry["error"] = runs[-1].get("error", "wrong result")
        table.append(entry)
    return table


def per_request(t: dict[str, Any], meta: dict[str, Any]) -> str:
    """Client CPU per request of the many-request workloads, in ms."""
    if t["workload"] not in ("random", "small_up", "small_down"):
        return "–"
    requests = meta.get("reads", meta["count"]) if t["workload"] == "random" else meta["count"]
    return f"{t['cpu'] * 1000 / requests:.2f}"


def versus(table: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """aiokeg against the best peer of each workload: the targets of the benchmark."""
    lines = [
        "| server | latency | workload | aiokeg MiB/s | best peer MiB/s | ratio "
        "| aiokeg CPU ms/request | obstore CPU ms/request | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(t["server"], t["latency_ms"], t["workload"]) for t in table})
    for server, latency, workload in keys:
        rows = {
            t["client"]: t
            for t in table
            if (t["server"], t["latency_ms"], t["workload"]) == (server, latency, workload)
            and "mib_s" in t
        }
        ours = rows.pop("aiokeg", None)
        if ours is None or not rows:
            continue
        best = max(rows.values(), key=lambda t: t["mib_s"])
        cpu = "| – | – | –"
        if workload in ("random", "small_up", "small_down") and "obstore" in rows:
            a, o = per_request(ours, meta), per_request(rows["obstore"], meta)
            cpu = f"| {a} | {o} | {float(a) / float(o):.2f}"
        lines.append(
            f"| {server} | {latency} ms | {workload} | {ours['mib_s']:.1f} "
            f"| {best['client']} {best['mib_s']:.1f} | {ours['mib_s'] / best['mib_s']:.2f} {cpu} |"
        )
    return lines


def markdown(table: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark results ({meta['date']})",
        "",
        f"Machine: {meta['machine']}. Versions: {meta['versions']}.",
        f"Object {meta['size_mib']} MiB; {meta['count']} small objects; "
        f"{meta.get('reads', meta['count'])} random 256 KiB reads; "
        f"tree of {meta.get('tree_files', '?')} files ({meta.get('tree_mib', '?')} MiB); "
        f"{meta['rounds']} interleaved rounds; medians (min–max).",
        "Each client's clock starts once its client is created (imports and client "
        "creation are a process's one-time cost; creation is shown as setup CPU).",
        *(
            [
                "Re-measured in a later run with the same settings, every client again: "
                + ", ".join(meta["remeasured"])
                + "."
            ]
            if meta.get("remeasured")
            else []
        ),
        "",
        "## aiokeg against the best peer",
        "",
        *versus(table, meta),
        "",
    ]
    for server in sorted({t["server"] for t in table}):
        for latency in sorted({t["latency_ms"] for t in table}):
            lines += [
                f"## {server}, {latency} ms added per request",
                "",
                "| workload | client | MiB/s | wall s | CPU s | CPU ms/request | setup CPU s "
                "| peak RSS MiB | loop stall ms |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for t in table:
                if t["server"] != server or t["latency_ms"] != latency:
                    continue
                if "mib_s" not in t:
                    lines.append(
                        f"| {t['workload']} | {t['client']} | failed: {t['error'][:60]} | | | | | | |"
                    )
                    continue
                lines.append(
                    f"| {t['workload']} | {t['client']} | {t['mib_s']:.1f} ({t['mib_s_min']:.1f}–{t['mib_s_max']:.1f}) "
                    f"| {t['wall']:.2f} | {t['cpu']:.2f} | {per_request(t, meta)} "
                    f"| {t['setup_cpu']:.2f} | {t['rss_mib']:.0f} | "
                    + (f"{t['lag_ms']:.0f}" if t["client"] != "boto3" else "–")
                    + " |"
                )
            lines.append("")
    return "\n".join(lines)


def chart(table: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(t["server"], t["latency_ms"]) for t in table})
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)), squeeze=False)
    clients = sorted({t["client"] for t in table}, key=lambda c: CLIENTS.index(c))
    workloads = [w for w in WORKLOADS if any(t["workload"] == w for t in table)]
    width = 0.8 / max(1, len(clients))
    for ax, (server, latency) in zip(axes[:, 0], panels):
        for i, client in enumerate(clients):
            values = []
            for w in workloads:
                match = [
                    t
                    for t in table
                    if (t["server"], t["latency_ms"], t["workload"], t["client"])
                    == (server, latency, w, client)
                ]
                values.append(match[0].get("mib_s", 0.0) if match else 0.0)
            ax.bar([x + i * width for x in range(len(workloads))], values, width, label=client)
        ax.set_xticks(
            [x + width * (len(clients) - 1) / 2 for x in range(len(workloads))], workloads
        )
        ax.set_ylabel("MiB/s (median)")
        ax.set_title(f"{server}, +{latency} ms per request")
        ax.legend(ncol=len(clients), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 round, moto only")
    parser.add_argument("--servers", default="rgw,moto")
    parser.add_argument("--latencies", default="0,20", help="ms added per request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--tree-files", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=500, help="random 256 KiB reads")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks"))
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the rows of the workloads run in OUT/results.json, keep the others",
    )
    args = parser.parse_args()
    if args.quick:
        args.servers, args.latencies, args.rounds, args.size_mib, args.count = (
            "moto",
            "0",
            1,
            16,
            20,
        )
        args.tree_files = 20
        args.reads = 20
        args.out = os.path.join(tempfile.mkdtemp(prefix="aiokeg-bench-"))
    clients = args.clients.split(",")
    workloads = args.workloads.split(",")
    # The client processes read the tree's size from the environment.
    os.environ["BENCH_TREE_FILES"] = str(args.tree_files)
    os.environ["BENCH_READS"] = str(args.reads)
    sys.path.insert(0, HERE)
    from clients import tree_files

    tree_bytes = sum(size for _, size in tree_files(args.tree_files))
    venvs = os.path.join(ROOT, ".bench")
    os.makedirs(venvs, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for server in args.servers.split(","):
        workdir = tempfile.mkdtemp(prefix=f"aiokeg-bench-{server}-")
        endpoint, access, secret, stop = start_server(server, workdir)
        try:
            bucket = "bench"
            seed(
                endpoint,
                access,
                secret,
                bucket,
                args.size_mib * MiB,
                args.count,
                any(w.startswith("tree") for w in workloads),
            )
            port = int(endpoint.rsplit(":", 1)[1])
            for latency in (int(x) for x in args.latencies.split(",")):
                proxy = LatencyProxy(("127.0.0.1", port), latency / 1000) if latency else None
                url = proxy.endpoint if proxy else endpoint
                for rnd in range(args.rounds):
                    for workload in workloads:
                        order = clients[rnd % len(clients) :] + clients[: rnd % len(clients)]
                        for client in order:
                            r = measure(
                                python_for(client, venvs),
                                client,
                                workload,
                                url,
                                bucket,
                                args.size_mib,
                                args.count,
                                access,
                                secret,
                            )
                            r.update(server=server, latency_ms=latency, round=rnd)
                            rows.append(r)
                            status = (
                                f"{r['wall']:.2f}s"
                                if r.get("ok")
                                else f"FAILED {r.get('error', 'wrong result')}"
                            )
                            print(
                                f"{server} +{latency}ms round {rnd} {workload:13} {client:12} {status}",
                                flush=True,
                            )
                if proxy:
                    proxy.close()
        finally:
            stop()
            shutil.rmtree(workdir, ignore_errors=True)
    if args.merge:
        # Re-measure some workloads (every client, same settings) and keep the rest.
        with open(os.path.join(args.out, "results.json")) as f:
            previous = json.load(f)
        kept = [r for r in previous["runs"] if r["workload"] not in workloads]
        rows = kept + rows
    table = summarize(rows, args.size_mib * MiB, args.count, tree_bytes, args.reads)
    versions = {}
    for name in ("aiokeg", "aiobotocore", "botocore", "boto3", "s3fs", "obstore"):
        with contextlib.suppress(Exception):
            versions[name] = __import__("importlib.metadata").metadata.version(name)
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "size_mib": args.size_mib,
        "count": args.count,
        "tree_files": args.tree_files,
        "reads": args.reads,
        "tree_mib": round(tree_bytes / MiB, 1),
        "rounds": args.rounds,
        "remeasured": workloads if args.merge else [],
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "summary": table, "runs": rows}, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(markdown(table, meta))
    chart(table, os.path.join(args.out, "chart.png"))
    print(markdown(table, meta))
    wrong = [r for r in rows if not r.get("ok") and r["client"] == "aiokeg"]
    if wrong:
        print(f"aiokeg produced {len(wrong)} failed or wrong results", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
