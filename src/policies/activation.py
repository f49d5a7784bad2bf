"""Which spec of each provider is in effect at an instant.

Among a provider's specs with `active: true`, the one with the latest
`effective_from` not after `now` is in effect. A spec with `active: true` and a
future `effective_from` is a scheduled cutover: the current model stays in
effect until that instant. The planner and the cross-spec rules call this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol, TypeVar


class Activatable(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def active(self) -> bool: ...
    @property
    def effective_from(self) -> dt.datetime: ...


T = TypeVar("T", bound=Activatable)


def in_effect(specs: Iterable[T], now: dt.datetime) -> dict[str, T]:
    """Return the spec in effect now for each provider that has one."""
    chosen: dict[str, T] = {}
    for spec in specs:
        if not spec.active or spec.effective_from > now:
            continue
        current = chosen.get(spec.provider)
        if current is None or (spec.effective_from, spec.id) > (current.effective_from, current.id):
            chosen[spec.provider] = spec
    return chosen


def next_cutover(specs: Iterable[Activatable], now: dt.datetime) -> dt.datetime | None:
    """Return the earliest future `effective_from` among active specs, if any."""
    future = [s.effective_from for s in specs if s.active and s.effective_from > now]
    return min(future, default=None)
