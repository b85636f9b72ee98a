"""Analysis tools: PWCCA/CKA, statistics, 2-D maps, figures and tables.

``cca`` (representation similarity), ``stats`` (metrics, intervals, tests), ``embed`` (t-SNE/UMAP/PCA maps),
``tables`` (CSV + Markdown tables) and ``figures`` (seaborn figures saved as PNG + PDF).
"""

from .cca import PWCCAResult, cca_correlations, linear_cka, pairwise_similarity, pwcca, random_baseline
from .embed import embed_2d, maps_table
from .figures import (condition_bars, condition_figure, confusion_figure, describe, embedding_grid, ood_figure,
                      save_figure, similarity_heatmap, sparse_label_figure, speaker_emotion_map, temperature_figure)
from .stats import (average_ranks, bootstrap_ci, compare_conditions, confusion, holm, macro_f1, mann_whitney,
                    mean_ci_t, uar, wa)
from .tables import save_table, similarity_table, summary_table, temperature_table

__all__ = [
    "PWCCAResult", "pwcca", "cca_correlations", "linear_cka", "random_baseline", "pairwise_similarity",
    "embed_2d", "maps_table",
    "uar", "wa", "macro_f1", "confusion", "mean_ci_t", "bootstrap_ci", "mann_whitney", "holm",
    "compare_conditions", "average_ranks",
    "save_table", "summary_table", "similarity_table", "temperature_table",
    "describe", "save_figure", "condition_figure", "sparse_label_figure", "ood_figure", "embedding_grid",
    "speaker_emotion_map", "similarity_heatmap", "temperature_figure", "confusion_figure", "condition_bars",
]
