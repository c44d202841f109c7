"""What every benchmark script shares: rewriting its own section of BENCHMARKS.md.

The scripts run as ``python benchmarks/NAME.py`` from the repository root, so this module is
imported as ``report`` (the script's folder is first on ``sys.path``).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def write_section(path: Path, text: str) -> None:
    """Replace the section that ``text`` starts (its first line, '## Title') up to the next
    '## ' heading, or append it; every other section of ``path`` is kept."""
    title = text.splitlines()[0]
    if not title.startswith("## "):
        raise ValueError(f"a section must start with a '## ' heading, got {title!r}")
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n")


def write_json(path: Path | None, result: dict) -> None:
    """Save a benchmark's result as indented JSON at ``path`` (its folder made), if given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
