"""The zip `make package` deploys, unpacked as Lambda unpacks it: small, without the SDK the runtime
provides, with valid bytecode for every module, and able to serve a signed delivery with nothing but
the runtime's own packages beside it."""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench.cold_start import WEBHOOK, webhook_environment
from clm import package

LIMIT = 15_000_000  # bytes: issue 13's "under 15 MB"
TAG = f"cpython-{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture(scope="module")
def archive(packaged: Path) -> Path:
    return packaged / "deployment.zip"


@pytest.fixture(scope="module")
def task(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip unpacked, every file dated 1980-01-01 as unzipping Chalice's entries leaves them."""
    tree = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(archive) as z:
        z.extractall(tree)
    for path in tree.rglob("*"):
        os.utime(path, (315532800, 315532800))
    return tree


def test_the_zip_is_small_and_carries_no_aws_sdk(archive: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        tops = {name.split("/", 1)[0] for name in z.namelist()}
    sdk = {t for t in tops if t.split("-", 1)[0].split(".", 1)[0] in {"boto3", "botocore", "s3transfer"}}
    assert not sdk
    assert "pynamodb" in tops and "aws_lambda_powertools" in tops and "jmespath" in tops
    assert not {t for t in tops if t.startswith("phonenumbers-")}  # the lite distribution, not the full one
    size = archive.stat().st_size
    assert size < LIMIT, f"{size / 1e6:.1f} MB"


def test_every_source_has_a_checked_hash_pyc_for_the_runtime(archive: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert len(sources) > 500
        for source in sources:
            folder, _, file = source.rpartition("/")
            pyc = f"{folder + '/' if folder else ''}__pycache__/{file[:-3]}.{TAG}.pyc"
            assert pyc in names, source
            header = z.read(pyc)[:16]
            assert header[:4] == importlib.util.MAGIC_NUMBER, pyc
            assert struct.unpack("<I", header[4:8])[0] == 0b11, pyc  # hash-based, checked
            assert header[8:16] == importlib.util.source_hash(z.read(source)), pyc


def test_the_app_serves_a_delivery_from_the_zip_with_only_the_runtime_beside_it(
    task: Path, tmp_path: Path
) -> None:
    """As Lambda runs it: /var/task first, then only what the runtime provides (linked from this venv),
    no site-packages, no bytecode written; AWS stubbed at botocore. Every module that comes from the
    zip must come from its shipped bytecode, and botocore from the runtime."""
    site = package.runtime_site(tmp_path / "runtime")
    check = (
        WEBHOOK
        + "\nimport botocore, opencc, phonenumbers"
        + "\nfrom cryptography.hazmat.primitives.ciphers.aead import AESGCM"
        + "\nAESGCM(bytes(32)).encrypt(bytes(12), b'x', None)"
        + "\nassert opencc.OpenCC('t2s').convert('剎車失靈') == '刹车失灵'"
        + "\nassert phonenumbers.is_valid_number(phonenumbers.parse('+8613800138000'))"
        + "\nprint('botocore', botocore.__file__)"
    )
    env = {**webhook_environment(), "PYTHONPATH": f"{task}{os.pathsep}{site}", "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-S", "-v", "-c", check],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    told = [line for line in out.stderr.splitlines() if not line.startswith(("#", "import "))]
    assert out.returncode == 0, "\n".join(told)[-4000:] + "\n" + out.stdout[-2000:]
    assert f"botocore {site}" in out.stdout
    loaded = [
        line.split("code object from ", 1)[1].strip("'")
        for line in out.stderr.splitlines()
        if line.startswith("# code object from ")
    ]
    from_task = [path for path in loaded if path.startswith(str(task))]
    assert len(from_task) > 100
    assert [path for path in from_task if not path.endswith(".pyc")] == []
