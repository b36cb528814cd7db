"""The ner task's part of run-folder format steps (graftkit/modeling/run_format.py)."""
from __future__ import annotations

#: format 1 kept the file settings under ``data:``; format 2 keeps them here, ``scheme`` renamed
#: ``file_scheme`` (it collided with ``task.tag_scheme``)
V1_DATA_KEYS = {"tag_column": "tag_column", "scheme": "file_scheme", "strip_segment_digit": "strip_segment_digit",
                "repair_tags": "repair_tags"}


def file_settings_join_the_task(data: dict, task: dict, notes: list[str]) -> None:
    """Format 1 → 2: ``data.tag_column``, ``data.scheme``, ``data.strip_segment_digit`` and ``data.repair_tags``
    move to the task's section (a value already set there wins)."""
    for old, new in V1_DATA_KEYS.items():
        if old not in data:
            continue
        value = data.pop(old)
        if new in task:
            notes.append(f"data.{old} is ignored: the ner setting is task.{new} now, which is set")
        else:
            task[new] = value
            notes.append(f"data.{old} is task.{new} now; its value moved there (write it there)")


#: format version → this task's step from it to the next
MIGRATIONS = {1: file_settings_join_the_task}
