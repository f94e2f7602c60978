"""The pipe between the stages of a run: bounded, first in first out, ended by closing it.

A :class:`Pipe` replaces ``asyncio.Queue`` plus end markers. Its producer closes it when it is
done, however it is done (finished, failed, cancelled, even cancelled before it started: see
:meth:`Pipe.closes_with`); its consumers take what is left and then see the end, an empty
list. Nobody puts or counts sentinels, nothing is ever dropped, and no task is started to
deliver an end.

Cost per item: :meth:`Pipe.offer` is a plain call; a coroutine is made only when the pipe is
full (:meth:`Pipe.put`) or empty (:meth:`Pipe.take`), and a consumer takes many items per
call. Waiters are woken one at a time (each wakes the next if items or room remain), so eight
workers do not stampede on every item.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

__all__ = ["Pipe", "PipeClosed"]

T = TypeVar("T")


class PipeClosed(RuntimeError):
    """An item was put into a pipe after its producer closed it (a bug in the caller)."""


class Pipe(Generic[T]):
    """A bounded pipe from producers to consumers.

    Args:
        capacity: how many items it holds before :meth:`put` waits (at least 1).

    Raises:
        ValueError: when ``capacity`` is below 1.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be 1 or more, got {capacity}")
        self._capacity = capacity
        self._items: deque[T] = deque()
        self._closed = False
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once the producer closed it (items may still be waiting to be taken)."""
        return self._closed

    def full(self) -> bool:
        return len(self._items) >= self._capacity

    def offer(self, item: T) -> bool:
        """Put ``item`` if there is room now; False (nothing done) when the pipe is full.

        Raises:
            PipeClosed: when the pipe was closed.
        """
        if self._closed:
            raise PipeClosed("put into a closed pipe")
        if len(self._items) >= self._capacity:
            return False
        self._items.append(item)
        _wake_one(self._getters)
        return True

    async def put(self, item: T) -> None:
        """Put ``item``, waiting while the pipe is full (backpressure).

        Raises:
            PipeClosed: when the pipe is closed, before or while waiting.
        """
        while not self.offer(item):
            await _wait_in(self._putters, self._wake_next_putter)

    async def put_many(self, items: list[T]) -> None:
        """Put every item of ``items`` in order, as many at a time as there is room for (one
        coroutine for the lot).

        Raises:
            PipeClosed: when the pipe is closed, before or while waiting.
        """
        start = 0
        while True:
            if self._closed:
                raise PipeClosed("put into a closed pipe")
            room = self._capacity - len(self._items)
            if room > 0:
                self._items.extend(items[start : start + room])
                start += room
                _wake_one(self._getters)
            if start >= len(items):
                return
            await _wait_in(self._putters, self._wake_next_putter)

    async def take(
        self, limit: int, *, weigh: Callable[[T], int] | None = None, budget: int = 0
    ) -> list[T]:
        """Up to ``limit`` items, waiting for the first; ``[]`` means the pipe is closed and
        empty: the end of the stream.

        With ``weigh``, items are taken while their weights add up to at most ``budget`` (the
        first one whatever its weight), so a consumer takes about what it can use at once and
        leaves the rest to the others.
        """
        while not self._items:
            if self._closed:
                return []
            await _wait_in(self._getters, self._wake_next_getter)
        taken = self._take_now(limit) if weigh is None else self._weigh_out(limit, weigh, budget)
        _wake_one(self._putters)
        self._wake_next_getter()
        return taken

    async def chunks(self, limit: int) -> AsyncIterator[list[T]]:
        """Every item, ``limit`` at most at a time, until the end."""
        while chunk := await self.take(limit):
            yield chunk

    def close(self) -> None:
        """No more items will come. Idempotent; wakes every waiter (putters then raise
        :class:`PipeClosed`, getters take what is left, then see the end)."""
        if self._closed:
            return
        self._closed = True
        for waiters in (self._getters, self._putters):
            while waiters:
                _wake_one(waiters)

    def closes_with(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        """Close this pipe when ``task`` (its producer) ends, whatever way, and return it.

        A done callback, so the pipe closes even for a task cancelled before it ever ran,
        which never reaches its own ``finally``.
        """
        task.add_done_callback(lambda _: self.close())
        return task

    def _take_now(self, limit: int) -> list[T]:
        return [self._items.popleft() for _ in range(min(limit, len(self._items)))]

    def _weigh_out(self, limit: int, weigh: Callable[[T], int], budget: int) -> list[T]:
        items = self._items
        taken = [items.popleft()]
        total = weigh(taken[0])
        while items and len(taken) < limit and total + (weight := weigh(items[0])) <= budget:
            taken.append(items.popleft())
            total += weight
        return taken

    def _wake_next_getter(self) -> None:
        if self._items or self._closed:
            _wake_one(self._getters)

    def _wake_next_putter(self) -> None:
        if len(self._items) < self._capacity or self._closed:
            _wake_one(self._putters)


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


async def _wait_in(waiters: deque[asyncio.Future[None]], pass_on: Callable[[], None]) -> None:
    """Wait to be woken; a waiter cancelled after it was woken passes the wake on."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    except BaseException:
        woken = waiter.done() and not waiter.cancelled()
        waiter.cancel()
        if waiter in waiters:
            waiters.remove(waiter)
        if woken:
            pass_on()
        raise
