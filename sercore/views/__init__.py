"""Views: feature extractors behind one registry.

``available_views()`` lists the names; ``get_view(name, **params)`` builds one. Every module of this package
registers its view with ``@register``; the package imports them all, so adding a view is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil

from sercore.views.base import _REGISTRY, SAMPLE_RATE, View, ViewUnavailable, accepted_parameters, register  # noqa: F401

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def available_views() -> list[str]:
    """Names of the registered views, sorted."""
    return sorted(_REGISTRY)


def view_class(name: str) -> type[View]:
    """The registered class of view ``name`` (``KeyError`` listing the known ones)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown view {name!r}; available views: {', '.join(available_views())}")
    return _REGISTRY[name]


def get_view(name: str, **params) -> View:
    """The view ``name`` built with ``params``.

    An unknown name raises ``KeyError`` listing the known ones; an unknown parameter raises ``TypeError``
    naming it and the accepted ones.
    """
    cls = view_class(name)
    accepted = accepted_parameters(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(f"view {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                        f"accepted: {', '.join(accepted) or '(none)'}")
    return cls(**params)


__all__ = ["View", "ViewUnavailable", "available_views", "get_view", "view_class", "register", "SAMPLE_RATE",
           "accepted_parameters"]
