"""What the small benchmarks share when they finish: the JSON report written, and its rows
printed as a fixed-width table."""

from __future__ import annotations

import json
import os


def write_and_print(path: str, report: dict, title: str, columns: list[tuple[str, str, str]]):
    """Writes ``report`` to ``path`` as JSON and prints ``title`` and a table of
    ``report["rows"]``; ``columns``: (header, row key, format spec with its width)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\n{title}")
    widths = [int("".join(ch for ch in spec.split(".")[0] if ch.isdigit()) or 0)
              for _, _, spec in columns]
    print("".join(f"{h:<{w}}" if spec.startswith("<") else f"{h:>{w}}"
                  for (h, _, spec), w in zip(columns, widths)))
    for r in report["rows"]:
        print("".join(format(r[key], spec) for _, key, spec in columns))
