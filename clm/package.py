"""Make Chalice's Lambda zip what the runtime needs: no AWS SDK, no build-time files, with bytecode.

`chalice package` vendors every dependency, transitive ones included, as sources only. So:

- The AWS SDK goes: PynamoDB pulls botocore in (16 MB compressed) and Chalice cannot leave a
  transitive dependency out, but the python3.11 runtime provides boto3, botocore and s3transfer.
  So does it their dependencies (jmespath, python-dateutil, six, urllib3): each goes too once
  nothing kept requires it, nor `requirements.txt` (Powertools needs jmespath: it stays). A
  vendored copy would also shadow the runtime's own, which its botocore was tested with.
- What only builds or compiles goes: OpenCC's command-line tools, headers and static libraries;
  cffi's Python API and its C parser pycparser (compiled cffi modules, such as cryptography's
  OpenSSL bindings, need only `_cffi_backend`).
- Lambda's `/var/task` is read-only, so Python can never write bytecode there, and zip tools reset
  file times: without shipped bytecode every cold start compiles each module it imports. This adds
  one `__pycache__/*.cpython-311.pyc` per source, compiled by the runtime's Python version as
  *checked* hash-based pycs (PEP 552): Python takes one as valid when it carries the hash of the
  source beside it, whatever the files' times say, and recompiles the module if its source was
  changed (say, edited in the Lambda console) rather than run stale bytecode.

    python -m clm.package dist/deployment.zip dist/sam.json
"""

from __future__ import annotations

import compileall
import csv
import importlib.metadata
import importlib.util
import io
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: the path tracebacks show
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
AWS_SDK = frozenset({"boto3", "botocore", "s3transfer"})  # always the runtime's
# What the python3.11 runtime ships beside the SDK: dropped once nothing in the zip needs them.
RUNTIME_PROVIDED = AWS_SDK | {"jmespath", "python-dateutil", "six", "urllib3"}
# Never loaded at run time: whole distributions, and parts of others (entry prefixes).
BUILD_ONLY_DISTS = frozenset({"pycparser"})
BUILD_ONLY = ("opencc/clib/bin/", "opencc/clib/include/", "opencc/clib/lib64/", "cffi/")


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares them (`Python_Dateutil` is `python-dateutil`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The distribution a requirement line names; None for options, comments, and extras' requirements."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-") or re.search(r"""\bextra\s*==""", text):
        return None
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)
    return canonical(found.group(0)) if found else None


@dataclass
class Distribution:
    """One installed distribution in the zip: its name, what it requires, the entries it owns."""

    name: str
    requires: set[str]
    entries: set[str] = field(default_factory=set)


def distributions(archive: zipfile.ZipFile) -> dict[str, Distribution]:
    """Every distribution in the zip, by canonical name, from its `*.dist-info/METADATA` and `RECORD`."""
    found: dict[str, Distribution] = {}
    names = archive.namelist()
    for meta in (n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)):
        info = meta.rsplit("/", 1)[0]
        headers = HeaderParser().parsestr(archive.read(meta).decode("utf-8"))
        requires = {r for line in headers.get_all("Requires-Dist") or [] if (r := requirement_name(line))}
        dist = Distribution(canonical(headers["Name"]), requires)
        record = f"{info}/RECORD"  # every wheel has one: the files it installed
        if record not in names:
            raise SystemExit(f"{info} has no RECORD: cannot tell its files")
        rows = csv.reader(io.StringIO(archive.read(record).decode("utf-8")))
        dist.entries = {row[0] for row in rows if row}
        data = info.removesuffix(".dist-info") + ".data/"
        dist.entries |= {n for n in names if n.startswith((info + "/", data))}
        found[dist.name] = dist
    return found


def runtime_provided(dists: dict[str, Distribution], direct: set[str]) -> set[str]:
    """The distributions the runtime brings and nothing kept needs: the SDK, then its lone dependencies."""
    dropped = set(AWS_SDK & dists.keys())
    while True:
        kept = [d for name, d in dists.items() if name not in dropped]
        needed = direct.union(*(d.requires for d in kept))
        more = {d.name for d in kept if d.name in RUNTIME_PROVIDED and d.name not in needed}
        if not more:
            return dropped
        dropped |= more


def direct_requirements(path: Path = REQUIREMENTS) -> set[str]:
    """The distributions the app names itself: kept even where the runtime has them."""
    if not path.exists():
        return set()
    return {n for line in path.read_text(encoding="utf-8").splitlines() if (n := requirement_name(line))}


@dataclass
class Report:
    """What a rebuild did: the distributions left out, how many files went, how many pycs came."""

    dropped: list[str]
    left_out: int
    compiled: int


def rebuild(archive: Path, runtime: str, direct: set[str] | None = None) -> Report:
    """Rewrite `archive` in place: what the runtime provides and build-time files out, a checked pyc
    for every `.py` (replacing any pyc it had).

    Refuses to compile for another runtime than this interpreter's: a pyc's magic number must
    match the Python that loads it, or it is ignored.
    """
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != here:
        raise SystemExit(f"the functions run {runtime}; compile with that Python, not {here}")
    with zipfile.ZipFile(archive) as source:
        dists = distributions(source)
        dropped = sorted(runtime_provided(dists, direct_requirements() if direct is None else direct))
        gone = [name for name in dists if name in BUILD_ONLY_DISTS]
        unwanted = set().union(*(dists[name].entries for name in [*dropped, *gone]))
        entries = [
            e
            for e in source.infolist()
            if e.filename not in unwanted
            and not e.filename.startswith(BUILD_ONLY)
            # a work tree's own caches, zipped along by chalice: the pycs are all made here
            and not e.filename.endswith(".pyc")
        ]
        left_out = sum(1 for e in source.infolist() if not e.filename.endswith(".pyc")) - len(entries)
    stray = {e.filename.split("/", 1)[0] for e in entries} & AWS_SDK
    if stray:
        raise SystemExit(f"{archive}: {sorted(stray)} left in the zip by no distribution's RECORD")
    with tempfile.TemporaryDirectory(prefix="clm-package-") as scratch:
        tree = Path(scratch) / "task"
        with zipfile.ZipFile(archive) as source:
            source.extractall(tree, members=entries)
        compileall.compile_dir(
            tree,
            ddir=TASK_ROOT,
            force=True,
            quiet=2,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
        added = sorted(path.relative_to(tree).as_posix() for path in tree.rglob("*.pyc"))
        rebuilt = archive.with_suffix(".tmp")
        with zipfile.ZipFile(archive) as source, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in entries:
                with source.open(entry) as data, out.open(entry, "w") as copy:
                    shutil.copyfileobj(data, copy)
            for name in added:
                out.write(tree / name, name)
        rebuilt.replace(archive)
    return Report(dropped, left_out, len(added))


def runtimes(template: Path) -> set[str]:
    """The Python runtimes the template's functions run on (`python3.11`, ...)."""
    resources = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
    return {
        r["Properties"]["Runtime"]
        for r in resources.values()
        if r.get("Type") == "AWS::Serverless::Function" and "Runtime" in r.get("Properties", {})
    }


def build(out: Path, stage: str = "dev") -> Path:
    """`make package`'s two steps into `out` (`sam.json`, `deployment.zip`), for tests and the bench."""
    root = REQUIREMENTS.parent
    env = {**os.environ, "CLM_STAGE": stage}
    env.setdefault("AWS_DEFAULT_REGION", "cn-north-1")
    chalice = Path(sys.executable).parent / "chalice"
    done = subprocess.run(
        [str(chalice), "package", "--stage", stage, "--merge-template", "infra/resources.json", str(out)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        raise SystemExit(f"chalice package failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    main([str(out / "deployment.zip"), str(out / "sam.json")])
    return out / "deployment.zip"


def runtime_site(dest: Path) -> Path:
    """A directory of what the Lambda runtime provides (the SDK and its dependencies), linked from this
    Python's own: after an unpacked zip on `sys.path`, and with no other site-packages, it stands for
    the runtime's, so a module the zip lacks fails to import as it would on Lambda."""
    dest.mkdir(parents=True, exist_ok=True)
    for module, owners in importlib.metadata.packages_distributions().items():
        if not {canonical(o) for o in owners} & RUNTIME_PROVIDED:
            continue
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        # A package is its folder; a module its file, even one that sets `__path__` once imported
        # (six does, for `six.moves`: its spec then claims submodule search locations).
        target = origin.parent if origin.stem == "__init__" else origin
        link = dest / target.name
        if not link.exists():
            link.symlink_to(target)
    return dest


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m clm.package DEPLOYMENT_ZIP SAM_TEMPLATE")
    archive, template = Path(args[0]), Path(args[1])
    found = runtimes(template)
    if len(found) != 1:
        raise SystemExit(f"expected one Python runtime in {template}, found {sorted(found) or 'none'}")
    report = rebuild(archive, found.pop())
    with zipfile.ZipFile(archive) as z:
        unpacked = sum(e.file_size for e in z.infolist())
    dropped = ", ".join(report.dropped) or "nothing"
    print(
        f"{archive}: {report.left_out} files left out (of {dropped}, which the runtime provides, and "
        f"build-only parts); bytecode added for {report.compiled} modules; "
        f"{archive.stat().st_size / 1e6:.1f} MB, {unpacked / 1e6:.1f} MB unpacked"
    )


if __name__ == "__main__":
    main()
