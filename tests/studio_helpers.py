"""What the studio's API tests share: a client addressed to 127.0.0.1 and a workspace with one small trained run."""
from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from conftest import run_config, write_csv
from graftkit.apps.studio.app import studio_app

ROWS = [["a wonderful film", "pos"], ["a dull film", "neg"], ["great fun", "pos"], ["boring and bad", "neg"]] * 5
TOKEN = "s3cret-token-of-24-chars"


def client(workspace, **kw) -> TestClient:
    return TestClient(studio_app(workspace, **kw), base_url="http://127.0.0.1")


def workspace_with_run(ws: Path, tiny_model_dir: str, steps: int, plots: bool) -> Path:
    """``ws`` holding data/reviews.csv and the run ``first`` trained on it for ``steps`` steps."""
    from graftkit.train.trainer import train

    data = write_csv(ws / "data" / "reviews.csv", ROWS)
    cfg = run_config(ws, tiny_model_dir, data, name="first", train={"max_steps": steps},
                     eval={"robustness_rows": 0, "calibrate": False, "plots": plots})
    train(cfg, log=lambda m: None)
    return ws
