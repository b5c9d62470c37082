"""What each package may import: the Lambda zip carries only what Lambdas run, and rules stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module a package's files import (absolute names), by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def reaches(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


def offenders(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        file: sorted(name for name in names if reaches(name, forbidden))
        for file, names in imported_modules(package).items()
    }
    return {file: names for file, names in found.items() if names}


def test_nothing_chalice_zips_reaches_for_the_local_tools() -> None:
    """Chalice zips `chalicelib/` whole: the CLI, the local stack and moto must not be needed there."""
    assert imported_modules("chalicelib"), "the scan found no modules"
    assert offenders("chalicelib", ("clm", "moto", "chalice.local", "chalice.cli")) == {}
    assert not (ROOT / "chalicelib" / "local").exists()
    assert not (ROOT / "chalicelib" / "cli.py").exists()


def test_domain_rules_import_no_aws_and_no_storage() -> None:
    forbidden = ("boto3", "botocore", "pynamodb", "aws_lambda_powertools", "chalice", "chalicelib.store")
    forbidden += ("chalicelib.aws", "chalicelib.service", "chalicelib.api")
    assert offenders("chalicelib/domain", forbidden) == {}


def test_http_lives_in_the_api_only() -> None:
    """Use cases refuse in their own words (`chalicelib.errors`); only `api/` knows HTTP."""
    for package in ("chalicelib/service", "chalicelib/store", "chalicelib/inbound", "chalicelib/events"):
        assert offenders(package, ("chalice", "chalicelib.api")) == {}, package


def test_every_refusal_has_its_own_status() -> None:
    from chalicelib import errors
    from chalicelib.api import problems

    kinds = [k for k in vars(errors).values() if isinstance(k, type) and issubclass(k, errors.Refusal)]
    assert len(kinds) > 5
    for kind in kinds:
        if kind is errors.Refusal:
            continue
        refusal = kind("route") if kind in (errors.NotFound, errors.Unauthenticated) else kind("why")
        status, title = problems.status_of(refusal)
        assert 400 <= status < 600 and status != 500, kind
        assert problems.body(refusal)["status"] == status and problems.body(refusal)["title"] == title
    statuses = [problems.status_of(kind("x"))[0] for kind in kinds if kind is not errors.Refusal]
    assert len(set(statuses)) == len(statuses), "two refusals answer alike"
