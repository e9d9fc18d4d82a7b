"""Request and response bodies of the REST API, and the OpenAPI components that tie them to the output schema.

Requests are strict (a string is never read as a number, unknown fields are refused), so a client's mistake
is a 422 that names the field instead of a silent guess. A result is documented by the pipeline's own JSON
Schema (``pipelines/analysis.schema.json``), placed in the OpenAPI components as ``Analysis`` by
:func:`add_analysis_schema`, so the documentation and the tests read one definition.
"""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

ANALYSIS_COMPONENT = "Analysis"
STREAM_COMPONENT = "StreamAnalysis"

#: Placeholder key in the models' JSON Schema, replaced by a ``$ref`` to the component it names once the
#: components exist (pydantic cannot point at a schema it did not generate).
COMPONENT_MARKER = "x-redheart-component"
Analysis = Annotated[dict[str, Any], WithJsonSchema({COMPONENT_MARKER: ANALYSIS_COMPONENT})]
StreamAnalysis = Annotated[dict[str, Any], WithJsonSchema({COMPONENT_MARKER: STREAM_COMPONENT})]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ExplainOptions(Strict):
    """Options of the exact SURD explanation over clause subsets."""

    judgement: str | None = None
    bins: int | None = None
    binning: str | None = None
    value_range: tuple[float, float] | None = None
    min_spread: float | None = None
    max_clauses: int | None = Field(default=None, ge=1, le=6)
    empty_judgement: float | None = None


class AnalyzeRequest(Strict):
    """One text (``text``) or a list (``texts``), optionally with a photo per text, and the pipeline's options."""

    text: str | None = Field(default=None, description="One text; answered as `result`.")
    texts: list[str] | None = Field(
        default=None,
        description="Several texts; answered as `results`, an invalid text as an error in place.",
    )
    alternatives: list[str] | list[list[str] | None] | None = Field(
        default=None,
        description="Other choices, for regret: a list of texts with `text`; with `texts`, one list (or null) per text.",
    )
    image: str | None = Field(
        default=None,
        description="With `text`: a photo as base64 of the file (JPEG, PNG, BMP, GIF, TIFF or WebP) or a "
        "`data:image/...;base64,` URI. Its faces' expressions come back in `analysis.emotion.face` and are "
        "fused into `emotion.core` and `integrated` (`integrated.face_effect`). Capped by `max_image_bytes` "
        "(413) and, as base64 grows a file by a third, by the body cap; an unreadable image is 422.",
    )
    images: list[str | None] | None = Field(
        default=None,
        description="With `texts`: one photo (base64 or a data: URI) or null per text; a bad image fails only "
        "its own item.",
    )
    top_k: int | None = Field(default=3, ge=1, description="Labels in `emotion.top`/`kote_top` (null: all).")
    threshold: float | None = Field(default=None, ge=0, le=1, description="Lowest score in `emotion.top`.")
    truncation: Literal["chunk", "first", "error"] = Field(
        default="chunk", description="Long texts: sliding windows, the first window only, or an error."
    )
    explain: bool | ExplainOptions = Field(
        default=False, description="Exact SURD over clause subsets, in `analysis.surd.explanation`."
    )

    @model_validator(mode="after")
    def _one_input(self) -> AnalyzeRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` (a string) or `texts` (a list of strings)")
        if self.alternatives is not None:
            nested = any(isinstance(a, list) or a is None for a in self.alternatives)
            if self.text is not None and nested:
                raise ValueError("with `text`, `alternatives` is a list of texts")
            if self.texts is not None and not all(
                isinstance(a, list) or a is None for a in self.alternatives
            ):
                raise ValueError("with `texts`, `alternatives` holds one list of texts (or null) per text")
        if self.image is not None and self.text is None:
            raise ValueError(
                "`image` goes with `text`; with `texts`, send `images` (one image or null per text)"
            )
        if self.images is not None and self.texts is None:
            raise ValueError("`images` goes with `texts`; with `text`, send one `image`")
        return self

    def options(self) -> dict[str, Any]:
        explain = self.explain
        if isinstance(explain, ExplainOptions):
            explain = explain.model_dump(exclude_none=True)
        return {
            "top_k": self.top_k,
            "threshold": self.threshold,
            "truncation": self.truncation,
            "explain": explain,
        }


class StreamRequest(Strict):
    """A conversation or diary: texts in order, optional timestamps, optional stream options."""

    texts: list[str] = Field(description="The items, in time order.")
    timestamps: list[float] | list[str] | None = Field(
        default=None, description="Numbers, or ISO-8601 times; strictly increasing (null: item positions)."
    )
    stream_options: dict[str, Any] | None = Field(
        default=None, description="`StreamOptions` fields (smoothing, spectrum, SURD agents and target)."
    )


class ItemError(BaseModel):
    """An invalid text or image of a list, reported in its place."""

    error: dict[str, Any] = Field(
        description="`code`, `message`, `type` and the text's `index`; `field` and `limit` when one is at fault."
    )


class AnalyzeResponse(BaseModel):
    request_id: str
    result: Analysis | None = Field(default=None, description="The result of `text`.")
    results: list[Analysis | ItemError] | None = Field(
        default=None, description="The results of `texts`, in order."
    )


class StreamResponse(BaseModel):
    request_id: str
    stream: StreamAnalysis


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable kind (e.g. `too_large`, `overloaded`).")
    message: str = Field(description="What went wrong and what to change.")
    status: int
    field: str | None = Field(default=None, description="The request field at fault.")
    limit: float | None = Field(default=None, description="The limit that was passed.")
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def analysis_components(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The output JSON Schema as OpenAPI components: ``Analysis`` plus its ``$defs`` as ``Analysis<Name>``."""
    schema = copy.deepcopy(schema)
    definitions = schema.pop("$defs", {})
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    text = json.dumps(
        {ANALYSIS_COMPONENT: schema, **{ANALYSIS_COMPONENT + k.title(): v for k, v in definitions.items()}}
    )
    for name in definitions:
        text = text.replace(f'"#/$defs/{name}"', f'"#/components/schemas/{ANALYSIS_COMPONENT}{name.title()}"')
    return json.loads(text)


def add_analysis_schema(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Put the output schema (and a stream result, an open object) into an OpenAPI document's components."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(analysis_components(schema))
    components[STREAM_COMPONENT] = {
        "type": "object",
        "description": "The result of `analyze_stream`: readings, Kalman-smoothed signals and bands, noise, "
        "spectra and SURD between signals (docs/DESIGN.md, Streams).",
        "required": ["n_items", "signals", "time", "readings", "smoothed"],
    }
    return _resolve_markers(openapi)


def _resolve_markers(node: Any) -> Any:
    if isinstance(node, dict):
        if COMPONENT_MARKER in node:
            rest = {k: v for k, v in node.items() if k != COMPONENT_MARKER}
            return {"$ref": f"#/components/schemas/{node[COMPONENT_MARKER]}", **rest}
        return {k: _resolve_markers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_markers(v) for v in node]
    return node
