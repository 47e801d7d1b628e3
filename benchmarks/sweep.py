"""Sweep aiokeg's chunk_size × max_concurrency on Ceph RGW, at 0 and 20 ms per request.

    python benchmarks/sweep.py [--size-mib 256] [--rounds 3]

Writes docs/benchmarks/sweep.md and sweep.json: upload and download medians
for each setting, and the memory each implies, (max_concurrency + 1) × chunk_size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile

from run import ROOT, LatencyProxy, measure, seed, start_server

CHUNKS = [8, 16, 32]
CONCURRENCIES = [4, 8, 16]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks"))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="aiokeg-sweep-")
    endpoint, access, secret, stop = start_server("rgw", workdir)
    rows = []
    try:
        seed(endpoint, access, secret, "bench", args.size_mib * 2**20, 1)
        port = int(endpoint.rsplit(":", 1)[1])
        for latency in (0, 20):
            proxy = LatencyProxy(("127.0.0.1", port), latency / 1000) if latency else None
            url = proxy.endpoint if proxy else endpoint
            for rnd in range(args.rounds):
                for chunk in CHUNKS:
                    for conc in CONCURRENCIES:
                        os.environ["BENCH_CHUNK_MIB"], os.environ["BENCH_CONCURRENCY"] = (
                            str(chunk),
                            str(conc),
                        )
                        for workload in ("upload", "download"):
                            r = measure(
                                os.sys.executable,
                                "aiokeg",
                                workload,
                                url,
                                "bench",
                                args.size_mib,
                                1,
                                access,
                                secret,
                            )
                            r.update(
                                latency_ms=latency, chunk_mib=chunk, concurrency=conc, round=rnd
                            )
                            rows.append(r)
                            print(
                                latency,
                                rnd,
                                chunk,
                                conc,
                                workload,
                                r.get("wall"),
                                r.get("ok"),
                                flush=True,
                            )
            if proxy:
                proxy.close()
    finally:
        stop()
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [
        "# aiokeg settings sweep (Ceph RGW, 2 cores)",
        "",
        f"{args.size_mib} MiB object, {args.rounds} rounds, medians in MiB/s; memory is "
        "(max_concurrency + 1) × chunk_size per open file.",
        "",
        "| ms added | chunk_size | max_concurrency | memory MiB | upload MiB/s | download MiB/s |",
        "|---|---|---|---|---|---|",
    ]
    for latency in (0, 20):
        for chunk in CHUNKS:
            for conc in CONCURRENCIES:
                cell = []
                for workload in ("upload", "download"):
                    walls = [
                        r["wall"]
                        for r in rows
                        if r.get("ok")
                        and r["latency_ms"] == latency
                        and r["chunk_mib"] == chunk
                        and r["concurrency"] == conc
                        and r["workload"] == workload
                    ]
                    cell.append(
                        f"{args.size_mib / statistics.median(walls):.1f}" if walls else "failed"
                    )
                lines.append(
                    f"| {latency} | {chunk} MiB | {conc} | {(conc + 1) * chunk} | {cell[0]} | {cell[1]} |"
                )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sweep.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "sweep.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
