"""Shared reporting helpers (plots) that tasks, evaluation and apps all use; below the task layer."""
