"""The README's task × command table, generated from the registry and the matrix (one source of truth).

    python -m graftkit.tasks.matrix_doc --write README.md   # regenerate the table in place
    python -m graftkit.tasks.matrix_doc --check README.md   # exit 1 when the README's table is stale
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graftkit.tasks import TASKS
from graftkit.tasks.matrix import MATRIX

BEGIN = "<!-- task-matrix:begin (generated: python -m graftkit.tasks.matrix_doc --write README.md) -->"
END = "<!-- task-matrix:end -->"


def table(classes: list | None = None) -> str:
    """A Markdown table: one row per command or route, one column per task type (and variant)."""
    classes = TASKS.classes() if classes is None else classes
    lines = ["| command or route | " + " | ".join(f"`{c.label()}`" for c in classes) + " |",
             "| --- |" + " :---: |" * len(classes)]
    for entry in MATRIX:
        cells = ["✓" if entry.supported_by(c) else "—" for c in classes]
        name = f"`{entry.name}`" if entry.route else f"`graftkit {entry.name}`" if "." not in entry.name \
            else f"`{entry.name}`"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(readme: str) -> str:
    """``readme`` with the text between the table's markers replaced by the current table."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"the README has no task-matrix markers ({BEGIN} ... {END})")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("readme", type=Path)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the table in place")
    mode.add_argument("--check", action="store_true", help="exit 1 when the table is stale")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    fresh = render(text)
    if args.write:
        args.readme.write_text(fresh, encoding="utf-8")
        return 0
    if fresh != text:
        print(f"{args.readme}: the task × command table is stale; run python -m graftkit.tasks.matrix_doc "
              f"--write {args.readme}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
