"""Security of the service: key guessing is rate-limited per address, weak keys are refused, /metrics and
/v1/model need a key, rate limits hold across processes through Redis, HTTPS, limits stated at startup."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import socket
import subprocess
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from deploy_helpers import classifier_run, serving
from graftkit.errors import ConfigError
from graftkit.serve import ServeConfig, create_app

KEY = "security-key-0123456789"
GOOD = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    return classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)


def _client(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def test_brute_force_is_rate_limited_per_address(run, caplog):
    """200 wrong keys from one address meet 429 after the threshold; the right key from elsewhere works."""
    app = create_app(run, ServeConfig(api_keys=[KEY], auth_failures_per_minute=10, rate_limit_burst=1000))
    guesses = [f"guess-{i:04d}-abcdefghijkl" for i in range(200)]

    async def attack():
        async with app.router.lifespan_context(app):
            async with _client(app, "10.0.0.66") as attacker, _client(app, "10.0.0.7") as user:
                codes = [(await attacker.post("/v1/predict", json={"texts": ["x"]},
                                              headers={"X-API-Key": g})).status_code for g in guesses]
                blocked = await attacker.post("/v1/predict", json={"texts": ["x"]}, headers=GOOD)
                legit = await user.post("/v1/predict", json={"texts": ["x"]}, headers=GOOD)
        return codes, blocked, legit

    with caplog.at_level(logging.WARNING, logger="graftkit.serve"):
        codes, blocked, legit = asyncio.run(attack())
    print(f"\nbrute force: {codes.count(403)} x 403 then {codes.count(429)} x 429 of {len(codes)} wrong keys")
    assert codes[:10] == [403] * 10 and codes[10:] == [429] * 190
    assert blocked.status_code == 429  # even the right key: the address is locked out for the window
    body = blocked.json()
    assert body["limit"] == {"name": "auth_failures_per_minute", "value": 10}
    assert 1 <= body["retry_after_s"] <= 60 and blocked.headers["Retry-After"] == str(body["retry_after_s"])
    assert legit.status_code == 200
    logged = "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records)
    assert "auth_failed" in logged and "10.0.0.66" in logged
    assert not any(g in logged for g in guesses)  # failed keys are never logged


def test_weak_keys_refused_and_key_file_permissions(run, tmp_path, caplog):
    with pytest.raises(ConfigError, match="has 9 characters; use at least 16"):
        create_app(run, ServeConfig(api_keys=["short-key"]))
    keys = tmp_path / "keys.txt"
    keys.write_text("tiny\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"keys.txt, line 1: an API key has 4 characters"):
        create_app(run, ServeConfig(api_keys_file=keys))
    keys.write_text(KEY + "\n", encoding="utf-8")
    keys.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="graftkit.serve"):
        create_app(run, ServeConfig(api_keys_file=keys))
    assert "readable by other users" in caplog.text and "chmod 600" in caplog.text
    caplog.clear()
    keys.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="graftkit.serve"):
        create_app(run, ServeConfig(api_keys_file=keys))
    assert "readable by other users" not in caplog.text


def test_metrics_and_model_need_a_key_unless_public(run):
    with TestClient(create_app(run, ServeConfig(api_keys=[KEY]))) as c:
        assert c.get("/metrics").status_code == 401 and c.get("/v1/model").status_code == 401
        assert c.get("/metrics", headers=GOOD).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
    with TestClient(create_app(run, ServeConfig(api_keys=[KEY], public_metrics=True))) as c:
        assert c.get("/metrics").status_code == 200 and c.get("/v1/model").status_code == 401


def test_startup_line_states_the_limits(run, caplog):
    app = create_app(run, ServeConfig(api_keys=[KEY], rate_limit_per_minute=321, max_texts=7, max_queue=99))
    with caplog.at_level(logging.INFO, logger="graftkit.serve"), TestClient(app):
        pass
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("limits:")]
    assert len(lines) == 1
    for part in ("321/minute", "60/second", "max_texts 7", "max_chars 5000", "max_body_bytes 1000000",
                 "max_batch_size 32", "max_queue 99", "10/minute per client address"):
        assert part in lines[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url():
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; scripts/install.sh does)")
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_rate_limit_shared_through_redis(run, redis_url):
    """Two app instances (as two workers or replicas would be) count one key against one window."""
    settings = ServeConfig(api_keys=[KEY], rate_limit_per_minute=3, rate_limit_storage=redis_url)
    first, second = create_app(run, settings), create_app(run, settings)
    with TestClient(first) as a, TestClient(second) as b:
        codes = [c.post("/v1/predict", json={"texts": ["x"]}, headers=GOOD).status_code for c in (a, b, a, b)]
    assert codes == [200, 200, 200, 429]
    local = ServeConfig(api_keys=[KEY], rate_limit_per_minute=3)  # memory:// storage: each process on its own
    with TestClient(create_app(run, local)) as a, TestClient(create_app(run, local)) as b:
        codes = [c.post("/v1/predict", json={"texts": ["x"]}, headers=GOOD).status_code for c in (a, b, a, b)]
    assert codes == [200] * 4
    with pytest.raises(ConfigError, match="cannot reach"):
        with TestClient(create_app(run, ServeConfig(api_keys=[KEY], rate_limit_storage=
                                                    f"redis://127.0.0.1:{_free_port()}"))):
            pass


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_https_with_a_self_signed_certificate(run, tmp_path):
    cert, key = _self_signed(tmp_path)
    app = create_app(run, ServeConfig(api_keys=[KEY], log_level="warning"))
    with serving(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        https = url.replace("http://127.0.0.1", "https://localhost")
        r = httpx.post(f"{https}/v1/predict", json={"texts": ["i loved every minute"]}, headers=GOOD, verify=str(cert))
        assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "pos"
        with pytest.raises(httpx.ConnectError):  # an unknown certificate is refused by a verifying client
            httpx.get(f"{https}/healthz")


def test_uvicorn_log_lines_are_masked(run, tmp_path):
    from uvicorn.logging import AccessFormatter

    create_app(run, ServeConfig(api_keys=[KEY]))  # installs the masking filter on uvicorn's loggers
    out = tmp_path / "uvicorn.log"
    handlers = {"uvicorn.access": logging.FileHandler(out), "uvicorn.error": logging.FileHandler(out)}
    handlers["uvicorn.access"].setFormatter(AccessFormatter())  # uvicorn's own, reading the record's args
    for name, handler in handlers.items():
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET",
                                                 "/x?mail=jane.doe@example.com", "1.1", 200)
        try:
            raise ValueError("bad input: call +44 20 7946 0958")
        except ValueError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    finally:
        for name, handler in handlers.items():
            logging.getLogger(name).removeHandler(handler)
            handler.close()
    text = out.read_text(encoding="utf-8")
    assert "/x?mail=[EMAIL]" in text and "jane.doe" not in text
    assert "bad input: call [PHONE]" in text and "7946" not in text
    assert "127.0.0.1:5" in text  # client addresses stay (they are what the brute-force log needs)
