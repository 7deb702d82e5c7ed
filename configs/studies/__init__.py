"""Study configs for `python -m train.study`: one `get_config()` per file."""
