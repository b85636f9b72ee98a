"""The same seed gives the same numbers on every engine: a job runs with the threads it declares wherever it runs.

The quick sparse-label grid (eGeMAPS + mel, pre-training included) runs on the local engine (fork), the local
engine under spawn and Ray, each in its own process with its own fresh cache (features, pre-trained encoders,
fine-tuning results), on one generated corpus; the tables must be identical. Before jobs got their declared
threads, a lone pre-training job ran in the calling process with all its torch threads, and BatchNorm's
per-channel sums, split over two threads, gave other mel encoders than a one-thread Ray worker.
"""

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from sercore.engine import CallJob, LocalEngine

ARM = textwrap.dedent('''
    import sys
    from sercore.data import load_dataset, make_splits, target_subset
    from sercore.engine import get_engine
    from sercore.features.cache import extract_features
    from sercore.notebook.settings import Params, run_settings
    from sercore.pairwise import PairwiseGrid, sparse_label_grid
    from sercore.training import WORKER_PRELOAD
    from sercore.training.grid import ExperimentData
    from sercore.views import get_view


    def main(engine_name, corpus_root, out):
        manifest = load_dataset("default", size="tiny", root=corpus_root)
        task, splits = target_subset(manifest), make_splits(manifest)
        features = {v: extract_features(manifest, get_view(v), progress=False) for v in ("egemaps", "mel")}
        run = run_settings(Params(budget="quick", precision="fp32"))
        options = {"workers": 2} if engine_name == "local" else {"num_cpus": 2}  # ray: a local Ray of 2 CPUs
        engine = get_engine(engine_name, preload=WORKER_PRELOAD, **options)
        table = sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[0]),
                                  PairwiseGrid(fractions=(0.1, 0.25), repetitions=2, pretrain=run.pretrain,
                                               finetune=run.finetune, engine=engine))
        table.drop(columns=["node"]).to_csv(out, index=False)


    if __name__ == "__main__":  # spawn workers import this file again
        main(*sys.argv[1:])
''')


def _threads(_, features):
    return torch.get_num_threads()


def test_a_job_run_here_gets_the_threads_it_declares():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert LocalEngine(1).run([CallJob(_threads, i) for i in range(2)]) == [1, 1]
        assert LocalEngine(2).run([CallJob(_threads, 0)]) == [1]  # one job: run here, not in a pool
        assert LocalEngine(2, backend="thread").run([CallJob(_threads, i) for i in range(3)]) == [1, 1, 1]
        assert torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(before)


@pytest.mark.ray
@pytest.mark.slow
def test_local_spawn_and_ray_give_identical_tables_on_fresh_caches(tmp_path):
    from sercore.data.synth import load_default_corpus

    corpus = tmp_path / "corpus"
    load_default_corpus(corpus, size="tiny")  # the audio: input, shared; every cache below is the arm's own
    script = tmp_path / "arm.py"
    script.write_text(ARM)
    tables = {}
    for arm, engine, method in (("fork", "local", "fork"), ("spawn", "local", "spawn"), ("ray", "ray", "fork")):
        env = dict(os.environ, SERCORE_CACHE=str(tmp_path / f"cache-{arm}"), SERCORE_START_METHOD=method,
                   OMP_NUM_THREADS="2")
        env.pop("SERCORE_RESULT_CACHE", None)
        out = tmp_path / f"{arm}.csv"
        proc = subprocess.run([sys.executable, str(script), engine, str(corpus), str(out)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"{arm}: {proc.stderr[-3000:]}"
        tables[arm] = pd.read_csv(out)
    assert len(tables["fork"]) == 16 and set(tables["fork"]["view"]) == {"egemaps", "mel"}
    assert (tables["fork"]["condition"] == "pairwise-cl").sum() == 8
    for arm in ("spawn", "ray"):
        pd.testing.assert_frame_equal(tables["fork"], tables[arm], check_exact=True, obj=f"fork vs {arm}")
