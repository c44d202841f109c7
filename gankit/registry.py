"""Name -> component lookup with helpful errors for unknown names."""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

from gankit.errors import ConfigError

T = TypeVar("T")


# How alike (difflib's ratio) a choice must be to be suggested: low enough for one slip of
# the keyboard in a short name, high enough that 'lambda_l1' does not suggest 'embed_dim';
# and close to the best match, so that 'n_critc' suggests 'n_critic' but not 'n_grid'.
CUTOFF, MARGIN = 0.6, 0.1


def _near(name: str, options: list[str], most: int) -> list[str]:
    scored = sorted(((difflib.SequenceMatcher(None, name, o).ratio(), o) for o in set(options)),
                    key=lambda t: (-t[0], t[1]))
    best = scored[0][0] if scored else 0.0
    return [o for r, o in scored if r >= CUTOFF and r >= best - MARGIN][:most]


def suggestions(name: str, choices: Iterable[str], most: int = 3) -> list[str]:
    """The choices ``name`` was probably meant to be, best first (none when nothing is close).

    Dotted names (``section.key``) are compared by their last part within the same section,
    then by the same last part in another section (``G.lr_g`` -> ``optim.lr_g``); a bare name
    among dotted choices also matches keys that extend it (``lr`` -> ``optim.lr_g``)."""
    choices = list(choices)
    dotted = any("." in c for c in choices)
    leaf = {c: c.rsplit(".", 1)[-1] for c in choices}
    if dotted and "." not in name:
        hits = [c for c in choices if leaf[c] == name or leaf[c].startswith(name + "_")]
        near = _near(name, list(leaf.values()), most)
        return (hits + [c for n in near for c in choices if leaf[c] == n and c not in hits])[:most]
    if dotted:
        section, last = name.rsplit(".", 1)
        same = [c for c in choices if c.rsplit(".", 1)[0] == section]
        if not same:  # a misspelt section: compare whole keys
            return _near(name, choices, most)
        near = _near(last, [leaf[c] for c in same], most)
        return [f"{section}.{n}" for n in near] or [c for c in choices if leaf[c] == last][:most]
    return _near(name, choices, most)


def closest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` (or ``'X' or 'Y'``) from :func:`suggestions`; '' when none."""
    found = suggestions(name, choices)
    return f" (did you mean {' or '.join(repr(s) for s in found)}?)" if found else ""


class Registry(Generic[T]):
    """A named collection of components (objectives, nets, models, metrics, data sources).

    Components add themselves with the :meth:`register` decorator in the module that defines
    them. ``autoload`` names the package whose import registers them all: it is imported on
    the first lookup, so a registry owned by a low layer (config's model options) can be
    filled by a higher one (the models) without the low layer importing it."""

    def __init__(self, kind: str, autoload: str | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._autoload = autoload

    def _load(self) -> None:
        if self._autoload:
            package, self._autoload = self._autoload, None
            try:
                importlib.import_module(package)
            except BaseException:
                self._autoload = package
                raise

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            known = ", ".join(sorted(self._items))
            raise ConfigError(
                f"unknown {self.kind} '{name}'{closest(name, list(self._items))}; known: {known}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """``(name, component)`` pairs in the order they were registered."""
        self._load()
        return list(self._items.items())

    def __contains__(self, name: Any) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
