"""The service under faults (issue 24, defects 1-3): `graftkit serve` keeps GRAFTKIT_SERVE_* settings unless an
option is given; a hung model call is bounded (504, /readyz 503 until it returns) and a model that always fails
is not called 2n times; the generation batcher is bounded (503), belongs to the service (a reload closes the
old one, shutdown drains it), and so does the explainer."""
from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import httpx
import pytest
from deploy_helpers import classifier_run
from generation_helpers import PAIRS, one_step_decoder_run

from graftkit.serve import ServeConfig, create_app
from graftkit.serve.batching import MicroBatcher, ModelTimeout

KEY = "faults-key-0123456789"
GOOD = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    return classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)


@pytest.fixture(scope="module")
def gen_run(tmp_path_factory):
    return one_step_decoder_run(tmp_path_factory.mktemp("gen-faults"), {"max_new_tokens": 4})


@contextlib.asynccontextmanager
async def started(app):
    """``app`` with its lifespan running, and an HTTP client that calls it in this event loop."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=GOOD, timeout=30) as c:
            yield c


async def until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# defect 1: the CLI overrides only what was given; options and help come from ServeConfig


def test_cli_serve_keeps_environment_settings_unless_given(run, monkeypatch):
    import typer
    import uvicorn
    from typer.testing import CliRunner

    from graftkit.cli import app

    started_with = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started_with.append((app, options)))
    monkeypatch.delenv("GRAFTKIT_API_KEYS", raising=False)
    for name, value in {"PORT": "8123", "LOG_LEVEL": "warning", "MAX_BATCH_SIZE": "5", "REQUEST_TIMEOUT_S": "7",
                        "ALLOW_ANONYMOUS": "true", "MODEL_TIMEOUT_S": "9"}.items():
        monkeypatch.setenv(f"GRAFTKIT_SERVE_{name}", value)
    res = CliRunner().invoke(app, ["serve", str(run)])
    assert res.exit_code == 0, res.output
    served, options = started_with.pop()
    s = served.state.service.settings
    assert (options["port"], options["log_level"]) == (8123, "warning")
    assert (s.max_batch_size, s.request_timeout_s, s.model_timeout_s, s.allow_anonymous) == (5, 7.0, 9.0, True)
    res = CliRunner().invoke(app, ["serve", str(run), "--port", "9001", "--max-batch-size", "3"])
    assert res.exit_code == 0, res.output
    served, options = started_with.pop()
    assert options["port"] == 9001 and served.state.service.settings.max_batch_size == 3
    assert served.state.service.settings.request_timeout_s == 7.0  # not given: still the environment's
    # one source: every settings option has no CLI default and ServeConfig's description as its help
    params = {p.name: p for p in typer.main.get_command(app).commands["serve"].params}
    fields = ServeConfig.model_fields
    for name in ("port", "host", "max_queue", "request_timeout_s", "model_timeout_s", "generate_max_queue"):
        assert params[name].default is None
        assert params[name].help.lower().startswith(fields[name].description.lower())
        assert f"GRAFTKIT_SERVE_{name.upper()}" in params[name].help


# defect 2: a hung model call is bounded; an always-failing model is not called 2n times


def test_hung_model_call_gives_504_and_not_ready_until_it_returns(run):
    app = create_app(run, ServeConfig(api_keys=[KEY], model_timeout_s=0.3, rate_limit_burst=1000,
                                      log_level="error"))
    release = threading.Event()

    async def scenario():
        async with started(app) as c:
            batcher = app.state.service.batcher
            inner = batcher.predict_batch
            batcher.predict_batch = lambda xs: (release.wait(10), inner(xs))[1]
            hung = await c.post("/v1/predict", json={"texts": ["i loved every minute"]})
            ready_while_stuck = (await c.get("/readyz")).status_code
            refused = await c.post("/v1/predict", json={"texts": ["bad and tedious"]})
            release.set()
            await until(lambda: app.state.service.ready)
            after = await c.post("/v1/predict", json={"texts": ["bad and tedious"]})
            return hung, ready_while_stuck, refused, after, (await c.get("/readyz")).status_code

    t0 = time.perf_counter()
    hung, ready_while_stuck, refused, after, ready_after = asyncio.run(scenario())
    assert hung.status_code == 504 and hung.json()["limit"] == {"name": "model_timeout_s", "value": 0.3}
    assert ready_while_stuck == 503
    assert refused.status_code == 503 and "model_timeout_s" in refused.json()["error"]
    assert after.status_code == 200 and ready_after == 200
    assert time.perf_counter() - t0 < 5  # bounded by model_timeout_s, not by the hung call


def test_always_failing_model_is_not_called_2n_times():
    calls = []

    def always_fails(xs):
        calls.append(len(xs))
        raise ValueError("broken model")

    async def scenario():
        b = MicroBatcher(always_fails, max_batch_size=8, max_wait_ms=200)
        b.start()
        done = await asyncio.gather(*(b.submit([f"t{i}"]) for i in range(8)), return_exceptions=True)
        await b.close()
        return done

    done = asyncio.run(scenario())
    assert all(isinstance(d, ValueError) for d in done)
    assert calls[0] == 8 and len(calls) <= 1 + 2 * 3  # an unbounded bisection makes 15 calls (2n - 1)


def test_model_timeout_is_not_bisected():
    calls = []
    release = threading.Event()

    def hang(xs):
        calls.append(len(xs))
        release.wait(10)
        return [{"echo": x} for x in xs]

    async def scenario():
        b = MicroBatcher(hang, max_batch_size=8, max_wait_ms=200, call_timeout_s=0.2)
        b.start()
        done = await asyncio.gather(*(b.submit([f"t{i}"]) for i in range(8)), return_exceptions=True)
        stuck = b.stuck
        release.set()
        await asyncio.sleep(0.05)
        after = await b.submit(["next"])  # the call returned: the batcher works again
        await b.close()
        return done, stuck, after

    done, stuck, after = asyncio.run(scenario())
    assert all(isinstance(d, ModelTimeout) for d in done) and stuck
    assert calls == [8, 1] and after == [{"echo": "next"}]  # the hung batch was not retried in halves


# defect 3: the generation batcher is bounded, owned by the service, closed by reload, drained at shutdown


@contextlib.contextmanager
def held_generation(monkeypatch):
    """Generation blocks until the yielded event is set; ``running`` is set while one is blocked."""
    from graftkit.serve import gen_batching

    real, release, running = gen_batching.generate_ids, threading.Event(), threading.Event()

    def blocked(*args, **kwargs):
        running.set()
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(gen_batching, "generate_ids", blocked)
    try:
        yield release, running
    finally:
        release.set()


def test_generate_queue_is_bounded(gen_run, monkeypatch):
    app = create_app(gen_run, ServeConfig(api_keys=[KEY], generate_max_queue=2, max_batch_size=1,
                                          generate_wait_ms=0, rate_limit_burst=1000, log_level="error",
                                          generate_batching="static"))  # the continuous one: test_generation_continuous

    async def scenario(release, running):
        async with started(app) as c:
            post = lambda: c.post("/v1/generate", json={"prompt": PAIRS[0][0]})  # noqa: E731
            first = asyncio.create_task(post())
            await until(running.is_set)
            queued = [asyncio.create_task(post()) for _ in range(2)]
            await until(lambda: app.state.service.gen_batcher.jobs.qsize() == 2)
            over = await post()
            release.set()
            return over, [r.status_code for r in await asyncio.gather(first, *queued)]

    with held_generation(monkeypatch) as (release, running):
        over, accepted = asyncio.run(scenario(release, running))
    assert over.status_code == 503 and over.json()["limit"] == {"name": "generate_max_queue", "value": 2}
    assert int(over.headers["Retry-After"]) >= 1
    assert accepted == [200, 200, 200]


def test_reload_closes_old_generation_batcher_and_shutdown_drains(gen_run, monkeypatch):
    app = create_app(gen_run, ServeConfig(api_keys=[KEY], max_batch_size=1, generate_wait_ms=0,
                                          rate_limit_burst=1000, log_level="error", generate_batching="static"))
    service = app.state.service

    def generate_threads() -> int:
        return sum(t.name == "graftkit-generate" and t.is_alive() for t in threading.enumerate())

    async def scenario(release, running):
        async with started(app) as c:
            release.set()
            assert (await c.post("/v1/generate", json={"prompt": "red"})).status_code == 200
            threads = generate_threads()
            await service.reload()
            assert (await c.post("/v1/generate", json={"prompt": "red"})).status_code == 200
            assert generate_threads() == threads  # the old batcher's thread, holding the old model, has ended
            assert service.gen_batcher.generator is service.predictor
            release.clear()
            running.clear()
            inflight = [asyncio.create_task(c.post("/v1/generate", json={"prompt": p})) for p in ("red", "blue")]
            await until(lambda: running.is_set() and service.gen_batcher.jobs.qsize() == 1)
            batcher = service.gen_batcher
            threading.Timer(0.3, release.set).start()
        # the lifespan has ended: both requests, the running and the queued one, were finished first
        return [r.status_code for r in await asyncio.gather(*inflight)], batcher

    with held_generation(monkeypatch) as (release, running):
        drained, batcher = asyncio.run(scenario(release, running))
    assert drained == [200, 200] and not batcher.thread.is_alive() and batcher.closing


def test_explainer_belongs_to_the_service(run):
    app = create_app(run, ServeConfig(api_keys=[KEY], explain_max_steps=8, rate_limit_burst=1000,
                                      log_level="error"))
    service = app.state.service
    body = {"text": "i loved every minute", "steps": 8}

    async def scenario():
        async with started(app) as c:
            assert (await c.post("/v1/explain", json=body)).status_code == 200
            first = service.explainer[1]
            await service.reload()  # the same path again (e.g. a symlink moved): the old explainer must go
            dropped = service.explainer is None
            assert (await c.post("/v1/explain", json=body)).status_code == 200
            rebuilt = service.explainer[1] is not first
        return dropped, rebuilt, service.explainer

    dropped, rebuilt, after_shutdown = asyncio.run(scenario())
    assert dropped and rebuilt and after_shutdown is None

@pytest.mark.parametrize("command, factory", [("monitor", "create_monitor_app"), ("assistant", "create_assistant_app")])
def test_app_services_keep_environment_settings_unless_given(command, factory, monkeypatch, tmp_path):
    import uvicorn
    from typer.testing import CliRunner

    from graftkit.cli import app
    from graftkit.serve import apps

    started_with = []
    monkeypatch.setattr(uvicorn, "run", lambda served, **options: started_with.append((served, options)))
    monkeypatch.setattr(apps, factory, lambda cfg, settings: settings)  # the settings the app would get
    loader = "graftkit.apps.monitor.load_monitor_config" if command == "monitor" else \
        "graftkit.apps.assistant.load_assistant_config"
    monkeypatch.setattr(loader, lambda path: path)
    monkeypatch.setenv("GRAFTKIT_SERVE_PORT", "8124")
    monkeypatch.setenv("GRAFTKIT_SERVE_PUBLIC_METRICS", "true")
    res = CliRunner().invoke(app, [command, "serve", str(tmp_path / "app.yaml")])
    assert res.exit_code == 0, res.output
    settings, options = started_with.pop()
    assert options["port"] == 8124 and settings.port == 8124 and settings.public_metrics is True
    res = CliRunner().invoke(app, [command, "serve", str(tmp_path / "app.yaml"), "--port", "9002", "--allow-anonymous"])
    assert res.exit_code == 0, res.output
    settings, options = started_with.pop()
    assert options["port"] == 9002 and settings.allow_anonymous is True and settings.public_metrics is True
