"""Analysis tools: PWCCA/CKA (with random-vector baselines), statistics, 2-D maps, figures and tables.

``cca`` (representation similarity), ``stats`` (metrics, intervals, tests), ``embed`` (t-SNE/UMAP/PCA maps),
``tables`` (CSV + Markdown tables) and ``figures`` (the figures both papers use, and the tools of every figure,
saved as PNG + PDF; paper A's own are in ``sercore.pairwise.figures``). The names below are
imported from their module on first use, so ``sercore.analysis.stats`` does not load matplotlib.
"""

from importlib import import_module

_MODULES = {
    "cca": ["MEASURES", "PWCCAResult", "pwcca", "cca_correlations", "linear_cka", "debiased_cka",
            "random_baseline", "matched_random", "matched_baseline", "pairwise_similarity"],
    "embed": ["embed_2d", "maps_table"],
    "stats": ["uar", "wa", "macro_f1", "confusion", "mean_ci_t", "bootstrap_ci", "mann_whitney", "holm",
              "compare_conditions", "average_ranks", "metric_bounds", "wilcoxon_paired", "attainable_p",
              "holm_floor", "needed_n", "power_note", "repetition_means", "span", "sampling_unit", "compare_runs",
              "TESTS", "TEST_NAMES", "TOO_FEW"],
    "tables": ["save_table", "summary_table", "require_columns"],
    "figures": ["describe", "save_figure", "significance", "condition_figure", "speaker_emotion_map",
                "confusion_figure", "condition_bars", "learning_curves", "check_caption", "ci_band", "fraction_axis",
                "scatter_grid"],
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
