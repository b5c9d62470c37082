"""The Lambda zip carries bytecode that Python uses as it is (a read-only /var/task cannot get any)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from clm import package

RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
TAG = f"cpython-{sys.version_info.major}{sys.version_info.minor}"


def template(path: Path, runtime: str = RUNTIME) -> Path:
    fn = {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": runtime, "Handler": "app.app"}}
    path.write_text(
        json.dumps({"Resources": {"Api": fn, "Worker": fn, "Table": {"Type": "AWS::DynamoDB::Table"}}})
    )
    return path


def zipped(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("app.py", "import pkg.mod\nVALUE = pkg.mod.VALUE\n")
        z.writestr("pkg/__init__.py", "")
        z.writestr("pkg/mod.py", "VALUE = 1\n")
        z.writestr(f"pkg/__pycache__/mod.{TAG}.pyc", b"stale bytes from a work tree")
        z.writestr("pkg/data.json", "{}")
    return path


def test_every_module_gets_an_unchecked_pyc_and_stale_ones_are_replaced(
    tmp_path: Path, capsys: object
) -> None:
    archive = zipped(tmp_path / "deployment.zip")
    package.main([str(archive), str(template(tmp_path / "sam.json"))])

    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        pycs = {n: z.read(n) for n in names if n.endswith(".pyc")}
    assert len(names) == len(set(names))
    assert sorted(pycs) == sorted(
        [
            f"__pycache__/app.{TAG}.pyc",
            f"pkg/__pycache__/__init__.{TAG}.pyc",
            f"pkg/__pycache__/mod.{TAG}.pyc",
        ]
    )
    for name, data in pycs.items():
        assert struct.unpack("<I", data[4:8])[0] == 0b01, name  # hash-based, never checked against the source
    assert "pkg/data.json" in names


def test_python_runs_the_shipped_bytecode_without_reading_the_sources_timestamps(tmp_path: Path) -> None:
    archive = zipped(tmp_path / "deployment.zip")
    package.main([str(archive), str(template(tmp_path / "sam.json"))])
    task = tmp_path / "task"
    with zipfile.ZipFile(archive) as z:
        z.extractall(task)
    (task / "pkg" / "mod.py").write_text("VALUE = 2\n")  # a source the pyc no longer matches

    out = subprocess.run(
        [sys.executable, "-B", "-c", "import app; print(app.VALUE)"],
        cwd=task,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"  # the shipped bytecode, as Lambda's read-only /var/task would run it


def test_bytecode_for_another_runtime_is_refused(tmp_path: Path) -> None:
    archive = zipped(tmp_path / "deployment.zip")
    before = archive.read_bytes()
    with pytest.raises(SystemExit, match=r"python3\.99"):
        package.main([str(archive), str(template(tmp_path / "sam.json", "python3.99"))])
    assert archive.read_bytes() == before


def test_a_template_with_two_runtimes_is_refused(tmp_path: Path) -> None:
    sam = tmp_path / "sam.json"
    fn = {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": RUNTIME}}
    other = {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": "python3.12"}}
    sam.write_text(json.dumps({"Resources": {"A": fn, "B": other}}))
    with pytest.raises(SystemExit, match="one Python runtime"):
        package.main([str(zipped(tmp_path / "deployment.zip")), str(sam)])
