"""Streams: a conversation or diary analysed item by item, then as time series (``analyze_stream``).

It never invents data: every point of every series is one item's reading. The parts, by job:

* :mod:`.readings` -- per-item readings of the pipeline's results and their observation variances;
* :mod:`.timestamps` -- item times in one unit;
* :mod:`.options` -- :class:`StreamOptions`, the analysis options, validated in one place;
* :mod:`.sections` -- the spectrum (periodicity) and SURD (which signal drives a later one) sections;
* :mod:`.analyze` -- Kalman smoothing with bands and the assembled, JSON-safe result.

The pipeline imports this package only when ``analyze_stream`` is called, so a saved model's remote code
(the per-text pipeline) does not carry it; docs/DESIGN.md "Streams, Kalman and DSP".
"""

from .analyze import analyze_readings, analyze_stream_results, check_stream_request
from .options import DEFAULT_SURD_AGENTS, MIN_ITEMS, StreamOptions
from .readings import DEFAULT_SIGNALS, MIN_VAR, StreamReadings, readings_from_results
from .sections import MIN_SAMPLES_PER_CELL
from .timestamps import stream_timestamps

__all__ = [
    "DEFAULT_SIGNALS",
    "DEFAULT_SURD_AGENTS",
    "MIN_ITEMS",
    "MIN_SAMPLES_PER_CELL",
    "MIN_VAR",
    "StreamOptions",
    "StreamReadings",
    "analyze_readings",
    "analyze_stream_results",
    "check_stream_request",
    "readings_from_results",
    "stream_timestamps",
]
