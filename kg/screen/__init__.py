"""Cohort screening: the ontology's criteria compiled into SQL, run on DuckDB (embedded) or Apache Spark.

>>> from kg.screen import screen, ScreenSummary
"""

from .run import DEFAULT_WINDOW, ScreenSummary, screen

__all__ = ["screen", "ScreenSummary", "DEFAULT_WINDOW"]
