"""Serving Red Heart: one shared :class:`AnalysisService` behind a REST API (``python -m redheart.serving``).

``service.py`` owns the model (through the ``ProductionOrchestrator``), the limits and the metrics; the
transports only translate requests. Importing this package does not import the web frameworks.
"""

from .errors import ServiceError
from .service import AnalysisService
from .settings import API_KEY_ENV, ServingSettings

__all__ = ["API_KEY_ENV", "AnalysisService", "ServiceError", "ServingSettings"]
