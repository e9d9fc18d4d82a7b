"""Bad input, limits and access against a real uvicorn server on localhost (the tiny system).

The module's server has an API key, CORS for one origin and small caps. Every bad request must get a clear
4xx/5xx in the one error shape, and the server must keep answering correctly afterwards (the last test
compares a result with the one taken before the bad input).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="the serving extra is not installed (pip install -e '.[serving]')")
httpx = pytest.importorskip("httpx")

from redheart.serving.settings import ServingSettings  # noqa: E402
from redheart.serving.testing import LocalServer  # noqa: E402

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {**AUTH, "Content-Type": "application/json"}
EN = "I lied to my friend, but it spared her feelings."
ALLOWED_ORIGIN = "http://allowed.test"


@pytest.fixture(scope="module")
def server(tiny_system, tmp_path_factory):
    not_a_face_model = tmp_path_factory.mktemp("not-a-face-model")
    (not_a_face_model / "notes.txt").write_text("not a converted face model")
    settings = ServingSettings(
        model=str(tiny_system),
        api_key=KEY,
        cors_origins=(ALLOWED_ORIGIN,),
        max_texts_per_request=8,
        max_pending_texts=8,
        retry_after_s=2,
        max_text_chars=2000,
        header_timeout_s=1.0,
        body_timeout_s=1.0,
        max_image_bytes=1000,
        face_model=str(not_a_face_model),
    )
    with LocalServer(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60, headers=AUTH) as session:
        yield session


@pytest.fixture(scope="module")
def reference(client):
    """A result taken before any bad input."""
    response = client.post("/v1/analyze", json={"text": EN})
    assert response.status_code == 200
    return response.json()["result"]


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status and error["message"], error
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def test_api_key_is_required_except_for_health_checks(server, reference):
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        missing = anonymous.post("/v1/analyze", json={"text": EN})
        assert "Authorization: Bearer" in error_of(missing, 401, "unauthorized")["message"]
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.post("/v1/analyze", json={"text": EN}, headers={"Authorization": "Bearer nope"})
        assert "wrong API key" in error_of(wrong, 401, "unauthorized")["message"]
        basic = anonymous.post("/v1/analyze", json={"text": EN}, headers={"Authorization": f"Basic {KEY}"})
        error_of(basic, 401, "unauthorized")
        big = anonymous.post("/v1/analyze", content=b'{"text": "' + b"a" * 2_000_000 + b'"}')
        error_of(big, 401, "unauthorized")  # answered cleanly, though the body was not wanted
        for path in ("/metrics", "/v1/monitor", "/v1/model", "/openapi.json"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/readyz").status_code == 200
        assert anonymous.get("/monitor").status_code == 200  # the page shell holds no data


def test_malformed_json_and_wrong_types(client, reference):
    malformed = client.post("/v1/analyze", content=b'{"text": "unterminated', headers=JSON)
    assert "not valid JSON" in error_of(malformed, 400, "malformed_json")["message"]
    for body, field in (
        ({"text": 5}, "text"),
        ({"text": None}, None),
        ({"texts": "not a list"}, "texts"),
        ({"texts": [EN, 7]}, "texts[1]"),
        ({"text": EN, "top_k": "3"}, "top_k"),
        ({"text": EN, "top_k": 0}, "top_k"),
        ({"text": EN, "threshold": 2}, "threshold"),
        ({"text": EN, "truncation": "middle"}, "truncation"),
        ({"text": EN, "alternatives": "one"}, "alternatives"),
    ):
        error = error_of(client.post("/v1/analyze", json=body), 422, "invalid_request")
        assert error.get("field") == field, (body, error)
    not_an_object = client.post("/v1/analyze", content=b"[1, 2]", headers=JSON)
    assert "JSON object" in error_of(not_an_object, 422, "invalid_request")["message"]
    both = client.post("/v1/analyze", json={"text": EN, "texts": [EN]})
    assert "exactly one of" in error_of(both, 422, "invalid_request")["message"]


def test_unknown_options_are_named(client, reference):
    error = error_of(client.post("/v1/analyze", json={"text": EN, "top_n": 3}), 422, "unknown_field")
    assert error["field"] == "top_n" and "unknown field" in error["message"]
    error = error_of(
        client.post("/v1/analyze", json={"text": EN, "explain": {"depth": 2}}), 422, "unknown_field"
    )
    assert error["field"] == "explain.depth" and error["message"] == "explain.depth: unknown field"
    too_deep = client.post("/v1/analyze", json={"text": EN, "explain": {"max_clauses": 12}})
    assert error_of(too_deep, 422, "invalid_request")["field"].endswith("max_clauses")


def test_empty_whitespace_and_too_long_texts(client, reference):
    for text in ("", "   \n\t", "\u200b\u200b"):
        error = error_of(client.post("/v1/analyze", json={"text": text}), 422, "invalid_text")
        assert error["field"] == "text"
    long = error_of(client.post("/v1/analyze", json={"text": "a" * 2001}), 422, "invalid_text")
    assert "2000" in long["message"] and "max_text_chars" in long["message"]
    mixed = client.post("/v1/analyze", json={"texts": [EN, "", "a" * 2001, EN]})
    assert mixed.status_code == 200
    results = mixed.json()["results"]
    assert [("error" in r) for r in results] == [False, True, True, False]
    assert results[2]["error"]["index"] == 2 and "max_text_chars" in results[2]["error"]["message"]
    assert results[0]["analysis"]["emotion"]["labels"] == pytest.approx(
        reference["analysis"]["emotion"]["labels"]
    )


def test_a_10_mb_body_is_refused_without_being_kept(client, reference):
    huge = b'{"text": "' + b"a" * 10_000_000 + b'"}'
    announced = client.post("/v1/analyze", content=huge, headers=JSON)
    error = error_of(announced, 413, "body_too_large")
    assert error["limit"] == 1_048_576 and "max_body_bytes" in error["message"]

    def chunks():
        for start in range(0, len(huge), 1 << 20):
            yield huge[start : start + (1 << 20)]

    streamed = client.post("/v1/analyze", content=chunks(), headers=JSON)  # no Content-Length
    error_of(streamed, 413, "body_too_large")


def test_100000_texts_are_refused_naming_the_limit(client, reference):
    response = client.post("/v1/analyze", json={"texts": ["a"] * 100_000})
    error = error_of(response, 413, "too_large")
    assert error["field"] == "texts" and error["limit"] == 8 and "max_texts_per_request" in error["message"]


def test_images_over_the_byte_cap_or_not_base64_are_refused_naming_the_field(client, reference):
    big = base64.b64encode(b"\x89PNG" + bytes(2000)).decode()
    error = error_of(client.post("/v1/analyze", json={"text": EN, "image": big}), 413, "too_large")
    assert error["field"] == "image" and error["limit"] == 1000 and "max_image_bytes" in error["message"]
    response = client.post("/v1/analyze", json={"texts": [EN, EN], "images": [None, "%%%"]})
    assert response.status_code == 200
    ok, bad = response.json()["results"]
    assert (
        "analysis" in ok and bad["error"]["code"] == "invalid_image" and bad["error"]["field"] == "images[1]"
    )
    plain = error_of(
        client.post("/v1/analyze", json={"text": EN, "image": "data:image/png,abc"}), 422, "invalid_image"
    )
    assert "base64" in plain["message"]
    wrong_type = error_of(client.post("/v1/analyze", json={"text": EN, "image": 42}), 422, "invalid_request")
    assert wrong_type["field"] == "image"


def test_a_server_that_cannot_read_images_says_so_and_still_reads_texts(client, reference):
    small = base64.b64encode(b"\x89PNG\r\n").decode()
    error = error_of(client.post("/v1/analyze", json={"text": EN, "image": small}), 501, "images_unavailable")
    assert "cannot read images" in error["message"]
    assert client.post("/v1/analyze", json={"text": EN}).status_code == 200


def test_invalid_utf8(client, reference):
    response = client.post("/v1/analyze", content=b'{"text": "caf\xe9 \xff"}', headers=JSON)
    assert "UTF-8" in error_of(response, 400, "invalid_utf8")["message"]


def test_overload_gives_503_with_retry_after_and_recovers(client, server, reference):
    body = {"texts": [f"{EN} {i}" for i in range(8)]}  # each request fills max_pending_texts alone
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: client.post("/v1/analyze", json=body), range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "2"
    assert "max_pending_texts" in error_of(refused, 503, "overloaded")["message"]
    assert client.get("/v1/monitor").json()["pending_texts"] == 0  # nothing left behind
    assert client.post("/v1/analyze", json={"text": EN}).status_code == 200


def test_slow_headers_are_cut_off_while_others_are_served(client, server, reference):
    host, port = server.settings.host, server.settings.port
    slow = [socket.create_connection((host, port)) for _ in range(8)]
    for sock in slow:
        sock.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: localhost\r\n")
    started = time.monotonic()
    while time.monotonic() - started < 0.5:  # dribble headers, slowloris style
        for sock in slow:
            sock.sendall(b"X-Slow: 1\r\n")
        time.sleep(0.1)
    assert client.post("/v1/analyze", json={"text": EN}).status_code == 200  # others are served meanwhile
    for sock in slow:
        sock.settimeout(5)
        try:
            assert sock.recv(1024) == b""  # closed by the server after header_timeout_s (1 s)
        except ConnectionResetError:
            pass
        finally:
            sock.close()
    assert time.monotonic() - started < 5


def test_a_slow_body_gets_408(server, reference):
    host, port = server.settings.host, server.settings.port
    with socket.create_connection((host, port)) as sock:
        sock.sendall(
            b"POST /v1/analyze HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {KEY}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"text": "slo'
        )
        sock.settimeout(5)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), reply
    assert json.loads(body)["error"]["code"] == "body_timeout"


def test_cors_allows_only_the_configured_origin(client, reference):
    preflight = client.options(
        "/v1/analyze", headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    other = client.options(
        "/v1/analyze", headers={"Origin": "http://other.test", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in other.headers
    response = client.post("/v1/analyze", json={"text": EN}, headers={"Origin": ALLOWED_ORIGIN})
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_the_server_still_answers_correctly(client, reference):
    response = client.post("/v1/analyze", json={"text": EN})
    assert response.status_code == 200
    assert response.json()["result"]["analysis"]["emotion"]["labels"] == pytest.approx(
        reference["analysis"]["emotion"]["labels"], abs=1e-6
    )
    errors = client.get("/v1/monitor").json()["totals"]["errors"]
    for kind in (
        "unauthorized",
        "malformed_json",
        "invalid_request",
        "body_too_large",
        "overloaded",
        "invalid_utf8",
    ):
        assert errors.get(kind, 0) >= 1, kind


def test_a_request_past_its_timeout_gets_504(tiny_system):
    with LocalServer(ServingSettings(model=str(tiny_system), request_timeout_s=0.001)) as impatient:
        response = httpx.post(impatient.url + "/v1/analyze", json={"texts": [EN] * 8}, timeout=30)
        error = error_of(response, 504, "timeout")
        assert "request_timeout_s" in error["message"]
        assert httpx.get(impatient.url + "/healthz").status_code == 200
        deadline = time.monotonic() + 20
        while (
            httpx.get(impatient.url + "/v1/monitor").json()["pending_texts"] and time.monotonic() < deadline
        ):
            time.sleep(0.05)  # the abandoned work still finishes and frees its place
        assert httpx.get(impatient.url + "/v1/monitor").json()["pending_texts"] == 0


def test_shutdown_drains_requests_in_flight(tiny_system):
    server = LocalServer(ServingSettings(model=str(tiny_system))).start()
    outcome: dict = {}
    body = {"texts": [" ".join([EN] * 12) + f" {i}" for i in range(4)]}

    def call() -> None:
        outcome["response"] = httpx.post(server.url + "/v1/analyze", json=body, timeout=60)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while httpx.get(server.url + "/v1/monitor").json()["pending_texts"] == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    server.stop()  # as SIGTERM: stop accepting, finish what is in flight
    caller.join(60)
    assert outcome["response"].status_code == 200
    assert len(outcome["response"].json()["results"]) == 4
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/healthz", timeout=2)
