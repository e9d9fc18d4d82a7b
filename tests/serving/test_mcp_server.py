"""The MCP server end to end: the SDK's own client over stdio against a real server process on the tiny system.

One server process serves the whole module (loading a model costs seconds); every test talks to it through
the same client session, so the tests after a refused call also show that the server still answers.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time

import jsonschema
import pytest

pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install -e '.[serving]')")

import httpx2  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from redheart.serving.mcp_server import build_mcp_server, http_app  # noqa: E402
from redheart.serving.service import AnalysisService  # noqa: E402
from redheart.serving.settings import ServingSettings  # noqa: E402
from redheart.serving.testing import free_port  # noqa: E402

KO = "친구와의 약속을 어기고 야근을 했다, 하지만 팀을 도왔다"
EN = "I lied to my friend, but it spared her feelings."
TOOLS = {"analyze_text", "compare_choices", "explain_judgement", "analyze_stream"}
ANALYSIS_SCHEMA = AnalysisService.output_schema()
REGRET_SCHEMA = {
    **ANALYSIS_SCHEMA["properties"]["analysis"]["properties"]["regret"],
    "$defs": ANALYSIS_SCHEMA["$defs"],
}


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


def server_env() -> dict[str, str]:
    """Offline, one thread, and the caller's cache and path settings."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for name in ("RH_CACHE_DIR", "PYTHONPATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


@pytest.fixture(scope="module")
async def client(tiny_system, face_model):
    """A client session with ``python -m redheart.serving.mcp_server --model <tiny system>`` over stdio (with
    the session's face model where images can be read)."""
    faces = [] if face_model is None else ["--face-model", face_model]
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "redheart.serving.mcp_server", "--model", str(tiny_system), *faces],
        env=server_env(),
    )
    async with Client(params, read_timeout_seconds=120) as session:
        yield session


def structured(result) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content  # the text is the same JSON
    return result.structured_content


def error_text(result) -> str:
    assert result.is_error, result.structured_content
    return result.content[0].text


@pytest.mark.anyio
async def test_lists_the_four_tools_with_their_output_schemas(client):
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) == TOOLS
    assert listed["analyze_text"].output_schema["title"] == ANALYSIS_SCHEMA["title"]
    for tool in listed.values():
        assert tool.description and tool.input_schema["type"] == "object"
        assert tool.annotations.read_only_hint is True
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
    assert listed["compare_choices"].input_schema["required"] == ["choice", "alternatives"]


@pytest.mark.anyio
async def test_resources_are_the_schema_and_the_model_card(client):
    uris = {str(resource.uri) for resource in (await client.list_resources()).resources}
    assert uris == {"redheart://schema/analysis", "redheart://model-card"}
    schema = await client.read_resource("redheart://schema/analysis")
    assert json.loads(schema.contents[0].text) == ANALYSIS_SCHEMA
    card = await client.read_resource("redheart://model-card")
    assert card.contents[0].text.startswith("#")


@pytest.mark.anyio
async def test_analyze_text_returns_a_result_of_the_schema(client):
    for text in (KO, EN):
        result = structured(await client.call_tool("analyze_text", {"text": text, "top_k": 2}))
        jsonschema.validate(result, ANALYSIS_SCHEMA)
        assert len(result["analysis"]["emotion"]["top"]) == 2
    detected = structured(await client.call_tool("analyze_text", {"text": KO}))["metadata"]["language"]
    assert detected["detected"] == "ko"


@pytest.mark.anyio
async def test_analyze_text_reads_a_photo_and_refuses_a_corrupt_one(client, astronaut_base64):
    result = structured(await client.call_tool("analyze_text", {"text": EN, "image": astronaut_base64}))
    jsonschema.validate(result, ANALYSIS_SCHEMA)
    (face,) = result["analysis"]["emotion"]["face"]
    assert face["top"]["label"] == "happy" and "face_effect" in result["integrated"]
    corrupt = base64.b64encode(base64.b64decode(astronaut_base64)[:5000]).decode()
    says = error_text(await client.call_tool("analyze_text", {"text": EN, "image": corrupt}))
    assert "invalid_image" in says and "corrupt or truncated PNG" in says
    assert (
        "face" not in structured(await client.call_tool("analyze_text", {"text": EN}))["analysis"]["emotion"]
    )


@pytest.mark.anyio
async def test_compare_choices_gives_regret_scenarios_and_a_ranking(client):
    alternatives = ["약속을 지키고 친구를 만났다", "친구에게 미리 사정을 말했다"]
    result = structured(
        await client.call_tool("compare_choices", {"choice": KO, "alternatives": alternatives})
    )
    regret = result["regret"]
    jsonschema.validate(regret, REGRET_SCHEMA)
    assert regret["source"] == "alternatives"
    assert set(regret["scenarios"]) == {"optimistic", "neutral", "pessimistic"}
    assert [entry["text"] for entry in regret["alternatives"]] == alternatives
    utilities = [entry["utility"] for entry in result["ranking"]]
    assert utilities == sorted(utilities, reverse=True)
    assert [entry["is_choice"] for entry in result["ranking"]].count(True) == 1
    best = max(entry["utility"] for entry in regret["alternatives"])
    assert regret["raw_regret"] == pytest.approx(max(0.0, best - regret["utility"]["mean"]), abs=1e-6)


@pytest.mark.anyio
async def test_explain_judgement_is_the_exact_surd_over_clauses(client):
    arguments = {"text": KO, "judgement": "valence", "binning": "range"}
    result = structured(await client.call_tool("explain_judgement", arguments))
    explanation = result["surd"]["explanation"]
    clauses = [clause["text"] for clause in explanation["clauses"]]
    assert clauses == ["친구와의 약속을 어기고", "야근을 했다,", "하지만 팀을 도왔다"]
    assert explanation["n_subsets"] == 7 and explanation["judgement"]["name"] == "valence"
    assert explanation["status"] in ("ok", "constant")
    if explanation["status"] == "ok":
        assert result["surd"]["source"] == "exact"
        assert sum(result["surd"]["shares"].values()) == pytest.approx(1.0)
    assert result["summary"]
    via_analyze = structured(await client.call_tool("analyze_text", {"text": KO, "explain": True}))
    jsonschema.validate(via_analyze, ANALYSIS_SCHEMA)
    assert "explanation" in via_analyze["analysis"]["surd"]


@pytest.mark.anyio
async def test_analyze_stream_smooths_the_readings(client):
    texts = ["오늘은 정말 행복했다", "I was sad all day.", "그럭저럭 괜찮았다", "Great news at work!"]
    arguments = {"texts": texts, "timestamps": [0, 1, 2.5, 4]}
    result = structured(await client.call_tool("analyze_stream", arguments))
    assert result["n_items"] == 4
    assert len(result["smoothed"]["valence"]["mean"]) == 4
    assert result["time"]["timestamps"] == [0.0, 1.0, 2.5, 4.0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        ("analyze_text", {"text": ""}, "invalid_text"),
        ("analyze_text", {"text": "   \n "}, "invalid_text"),
        ("analyze_text", {"text": 42}, "validation error"),
        ("analyze_text", {}, "text"),
        ("analyze_text", {"text": KO, "top_k": 0}, "top_k"),
        ("analyze_text", {"text": KO, "image": "not base64!"}, "invalid_image (field image)"),
        ("analyze_text", {"text": KO, "image": 42}, "validation error"),
        ("compare_choices", {"choice": KO, "alternatives": []}, "alternatives"),
        ("compare_choices", {"choice": KO, "alternatives": "not a list"}, "validation error"),
        ("explain_judgement", {"text": KO, "judgement": "happiness"}, "judgement"),
        ("analyze_stream", {"texts": ["a", "b"], "timestamps": [0]}, "timestamps"),
        ("analyze_stream", {"texts": ["ok", ""]}, "texts[1]"),
        ("no_such_tool", {"text": KO}, "no_such_tool"),
    ],
)
async def test_a_bad_argument_is_a_tool_error_and_the_server_keeps_answering(client, tool, arguments, says):
    assert says in error_text(await client.call_tool(tool, arguments))
    after = structured(await client.call_tool("analyze_text", {"text": EN}))
    jsonschema.validate(after, ANALYSIS_SCHEMA)


@pytest.fixture
def http_url(tiny_system):
    """The streamable-HTTP app (as ``--transport http`` serves it) with an API key, in a uvicorn thread."""
    import uvicorn

    service = AnalysisService(ServingSettings(model=str(tiny_system), api_key="test-key"))
    app = http_app(build_mcp_server(service), service)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the HTTP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}/mcp"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.anyio
async def test_streamable_http_transport_serves_the_same_tools_behind_the_api_key(http_url):
    refused = httpx2.post(http_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    keyed = httpx2.AsyncClient(headers={"Authorization": "Bearer test-key"}, timeout=60)
    async with keyed, Client(streamable_http_client(http_url, http_client=keyed)) as session:
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
        result = structured(await session.call_tool("analyze_text", {"text": KO, "threshold": 0.5}))
        jsonschema.validate(result, ANALYSIS_SCHEMA)
        assert all(item["score"] >= 0.5 for item in result["analysis"]["emotion"]["top"])
        assert "invalid_text" in error_text(await session.call_tool("analyze_text", {"text": ""}))


def test_malformed_lines_over_stdio_are_dropped_and_the_server_keeps_answering(tiny_system):
    """Invalid UTF-8, broken JSON and an unknown method on the raw pipe; then a normal session still works."""
    command = [sys.executable, "-m", "redheart.serving.mcp_server", "--model", str(tiny_system)]
    env = {**os.environ, **server_env()}
    server = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )

    def send(message: bytes | dict) -> None:
        server.stdin.write(message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n")
        server.stdin.flush()

    def answer(request_id: object) -> dict:
        while True:
            line = server.stdout.readline()
            assert line, "the server closed its output"
            message = json.loads(line)
            if message.get("id") == request_id:
                return message

    try:
        send(b"\xff\xfe\x80 not UTF-8\n")
        send(b'{"jsonrpc": "2.0", "id": 7, "method": \n')
        send({"jsonrpc": "2.0", "id": "unknown", "method": "no/such/method"})
        assert answer("unknown")["error"]["code"] == -32601
        client_info = {"name": "raw", "version": "0"}
        params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client_info}
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
        assert answer(1)["result"]["serverInfo"]["name"] == "redheart"
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"name": "analyze_text", "arguments": {"text": EN}}
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        result = answer(2)["result"]
        assert not result["isError"]
        jsonschema.validate(result["structuredContent"], ANALYSIS_SCHEMA)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        server.stdout.close()
