"""Share a finished run folder on the Hugging Face Hub (``graftkit push RUN --repo-id NAME``).

The run folder is already a Hub model repository: weights (safetensors), tokenizer, config and
a README model card with metadata (task, dataset, metrics). Pushing refuses a run without
``COMPLETE`` (a half-trained model) and a run holding anything that looks like a secret (a
``.env`` file, a private key, an access token inside a text file): once public, a leaked token
stays leaked. Checkpoints, logs and staging folders are not uploaded.
"""
from __future__ import annotations

import re
from pathlib import Path

from graftkit.errors import GraftkitError
from graftkit.modeling.run_folder import RunFolder

SECRET_NAMES = re.compile(r"(^\.env(\..*)?$|^id_(rsa|dsa|ecdsa|ed25519)$|\.(pem|key|p12|pfx)$|"
                          r"^credentials(\.json)?$|^\.netrc$|^\.git-credentials$|token$)", re.IGNORECASE)
SECRET_CONTENT = {
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "OpenAI-style API key": re.compile(r"\bsk-[A-Za-z0-9_-]{32,}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
}
TEXT_SUFFIXES = {".json", ".yaml", ".yml", ".txt", ".md", ".csv", ".jsonl", ".html", ".cfg", ".ini", ".py",
                 ".env", ".sh", ".toml", ""}
MAX_SCAN_BYTES = 20_000_000


def _ignored(rel: str) -> bool:
    """Never uploaded: resumable training state, TensorBoard logs, half-published files, lock files (graftkit/io.py),
    bulky predictions."""
    parts = rel.split("/")
    lock = parts[-1].startswith(".") and parts[-1].endswith(".lock")
    return parts[0] in ("checkpoints", "logs") or parts[0].startswith(".staging") or ".tmp-" in parts[-1] or lock \
        or (rel.startswith("eval/") and rel.endswith("predictions.jsonl"))


def files_to_push(run_dir: Path) -> list[Path]:
    """The files ``push`` uploads (everything but checkpoints, logs and staging files)."""
    return sorted(p for p in run_dir.rglob("*") if p.is_file() and not _ignored(p.relative_to(run_dir).as_posix()))


def find_secrets(run_dir: Path) -> list[str]:
    """``"file: reason"`` for each file that looks like, or holds, a credential."""
    found = []
    for path in files_to_push(run_dir):
        rel = path.relative_to(run_dir).as_posix()
        if SECRET_NAMES.search(path.name):
            found.append(f"{rel}: its name is that of a credential file")
            continue
        if path.suffix.lower() not in TEXT_SUFFIXES or path.stat().st_size > MAX_SCAN_BYTES:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        for what, pattern in SECRET_CONTENT.items():
            m = pattern.search(text)
            if m:
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{rel}, line {line}: looks like a {what}")
                break
    return found


def check_pushable(run_dir: str | Path) -> list[str]:
    """The files of a finished run folder that ``push_run`` uploads, after its checks (no network).

    Raises:
        GraftkitError: the run is unfinished, or holds what looks like a secret.
    """
    run = RunFolder(run_dir).require_model()
    if not run.is_complete:
        raise GraftkitError(f"{run.path} has no COMPLETE marker: training or evaluation did not finish, so its "
                            "model and card may be partial. Finish it (graftkit train CONFIG --resume) first.")
    secrets = find_secrets(run.path)
    if secrets:
        raise GraftkitError(f"refusing to push {run.path}: it holds what looks like secrets:\n  - "
                            + "\n  - ".join(secrets) + "\nRemove them (and revoke any real credential) first.")
    return [p.relative_to(run.path).as_posix() for p in files_to_push(run.path)]


def push_run(run_dir: str | Path, repo_id: str, token: str | None = None, private: bool = False,
             revision: str | None = None, commit_message: str | None = None, api=None) -> str:
    """Upload a finished run folder to the Hub model repository ``repo_id`` (created when missing).

    Args:
        run_dir: a run folder with ``COMPLETE``.
        repo_id: ``user/name`` or ``org/name``.
        token: a Hub token (default: the logged-in one, or ``HF_TOKEN``).
        private: create the repository as private.
        revision: branch to push to (default: main).
        commit_message: default "Upload graftkit run <name>".
        api: a ``huggingface_hub.HfApi`` (tests pass one with a fake endpoint).

    Returns:
        The URL of the commit.
    """
    from huggingface_hub import HfApi  # lazy: only pushing needs the Hub client

    files = check_pushable(run_dir)  # exactly what was scanned
    run = RunFolder(run_dir)
    api = api or HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(run.path), repo_type="model", revision=revision,
                             commit_message=commit_message or f"Upload graftkit run {run.path.name}",
                             allow_patterns=files)
    return str(getattr(info, "commit_url", info))
