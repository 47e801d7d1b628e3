"""A no-op sync of many small files: `aiokeg sync` against `aws s3 sync`, side by side.

Both commands run as fresh processes (interpreter start-up included, as a
user sees it) against the same moto server, interleaved, after one initial
upload that makes every later run a no-op. Each run is checked to have
copied nothing. Prints the medians and every time.

    python benchmarks/sync_noop.py --files 1000 --rounds 5 --aws /path/to/aws

``aws`` comes from the awscli package; it pins botocore, so give it its own
virtual environment (``python -m venv v && v/bin/pip install awscli``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KEY, SECRET = "AKIABENCHMARK", "bench-secret"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024, help="bytes per file")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--aws", default=shutil.which("aws"), help="the aws command")
    args = parser.parse_args()
    if not args.aws:
        sys.exit("no aws command: pass --aws (pip install awscli in its own virtualenv)")

    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "..", "tests", "s3server.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        endpoint = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
        with tempfile.TemporaryDirectory() as folder:
            for i in range(args.files):
                sub = os.path.join(folder, f"d{i % 10}")
                os.makedirs(sub, exist_ok=True)
                with open(os.path.join(sub, f"f{i}.bin"), "wb") as f:
                    f.write(os.urandom(args.size))
            aws = [args.aws, "--endpoint-url", endpoint, "s3"]
            subprocess.run([*aws, "mb", "s3://bench"], env=env, check=True, capture_output=True)
            aiokeg = [sys.executable, "-m", "aiokeg._entry", "--endpoint-url", endpoint]
            target = "s3://bench/tree"
            subprocess.run([*aiokeg, "sync", "-q", folder, target], env=env, check=True)
            commands = {
                "aiokeg sync": [*aiokeg, "sync", "-q", folder, target],
                "aws s3 sync": [*aws, "sync", folder, target],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.rounds):
                for name, command in commands.items():
                    started = time.perf_counter()
                    done = subprocess.run(command, env=env, capture_output=True, text=True)
                    times[name].append(time.perf_counter() - started)
                    copied = done.stdout.count("upload:") + (
                        0 if "0 copied" in done.stderr or name != "aiokeg sync" else 1
                    )
                    if done.returncode != 0 or copied:
                        sys.exit(f"{name} was not a no-op: {done.stdout} {done.stderr}")
        print(f"no-op sync of {args.files} x {args.size} B files, {args.rounds} rounds (moto)")
        for name, values in times.items():
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"  {name}: median {statistics.median(values):.2f} s  ({shown})")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
