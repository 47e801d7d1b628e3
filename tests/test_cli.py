"""The ``aiokeg`` command, run in-process with click's runner against moto's server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiokeg.cli import main
from conftest import ACCESS_KEY, SECRET_KEY, moto_only, payload


@pytest.fixture
def cli(s3_server: Any, bucket: str) -> Any:
    """Invoke the command with the test server's endpoint and credentials."""
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(
            main,
            [
                "--endpoint-url",
                s3_server.endpoint_url,
                "--region",
                "us-east-1",
                "--access-key",
                ACCESS_KEY,
                "--secret-key",
                SECRET_KEY,
                *args,
            ],
            catch_exceptions=False,
        )

    return invoke


def test_cp_up_ls_stat_cat_and_back(cli: Any, bucket: str, tmp_path: Path) -> None:
    data = payload(300_000)
    (tmp_path / "a.bin").write_bytes(data)
    result = cli("cp", str(tmp_path / "a.bin"), f"s3://{bucket}/dir/a.bin")
    assert result.exit_code == 0, result.output
    assert "1 copied" in result.output

    result = cli("ls", f"s3://{bucket}/dir/")
    assert result.output.splitlines() == ["dir/a.bin"]
    result = cli("ls", "--json", f"s3://{bucket}/")
    assert json.loads(result.output.splitlines()[0])["size"] == len(data)
    result = cli("ls", "-l", f"s3://{bucket}/")
    assert str(len(data)) in result.output

    result = cli("stat", f"s3://{bucket}/dir/a.bin")
    assert json.loads(result.output)["size"] == len(data)

    result = cli("cat", f"s3://{bucket}/dir/a.bin")
    assert result.exit_code == 0
    assert result.stdout_bytes == data

    result = cli("cp", f"s3://{bucket}/dir/a.bin", str(tmp_path / "back.bin"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "back.bin").read_bytes() == data


def test_recursive_cp_sync_and_rm(cli: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    for name in ("x/1", "x/2", "y/3"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(name.encode())
    assert cli("cp", "-r", str(src), f"s3://{bucket}/t/").exit_code == 0
    assert cli("ls", f"s3://{bucket}/t/").output.split() == ["t/x/1", "t/x/2", "t/y/3"]

    result = cli("sync", str(src), f"s3://{bucket}/t/")
    assert "0 copied, 3 skipped" in result.output

    out = tmp_path / "out"
    out.mkdir()
    assert cli("sync", f"s3://{bucket}/t/", str(out)).exit_code == 0
    assert (out / "y" / "3").read_bytes() == b"y/3"

    assert cli("cp", f"s3://{bucket}/t/x/1", f"s3://{bucket}/copy-of-1").exit_code == 0
    assert cli("rm", f"s3://{bucket}/copy-of-1").exit_code == 0
    result = cli("rm", "-r", f"s3://{bucket}/t/")
    assert "deleted 3" in result.output
    assert cli("ls", f"s3://{bucket}/").output == ""


def test_rm_refuses_a_whole_bucket_without_force(cli: Any, bucket: str) -> None:
    result = cli("rm", "-r", f"s3://{bucket}")
    assert result.exit_code == 2
    assert "--force" in result.output
    assert cli("rm", "-r", "--force", f"s3://{bucket}").exit_code == 0


def test_link_prints_a_presigned_url(cli: Any, bucket: str) -> None:
    result = cli("link", "--operation", "upload", "--expires", "600", f"s3://{bucket}/up")
    assert result.exit_code == 0
    assert "X-Amz-Signature=" in result.output
    assert SECRET_KEY not in result.output
    bad = cli("link", "--expires", str(8 * 24 * 3600), f"s3://{bucket}/up")
    assert bad.exit_code == 1
    assert "7 days" in bad.output


def test_errors_are_one_line_and_exit_1(cli: Any, bucket: str, tmp_path: Path) -> None:
    result = cli("cat", f"s3://{bucket}/missing")
    assert result.exit_code == 1
    assert result.output.strip().startswith("aiokeg: error:")
    assert "Traceback" not in result.output


def test_partial_failure_exits_1_and_copies_the_rest(
    cli: Any, bucket: str, tmp_path: Path, s3_server: Any
) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    # A key with an empty segment cannot become a local file: that one file
    # fails, the others are copied.
    for key in ("t/ok1", "t/bad//name", "t/ok2"):
        client.put_object(Bucket=bucket, Key=key, Body=b"data")
    out = tmp_path / "out"
    out.mkdir()
    result = cli("cp", "-r", f"s3://{bucket}/t/", str(out))
    assert result.exit_code == 1
    assert "failed: t/bad//name" in result.output
    assert "2 copied" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["ok1", "ok2"]


def test_usage_errors_exit_2(cli: Any) -> None:
    assert cli("frobnicate").exit_code == 2
    assert cli("cp", "only-one-arg").exit_code == 2
    assert cli("ls", "s3://").exit_code == 2


@moto_only("moto dates every upload 2010-11-10, which the age filter relies on")
def test_abort_uploads_removes_stale_uploads(cli: Any, bucket: str, s3_server: Any) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_multipart_upload(Bucket=bucket, Key="crashed/upload")
    # moto dates every upload 2010-11-10: thirty years is "too recent to be stale".
    result = cli("abort-uploads", "--older-than", str(30 * 365 * 86400), f"s3://{bucket}/")
    assert "aborted 0" in result.output
    result = cli("abort-uploads", "--older-than", "0", f"s3://{bucket}/")
    assert result.exit_code == 0
    assert "aborted 1" in result.output
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_demo_round_trips_and_verifies(s3_server: Any, bucket: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "--endpoint-url",
            s3_server.endpoint_url,
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            "demo",
            "--files",
            "12",
            "--max-size",
            "6",
            "-q",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "every byte verified" in result.output
