"""Property-based API test: schemathesis generates valid and invalid requests from the OpenAPI
document of a live server (uvicorn on 127.0.0.1); no request may produce a 5xx."""
from __future__ import annotations

import pytest

from deploy_helpers import classifier_run, serving
from graftkit.serve import ServeConfig, create_app

KEY = "schema-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    run = classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)
    app = create_app(run, ServeConfig(api_keys=[KEY], max_texts=8, max_chars=200, max_body_bytes=4096,
                                      rate_limit_burst=100_000, log_level="warning"))
    with serving(app) as url:
        yield url


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_openapi_fuzz_finds_no_server_errors(server, mode):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    seen: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode == "negative" and operation.method.upper() == "GET":
            continue  # our GET endpoints take no input, so there is nothing invalid to generate
        strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case):
            for headers in ({"X-API-Key": KEY}, {}):  # with and without a key
                response = case.call(base_url=server, headers=headers)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                assert response.status_code < 500, (case.as_curl_command(), response.text[:500])

        check()
    if mode == "positive":
        assert seen.get(200)  # valid requests with a key succeed
    assert seen.get(422) or seen.get(401)
