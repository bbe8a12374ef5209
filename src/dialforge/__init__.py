"""dialforge: multi-turn instructional dialogue data by simulating the user.

Every command is a function here, with one config class each (the same as the YAML the CLI
reads): `dialforge.simulate(SimulateConfig(...), "runs/sim")`. The sync functions also work
inside a running event loop (a notebook cell): they run in a worker thread then; in async
code, await the `*_async` variants. Note that `dialforge.simulate`, `dialforge.induce`,
`dialforge.score`, `dialforge.train` and `dialforge.answer` are these functions; import the
subpackages' contents with `from dialforge.simulate import ...`. docs/api.md lists every name.
"""

from ._lazy import attach
from ._version import __version__ as __version__

# `dialforge.simulate` (and answer, induce, score, train) is the function, not the subpackage
__getattr__, __dir__, __all__ = attach(__name__, __file__)
