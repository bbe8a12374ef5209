"""Field markers for configs (a leaf: every config module and the loader import it).

- `OPERATIONAL` (how fast or where a run goes: concurrency, timeouts, retries, base_url,
  device, batch size) stays out of the fingerprint, so changing it resumes a run;
- `INPUT_FILE` (a file or folder the run reads) is fingerprinted by content, not by path,
  so a moved checkout or run directory resumes, and an edited input is a new config;
- `FINGERPRINT_IF_SET` (a field added after runs were made, default None) is fingerprinted
  only when set, so adding it kept every earlier run's fingerprint and conversation ids.
Mark a field with `Annotated[type, OPERATIONAL] = Field(...)`; `dialforge.config` reads them.
"""

from __future__ import annotations

from pydantic.fields import FieldInfo


class FieldMarker:
    """Annotated metadata that says what kind of field this is (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name.upper()


OPERATIONAL = FieldMarker("operational")
INPUT_FILE = FieldMarker("input_file")
FINGERPRINT_IF_SET = FieldMarker("fingerprint_if_set")


def is_marked(info: FieldInfo, marker: FieldMarker) -> bool:
    return any(m is marker for m in info.metadata)
