"""The Lambda zip leaves out what the runtime provides and carries bytecode that Python takes as valid
whatever the files' times (a read-only /var/task cannot get any)."""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
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


def test_every_module_gets_a_checked_pyc_and_stale_ones_are_replaced(tmp_path: Path, capsys: object) -> None:
    archive = zipped(tmp_path / "deployment.zip")
    package.main([str(archive), str(template(tmp_path / "sam.json"))])

    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        pycs = {n: z.read(n) for n in names if n.endswith(".pyc")}
        sources = {n: z.read(n) for n in names if n.endswith(".py")}
    assert len(names) == len(set(names))
    assert sorted(pycs) == sorted(
        [
            f"__pycache__/app.{TAG}.pyc",
            f"pkg/__pycache__/__init__.{TAG}.pyc",
            f"pkg/__pycache__/mod.{TAG}.pyc",
        ]
    )
    for name, data in pycs.items():
        assert struct.unpack("<I", data[4:8])[0] == 0b11, name  # hash-based, checked against the source
        source = name.replace("__pycache__/", "").replace(f".{TAG}.pyc", ".py")
        assert data[8:16] == importlib.util.source_hash(sources[source]), name
    assert "pkg/data.json" in names


def _unpacked(tmp_path: Path) -> Path:
    archive = zipped(tmp_path / "deployment.zip")
    package.main([str(archive), str(template(tmp_path / "sam.json"))])
    task = tmp_path / "task"
    with zipfile.ZipFile(archive) as z:
        z.extractall(task)
    for path in task.rglob("*"):
        os.utime(path, (315532800, 315532800))  # 1980-01-01, as unzipping Chalice's entries dates them
    return task


def _value(task: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-B", "-c", "import app; print(app.VALUE)"],
        cwd=task,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_python_runs_the_shipped_bytecode_whatever_the_sources_times(tmp_path: Path) -> None:
    task = _unpacked(tmp_path)
    pyc = task / "pkg" / "__pycache__" / f"mod.{TAG}.pyc"
    header = pyc.read_bytes()[:16]  # the source's hash kept: only the code differs from the source
    pyc.write_bytes(header + marshal.dumps(compile("VALUE = 3\n", "/var/task/pkg/mod.py", "exec")))

    assert _value(task) == "3"  # the shipped bytecode ran, as Lambda's read-only /var/task would run it


def test_a_source_edited_after_packaging_wins_over_its_bytecode(tmp_path: Path) -> None:
    task = _unpacked(tmp_path)
    (task / "pkg" / "mod.py").write_text("VALUE = 2\n")  # as an edit in the Lambda console would

    assert _value(task) == "2"


def wheel(z: zipfile.ZipFile, name: str, files: dict[str, str], requires: tuple[str, ...] = ()) -> None:
    """One installed distribution as Chalice unpacks a wheel: its files, METADATA and RECORD."""
    info = f"{name.replace('-', '_')}-1.0.dist-info"
    for path, text in files.items():
        z.writestr(path, text)
    z.writestr(
        f"{info}/METADATA",
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
    )
    z.writestr(
        f"{info}/RECORD", "".join(f"{p},," + "\n" for p in [*files, f"{info}/METADATA", f"{info}/RECORD"])
    )


def vendored(path: Path) -> Path:
    """What `chalice package` zips for an app on PynamoDB, Powertools, cryptography and OpenCC."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("app.py", "")
        wheel(z, "pynamodb", {"pynamodb/__init__.py": ""}, ("botocore>=1.12.54",))
        wheel(
            z,
            "aws-lambda-powertools",
            {"aws_lambda_powertools/__init__.py": ""},
            (
                "jmespath<2.0.0,>=1.0.1",
                "urllib3<3.0.0,>=2.7.0; extra == 'all'",
            ),
        )
        wheel(z, "boto3", {"boto3/__init__.py": ""}, ("botocore", "s3transfer"))
        wheel(
            z,
            "botocore",
            {"botocore/__init__.py": "", "botocore/data/dynamodb/service-2.json": "{}"},
            (
                "jmespath (<2.0.0,>=0.7.1)",
                "python-dateutil (<3.0.0,>=2.1)",
                "urllib3 (!=2.2.0,<3,>=1.25.4)",
            ),
        )
        wheel(z, "s3transfer", {"s3transfer/__init__.py": ""}, ("botocore",))
        wheel(z, "jmespath", {"jmespath/__init__.py": "", "jmespath-1.0.data/scripts/jp.py": ""})
        wheel(z, "python-dateutil", {"dateutil/__init__.py": ""}, ("six >=1.5",))
        wheel(z, "six", {"six.py": ""})
        wheel(z, "urllib3", {"urllib3/__init__.py": ""})
        wheel(
            z,
            "cryptography",
            {"cryptography/__init__.py": ""},
            ("cffi>=2.0.0 ; platform_python_implementation != 'PyPy'",),
        )
        wheel(
            z,
            "cffi",
            {"cffi/__init__.py": "", "_cffi_backend.cpython-311-x86_64-linux-gnu.so": ""},
            ("pycparser",),
        )
        wheel(z, "pycparser", {"pycparser/__init__.py": ""})
        wheel(
            z,
            "opencc",
            {
                "opencc/__init__.py": "",
                "opencc/clib/opencc_clib.cpython-311-x86_64-linux-gnu.so": "",
                "opencc/clib/share/opencc/t2s.json": "{}",
                "opencc/clib/bin/opencc": "",
                "opencc/clib/include/opencc/opencc.h": "",
                "opencc/clib/lib64/libopencc.a": "",
            },
        )
    return path


def _tops(archive: Path) -> set[str]:
    with zipfile.ZipFile(archive) as z:
        return {n.split("/", 1)[0] for n in z.namelist()}


def test_the_runtime_s_sdk_and_what_only_it_needs_are_left_out(tmp_path: Path) -> None:
    archive = vendored(tmp_path / "deployment.zip")
    report = package.rebuild(archive, RUNTIME, direct={"aws-lambda-powertools", "pynamodb"})

    assert report.dropped == ["boto3", "botocore", "python-dateutil", "s3transfer", "six", "urllib3"]
    tops = _tops(archive)
    for gone in ("boto3", "botocore", "s3transfer", "dateutil", "six.py", "urllib3", "pycparser", "cffi"):
        assert gone not in tops
    assert not {t for t in tops if t.startswith(("botocore-", "boto3-", "six-", "urllib3-", "pycparser-"))}
    # Powertools needs jmespath (the runtime has one too, but not necessarily the version it needs).
    assert {"jmespath", "jmespath-1.0.data", "jmespath-1.0.dist-info", "pynamodb", "cryptography"} <= tops
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
    assert "_cffi_backend.cpython-311-x86_64-linux-gnu.so" in names  # what compiled cffi modules load
    assert "opencc/clib/share/opencc/t2s.json" in names
    assert "opencc/clib/opencc_clib.cpython-311-x86_64-linux-gnu.so" in names
    assert not {
        n for n in names if n.startswith(("opencc/clib/bin/", "opencc/clib/include/", "opencc/clib/lib64/"))
    }


def test_a_runtime_provided_package_the_app_names_itself_stays(tmp_path: Path) -> None:
    archive = vendored(tmp_path / "deployment.zip")
    report = package.rebuild(archive, RUNTIME, direct={"urllib3", "python-dateutil"})

    assert report.dropped == ["boto3", "botocore", "s3transfer"]
    assert {"urllib3", "dateutil", "six.py"} <= _tops(archive)  # six: python-dateutil needs it


def test_requirement_lines_are_read_as_pip_reads_their_names() -> None:
    assert package.requirement_name("Python_Dateutil (<3.0.0,>=2.1)") == "python-dateutil"
    assert package.requirement_name("phonenumberslite==9.0.42  # lite") == "phonenumberslite"
    assert package.requirement_name("urllib3<3.0.0,>=2.7.0; extra == 'all'") is None
    assert package.requirement_name("-r requirements.txt") is None
    assert package.requirement_name("typing-extensions>=4; python_version < '3.11'") == "typing-extensions"


def test_a_distribution_without_record_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "deployment.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("botocore/__init__.py", "")
        z.writestr("botocore-1.0.dist-info/METADATA", "Name: botocore\nVersion: 1.0\n")
    with pytest.raises(SystemExit, match="no RECORD"):
        package.rebuild(archive, RUNTIME, direct=set())


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


def test_the_stand_in_runtime_links_modules_as_files_and_packages_as_folders(tmp_path: Path) -> None:
    """six, once imported, sets `__path__` on its module (for `six.moves`), so its spec claims
    submodule search locations: it must still be linked as `six.py`, not as its whole folder."""
    import botocore
    import six

    site = package.runtime_site(tmp_path)
    assert (site / "six.py").resolve() == Path(six.__file__).resolve()
    assert (site / "botocore").resolve() == Path(botocore.__file__).parent.resolve()
    assert not (site / "site-packages").exists()
