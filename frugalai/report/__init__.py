"""The deployment's evaluation: what a territory reads and signs.

Its own package because it is about the deployment, not about meters (``frugalai.energy``
measures; this package reports). Modules:

- :mod:`~frugalai.report.build`: every figure of the report as data, and its editions.
- :mod:`~frugalai.report.html`: Markdown to one self-contained HTML page (also used by the
  benchmark's own page, hence no frugalai import in it).
- :mod:`~frugalai.report.svgchart`: inline SVG bar charts, no matplotlib.
- :mod:`~frugalai.report.worth`: the demo's log of alarmed windows beside the learned profile.

Nothing is imported here, so that ``frugalai.energy.bench`` can use the pure rendering modules
without loading the report.
"""
