"""Analysis tools: PWCCA/CKA (with random-vector baselines), statistics, 2-D maps, figures and tables.

``cca`` (representation similarity), ``stats`` (metrics, intervals, tests), ``embed`` (t-SNE/UMAP/PCA maps),
``tables`` (CSV + Markdown tables) and ``figures`` (seaborn figures saved as PNG + PDF).
"""

from .cca import (MEASURES, PWCCAResult, cca_correlations, debiased_cka, linear_cka, matched_baseline, matched_random,
                  pairwise_similarity, pwcca, random_baseline)
from .embed import embed_2d, maps_table
from .figures import (condition_bars, condition_figure, confusion_figure, describe, embedding_grid, learning_curves,
                      ood_figure, save_figure, similarity_heatmap, sparse_label_figure, speaker_emotion_map,
                      temperature_figure)
from .stats import (average_ranks, bootstrap_ci, compare_conditions, confusion, holm, macro_f1, mann_whitney,
                    mean_ci_t, metric_bounds, uar, wa)
from .tables import alignment_note, save_table, similarity_table, summary_table, temperature_table

__all__ = [
    "MEASURES", "PWCCAResult", "pwcca", "cca_correlations", "linear_cka", "debiased_cka", "random_baseline",
    "matched_random", "matched_baseline", "pairwise_similarity",
    "embed_2d", "maps_table",
    "uar", "wa", "macro_f1", "confusion", "mean_ci_t", "bootstrap_ci", "metric_bounds", "mann_whitney", "holm",
    "compare_conditions", "average_ranks",
    "save_table", "summary_table", "similarity_table", "temperature_table", "alignment_note",
    "describe", "save_figure", "condition_figure", "sparse_label_figure", "ood_figure", "embedding_grid",
    "speaker_emotion_map", "similarity_heatmap", "temperature_figure", "confusion_figure", "condition_bars",
    "learning_curves",
]
