"""Synchronous adapters behind the asynchronous lanes' interface, on a pool of threads.

The e-mail and SMS lanes are asynchronous (:mod:`notifications.pump`); their gateways have
asynchronous adapters (``ChannelSetup.email_async_factory``/``sms_async_factory``). A channel
without one -- the console in the demo, or a recording channel in tests -- runs its synchronous
adapters here: up to ``threads`` sends at once, each thread with its own adapter built by the
factory (adapters are not shared between threads, see :mod:`notifications.channels.base`). An
adapter whose send failed is closed and replaced at the thread's next send, as a worker did with
its connection. The threads are started only as sends need them and run in the application's
context (the console adapter logs; a recording one may look at the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from notifications.channels.base import OutgoingEmail, OutgoingSms


class ThreadedSender:
    """``send_email``/``send_sms`` of the adapters ``factory`` builds, awaited from an event loop."""

    def __init__(self, factory: Callable[[], object], *, threads: int, gateway: str, app=None, name: str = "send"):
        self.gateway = gateway
        self._factory = factory
        self._local = threading.local()
        self._adapters: list[object] = []
        self._lock = threading.Lock()
        self._app = app
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"dispatcher-{name}")

    async def send_email(self, email: OutgoingEmail) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, "send_email", email)

    async def send_sms(self, sms: OutgoingSms) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, "send_sms", sms)

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._close_all)

    def _call(self, method: str, item) -> str:
        if self._app is not None and not getattr(self._local, "context", None):
            self._local.context = self._app.app_context()
            self._local.context.push()
        adapter = getattr(self._local, "adapter", None)
        if adapter is None:
            adapter = self._factory()
            self._local.adapter = adapter
            with self._lock:
                self._adapters.append(adapter)
        try:
            return getattr(adapter, method)(item)
        except Exception:
            # A fresh adapter (connection) for this thread's next send.
            self._local.adapter = None
            with self._lock:
                if adapter in self._adapters:
                    self._adapters.remove(adapter)
            _close_quietly(adapter)
            raise

    def _close_all(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            adapters, self._adapters = self._adapters, []
        for adapter in adapters:
            _close_quietly(adapter)


def _close_quietly(adapter) -> None:
    # Closing is best effort: the send's outcome is what counts.
    with contextlib.suppress(Exception):
        adapter.close()
