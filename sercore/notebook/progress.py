"""Where feature-extraction progress bars go, so that rendered notebooks stay readable.

Under ``run_all.py`` (the kernels get ``SERCORE_PROGRESS=console``) a bar is drawn on the kernel process's own
stderr — ``run_all.py``'s console — and never into the notebook; the notebook keeps one closing line per
extraction (:func:`extraction_line`). In JupyterLab (no such variable) ``tqdm.auto`` draws its widget as before
(``ipywidgets`` is a dependency, so no ``IProgress not found`` warning). ``SERCORE_PROGRESS=off`` hides bars.
"""

from __future__ import annotations

import contextlib
import os
import sys

ENV = "SERCORE_PROGRESS"
MODES = ("auto", "console", "off")
# a tqdm progress line as a notebook would hold it: "features mel:  40%|████  | 8/20 [00:01<00:02, ...]"
PROGRESS_LINE = r"\d+%\|.*\|\s*\d+/\d+ \["


def progress_mode() -> str:
    """``auto`` (tqdm.auto: a widget in JupyterLab), ``console`` (the process's real stderr) or ``off``."""
    mode = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV} must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


_CONSOLE: dict = {}


def console_stream():
    """The console that started this process, even inside a Jupyter kernel: ipykernel captures writes to file
    descriptor 2 into the notebook, and its ``sys.stderr.fileno()`` is a copy of the original descriptor. Outside
    a kernel (or when ``sys.stderr`` has no descriptor): ``sys.__stderr__``."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return sys.__stderr__
    if fd == getattr(sys.__stderr__, "fileno", lambda: None)() and "ipykernel" not in type(sys.stderr).__module__:
        return sys.__stderr__
    if fd not in _CONSOLE:
        _CONSOLE[fd] = open(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    return _CONSOLE[fd]


def console_tqdm(*args, **kwargs):
    """A plain ``tqdm`` bar on :func:`console_stream` (the console that started the kernel, not the notebook)."""
    from tqdm import tqdm

    kwargs.setdefault("file", console_stream())
    kwargs.setdefault("mininterval", 2.0)
    kwargs.setdefault("dynamic_ncols", False)
    return tqdm(*args, **kwargs)


def off_tqdm(*args, **kwargs):
    """A disabled ``tqdm`` bar (counts, draws nothing)."""
    from tqdm import tqdm

    kwargs["disable"] = True
    return tqdm(*args, **kwargs)


@contextlib.contextmanager
def routed_progress(mode: str | None = None):
    """Within the block, the feature cache's bars follow ``mode`` (default :func:`progress_mode`)."""
    from sercore.features import cache

    mode = mode or progress_mode()
    saved = cache.tqdm
    if mode == "console":
        cache.tqdm = console_tqdm
    elif mode == "off":
        cache.tqdm = off_tqdm
    try:
        yield mode
    finally:
        cache.tqdm = saved


def extraction_line(view: str, n_utterances: int, seconds: float, model: str | None = None) -> str:
    """The one line a notebook keeps per extraction, e.g. ``features mel: 120 utterances in 3.2 s``."""
    used = f" ({model})" if model and model != view else ""
    return f"features {view}{used}: {n_utterances:,} utterances in {seconds:.1f} s"
