"""Every ```python example in README.md and docs/ runs, against the test S3 server.

Examples are written for AWS (`AsyncS3Storage("my-bucket", ...)`); botocore's
`AWS_ENDPOINT_URL_S3` points them at the test server instead, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def examples() -> list[Any]:
    found = []
    for page in PAGES:
        for i, match in enumerate(BLOCK.finditer(page.read_text())):
            found.append(pytest.param(match.group(1), id=f"{page.name}-{i}"))
    return found


def test_the_docs_have_examples() -> None:
    assert len(examples()) >= 6


@pytest.mark.parametrize("code", examples())
async def test_example_runs(code: str, s3_server: Any, raw_s3: Any, tmp_path: Path) -> None:
    with contextlib.suppress(raw_s3.exceptions.BucketAlreadyOwnedByYou):
        await raw_s3.create_bucket(Bucket="my-bucket")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"example failed:\n{code}\n--- stderr ---\n{err.decode()}"
