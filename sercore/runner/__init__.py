"""Execute the notebooks of ``notebooks/`` with papermill on one or more corpora and index what they produce.

- :mod:`~sercore.runner.plan`: corpora and notebooks of a run, argument checks (``BadArguments``), injected
  parameters, fingerprints (what is up to date);
- :mod:`~sercore.runner.execute`: the Jupyter kernel and papermill runs, in one or more processes;
- :mod:`~sercore.runner.corpus`: the corpus step and the bad-file report (``bad_files.csv``);
- :mod:`~sercore.runner.suite`: a whole run (:func:`run`, :func:`run_corpora`);
- :mod:`~sercore.runner.index_page`: ``results/<dataset>/index.html`` and ``index.md``;
- :mod:`~sercore.runner.results` and :mod:`~sercore.runner.benchmark_page`: the notebooks' tables across
  corpora, their findings, and ``results/index.html``.
"""

from sercore.runner.benchmark_page import write_benchmark_page
from sercore.runner.corpus import bad_files_summary, collect_bad_files, corpus_step, notebook_bad_files, write_bad_files
from sercore.runner.execute import KERNEL_NAME, ensure_kernel, execute_all, execute_one, render_html, run_environment
from sercore.runner.index_page import collect_outputs, write_index
from sercore.runner.plan import (
                   OPTIONAL_PARAMS,
                   RESERVED_PARAMS,
                   SIZES,
                   BadArguments,
                   Corpus,
                   check_arguments,
                   discover_notebooks,
                   fingerprint,
                   is_up_to_date,
                   notebook_params,
                   parse_corpus,
                   read_record,
                   source_hash,
)
from sercore.runner.suite import run, run_corpora

__all__ = [
    "BadArguments", "Corpus", "KERNEL_NAME", "OPTIONAL_PARAMS", "RESERVED_PARAMS", "SIZES", "bad_files_summary",
    "check_arguments", "collect_bad_files", "collect_outputs", "corpus_step", "discover_notebooks", "ensure_kernel",
    "execute_all", "execute_one", "fingerprint", "is_up_to_date", "notebook_bad_files", "notebook_params",
    "parse_corpus", "read_record", "render_html", "run", "run_corpora", "run_environment", "source_hash",
    "write_bad_files", "write_benchmark_page", "write_index",
]
