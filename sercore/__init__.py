"""sercore: speech emotion recognition with few labels.

Packages, lowest layer first (a package imports only from the ones before it; ``tests/test_layers.py``):
``core`` (cache folder, atomic writes, digests, provenance, precision) · ``engine`` (local and Ray job engines) ·
``data`` (manifests, corpus loaders, audio, splits, the synthetic default corpus) · ``features`` (feature cache) ·
``views`` (feature extractors) · ``models`` (encoders, losses) · ``analysis`` (PWCCA/CKA, statistics, maps,
figures) · ``training`` (pre-training and fine-tuning loops, their caches and jobs) · ``pairwise`` (paper A) ·
``clusters`` (paper B) · ``notebook`` (what notebooks share: ``setup``, budgets) · ``runner`` (``run_all.py``).
"""

__version__ = "0.3.0"
