"""The in-process cache of served modules: loaded once, evicted least recently used.

Keyed by version (its id and weights digest), so every deployment serving a version
shares one module, and an alias that moves simply asks for another key. Thread-safe: a
lock guards the order, and a per-key lock makes concurrent first requests load a
version once while requests for other versions go on being served.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from django.conf import settings
from torch import nn


@dataclass
class CacheStats:
    hits: int = 0
    loads: int = 0
    evictions: int = 0


class ModelCache:
    """At most `max_size` modules (a callable, so a setting can change it); least recently used goes first."""

    def __init__(self, max_size: int | Callable[[], int]):
        self._max_size = max_size
        self._items: OrderedDict[Hashable, nn.Module] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}
        self.stats = CacheStats()

    @property
    def max_size(self) -> int:
        return max(1, self._max_size() if callable(self._max_size) else self._max_size)

    def cached_keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def _hit(self, key) -> nn.Module | None:
        with self._lock:
            module = self._items.get(key)
            if module is not None:
                self._items.move_to_end(key)
                self.stats.hits += 1
            return module

    def get(self, key: Hashable, load: Callable[[], nn.Module]) -> nn.Module:
        """The cached module for `key`, loading it with `load()` on a miss."""
        module = self._hit(key)
        if module is not None:
            return module
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            module = self._hit(key)  # another thread may have loaded it while this one waited
            if module is not None:
                return module
            module = load()
            with self._lock:
                self._items[key] = module
                self.stats.loads += 1
                while len(self._items) > self.max_size:
                    self._items.popitem(last=False)
                    self.stats.evictions += 1
                self._loading.pop(key, None)
        return module


MODELS = ModelCache(lambda: settings.LEPTON_DEPLOYMENT_CACHE_SIZE)
