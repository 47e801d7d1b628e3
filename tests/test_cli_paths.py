"""The command line's path grammar (the aws CLI's) and the folder rule, against moto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aiokeg.cli import main
from conftest import ACCESS_KEY, SECRET_KEY, MiB
from s3server import FaultLayer

SIBLINGS = {"backup2/keep": b"2", "backupX": b"X", "backup.txt": b"t"}


@pytest.fixture
def cli(s3_server: Any, bucket: str) -> Any:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
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
            env=env,
        )

    return invoke


@pytest.fixture
def boto(s3_server: Any) -> Any:
    """A plain synchronous client (the CLI runs its own event loop: tests here are sync)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def seed(boto: Any, bucket: str, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        boto.put_object(Bucket=bucket, Key=key, Body=data)


def keys(boto: Any, bucket: str) -> list[str]:
    response = boto.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in response.get("Contents", [])]


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("prefix", ["backup", "backup/"])
def test_rm_r_deletes_only_the_folder(cli: Any, boto: Any, bucket: str, prefix: str) -> None:
    seed(boto, bucket, {**SIBLINGS, "backup/a": b"a", "backup/b": b"b"})
    result = cli("rm", "-r", f"s3://{bucket}/{prefix}")
    assert result.exit_code == 0, result.output
    assert "deleted 2 object(s)" in result.output
    assert keys(boto, bucket) == sorted(SIBLINGS)


def test_rm_r_dryrun_lists_and_deletes_nothing(cli: Any, boto: Any, bucket: str) -> None:
    seed(boto, bucket, {**SIBLINGS, "backup/a": b"a"})
    result = cli("rm", "-r", "--dryrun", f"s3://{bucket}/backup")
    assert f"(dryrun) delete: s3://{bucket}/backup/a" in result.output
    assert "would delete 1 object(s)" in result.output
    assert len(keys(boto, bucket)) == 4


def test_sync_delete_without_slash_keeps_siblings(
    cli: Any, boto: Any, bucket: str, tmp_path: Path
) -> None:
    seed(boto, bucket, {"syncnoslash2/zzz.txt": b"z", "syncnoslash/old": b"o"})
    src = tree(tmp_path / "small", {"a.txt": b"a", "d/b.txt": b"b"})
    result = cli("sync", "--delete", str(src), f"s3://{bucket}/syncnoslash")
    assert result.exit_code == 0, result.output
    assert keys(boto, bucket) == [
        "syncnoslash/a.txt",
        "syncnoslash/d/b.txt",
        "syncnoslash2/zzz.txt",
    ]


def test_sync_dryrun_prints_and_changes_nothing(
    cli: Any, boto: Any, bucket: str, tmp_path: Path
) -> None:
    seed(boto, bucket, {"dst/old": b"o"})
    src = tree(tmp_path / "src", {"new": b"n"})
    result = cli("sync", "--delete", "--dryrun", str(src), f"s3://{bucket}/dst")
    assert "(dryrun) copy:" in result.output
    assert "(dryrun) delete: dst/old" in result.output
    assert keys(boto, bucket) == ["dst/old"]


def test_cp_r_up_joins_with_one_slash(cli: Any, boto: Any, bucket: str, tmp_path: Path) -> None:
    src = tree(tmp_path / "dir", {"f1.txt": b"1", "f2.txt": b"2"})
    assert cli("cp", "-r", str(src), f"s3://{bucket}/up").exit_code == 0
    assert keys(boto, bucket) == ["up/f1.txt", "up/f2.txt"]


def test_cp_r_down_takes_only_the_folder_and_creates_the_destination(
    cli: Any, boto: Any, bucket: str, tmp_path: Path
) -> None:
    seed(boto, bucket, {**SIBLINGS, "backup/a": b"a", "backup/s/b": b"b"})
    dest = tmp_path / "dl" / "deeper"
    result = cli("cp", "-r", f"s3://{bucket}/backup", str(dest))
    assert result.exit_code == 0, result.output
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert found == ["a", "s/b"]


def test_cp_file_into_s3_folder_keeps_its_name(
    cli: Any, boto: Any, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    assert cli("cp", str(tmp_path / "f.txt"), f"s3://{bucket}/single/").exit_code == 0
    assert cli("cp", str(tmp_path / "f.txt"), f"s3://{bucket}").exit_code == 0
    assert keys(boto, bucket) == ["f.txt", "single/f.txt"]


def test_cp_object_into_existing_or_slashed_directory(
    cli: Any, boto: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(boto, bucket, {"dir/k.bin": b"data"})
    existing = tmp_path / "d"
    existing.mkdir()
    assert cli("cp", f"s3://{bucket}/dir/k.bin", str(existing)).exit_code == 0
    assert (existing / "k.bin").read_bytes() == b"data"
    assert cli("cp", f"s3://{bucket}/dir/k.bin", str(tmp_path / "d2") + "/").exit_code == 0
    assert (tmp_path / "d2" / "k.bin").read_bytes() == b"data"
    monkeypatch.chdir(tmp_path / "d2")
    assert cli("cp", f"s3://{bucket}/dir/k.bin", ".").exit_code == 0
    assert cli("cp", f"s3://{bucket}/dir/k.bin", str(tmp_path / "named.bin")).exit_code == 0
    assert (tmp_path / "named.bin").read_bytes() == b"data"


def test_rm_is_exact_and_honest(cli: Any, boto: Any, bucket: str) -> None:
    seed(boto, bucket, {"data/a": b"a"})
    missing = cli("rm", f"s3://{bucket}/nosuch")
    assert missing.exit_code == 1
    assert "does not exist; nothing was deleted" in missing.output
    folder = cli("rm", f"s3://{bucket}/data/")
    assert folder.exit_code == 2
    assert "rm -r" in folder.output
    assert keys(boto, bucket) == ["data/a"]
    done = cli("rm", f"s3://{bucket}/data/a")
    assert done.exit_code == 0
    assert f"delete: s3://{bucket}/data/a" in done.output


def test_one_cause_is_reported_once(cli: Any, boto: Any, bucket: str, tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {f"f{i}": b"x" for i in range(20)})
    result = cli("cp", "-r", str(src), "s3://no-such-bucket-here/x")
    assert result.exit_code == 1
    assert result.output.count("aiokeg: failed:") <= 10
    assert "does not exist" in result.output


def test_global_options_after_the_subcommand_and_version(s3_server: Any, bucket: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "ls",
            f"s3://{bucket}/",
            "--endpoint-url",
            s3_server.endpoint_url,
            "--access-key",
            ACCESS_KEY,
            "--secret-key=" + SECRET_KEY,
            "--region",
            "us-east-1",
        ],
    )
    assert result.exit_code == 0, result.output
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0
    assert "aiokeg" in version.output
    help_text = runner.invoke(main, ["--help"]).output
    for needle in ("s3://bucket/key", "AWS_SESSION_TOKEN", "names a folder"):
        assert needle in help_text


def test_session_token_from_the_environment_is_sent(
    s3_server: Any, boto: Any, bucket: str, faults: FaultLayer, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"x")
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLETOKEN",
        "AWS_REGION": "us-east-1",
    }
    result = CliRunner().invoke(
        main,
        ["--endpoint-url", s3_server.endpoint_url, "cp", str(tmp_path / "f"), f"s3://{bucket}/f"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    put = faults.ops("PutObject")[-1]
    assert put["headers"].get("HTTP_X_AMZ_SECURITY_TOKEN") == env["AWS_SESSION_TOKEN"]


def test_concurrency_reaches_cp(cli: Any, bucket: str, faults: FaultLayer, tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(os.urandom(21 * MiB))
    result = cli(
        "--chunk-size", "5", "--concurrency", "1", "cp", str(tmp_path / "big"), f"s3://{bucket}/big"
    )
    assert result.exit_code == 0, result.output
    assert faults.max_in_flight["UploadPart"] == 1


def test_content_type_is_guessed_on_upload(
    cli: Any, boto: Any, bucket: str, tmp_path: Path
) -> None:
    for name in ("page.html", "data.json", "table.csv"):
        (tmp_path / name).write_bytes(b"x")
    assert cli("cp", "-r", str(tmp_path), f"s3://{bucket}/site").exit_code == 0
    types = {}
    for name in ("page.html", "data.json", "table.csv"):
        head = boto.head_object(Bucket=bucket, Key=f"site/{name}")
        types[name] = head["ContentType"]
    assert types == {
        "page.html": "text/html",
        "data.json": "application/json",
        "table.csv": "text/csv",
    }


def test_cat_into_a_closed_pipe_ends_quietly(s3_server: Any, boto: Any, bucket: str) -> None:
    boto.put_object(Bucket=bucket, Key="big", Body=os.urandom(4 * MiB))
    command = (
        f"{sys.executable} -m aiokeg._entry --endpoint-url {s3_server.endpoint_url} "
        f"--access-key {ACCESS_KEY} --secret-key '{SECRET_KEY}' --region us-east-1 "
        f"cat s3://{bucket}/big | head -c 10 > /dev/null; echo ${{PIPESTATUS[0]}}"
    )
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stderr == ""
    assert done.stdout.strip() == "0"


@pytest.mark.parametrize(
    "args",
    [
        ["--profile", "nosuch-profile", "ls", "s3://b/"],
        ["link", "/tmp/local-file"],
    ],
    ids=["missing-profile", "link-on-local-path"],
)
def test_configuration_errors_are_one_line(args: list[str], tmp_path: Path) -> None:
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(("aiokeg: error:", "Error:"))


def test_link_without_credentials_is_one_line(tmp_path: Path, blockbuster: Any) -> None:
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # aiobotocore's credential chain reads ~/.aws files on the loop when no
    # keys are given (once per client; not aiokeg's code): allow it here.
    blockbuster.deactivate()
    result = CliRunner().invoke(main, ["--region", "us-east-1", "link", "s3://b/k"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("aiokeg: error:")
    assert len(result.output.strip().splitlines()) == 1


def test_progress_uses_binary_units_and_shows_the_completing_phase() -> None:
    from aiokeg._progress import binary_size, transfer_progress
    from aiokeg.transfer import TransferEvent

    assert binary_size(3 * MiB) == "3.0 MiB"
    assert binary_size(1536) == "1.5 KiB"
    progress, update = transfer_progress()
    update(TransferEvent(1, 3, 30 * MiB, 30 * MiB, "dir/big.bin"))
    task = progress.tasks[0]
    assert "completing 2 upload(s)" in task.description
    assert task.fields["current"] == "dir/big.bin"
