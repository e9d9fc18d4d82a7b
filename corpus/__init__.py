"""Corpus-scale analysis: ``redheart analyze-corpus IN OUT`` (``python -m redheart.corpus``), Accelerate-sharded,
streaming and resumable.

One file per job: ``reading.py`` (input formats -> a lazy stream of ``(row, id, text)`` records; column checks),
``flatten.py`` (a pipeline result -> one flat row; the Parquet schema, documented there), ``shards.py`` (the
shard plan, atomic writes, the completeness check behind resuming, the manifest), ``run.py`` (the driver, one
process or several under ``accelerate launch``), ``cli.py`` (the command line).

The output folder holds ``part-00000.parquet``, ... -- shard ``k`` is input rows ``[k * S, (k + 1) * S)`` -- and
``_manifest.json`` (input, model and its config hash, options, columns, label orders, rows and errors per shard,
the last run's speed). Each row: ``row``, ``id``, ``text``, ``error`` (null, or why the row has no analysis),
``language``, ``chunks``, ``truncated``, ``emotion.predicted``, ``emotion.kote_predicted`` and one float32
column per number of the pipeline's JSON result, named by its path (``emotion.labels.joy``,
``bentham.acceptability.justice``, ``integrated.confidence``, ...).

Importing this package imports nothing heavy; ``run`` needs pyarrow (and Accelerate for several processes).
"""

__all__ = ["analyze_corpus"]


def analyze_corpus(*args, **kwargs):
    """:func:`redheart.corpus.run.analyze_corpus` (imported on first use)."""
    from .run import analyze_corpus as run

    return run(*args, **kwargs)
