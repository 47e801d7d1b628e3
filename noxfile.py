"""Task runner: the same sessions locally and in CI (`.ci/run` calls `nox`)."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
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
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py")


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
