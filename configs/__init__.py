"""The run configs: one `get_config()` per file, all built on `default.py`."""
