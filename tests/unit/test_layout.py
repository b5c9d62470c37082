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


def offenders(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        file: sorted(name for name in names if name.split(".")[0] in forbidden or name.startswith(forbidden))
        for file, names in imported_modules(package).items()
        if any(name.split(".")[0] in forbidden or name.startswith(forbidden) for name in names)
    }


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
