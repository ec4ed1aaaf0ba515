"""The float models that stand in for an int8 classifier's gradient: its float original (transfer attacks run on
it) and its fake-quantised surrogate (BPDA attacks follow its gradient). Each is held, or loaded on first use, so
that loading an int8 directory stays as cheap as before and a pickled classifier carries how to load them, not
their weights."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError, RBLError

if TYPE_CHECKING:
    from .classifier import Classifier


def _held(model: Classifier) -> Classifier:
    return model


@dataclass
class StandIn:
    """One float Classifier, from `load()` (picklable: a module-level function or a partial of one) on first use."""

    load: Callable[[], Classifier]
    loaded: Classifier | None = field(default=None, repr=False)

    @classmethod
    def held(cls, model: Classifier) -> StandIn:
        """A stand-in made in this process (kept with the classifier it stands in for)."""
        return cls(partial(_held, model), model)

    def get(self) -> Classifier:
        if self.loaded is None:
            self.loaded = self.load()
        return self.loaded

    def __getstate__(self) -> dict[str, Any]:
        return {"load": self.load, "loaded": None}  # a worker process loads (or unpickles) its own


@dataclass(frozen=True)
class GradientProxies:
    """An int8 classifier's float original (`source`) and fake-quantised surrogate (`surrogate`, None when the
    directory predates surrogates)."""

    source: StandIn
    surrogate: StandIn | None


def load_source(spec: str, arch: str | None, trust: bool, seed: int, fingerprint: str | None) -> Classifier:
    """The float original named in a compression card, checked against the fingerprint the card recorded."""
    from . import load_model

    try:
        model = load_model(spec, arch, trust, device="cpu", seed=seed)
    except RBLError as exc:
        raise ModelError(f"the transfer attack loads the float original {spec} named in card.json, which failed: "
                         f"{exc}") from None
    if fingerprint is not None and model.fingerprint != fingerprint:
        raise ModelError(f"the float original {spec} named in card.json is not the model that was compressed (its "
                         "weights differ); compress it again, or evaluate without transfer attacks")
    return model


def directory_proxies(directory: Path, card: dict, trust: bool, surrogate: Callable[[], Classifier] | None
                      ) -> GradientProxies:
    """The proxies of an int8 directory written by `rbl compress`: its card's source, loaded with the same loader."""
    source = partial(load_source, card["source"], card.get("arch"), trust, int(card.get("seed", 0)),
                     card.get("source_fingerprint"))
    return GradientProxies(StandIn(source), StandIn(surrogate) if surrogate is not None else None)
