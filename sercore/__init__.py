"""sercore: speech emotion recognition with few labels.

Sub-packages: ``sercore.data`` (manifests, corpus loaders, splits, the synthetic default corpus),
``sercore.views`` (feature extractors + encoders behind one registry), ``sercore.cache`` (feature cache),
``sercore.models``/``sercore.losses``/``sercore.train`` (Pairwise-CL), ``sercore.clusters`` (speaker-embedding
emotion clusters), ``sercore.analysis`` (PWCCA/CKA, statistics, maps, figures).
"""

__version__ = "0.1.0"
