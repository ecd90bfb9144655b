"""Async twin of ``recorded_by_proxy``: a live-only passthrough."""

import functools

from . import _call_args, _skip_unless_live


def recorded_by_proxy_async(test_func):
    @functools.wraps(test_func)
    async def run_live(*args, **kwargs):
        _skip_unless_live()
        return await test_func(*args, **_call_args(test_func, kwargs))

    return run_live


__all__ = ["recorded_by_proxy_async"]
