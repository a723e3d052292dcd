"""The run report: figures (``figures``), the HTML page (``html``) and ``build_report``, which
writes a run folder's report.html; and the latent explorer (``explore``): ``build_explorer``
writes a run folder's explorer.html, ``explorer_html`` builds the page for any fitted estimator."""

from .build import build_report
from .explore import build_explorer, explorer_html

__all__ = ["build_explorer", "build_report", "explorer_html"]
