"""Library-mode registration of the ``ethics-emotion`` task (run by ``import redheart``).

Two routes lead to the pipeline:

* **library** -- ``import redheart`` registers :class:`EthicsEmotionPipeline` under ``"ethics-emotion"`` in
  transformers' ``PIPELINE_REGISTRY``; ``pipeline("ethics-emotion", model=folder_or_id)`` then uses the
  installed code;
* **Hub / remote code** -- a saved model's ``config.json`` carries ``custom_pipelines`` and the folder ships
  the flattened pipeline code, so ``pipeline("ethics-emotion", model=..., trust_remote_code=True)`` works
  where ``redheart`` is not installed.

transformers' ``pipeline()`` gives a config's ``custom_pipelines`` precedence over registered tasks and then
insists on ``trust_remote_code=True``. With the library installed that would refuse the library's own
pipeline, so ``RedHeartConfig.custom_pipelines`` hides the tasks that are registered locally (the stored
value is kept and saved unchanged). Where the library is not installed,
the shipped config class hides nothing and the shipped pipeline runs. (With the library imported,
transformers prefers the registered classes even when ``trust_remote_code=True`` is passed.)
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .ethics_emotion import TASK, EthicsEmotionPipeline

#: The shipped default model (a Hub-style folder in the package): ``pipeline("ethics-emotion")`` with no
#: ``model=`` loads it, as transformers has a default model per task. ``training/release.py`` writes it.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "red-heart-small-e5"


def register_pipeline() -> None:
    """Register ``ethics-emotion`` with transformers, the shipped folder as its default model (idempotent)."""
    current = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if current is None or current["impl"] is not EthicsEmotionPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            TASK,
            pipeline_class=EthicsEmotionPipeline,
            pt_model=AutoModel,
            default={"model": (str(DEFAULT_MODEL_DIR), None)},
            type="text",
        )
