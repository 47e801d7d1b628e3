"""Task runner: the same sessions locally and in CI (`.ci/run` calls `nox`)."""

from __future__ import annotations

import os
import shutil
import tempfile

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "docs", "rgw", "bench_quick"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = ["3.11"] if os.environ.get("CI") else None


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite against moto's S3 server (started by the tests)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library."""
    session.install("-e", ".[cli]", "mypy>=1.11", "types-aiofiles")
    session.run("mypy", "--strict", "src")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: a verified round trip through an embedded S3 server."""
    session.install("-e", ".[demo]")
    session.run("aiokeg", "demo", *session.posargs)


@nox.session(python=PYTHON)
def rgw(session: nox.Session) -> None:
    """The S3 tests and the contract suite against Ceph RGW, a production S3 engine.

    Installs Ceph from Debian's packages (needs root and apt-get), starts a
    one-node cluster on 127.0.0.1 (tests/rgw.py), runs the suite against it
    (tests that need moto's fault layer skip, saying why) and stops exactly
    the daemons it started.
    """
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.skip("needs root and apt-get to install Ceph (CI has both)")
    session.install("-e", ".[test]")
    session.run("python", "tests/rgw.py", "install")
    workdir = tempfile.mkdtemp(prefix="aiokeg-rgw-")
    out = session.run("python", "tests/rgw.py", "start", workdir, silent=True)
    endpoint = str(out).strip().splitlines()[-1].split()[0]
    session.log(f"Ceph RGW on {endpoint}")
    try:
        session.run(
            "pytest",
            "-rs",
            "--junitxml=.ci/junit-rgw.xml",
            env={"AIOKEG_TEST_S3_ENDPOINT": endpoint},
        )
    finally:
        session.run("python", "tests/rgw.py", "stop", workdir)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """aiokeg and its peers side by side on Ceph RGW and moto; writes docs/benchmarks/.

    Options after ``--`` go to benchmarks/run.py (``--help`` lists them).
    """
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHON)
def bench_quick(session: nox.Session) -> None:
    """A small benchmark run on moto: every client's results are verified; no time asserted."""
    session.install("-e", ".[bench]")
    session.run(
        "python",
        "benchmarks/run.py",
        "--quick",
        "--clients",
        "aiokeg,obstore,boto3,aiobotocore,s3fs",
    )


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site (mkdocs-material + mkdocstrings), warnings as errors."""
    session.install("-e", ".[docs]")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"}
    )
