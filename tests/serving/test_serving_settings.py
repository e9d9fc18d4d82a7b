"""Serving settings and the command line: defaults, validation, the API key from the environment, the flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from redheart.serving.checks import check_options
from redheart.serving.cli import build_parser, settings_from_args
from redheart.serving.errors import InvalidRequest
from redheart.serving.settings import API_KEY_ENV, ServingSettings


def test_defaults_are_closed_to_other_origins_and_open_without_a_key(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    settings = ServingSettings.from_env()
    assert settings.cors_origins == () and settings.api_key is None and settings.host == "127.0.0.1"
    assert (
        settings.max_body_bytes == 1_048_576 and settings.max_pending_texts >= settings.max_texts_per_request
    )


def test_the_api_key_comes_from_the_environment_and_is_never_shown(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "s3cret")
    settings = ServingSettings.from_env()
    assert settings.api_key == "s3cret"
    assert "s3cret" not in repr(settings) and settings.public()["api_key"] is True
    monkeypatch.setenv(API_KEY_ENV, "")
    assert ServingSettings.from_env().api_key is None


@pytest.mark.parametrize(
    "change",
    [{"max_pending_texts": 0}, {"max_texts_per_request": -1}, {"request_timeout_s": 0}, {"workers": True}],
)
def test_invalid_settings_are_refused(change):
    with pytest.raises(ValueError, match=next(iter(change))):
        ServingSettings(**change)
    with pytest.raises(TypeError):
        ServingSettings(cors_origins="http://a.test")


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        ServingSettings().port = 1  # type: ignore[misc]


def test_flags_map_to_settings(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    args = build_parser().parse_args(
        [
            "--model",
            "m",
            "--port",
            "9000",
            "--workers",
            "2",
            "--max-texts",
            "4",
            "--cors-origin",
            "http://a.test",
            "--quantize",
            "int8",
        ]
    )
    settings = settings_from_args(args)
    assert (settings.model, settings.port, settings.workers) == ("m", 9000, 2)
    assert settings.quantize == "int8" and settings_from_args(build_parser().parse_args([])).quantize is None
    assert settings.max_texts_per_request == 4 and settings.cors_origins == ("http://a.test",)


def test_python_m_serving_help():
    out = subprocess.run(
        [sys.executable, "-m", "redheart.serving", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "--workers" in out.stdout and API_KEY_ENV in out.stdout


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"threshold": 1.5}, "threshold"),
        ({"truncation": "middle"}, "truncation"),
        ({"explain": {"max_clauses": 9}}, "explain.max_clauses"),
        ({"explain": {"nope": 1}}, "explain"),
    ],
)
def test_option_checks_name_the_field(options, field):
    with pytest.raises(InvalidRequest) as caught:
        check_options(**options)
    assert caught.value.field == field
