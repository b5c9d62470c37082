"""Bytecode in the Lambda zip, so that a cold start does not compile its modules from source.

`chalice package` zips sources only (the app and every vendored dependency: pydantic, Powertools,
PynamoDB and the botocore it brings, which shadows the runtime's own). Lambda's `/var/task` is
read-only, so Python can never write bytecode there: without it every cold start compiles each
module it imports. This adds one `__pycache__/*.cpython-311.pyc` per source, compiled by the
runtime's Python version as *unchecked* hash-based pycs (PEP 552): the zip never changes once
built, and its files' timestamps are not what the pycs would be checked against.

    python -m clm.package dist/deployment.zip dist/sam.json
"""

from __future__ import annotations

import compileall
import json
import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: the path tracebacks show


def runtimes(template: Path) -> set[str]:
    """The Python runtimes the template's functions run on (`python3.11`, ...)."""
    resources = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
    return {
        r["Properties"]["Runtime"]
        for r in resources.values()
        if r.get("Type") == "AWS::Serverless::Function" and "Runtime" in r.get("Properties", {})
    }


def add_bytecode(archive: Path, runtime: str) -> int:
    """Give every `.py` in `archive` an unchecked pyc (in place, replacing any pyc it had); how many.

    Refuses to compile for another runtime than this interpreter's: a pyc's magic number must
    match the Python that loads it, or it is ignored.
    """
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != here:
        raise SystemExit(f"the functions run {runtime}; compile with that Python, not {here}")
    with tempfile.TemporaryDirectory(prefix="clm-package-") as scratch:
        tree = Path(scratch) / "task"
        with zipfile.ZipFile(archive) as source:
            entries = source.infolist()
            source.extractall(tree)
        for stale in tree.rglob("*.pyc"):  # a work tree's own caches, zipped along by chalice
            stale.unlink()
        compileall.compile_dir(
            tree,
            ddir=TASK_ROOT,
            force=True,
            quiet=2,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        added = sorted(path.relative_to(tree).as_posix() for path in tree.rglob("*.pyc"))
        rebuilt = archive.with_suffix(".tmp")
        with zipfile.ZipFile(archive) as source, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in entries:
                if entry.filename.endswith(".pyc"):
                    continue
                with source.open(entry) as data, out.open(entry, "w") as copy:
                    shutil.copyfileobj(data, copy)
            for name in added:
                out.write(tree / name, name)
        rebuilt.replace(archive)
    return len(added)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m clm.package DEPLOYMENT_ZIP SAM_TEMPLATE")
    archive, template = Path(args[0]), Path(args[1])
    found = runtimes(template)
    if len(found) != 1:
        raise SystemExit(f"expected one Python runtime in {template}, found {sorted(found) or 'none'}")
    count = add_bytecode(archive, found.pop())
    print(f"{archive}: added bytecode for {count} modules")


if __name__ == "__main__":
    main()
