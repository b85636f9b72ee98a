"""Test-session settings and shared fixtures.

Settings: an isolated sercore cache, offline model hubs, one torch thread per process, precision "auto" pinned
to fp32. One thread: the tests run tiny models, for which thread start-up and oversubscription on a two-core CI
machine cost far more than they give. fp32: the golden values of seeded runs were computed in fp32, and "auto"
would pick bf16 on a CPU with native bf16 (tests of the detection unset the pin).

Tiers: plain ``python -m pytest`` runs the fast tier. Tests marked ``notebooks``, ``bench``, ``ray`` or
``slow`` (markers declared in pyproject.toml) are deselected unless ``--full`` is given;
``python -m pytest --full -m "notebooks or bench or ray or slow"`` runs only those (``.ci/run`` runs both).
"""

import os

import pytest
import torch
from threadpoolctl import threadpool_limits

os.environ["SERCORE_AUTO_PRECISION"] = "fp32"  # before any sercore import; inherited by kernels and workers

from fake_views import write_corpus  # noqa: E402
from fixtures_grids import make_grid_corpus  # noqa: E402

TIERS = ("notebooks", "bench", "ray", "slow")  # deselected without --full
# tiers given by node id, for a test whose module has no marker of its own: a notebook executed through papermill
TIER_OF = {"tests/test_requirements.py::test_the_notebook_fails_in_its_setup_cell_with_the_same_message": "notebooks"}


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help=f"run every test, including those marked {', '.join(TIERS)} (deselected by default)")


def pytest_report_header(config):
    if not config.getoption("--full"):
        return [f"fast tier: tests marked {' / '.join(TIERS)} are deselected (--full runs them)"]
    return []


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in TIER_OF:
            item.add_marker(TIER_OF[item.nodeid])
    if config.getoption("--full"):
        return
    keep, deselected = [], []
    for item in items:
        (deselected if any(item.get_closest_marker(name) for name in TIERS) else keep).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory):
    saved = {k: os.environ.get(k) for k in ("SERCORE_CACHE", "HF_HUB_OFFLINE", "OMP_NUM_THREADS")}
    os.environ["SERCORE_CACHE"] = str(tmp_path_factory.mktemp("sercore-cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def one_blas_thread():
    """Small matrices: BLAS threads only add contention on a shared machine (``pytestmark = usefixtures``)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def grid_corpus():
    """``make_grid_corpus()``: manifest, 4-class task, splits and the ``fixed``/``seq`` views, once per module."""
    return make_grid_corpus()


@pytest.fixture
def tone_corpus(tmp_path):
    """Ten noisy tones (0.5–1.4 s, float WAVs under ``tmp_path/wav``) and their manifest: the feature-cache tests'
    corpus (tests/fake_views.py)."""
    return write_corpus(tmp_path / "wav")
