"""The one-process channel layer, made to scale with the number of sockets."""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer as _ChannelsInMemoryLayer  # type: ignore[import-untyped, unused-ignore]


class InMemoryChannelLayer(_ChannelsInMemoryLayer):  # type: ignore[misc, unused-ignore]
    """channels' in-memory layer sweeps every channel and group on every send and receive, so one
    message to N sockets costs N x N steps. Sweeping at most once a second keeps the expiry rules
    and makes fan-out linear."""

    sweep_interval_seconds = 1.0
    _last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.sweep_interval_seconds:
            return
        self._last_sweep = now
        super()._clean_expired()
