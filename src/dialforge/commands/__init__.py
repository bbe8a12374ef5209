"""The `dialforge` commands: one `Command` object each (`_spec.py`), listed in `registry.py`;
`_adapter.py` builds their options from their config classes."""
