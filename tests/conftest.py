"""Test-session settings: an isolated sercore cache, offline model hubs, one torch thread per process.

One thread: the tests run tiny models, for which thread start-up and oversubscription on a two-core CI
machine cost far more than they give.
"""

import os

import pytest
import torch


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
