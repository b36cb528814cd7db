"""Routes of the new-run page: data files (list, upload, preview), the generated form, and saving a config."""
from __future__ import annotations

import os
import re

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from graftkit.apps.studio import forms
from graftkit.apps.studio.preview import preview
from graftkit.apps.studio.state import Studio, studio
from graftkit.apps.studio.workspace import TooLarge, limit_text
from graftkit.errors import ConfigError, GraftkitError

router = APIRouter(prefix="/api")
DATA_KEYS = ("data.train", "data.validation", "data.test")
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@router.get("/data")
def data_files(s: Studio = Depends(studio)) -> dict:
    return {"files": s.workspace.data_files(), "max_upload": s.max_upload}


@router.put("/data/{name}")
async def upload(name: str, request: Request, s: Studio = Depends(studio)) -> dict:
    """The request body is the file (``fetch(url, {method: "PUT", body: file})``); over the limit: 413."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > s.max_upload:
        raise TooLarge(f"upload '{name}' is over the limit of {limit_text(s.max_upload)}")
    path = await s.workspace.save_upload(name, request.stream(), s.max_upload)
    return {"path": path, **preview(s.workspace.path(path))}


@router.get("/data/preview")
def data_preview(path: str, s: Studio = Depends(studio)) -> dict:
    return {"path": path, **preview(s.workspace.path(path))}


@router.get("/form/{task}")
def form(task: str) -> dict:
    return forms.form_schema(task)


class NewRun(BaseModel):
    task: str
    values: dict[str, str] = {}
    launch: bool = False
    check: bool = False  # validate only: nothing is written


def _config_tree(s: Studio, body: NewRun) -> tuple[dict, str]:
    """The form's tree (data paths made relative to configs/) and the config's workspace-relative path."""
    name = (body.values.get("name") or "run").strip()
    if not _RUN_NAME.match(name):
        raise ConfigError(f"name: '{name}' is refused; use letters, digits, '.', '_' or '-' (not first)")
    values, data_paths = dict(body.values), {}
    for key in DATA_KEYS:
        given = (values.pop(key, "") or "").strip()
        if given:
            data_paths[key] = os.path.relpath(s.workspace.path(given), s.workspace.configs)
    return forms.build_tree(body.task, values, data_paths), f"configs/{name}.yaml"


@router.post("/configs")
def save_config(body: NewRun, s: Studio = Depends(studio)) -> dict:
    """Validate the form as ``graftkit train`` would the saved file; then save it (and queue it with ``launch``)."""
    tree, config = _config_tree(s, body)
    cfg = forms.validate(tree, s.workspace.path(config, must_exist=False), config)
    run_dir = s.workspace.relative(cfg.run_dir)
    if body.check:
        return {"config": config, "run": cfg.name, "ok": True}
    if (s.workspace.root / run_dir).exists() or any(j["run_dir"] == run_dir for j in s.store.all()):
        raise GraftkitError(f"name: a run named '{cfg.name}' exists already; choose another name")
    forms.save(tree, s.workspace.path(config, must_exist=False))
    reply = {"config": config, "yaml": s.workspace.path(config).read_text(encoding="utf-8"), "run": cfg.name}
    if body.launch:
        reply["job"] = s.store.add(config, cfg.name, run_dir)
        s.runner.wake()
    return reply
