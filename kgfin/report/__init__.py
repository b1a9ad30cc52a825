"""HTML ripple-analysis reports (``kgfin report RUN_DIR``); see :func:`build_report`."""

from kgfin.report.html import EVENT_METHOD_ORDER, build_report

__all__ = ["EVENT_METHOD_ORDER", "build_report"]
