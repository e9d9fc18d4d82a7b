"""The REST API against a real uvicorn server on localhost (the tiny system): routes, options, schema, metrics.

One server serves the module; the bad-input and limit tests are in ``test_rest_limits.py``.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

pytest.importorskip("fastapi", reason="the serving extra is not installed (pip install -e '.[serving]')")
httpx = pytest.importorskip("httpx")

from redheart.serving.rest_models import analysis_components  # noqa: E402
from redheart.serving.service import AnalysisService  # noqa: E402
from redheart.serving.settings import ServingSettings  # noqa: E402
from redheart.serving.testing import LocalServer  # noqa: E402

KO = "친구와의 약속을 어기고 야근을 했다, 하지만 팀을 도왔다"
EN = "I lied to my friend, but it spared her feelings."
SCHEMA = AnalysisService.output_schema()


@pytest.fixture(scope="module")
def server(tiny_system, face_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("rest") / "requests.jsonl"
    settings = ServingSettings(model=str(tiny_system), request_log=str(log), face_model=face_model)
    with LocalServer(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as session:
        yield session


def assert_close(got, want, path="") -> None:
    """Equal structure, numbers equal up to float noise of a different batch composition."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-5), path
    else:
        assert got == want, path


def monitor(client) -> dict:
    return client.get("/v1/monitor").json()


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["class"] == "RedHeartModel"


def test_analyze_one_text_follows_the_schema_and_echoes_the_request_id(client):
    response = client.post(
        "/v1/analyze", json={"text": KO, "top_k": 2}, headers={"X-Request-ID": "one-text-1"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "one-text-1"
    body = response.json()
    assert body["request_id"] == "one-text-1" and "results" not in body
    jsonschema.validate(body["result"], SCHEMA)
    assert len(body["result"]["analysis"]["emotion"]["top"]) == 2
    assert len(body["result"]["analysis"]["emotion"]["kote_top"]) == 2


def test_analyze_a_list_with_options(client):
    response = client.post("/v1/analyze", json={"texts": [KO, EN], "top_k": 1, "threshold": 0.0})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 2
    for result in results:
        jsonschema.validate(result, SCHEMA)
        assert len(result["analysis"]["emotion"]["top"]) == 1
    assert results[0]["metadata"]["language"]["detected"] == "ko"
    assert results[1]["metadata"]["language"]["detected"] == "en"
    everything = client.post("/v1/analyze", json={"text": EN, "top_k": None, "threshold": 1.0}).json()[
        "result"
    ]
    assert everything["analysis"]["emotion"]["top"] == []  # no probability reaches 1


def test_a_bad_item_is_reported_in_place_and_changes_no_other_result(client):
    alone = client.post("/v1/analyze", json={"text": EN}).json()["result"]
    response = client.post("/v1/analyze", json={"texts": [EN, "   ", KO, "\u200b"]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[1]["error"]["code"] == "invalid_text" and results[1]["error"]["index"] == 1
    assert "empty or whitespace" in results[1]["error"]["message"]
    assert results[3]["error"]["index"] == 3
    assert_close(results[0]["analysis"], alone["analysis"])
    assert_close(results[0]["integrated"], alone["integrated"])


def test_alternatives_truncation_and_explain(client):
    regret = client.post("/v1/analyze", json={"text": EN, "alternatives": ["I told my friend the truth."]})
    assert regret.status_code == 200
    assert regret.json()["result"]["analysis"]["regret"]["alternatives"]
    long_text = " ".join([EN] * 40)
    first = client.post("/v1/analyze", json={"text": long_text, "truncation": "first"}).json()["result"]
    assert first["metadata"]["chunks"]["truncated"] is True and first["metadata"]["chunks"]["count"] == 1
    chunked = client.post("/v1/analyze", json={"text": long_text}).json()["result"]
    assert chunked["metadata"]["chunks"]["count"] > 1
    refused = client.post("/v1/analyze", json={"texts": [long_text, EN], "truncation": "error"}).json()[
        "results"
    ]
    assert refused[0]["error"]["code"] == "invalid_text" and "analysis" in refused[1]
    explained = client.post("/v1/analyze", json={"text": EN, "explain": {"max_clauses": 3}})
    assert explained.status_code == 200
    result = explained.json()["result"]
    jsonschema.validate(result, SCHEMA)
    assert "explanation" in result["analysis"]["surd"]


def test_streams(client):
    texts = ["a good day with friends", "a bad day at work", "happy again", "sad and tired", "fine"]
    response = client.post("/v1/streams", json={"texts": texts, "timestamps": [0, 1, 2, 4, 5]})
    assert response.status_code == 200
    stream = response.json()["stream"]
    assert stream["n_items"] == 5 and "smoothed" in stream and "surd" in stream
    dates = ["2024-01-01T09:00:00", "2024-01-02T09:00:00", "2024-01-03T09:00:00"]
    assert client.post("/v1/streams", json={"texts": texts[:3], "timestamps": dates}).status_code == 200
    bad = client.post("/v1/streams", json={"texts": texts, "timestamps": [0, 1, 1, 2, 3]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "timestamps"
    unknown = client.post("/v1/streams", json={"texts": texts, "stream_options": {"no_such_option": 1}})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "stream_options"
    assert "no_such_option" in unknown.json()["error"]["message"]


def test_concurrent_clients_share_model_calls(client):
    before = monitor(client)["stages"]["model"]["count"]
    texts = [f"{EN} ({i})" for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda t: client.post("/v1/analyze", json={"text": t}), texts))
    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["request_id"] for r in responses}) == 16
    calls = monitor(client)["stages"]["model"]["count"] - before
    assert calls < 16, f"16 concurrent texts took {calls} model calls: the orchestrator did not batch them"


def test_metrics_expose_stage_histograms_counters_and_identity(client):
    client.post("/v1/analyze", json={"text": KO})
    client.post("/v1/analyze", json={"text": " "})  # an error to count
    text = client.get("/metrics").text
    for stage in ("queue", "encoders", "model", "postprocess", "request"):
        assert f'redheart_stage_seconds_bucket{{le="0.1",stage="{stage}"}}' in text, stage
    for name in (
        "redheart_http_request_seconds_bucket",
        "redheart_requests_total",
        "redheart_texts_total",
        'redheart_errors_total{kind="invalid_text"}',
        "redheart_pending_texts",
        "redheart_feature_cache_hits",
        "redheart_model_info",
        "redheart_encoder_info{model_name_or_path=",
    ):
        assert name in text, name


def test_monitor_page_and_data(client):
    page = client.get("/monitor")
    assert page.status_code == 200 and "<svg" in page.text
    assert "<script src" not in page.text and "https://" not in page.text  # self-contained, no CDN
    data = monitor(client)
    assert data["ready"] is True
    assert {"stages", "cache", "pending_texts", "totals", "model"} <= set(data)


def test_cors_is_off_by_default(client):
    response = client.post("/v1/analyze", json={"text": EN}, headers={"Origin": "http://example.test"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/v1/analyze",
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_a_photo_with_the_text_adds_a_happy_face(client, astronaut_base64):
    response = client.post("/v1/analyze", json={"text": EN, "image": astronaut_base64})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    jsonschema.validate(result, SCHEMA)
    (face,) = result["analysis"]["emotion"]["face"]
    assert face["top"]["label"] == "happy" and face["top"]["score"] > 0.9
    assert result["integrated"]["face_effect"]["overall_sentiment"] > 0
    assert result["metadata"]["image"]["format"] == "PNG"
    assert 'redheart_stage_seconds_count{stage="face"}' in client.get("/metrics").text


def test_a_bad_image_is_a_4xx_naming_the_field_and_the_server_answers_on(client, astronaut_png):
    def refused(body: dict, status: int, code: str) -> dict:
        response = client.post("/v1/analyze", json=body)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["field"] == "image", error
        return error

    assert (
        "not valid base64"
        in refused({"text": EN, "image": "not base64 at all!"}, 422, "invalid_image")["message"]
    )
    truncated = "data:image/png;base64," + base64.b64encode(astronaut_png[:5000]).decode()
    assert (
        "corrupt or truncated PNG"
        in refused({"text": EN, "image": truncated}, 422, "invalid_image")["message"]
    )
    assert (
        "expected one of JPEG"
        in refused(
            {"text": EN, "image": base64.b64encode(b"just some bytes").decode()}, 422, "invalid_image"
        )["message"]
    )
    wrong_shape = client.post("/v1/analyze", json={"texts": [EN], "image": "aGk="})
    assert wrong_shape.status_code == 422 and "`images`" in wrong_shape.json()["error"]["message"]
    assert client.post("/v1/analyze", json={"text": EN}).status_code == 200


def test_in_a_list_a_bad_image_fails_only_its_item(client, astronaut_base64):
    alone = client.post("/v1/analyze", json={"text": KO}).json()["result"]
    images = ["data:image/png;base64," + astronaut_base64, "bm90IGFuIGltYWdl", None]
    response = client.post("/v1/analyze", json={"texts": [EN, EN, KO], "images": images})
    assert response.status_code == 200, response.text
    photo, bad, text_only = response.json()["results"]
    assert photo["analysis"]["emotion"]["face"][0]["top"]["label"] == "happy"
    assert bad["error"]["code"] == "invalid_image" and bad["error"]["index"] == 1
    assert bad["error"]["field"] == "images[1]"
    assert "face" not in text_only["analysis"]["emotion"]
    assert_close(text_only["analysis"], alone["analysis"])


def test_openapi_documents_the_output_schema(client):
    document = client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    for name, schema in analysis_components(SCHEMA).items():
        assert components[name] == schema
    ok = document["paths"]["/v1/analyze"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    response_model = components[ok["$ref"].rsplit("/", 1)[1]]
    assert response_model["properties"]["result"]["anyOf"][0]["$ref"] == "#/components/schemas/Analysis"
    assert (
        "/v1/streams" in document["paths"] and "422" in document["paths"]["/v1/analyze"]["post"]["responses"]
    )
    request = document["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    fields = components[request["$ref"].rsplit("/", 1)[1]]["properties"]
    assert "base64" in fields["image"]["description"] and "images" in fields
    assert client.get("/v1/schema").json() == SCHEMA


def test_model_description_and_card(client):
    described = client.get("/v1/model").json()
    assert [e["name"] for e in described["encoders"]] == ["enc_a", "enc_b"]
    analysed = client.post("/v1/analyze", json={"text": "I lied to my friend."}).json()["result"]
    assert described["model"] == analysed["metadata"]["model"]  # backend, dtype computed in, CPU capability
    assert described["model"]["dtype"] in ("float32", "bfloat16") and described["model"]["cpu_capability"]
    assert described["settings"]["api_key"] is False
    card = client.get("/v1/model/card")
    assert card.status_code == 200 and card.text.startswith("#")


def test_request_log_has_one_start_and_one_end_per_request(client, server):
    client.post("/v1/analyze", json={"text": EN}, headers={"X-Request-ID": "logged-1"})
    for _ in range(50):  # the end line is written just after the answer is sent
        text = Path(server.settings.request_log).read_text(encoding="utf-8")
        mine = [line for line in map(json.loads, text.splitlines()) if line["id"] == "logged-1"]
        if len(mine) == 2:
            break
        time.sleep(0.02)
    assert [line["event"] for line in mine] == ["start", "end"]
    assert mine[1]["status"] == 200 and mine[1]["answered"] is True
