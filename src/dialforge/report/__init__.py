"""`dialforge report RUN_DIR...`: one self-contained HTML page a person decides from.

`collect` reads the run directories into plain data, `sections`/`compare` write the HTML
(every value escaped), `payload` embeds every dialogue compressed, and `assets/report.js`
browses them in the page (it only ever inserts data as text). docs/report.md explains the page.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
