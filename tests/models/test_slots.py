"""The process's model slots: one limit for every thread and event loop that asks a backend."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

from tinyarms.models import slots
from tinyarms.models.slots import Slots


def test_lints_on_separate_threads_and_loops_share_one_limit() -> None:
    shared = slots.for_backend("ollama:http://127.0.0.1:1", 2)
    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    async def question() -> None:
        async with shared.turn(None) as mine:
            assert mine
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            await asyncio.sleep(0.05)
            with lock:
                state["now"] -= 1

    def lint() -> None:  # as the daemon runs one: its own thread, its own loop
        async def three() -> None:
            await asyncio.gather(question(), question(), question())

        asyncio.run(three())

    threads = [threading.Thread(target=lint) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert state["most"] == 2 and state["now"] == 0


def test_no_slot_by_the_deadline_is_false_and_costs_nothing() -> None:
    one = Slots(1)

    async def go() -> tuple[bool, float, bool]:
        assert await one.take(None)
        started = time.monotonic()
        late = await one.take(time.monotonic() + 0.1)
        waited = time.monotonic() - started
        one.give()
        return late, waited, await one.take(time.monotonic())

    late, waited, after = asyncio.run(go())
    assert late is False and 0.1 <= waited < 1.0 and after is True


def test_a_question_cancelled_while_waiting_holds_no_slot() -> None:
    one = Slots(1)

    async def go() -> bool:
        assert await one.take(None)
        waiting = asyncio.create_task(one.take(None))
        await asyncio.sleep(0.05)
        waiting.cancel()
        one.give()
        await asyncio.sleep(0.05)
        return await one.take(time.monotonic())  # free: the cancelled one took nothing

    assert asyncio.run(go()) is True


def test_deferring_work_takes_no_free_slot_until_it_may() -> None:
    one = Slots(1)
    busy = threading.Event()
    busy.set()

    async def go() -> tuple[bool, bool]:
        refused = await one.take(time.monotonic() + 0.1, busy.is_set)
        asyncio.get_running_loop().call_later(0.05, busy.clear)
        return refused, await one.take(time.monotonic() + 5, busy.is_set)

    assert asyncio.run(go()) == (False, True)


def test_backends_of_one_server_share_slots_and_other_servers_do_not() -> None:
    here = SimpleNamespace(name="ollama", host="http://127.0.0.1:11434")
    there = SimpleNamespace(name="ollama", host="http://10.0.0.2:11434")
    embedded = SimpleNamespace(name="embedded")
    keys = [slots.backend_key(b) for b in (here, SimpleNamespace(**vars(here)), there, embedded)]
    assert keys[0] == keys[1] and len(set(keys)) == 3
    assert slots.for_backend(keys[0], 1) is slots.for_backend(keys[1], 1)
    assert slots.for_backend(keys[0], 1) is not slots.for_backend(keys[2], 1)
