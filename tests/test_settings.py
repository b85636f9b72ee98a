"""Notebook parameters → run settings: the budget table, its rules, and what setup() reads from a namespace."""

import types

import pytest

from sercore.notebook.experiment import injected_names, notebook_parameters
from sercore.notebook.settings import BUDGETS, Params, run_settings
from sercore.pairwise import PairwiseGrid


def test_every_agreed_parameter_is_a_field():
    assert Params.names() == ["dataset", "data_root", "dataset_params", "size", "views", "view_params", "folds",
                              "n_folds", "splits", "repetitions", "budget", "epochs", "finetune_epochs", "precision",
                              "engine", "ray_address", "device", "seed", "quick", "offline", "strict",
                              "output_dir"]


def test_paper_budget_is_paper_a_protocol():
    run = run_settings(budget="paper", repetitions=3, workers=1)
    assert (run.pretrain.max_epochs, run.pretrain.patience) == (100, 30)
    assert (run.finetune.max_epochs, run.finetune.patience) == (100, None)  # no early stop: LR decay only
    assert (run.finetune.lr_decay, run.finetune.decay_patience) == (0.9, 5)
    assert run.repetitions == 10
    assert run_settings(budget="paper", repetitions=3, explicit=["repetitions"], workers=1).repetitions == 3
    assert run.test == "mannwhitney" and run.record()["test"] == "mannwhitney"  # paper A's U on repetition means


def test_default_and_quick_budgets():
    run = run_settings(repetitions=5, workers=1)
    assert (run.budget, run.pretrain.max_epochs, run.finetune.max_epochs, run.repetitions) == ("default", 10, 20, 5)
    quick = run_settings(quick=True, repetitions=5, epochs=50, workers=1)
    assert (quick.budget, quick.pretrain.max_epochs, quick.finetune.max_epochs, quick.repetitions) == \
        ("quick", 4, 8, 2)
    assert quick.permutations(200) == 20 and quick.temperatures([0.1, 0.5]) == [0.5]
    assert run.permutations(200) == 200 and run.temperatures([0.1, 0.5]) == [0.1, 0.5]
    assert run_settings(epochs=30, workers=1).pretrain.max_epochs == 30
    assert run_settings(workers=1).repetitions is None  # the notebook repeats nothing: the grid's own default
    assert run_settings(workers=1).pairwise_grid().repetitions == PairwiseGrid().repetitions
    assert run.pairwise_grid().repetitions == 5 and run.pairwise_grid(repetitions=2).repetitions == 2
    assert BUDGETS["quick"].first_fold_only and not BUDGETS["default"].first_fold_only
    assert run.test == quick.test == "wilcoxon"  # runs paired with their supervised twins


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="budget must be one of quick, default, paper; got 'fast'"):
        Params(budget="fast")
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        Params(precision="fp16")
    with pytest.raises(ValueError, match="quick=True contradicts budget='paper'"):
        Params(quick=True, budget="paper")
    assert Params(budget="quick").quick and Params(data_root="").data_root is None and Params(folds=[]).folds is None


def test_parameters_and_injected_names_come_from_the_namespace():
    namespace = {"dataset": "emodb", "fractions": [0.1], "_private": 1, "In": ["x = 1", "# Parameters\nseed = 3\n"
                                                                                       "dataset = 'emodb'\n"],
                 "Out": {}, "np": types, "helper": lambda: 0, "get_ipython": print, "Experiment": dict}
    assert notebook_parameters(namespace) == {"dataset": "emodb", "fractions": [0.1]}
    assert injected_names(namespace) == ["seed", "dataset"]
    assert injected_names({"dataset": "emodb"}) == []
