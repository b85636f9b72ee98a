"""``python -m sercore.cache``: what the feature store holds (``info``) and trimming it (``prune``).

The functions behind it are ``sercore.features.maintenance.store_table`` and ``prune``.
"""
