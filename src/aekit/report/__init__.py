"""The run report: figures (``figures``), the HTML page (``html``) and ``build_report``, which
writes a run folder's report.html."""

from .build import build_report

__all__ = ["build_report"]
