"""The image's part of a result: ``analysis.emotion.face``, the fused readings, and what grounds them.

Added to a text result only when an image was given, so a text-only result stays as it was. With an image:

* ``analysis.emotion.face`` -- per face (left to right): ``box`` (x, y, width, height in the given image's
  pixels), ``probabilities`` of the 7 FER2013 classes and the ``top`` class; ``[]`` when there is no face;
* ``analysis.emotion.core_text`` -- the text-only core groups; ``analysis.emotion.core`` becomes the fused one
  (``fusion.py``) when there is a face and stays the text's when there is none;
* ``analysis.emotion.face_fusion`` -- ``applied``, ``faces``, ``note`` (why nothing was fused), and when applied
  the face's core reading, the gain and fused variance per group;
* ``integrated.overall_sentiment`` / ``confidence`` -- updated by the face; ``integrated.text_only`` keeps the
  text's values and ``integrated.face_effect`` says how much the face moved them (and with which gain and
  consistency);
* ``metadata.image`` -- the image as read (source, format, sizes, downscaled), the detector and classifier;
  ``metadata.grounding`` gains ``analysis.emotion.face`` (status ``pretrained``, with its source) and
  ``analysis.emotion.core_text``; fused paths name their sources; ``metadata.formulas.face_fusion`` the rule.
"""

from __future__ import annotations

from typing import Any

from .fusion import FUSION_FORMULA, face_observation, fuse

__all__ = ["add_face_analysis"]

FUSED_SOURCE = "text analysis fused with analysis.emotion.face (metadata.formulas.face_fusion)"


def add_face_analysis(result: dict[str, Any], reading: Any, described: dict[str, Any]) -> None:
    """Add the image's part (module doc) to ``result`` in place; ``reading`` is a ``FaceReading``."""
    from ...encoders.image import FACE_GROUNDING, FER_LABELS

    emotion, integrated, meta = result["analysis"]["emotion"], result["integrated"], result["metadata"]
    text_sentiment, text_confidence = integrated["overall_sentiment"], integrated["confidence"]
    emotion["face"] = [face.to_dict() for face in reading.faces]
    emotion["core_text"] = dict(emotion["core"])
    integrated["text_only"] = {"overall_sentiment": text_sentiment, "confidence": text_confidence}
    grounding = meta["grounding"]
    grounding["analysis.emotion.core_text"] = dict(grounding["analysis.emotion.core"])
    grounding["analysis.emotion.face"] = {"status": "pretrained", "task": None, "source": FACE_GROUNDING}
    meta["untrained"] = sorted(p for p, s in grounding.items() if s["status"] == "untrained")
    meta["image"] = {**reading.image.describe(), "faces": len(reading.faces), **described}
    if not reading.faces:
        emotion["face_fusion"] = {"applied": False, "faces": 0, "note": reading.note}
        integrated["face_effect"] = {
            "overall_sentiment": 0.0,
            "confidence": None if text_confidence is None else 0.0,
            "valence_gain": 0.0,
            "consistency": None,
        }
        return
    observation = face_observation(
        [face.views for face in reading.faces], [max(face.box.area, 1) for face in reading.faces], FER_LABELS
    )
    fusion = fuse(emotion["core"], text_sentiment, text_confidence, observation)
    emotion["core"] = fusion.core
    emotion["face_fusion"] = {
        "applied": True,
        "faces": len(reading.faces),
        "note": None,
        "face_core": fusion.face_core,
        "gain": fusion.core_gain,
        "variance": fusion.core_variance,
        "face_valence": fusion.valence_face,
    }
    integrated["overall_sentiment"] = fusion.valence
    integrated["confidence"] = fusion.confidence
    integrated["face_effect"] = {
        "overall_sentiment": fusion.valence - text_sentiment,
        "confidence": None if fusion.confidence is None else fusion.confidence - text_confidence,
        "valence_gain": fusion.valence_gain,
        "consistency": fusion.consistency,
    }
    for path in ("analysis.emotion.core", "integrated.overall_sentiment", "integrated.confidence"):
        grounding[path] = {**grounding[path], "source": FUSED_SOURCE}
    meta["formulas"]["face_fusion"] = FUSION_FORMULA
    meta["formulas"]["overall_sentiment"] = "emotion.sentiment updated by the face valence (face_fusion)"
    meta["formulas"]["confidence"] = (
        "the utility module's confidence moved toward face consistency (face_fusion)"
    )
