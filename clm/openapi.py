"""`make openapi`: write the API's OpenAPI document (what `GET /openapi.json` serves) to a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from chalicelib.api.openapi import document

    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "openapi.json")
    target.write_text(json.dumps(document(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
