"""Ranks across corpora on the benchmark page: a Friedman test and a critical-difference diagram (issue 33).

Each corpus (or corpus × labelled fraction) is a block, each view (or condition × view) a treatment; within a block
the treatments are ranked by UAR (1 = best, ties share their mean rank). The Friedman statistic tests whether the
average ranks differ more than chance would make them; the Nemenyi post-hoc test (``scikit_posthocs``) gives the
pairs that differ, and the critical-difference diagram (Demšar 2006; ``scikit_posthocs.critical_difference_diagram``)
draws the average ranks with a bar joining treatments that do not differ. Only complete blocks count (a corpus
missing a view is left out), and the test is run only when at least :data:`MIN_CORPORA` corpora are in them.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

MIN_CORPORA = 3
ALPHA = 0.05
# Studentised range statistic / sqrt(2) at alpha 0.05 for k = 2..10 treatments (Demšar 2006, Table 5a)
Q_05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}


@dataclass
class Friedman:
    """The test on one ``blocks × treatments`` table of UARs."""

    n_blocks: int
    n_corpora: int
    ranks: pd.Series  # average rank per treatment, 1 = best
    chi2: float
    p: float
    cd: float | None  # Nemenyi critical difference of average ranks (None beyond 10 treatments)
    pairs: pd.DataFrame  # Nemenyi p-values, treatments × treatments

    def line(self, what: str) -> str:
        """One findings line: the best treatment, the statistic and its p-value."""
        top = list(self.ranks.index[self.ranks == self.ranks.min()])
        best = f"{top[0]} ranks best" if len(top) == 1 else f"{' and '.join(map(str, top))} tie for best"
        verdict = "the ranks differ" if self.p < ALPHA else "no difference in ranks"
        cd = f", critical difference {self.cd:.2f}" if self.cd is not None else ""
        return (f"{what}: {best} (average rank {self.ranks.min():.2f} of {len(self.ranks)}) over "
                f"{self.n_blocks} block(s) from {self.n_corpora} corpora; Friedman χ²({len(self.ranks) - 1}) = "
                f"{self.chi2:.2f}, p = {self.p:.3g}: {verdict} at α = {ALPHA:g}{cd}.")


def friedman(table: pd.DataFrame, *, block: list[str], treatment: str, value: str) -> Friedman | None:
    """The Friedman test of ``value`` with blocks ``block`` and treatments ``treatment`` (long table, one row per
    block × treatment); None when fewer than :data:`MIN_CORPORA` corpora (``block[0]``) or two treatments remain
    in the complete blocks."""
    wide = table.pivot_table(index=block, columns=treatment, values=value, aggfunc="mean").dropna()
    if wide.shape[1] < 2 or wide.index.get_level_values(0).nunique() < MIN_CORPORA:
        return None
    n, k = wide.shape
    ranks_in_block = wide.rank(axis=1, ascending=False)  # 1 = the highest UAR
    mean_ranks = ranks_in_block.mean().sort_values()
    chi2 = 12 * n / (k * (k + 1)) * float((mean_ranks ** 2).sum() - k * (k + 1) ** 2 / 4)
    p = float(stats.chi2.sf(chi2, k - 1))
    cd = Q_05[k] * np.sqrt(k * (k + 1) / (6 * n)) if k in Q_05 else None
    pairs = _nemenyi(wide)
    return Friedman(n, int(wide.index.get_level_values(0).nunique()), mean_ranks, chi2, p, cd, pairs)


def _nemenyi(wide: pd.DataFrame) -> pd.DataFrame:
    import scikit_posthocs as sp

    pairs = sp.posthoc_nemenyi_friedman(wide.to_numpy())
    pairs.index = pairs.columns = list(wide.columns)
    return pairs


def cd_diagram_png(result: Friedman, title: str) -> str:
    """The critical-difference diagram of ``result`` as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.28 * len(result.ranks)), layout="constrained")
    sp.critical_difference_diagram(result.ranks, result.pairs, ax=ax, alpha=ALPHA, cd=result.cd,
                                   label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}")
    ax.set_title(title, fontsize=10, loc="left", pad=24)  # above the critical-difference bar
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def probe_ranks(probes: pd.DataFrame) -> Friedman | None:
    """Views ranked by linear-probe UAR, one block per corpus."""
    if probes.empty:
        return None
    return friedman(probes.dropna(subset=["uar"]), block=["dataset"], treatment="view", value="uar")


def sparse_ranks(sparse: pd.DataFrame) -> Friedman | None:
    """Pairwise-CL and supervised, per view (treatments ``<condition> <view>``), one block per corpus × labelled
    fraction, from the mean UARs of notebook 03's comparison table."""
    if sparse.empty or not {"pairwise", "supervised"} <= set(sparse.columns):
        return None
    long = sparse.melt(id_vars=["dataset", "view", "fraction"], value_vars=["pairwise", "supervised"],
                       var_name="condition", value_name="uar").dropna(subset=["uar"])
    long["treatment"] = long["condition"].map({"pairwise": "Pairwise-CL", "supervised": "supervised"}) + " " + \
        long["view"].astype(str)
    return friedman(long, block=["dataset", "fraction"], treatment="treatment", value="uar")
