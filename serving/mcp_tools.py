"""The MCP tools: what an LLM client may ask of a served model, each answer published with its JSON Schema.

Four tools over one :class:`~.service.AnalysisService`:

* ``analyze_text`` -- one text (optionally with alternatives, ``explain`` and a photo as base64) to one result
  of ``pipelines/analysis.schema.json``, the schema published as the tool's ``outputSchema``;
* ``compare_choices`` -- a choice and its alternatives to the regret section (anticipated regret, the
  optimistic / neutral / pessimistic scenarios), a utility ranking and the choice's acceptability;
* ``explain_judgement`` -- the exact SURD over the text's clause subsets (docs/DESIGN.md "SURD, exactly");
* ``analyze_stream`` -- texts in time order to Kalman-smoothed trajectories, periods and SURD between signals.

A request the service refuses (empty text, a limit, an unknown option, an unreadable image) raises
``ToolError`` carrying the service's stable error code, so the client gets ``isError`` with the reason and the
server keeps serving; an argument of the wrong type is refused by the SDK's own argument validation the same
way.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import Field

from ..pipelines.explain.explanation import JUDGEMENTS
from ..pipelines.text import InputError
from .errors import ServiceError
from .service import AnalysisService

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

Text = Annotated[str, Field(description="The text to analyse (Korean or English), e.g. a described action.")]
Alternatives = Annotated[
    list[str],
    Field(
        description="Other choices the author could have made, one text each (regret is measured against them)."
    ),
]


def build_tools(service: AnalysisService) -> list[Tool]:
    """The four tools over ``service``, each with its published output schema."""
    analysis = service.output_schema()
    specs: list[tuple[Callable[..., Awaitable[dict[str, Any]]], str, dict[str, Any]]] = [
        (_analyze_text(service), "Analyse a text", analysis),
        (_compare_choices(service), "Compare a choice with its alternatives", compare_schema(analysis)),
        (_explain_judgement(service), "Explain a judgement by its clauses", explain_schema(analysis)),
        (_analyze_stream(service), "Analyse texts over time", stream_schema()),
    ]
    tools = []
    for fn, title, schema in specs:
        tool = Tool.from_function(fn, title=title, annotations=READ_ONLY, structured_output=True)
        # The published schema is the real one (read live by the SDK); results are plain dicts.
        tool.fn_metadata.output_schema = schema
        tools.append(tool)
    return tools


def _refusals_as_tool_errors(
    fn: Callable[..., Awaitable[dict[str, Any]]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Turn the service's refusals into ``ToolError`` (``isError`` with the code, field and limit)."""

    @wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return await fn(*args, **kwargs)
        except ServiceError as err:
            where = "".join(
                part
                for part in (
                    f" (field {err.field}" if err.field else "",
                    f", limit {err.limit}" if err.field and err.limit is not None else "",
                    ")" if err.field else "",
                )
            )
            raise ToolError(f"{err.code}{where}: {err.message}") from err
        except InputError as err:
            raise ToolError(f"invalid_text: {err.reason}") from err

    return wrapper


def _analyze_text(service: AnalysisService) -> Callable[..., Awaitable[dict[str, Any]]]:
    @_refusals_as_tool_errors
    async def analyze_text(
        text: Text,
        alternatives: Annotated[
            list[str] | None,
            Field(description="Optional other choices; regret is then measured against them."),
        ] = None,
        explain: Annotated[
            bool,
            Field(description="Also run the exact SURD over clause subsets (slower: one run per subset)."),
        ] = False,
        top_k: Annotated[
            int | None, Field(description="Emotions listed in emotion.top (null: all).", ge=1)
        ] = 3,
        threshold: Annotated[
            float | None,
            Field(description="Only emotions at least this probable in emotion.top.", ge=0, le=1),
        ] = None,
        truncation: Annotated[
            Literal["chunk", "first", "error"],
            Field(
                description="A text longer than the encoders read: sliding windows, its start, or an error."
            ),
        ] = "chunk",
        image: Annotated[
            str | None,
            Field(
                description="Optional photo that goes with the text: the image file (JPEG, PNG, BMP, GIF, TIFF "
                "or WebP) as base64, or a data:image/...;base64, URI. Each face's expression (7 FER2013 "
                "classes) comes back in analysis.emotion.face and is fused into emotion.core and integrated."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Red Heart's full analysis of one text: emotions (GoEmotions 28, KOTE 44, Ekman core groups, Korean
        cultural emotions, valence), a Bentham-style utilitarian judgement with acceptability per ETHICS
        framework, anticipated regret with three scenarios, SURD shares and an integrated summary; with a
        photo, the faces' expressions (analysis.emotion.face) and how they moved the reading
        (integrated.face_effect). The result follows the output schema (the resource
        redheart://schema/analysis); metadata.untrained and metadata.latent name the numbers the loaded model
        was not trained to give."""
        return await service.analyze(
            text,
            alternatives=alternatives,
            image=image,
            explain=explain,
            top_k=top_k,
            threshold=threshold,
            truncation=truncation,
        )

    return analyze_text


def _compare_choices(service: AnalysisService) -> Callable[..., Awaitable[dict[str, Any]]]:
    @_refusals_as_tool_errors
    async def compare_choices(
        choice: Annotated[str, Field(description="What was (or would be) done, as a text.")],
        alternatives: Alternatives,
    ) -> dict[str, Any]:
        """Anticipated regret of a choice against its alternatives: regret.potential is
        1 - exp(-max(0, u_best - u_choice) / sqrt(s_choice^2 + s_best^2)) over the predicted utilities,
        regret.scenarios gives the optimistic / neutral / pessimistic utility (u +- s) with the regret under
        each, and ranking orders the choice and its alternatives by predicted utility."""
        result = await service.analyze(choice, alternatives=alternatives)
        regret = result["analysis"]["regret"]
        ranking = [
            {
                "text": choice,
                "utility": regret["utility"]["mean"],
                "utility_std": regret["utility"]["std"],
                "is_choice": True,
            }
        ]
        for alternative in regret.get("alternatives", []):
            ranking.append(
                {
                    "text": alternative["text"],
                    "utility": alternative["utility"],
                    "utility_std": alternative["utility_std"],
                    "is_choice": False,
                }
            )
        ranking.sort(key=lambda entry: -entry["utility"])
        return {
            "choice": choice,
            "regret": regret,
            "ranking": ranking,
            "acceptability": result["analysis"]["bentham"]["acceptability"],
            "ethical_score": result["integrated"]["ethical_score"],
            "untrained": result["metadata"]["untrained"],
        }

    return compare_choices


def _explain_judgement(service: AnalysisService) -> Callable[..., Awaitable[dict[str, Any]]]:
    @_refusals_as_tool_errors
    async def explain_judgement(
        text: Text,
        judgement: Annotated[
            Literal["ethical_score", "valence", "regret"],
            Field(description="The number explained: integrated.ethical_score, emotion.sentiment or regret."),
        ] = "ethical_score",
        binning: Annotated[
            Literal["fixed", "range"],
            Field(
                description="fixed: states are equal bins of the natural range (a change counts when it crosses "
                "one); range: equal bins over this text's own subset values (which clauses move it up or down)."
            ),
        ] = "fixed",
        bins: Annotated[int, Field(description="Judgement states.", ge=2, le=5)] = 3,
        max_clauses: Annotated[
            int, Field(description="Clauses kept (shortest neighbours merged).", ge=1, le=6)
        ] = 6,
    ) -> dict[str, Any]:
        """Which clauses drive the judgement, and how: every non-empty subset of the text's clauses is analysed,
        and the exact SURD of (judgement state, clauses present) splits the judgement's information into unique
        (a clause alone), redundant (clauses saying the same), synergistic (only together) and leak. surd.
        explanation holds the clauses, per-clause roles, the largest terms, and status ("ok", or "constant" when
        every subset gives the same state, with the reason)."""
        options = {"judgement": judgement, "binning": binning, "bins": bins, "max_clauses": max_clauses}
        result = await service.analyze(text, explain=options)
        surd = result["analysis"]["surd"]
        value: Any = result
        for key in JUDGEMENTS[judgement][0]:
            value = value[key]
        return {
            "text": text,
            "judgement": {"name": judgement, "value": value},
            "surd": surd,
            "summary": explanation_summary(surd.get("explanation", {})),
        }

    return explain_judgement


def _analyze_stream(service: AnalysisService) -> Callable[..., Awaitable[dict[str, Any]]]:
    @_refusals_as_tool_errors
    async def analyze_stream(
        texts: Annotated[
            list[str], Field(description="Diary entries or messages, in time order.", min_length=1)
        ],
        timestamps: Annotated[
            list[float | str] | None,
            Field(description="One per text: numbers, or ISO 8601 date-times (null: evenly spaced)."),
        ] = None,
        stream_options: Annotated[
            dict[str, Any] | None,
            Field(description="StreamOptions fields (signals, band, spectrum, SURD lag ...)."),
        ] = None,
    ) -> dict[str, Any]:
        """Texts analysed item by item become time series (valence, core emotions, regret): a Kalman filter and
        RTS smoother over the irregular time steps (the model's own variances as observation noise) give
        smoothed trajectories with bands, a Welch spectrum finds periods, and SURD says which signals drive
        later ones; notes and each section's status say what could not be estimated and why."""
        return await service.analyze_stream(texts, timestamps, stream_options=stream_options)

    return analyze_stream


def explanation_summary(explanation: dict[str, Any]) -> str:
    """One sentence on a clause explanation, for a reader who will not parse the numbers."""
    if not explanation:
        return "no explanation was produced"
    if explanation.get("status") != "ok":
        return f"{explanation.get('status')}: {explanation.get('reason', '')}".strip()
    parts = []
    for clause in explanation.get("per_clause", []):
        if clause["role"] == "none":
            continue
        share = clause["unique"] + clause["redundant"] + clause["synergistic"]
        parts.append(f'clause {clause["index"]} "{clause["text"]}" acts {clause["role"]} ({share:.0%} of H)')
    dominant = explanation.get("dominant", "")
    lead = f"dominant causality: {dominant}" if dominant else "decomposed"
    return lead + ("; " + "; ".join(parts) if parts else "; no clause takes part in 5% of H or more")


def compare_schema(analysis: dict[str, Any]) -> dict[str, Any]:
    """``compare_choices``'s result: the analysis schema's regret and acceptability, plus the ranking."""
    properties = analysis["properties"]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "Red Heart choice comparison",
        "type": "object",
        "required": ["choice", "regret", "ranking", "acceptability", "ethical_score", "untrained"],
        "additionalProperties": False,
        "properties": {
            "choice": {"type": "string"},
            "regret": copy.deepcopy(properties["analysis"]["properties"]["regret"]),
            "ranking": {
                "type": "array",
                "minItems": 2,
                "items": {
                    "type": "object",
                    "required": ["text", "utility", "utility_std", "is_choice"],
                    "additionalProperties": False,
                    "properties": {
                        "text": {"type": "string"},
                        "utility": {"type": "number"},
                        "utility_std": {"type": "number", "exclusiveMinimum": 0},
                        "is_choice": {"type": "boolean"},
                    },
                },
            },
            "acceptability": copy.deepcopy(
                properties["analysis"]["properties"]["bentham"]["properties"]["acceptability"]
            ),
            "ethical_score": {"$ref": "#/$defs/probability"},
            "untrained": {"type": "array", "items": {"type": "string"}},
        },
        "$defs": copy.deepcopy(analysis["$defs"]),
    }


def explain_schema(analysis: dict[str, Any]) -> dict[str, Any]:
    """``explain_judgement``'s result: the analysis schema's SURD section with its clause explanation."""
    surd = copy.deepcopy(analysis["properties"]["analysis"]["properties"]["surd"])
    surd["required"] = [*surd["required"], "explanation"]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "Red Heart clause explanation",
        "type": "object",
        "required": ["text", "judgement", "surd", "summary"],
        "additionalProperties": False,
        "properties": {
            "text": {"type": "string"},
            "judgement": {
                "type": "object",
                "required": ["name", "value"],
                "additionalProperties": False,
                "properties": {"name": {"enum": sorted(JUDGEMENTS)}, "value": {"type": "number"}},
            },
            "surd": surd,
            "summary": {"type": "string"},
        },
        "$defs": copy.deepcopy(analysis["$defs"]),
    }


def stream_schema() -> dict[str, Any]:
    """``analyze_stream``'s result, at the level its sections are stable (each section documents its own keys)."""
    section = {"type": "object"}
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "Red Heart stream analysis",
        "type": "object",
        "required": ["n_items", "signals", "time", "readings", "smoothed", "spectrum", "surd", "notes"],
        "properties": {
            "n_items": {"type": "integer", "minimum": 1},
            "signals": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "time": section,
            "readings": section,
            "smoothed": section,
            "band": section,
            "noise": section,
            "spectrum": section,
            "surd": section,
            "method": section,
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    }


__all__ = ["build_tools", "compare_schema", "explain_schema", "explanation_summary", "stream_schema"]
