"""_core.TimedMethod, the C wrapper of a driver's execute methods (ext/timed.c), on its own:
no database, a fake recorder that notes what it is given, and fake drivers.  What it must
keep from the Python wrappers it replaced: results and exceptions untouched, the guard set
around the query and reset after, one record per query however hooks nest, the coroutine
protocol (send, throw, close, cancellation) forwarded to the driver's coroutine, and nothing
leaked on any path."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import traceback
import warnings
import weakref
from collections import deque
from collections.abc import Generator
from typing import Any

import pytest

import nanoprof
from nanoprof import _core
from nanoprof.db._base import Live, active, async_execute, async_executemany, guarded, patch
from nanoprof.db._base import sql_text, unrecorded
from nanoprof.db._base import sync_execute, sync_executemany


class FakeRecorder:
    """What a Live offers, noting each finish as (kind, start, sql, params, rows, error,
    whether the guard was set during finish)."""

    def __init__(self) -> None:
        self.on = True
        self.starts = 0
        self.records: list[tuple[Any, ...]] = []

    def start(self) -> int:
        self.starts += 1
        return 41 if self.on else 0

    def start_async(self) -> int:
        self.starts += 1
        return 42 if self.on else 0

    def finish(self, t: int, sql: Any, params: Any = None, rows: int = 0, error: Any = None) -> None:
        self.records.append(("sync", t, sql, params, rows, error, guarded()))

    def finish_async(self, t: int, sql: Any, params: Any = None, rows: int = 0,
                     error: Any = None) -> None:
        self.records.append(("async", t, sql, params, rows, error, guarded()))


class Boom(Exception):
    pass


def _raise_boom(query: Any) -> None:
    raise Boom(query)


class SyncDriver:
    """A driver's cursor: execute notes its arguments and whether the guard was set."""

    def __init__(self) -> None:
        self.seen: deque[tuple[Any, ...]] = deque(maxlen=16)  # bounded: the leak test

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self.seen.append((query, params, kwargs, guarded()))
        if query == "boom":
            _raise_boom(query)
        return self.result

    def executemany(self, query: Any, seq: Any, **kwargs: Any) -> Any:
        self.seen.append((query, seq, kwargs, guarded()))
        return len(seq)

    result: Any = None


def _timed_sync(rec: Any) -> type[SyncDriver]:
    class Timed(SyncDriver):
        execute = sync_execute(SyncDriver.execute, rec, "params")  # type: ignore[assignment]
        executemany = sync_executemany(SyncDriver.executemany, rec, "seq")  # type: ignore[assignment]

    return Timed


class AsyncDriver:
    """An async cursor whose execute awaits `self.wait` (a future, when set) and returns
    `self.result` or raises `self.error`."""

    result: Any = None
    error: Any = None  # an exception (or its class: a new one each time) to raise
    wait: Any = None

    def __init__(self) -> None:
        self.seen: deque[tuple[Any, ...]] = deque(maxlen=16)  # bounded: the leak test
        self.cleaned = 0

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self.seen.append((query, params, kwargs, guarded()))
        try:
            if self.wait is not None:
                await self.wait
            if self.error is not None:
                raise self.error
            return self.result
        finally:
            self.cleaned += 1

    async def executemany(self, query: Any, seq: Any, **kwargs: Any) -> Any:
        self.seen.append((query, seq, kwargs, guarded()))
        return len(seq)

    async def fetch(self, query: Any, *args: Any) -> Any:
        """asyncpg's form: every argument after the query is a parameter."""
        self.seen.append((query, args, {}, guarded()))
        return args


def _timed_async(rec: Any) -> type[AsyncDriver]:
    class Timed(AsyncDriver):
        execute = async_execute(AsyncDriver.execute, rec, "params")  # type: ignore[assignment]
        fetch = async_execute(AsyncDriver.fetch, rec, "*")  # type: ignore[assignment]
        executemany = async_executemany(AsyncDriver.executemany, rec, "seq")  # type: ignore[assignment]

    return Timed


@pytest.fixture(autouse=True)
def _guard_reset() -> Generator[None, None, None]:
    """Every test must leave the guard as it found it (tests share one context); a failing
    one must not make the next ones pass through."""
    yield
    left_set, outstanding = guarded(), active.outstanding
    if active.get():
        active.set(False)
    assert not left_set, "the guard was left set"
    assert outstanding == 0, "a set of the guard was not reset (the read is never skipped)"


def _drive(aw: Any, send: Any = None) -> Any:
    """One step of a coroutine by hand: what it yielded, or ("return", value)."""
    try:
        return aw.send(send)
    except StopIteration as stop:
        return ("return", stop.value)


# ---- the method itself ---------------------------------------------------------------------


def test_is_a_method_with_the_attributes_of_what_it_wraps() -> None:
    rec = FakeRecorder()
    Timed = _timed_sync(rec)
    wrapper = Timed.__dict__["execute"]
    assert type(wrapper) is _core.TimedMethod
    assert Timed.execute is wrapper  # from the class: itself, like a function
    cur = Timed()
    bound = cur.execute
    assert bound.__self__ is cur and bound.__func__ is wrapper
    assert wrapper.__wrapped__ is SyncDriver.execute
    assert wrapper.__name__ == "execute"
    assert wrapper.__qualname__ == "SyncDriver.execute"
    assert wrapper.pname == "params" and not wrapper.many and not wrapper.asynchronous
    assert wrapper.recorder is rec
    cur.result = "r"
    assert bound("SELECT 1") == "r"
    assert Timed.execute(cur, "SELECT 2") == "r"  # called through the class
    assert super(Timed, cur).execute("SELECT 3") == "r"  # the original: not recorded
    assert len(rec.records) == 2


def test_patch_sets_the_hook_attributes_and_undo_restores() -> None:
    rec = FakeRecorder()

    class Cursor(SyncDriver):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            return super().execute(query, params, **kwargs)

    original = Cursor.__dict__["execute"]
    undo = patch(Cursor, {"execute": lambda f: sync_execute(f, rec, "params")})
    wrapper = Cursor.__dict__["execute"]
    assert wrapper.__wrapped__ is original and wrapper.__nanoprof_hook__
    assert wrapper.__qualname__.endswith("Cursor.execute") and wrapper.__name__ == "execute"
    Cursor().execute("SELECT 1")
    assert len(rec.records) == 1
    undo()
    assert Cursor.__dict__["execute"] is original


def test_result_is_returned_untouched_and_the_query_recorded() -> None:
    rec = FakeRecorder()
    cur = _timed_sync(rec)()
    for result in (None, (1, 2), ValueError("a result"), [3], StopIteration(4)):
        cur.result = result
        assert cur.execute("SELECT ?", (1,)) is result
    assert [r[:7] for r in rec.records[:1]] == [("sync", 41, "SELECT ?", (1,), 0, None, False)]
    assert len(rec.records) == 5
    assert all(seen[3] for seen in cur.seen)  # the guard was set inside the driver
    assert not guarded()  # and reset after


def test_params_positional_keyword_or_none_and_query_by_keyword() -> None:
    rec = FakeRecorder()
    cur = _timed_sync(rec)()
    cur.execute("q1", {"a": 1})
    cur.execute("q2", params=[2])
    cur.execute("q3")
    cur.execute("q4", other=5)
    cur.execute(query="q5", params=(5,))
    assert [(r[2], r[3]) for r in rec.records] == [
        ("q1", {"a": 1}), ("q2", [2]), ("q3", None), ("q4", None), ("q5", (5,))]
    assert cur.seen[-1] == ("q5", (5,), {}, True)
    assert cur.seen[3] == ("q4", None, {"other": 5}, True)


def test_missing_arguments_raise_the_drivers_own_error() -> None:
    rec = FakeRecorder()
    Timed = _timed_sync(rec)
    with pytest.raises(TypeError):
        Timed.execute()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Timed().execute()  # type: ignore[call-arg]
    assert rec.records == [] and rec.starts == 0


def test_executemany_counts_rows_and_hands_an_iterator_over_as_a_list() -> None:
    rec = FakeRecorder()
    cur = _timed_sync(rec)()
    assert cur.executemany("m1", [(1,), (2,), (3,)]) == 3
    assert cur.executemany("m2", ((1,),)) == 1
    assert cur.executemany("m3", iter([(7,), (8,)])) == 2
    assert cur.seen[-1][1] == [(7,), (8,)]  # the driver got the list the iterator made
    assert cur.executemany("m4", seq=(x for x in [(9,)])) == 1
    assert cur.seen[-1][1] == [(9,)]
    assert cur.executemany("m5", []) == 0

    class Rows(list):  # type: ignore[type-arg]
        pass

    assert cur.executemany("m6", Rows([(5,), (6,)])) == 2
    assert [(r[2], r[3], r[4]) for r in rec.records] == [
        ("m1", (1,), 3), ("m2", (1,), 1), ("m3", (7,), 2), ("m4", (9,), 1), ("m5", None, 0),
        ("m6", (5,), 2)]


def test_executemany_whose_iterator_fails_records_the_error() -> None:
    rec = FakeRecorder()
    cur = _timed_sync(rec)()

    def rows() -> Generator[tuple[int], None, None]:
        yield (1,)
        raise Boom("no more rows")

    with pytest.raises(Boom, match="no more rows"):
        cur.executemany("m", rows())
    assert not cur.seen  # the driver was not called
    assert isinstance(rec.records[0][5], Boom)  # start() paired with a finish()
    assert not guarded()


def test_query_objects_are_rendered_with_the_cursor() -> None:
    rec = FakeRecorder()
    cur = _timed_sync(rec)()

    class Composed:
        def as_string(self, context: Any) -> str:
            assert context is cur
            return "SELECT composed"

    cur.execute(Composed())
    cur.execute(b"SELECT bytes")
    assert [r[2] for r in rec.records] == ["SELECT composed", b"SELECT bytes"]


def test_exception_is_the_same_object_with_the_drivers_traceback() -> None:
    rec = FakeRecorder()
    Timed = _timed_sync(rec)
    cur = Timed()
    with pytest.raises(Boom) as info:
        cur.execute("boom", (1,))
    exc = info.value
    assert rec.records[0][5] is exc  # recorded: the very exception raised
    assert rec.records[0][6] is True  # finish ran inside `except`, before the reset
    assert not guarded()
    frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
    # This test's frame, the driver's, the helper that raised: no wrapper frame between.
    assert frames[-2:] == ["execute", "_raise_boom"]
    assert frames[-3] == "test_exception_is_the_same_object_with_the_drivers_traceback"
    assert exc.__context__ is None and exc.__cause__ is None


def test_an_error_of_finish_propagates_chained_to_the_querys() -> None:
    class Failing(FakeRecorder):
        def finish(self, *args: Any) -> None:
            raise RuntimeError("finish failed")

    cur = _timed_sync(Failing())()
    with pytest.raises(RuntimeError, match="finish failed") as info:
        cur.execute("boom")
    assert isinstance(info.value.__context__, Boom)
    with pytest.raises(RuntimeError, match="finish failed"):
        cur.execute("fine")
    assert not guarded()


def test_nested_hooks_record_once() -> None:
    rec = FakeRecorder()
    inner = _timed_sync(rec)()

    class Outer:
        def execute(self, query: Any, params: Any = None) -> Any:
            return inner.execute(query, params)

    Outer.execute = sync_execute(Outer.execute, rec, "params")  # type: ignore[method-assign]
    Outer().execute("SELECT nested")
    assert len(rec.records) == 1 and rec.starts == 1
    token = active.set(True)  # an ORM-level hook's query
    try:
        inner.execute("SELECT under an ORM")
    finally:
        active.reset(token)
    assert len(rec.records) == 1


def test_off_passes_through() -> None:
    rec = FakeRecorder()
    cur = _timed_sync(rec)()
    rec.on = False
    cur.result = "through"
    assert cur.execute("SELECT 1") == "through"
    assert rec.records == [] and cur.seen[-1][3] is False  # the guard was not set


def test_uninstalled_live_passes_through() -> None:
    recorder = _core.QueryRecorder()
    live = Live(recorder)
    sync_cur = _timed_sync(live)()
    async_cur = _timed_async(live)()
    nanoprof.start_profile(method="TASK", path="/live")
    try:
        sync_cur.execute("SELECT 1")
        coro = async_cur.execute("SELECT 2")
        assert type(coro) is _core.TimedAwait
        asyncio.run(coro)
        live.off()
        sync_cur.execute("SELECT 3")
        raw = async_cur.execute("SELECT 4")
        assert asyncio.iscoroutine(raw) and type(raw) is not _core.TimedAwait  # unwrapped
        asyncio.run(raw)
    finally:
        view = nanoprof.end_profile()
    assert view is not None
    assert [q.sql for q in view.sql_queries] == ["SELECT 1", "SELECT 2"]


def test_a_live_recorder_is_called_from_c_and_stops_at_off() -> None:
    """The hooks' real recorder (LiveRecorder over a QueryRecorder), which TimedMethod calls
    without Python attribute reads: it records, and after off() new queries are not, while
    one already started still finishes."""
    live = Live(_core.QueryRecorder())
    cur = _timed_sync(live)()
    acur = _timed_async(live)()

    async def two_async() -> None:
        await acur.execute("SELECT async", (2,))
        pending = acur.execute("SELECT started before off", (3,))
        live.off()
        await pending  # started (TimedAwait made) while on: finishes and is recorded
        await acur.execute("SELECT async after off", (4,))

    nanoprof.start_profile("GET", "/live")
    try:
        cur.execute("SELECT sync", (1,))
        asyncio.run(two_async())
        cur.execute("SELECT sync after off", (5,))
    finally:
        done = nanoprof.end_profile()
    assert [(q.sql, q.params) for q in done.sql_queries] == [
        ("SELECT sync", "$1=1"), ("SELECT async", "$1=2"), ("SELECT started before off", "$1=3")]
    assert live.on is False and live.start() == 0 and live.start_async() == 0
    with pytest.raises(TypeError):
        _core.LiveRecorder(FakeRecorder())
    with pytest.raises(TypeError):
        _core.LiveRecorder(_core.QueryRecorder(), extra=1)


def test_an_unrecorded_method_hides_the_queries_it_runs() -> None:
    """unrecorded(): housekeeping (asyncpg's pool reset) runs its queries with the guard up,
    whatever its arguments, and returns or raises what it would have."""
    rec = FakeRecorder()
    cur = _timed_sync(rec)()
    acur = _timed_async(rec)()

    class Pool:
        def reset(self, *, timeout: Any = None) -> Any:
            cur.execute("RESET ALL")
            return ("reset", timeout, guarded())

        async def areset(self, *, timeout: Any = None) -> Any:
            await acur.execute("RESET ALL")
            if timeout == "boom":
                raise Boom("reset failed")
            return ("areset", timeout, guarded())

    Pool.reset = unrecorded(Pool.reset)  # type: ignore[method-assign]
    Pool.areset = unrecorded(Pool.areset, asynchronous=True)  # type: ignore[method-assign]
    pool = Pool()
    assert pool.reset(timeout=3) == ("reset", 3, True)
    assert asyncio.run(pool.areset(timeout=4)) == ("areset", 4, True)
    with pytest.raises(Boom):
        asyncio.run(pool.areset(timeout="boom"))
    assert not guarded()
    assert rec.records == [] and len(cur.seen) == 1 and len(acur.seen) == 2
    cur.execute("SELECT after", None)  # outside it, queries record again
    assert [r[2] for r in rec.records] == ["SELECT after"]


def test_the_guard_counts_the_sets_not_reset_and_stays_up_for_a_lost_token() -> None:
    import contextvars

    guard = _core.QueryGuard("nanoprof_test_guard")
    assert guard.get() is False and guard.outstanding == 0
    bypass = guard.var.set(True)  # a set not made through the guard is not seen, by anyone
    assert guard.get() is False
    guard.var.reset(bypass)
    outer = guard.set(True)
    inner = guard.set(True)
    assert guard.get() is True and guard.var.get() is True and guard.outstanding == 2
    guard.reset(inner)
    guard.reset(outer)
    assert guard.get() is False and guard.outstanding == 0
    with pytest.raises(RuntimeError):
        guard.reset(outer)  # used already: nothing changes
    assert guard.outstanding == 0
    lost = contextvars.copy_context().run(guard.set, True)
    with pytest.raises(ValueError):
        guard.reset(lost)  # another context's token cannot be reset here
    assert guard.outstanding == 1  # so the count stays up, and the variable is read again
    rec = FakeRecorder()

    class Cursor:
        def execute(self, query: Any, params: Any = None) -> Any:
            return None

    Cursor.execute = _core.TimedMethod(  # type: ignore[method-assign]
        Cursor.execute, rec, guard=guard, text=sql_text, pname="params")
    Cursor().execute("SELECT read")
    token = guard.set(True)
    Cursor().execute("SELECT under the guard")
    guard.reset(token)
    assert [r[2] for r in rec.records] == ["SELECT read"]


# ---- the execute-wrapper form (Django's connection.execute_wrappers) ---------------------------


def _execute_wrapper(rec: Any) -> Any:
    return _core.TimedMethod(None, rec, guard=active, text=sql_text, execute_wrapper=True)


def test_the_execute_wrapper_times_each_call_and_reads_many_per_call() -> None:
    rec = FakeRecorder()
    wrapper = _execute_wrapper(rec)
    seen: list[tuple[Any, ...]] = []

    def execute(sql: Any, params: Any, many: bool, context: Any) -> str:
        seen.append((sql, params if not many or params is None else list(params), many,
                     context, guarded()))
        return "rows"

    ctx = {"connection": "c"}
    assert wrapper(execute, "SELECT %s", (1,), False, ctx) == "rows"
    assert wrapper(execute, "INSERT %s", [(1,), (2,), (3,)], True, ctx) == "rows"
    assert wrapper(execute, "INSERT %s", iter([(4,), (5,)]), True, ctx) == "rows"
    assert wrapper(execute, "INSERT nothing", None, True, ctx) == "rows"
    assert [r[2:6] for r in rec.records] == [
        ("SELECT %s", (1,), 0, None),
        ("INSERT %s", (1,), 3, None),
        ("INSERT %s", (4,), 2, None),  # the iterator, consumed: execute got its list
        ("INSERT nothing", None, 0, None),
    ]
    assert seen[2][1] == [(4,), (5,)] and seen[3][1] is None
    assert all(s[3] is ctx and s[4] for s in seen)  # the guard was up inside execute


class Undecided:
    def __bool__(self) -> bool:
        raise Boom("neither one nor many")


def test_the_execute_wrapper_fails_cleanly_on_a_many_with_no_truth() -> None:
    # `many` is read before anything else is set up: its error must come out as it is, with
    # the query recorded as failed and nothing left half-made (no guard left up).
    rec = FakeRecorder()
    wrapper = _execute_wrapper(rec)
    with pytest.raises(Boom, match="neither one nor many"):
        wrapper(lambda *a: "never run", "SELECT 1", None, Undecided(), {})
    assert rec.records[-1][2] == "SELECT 1" and isinstance(rec.records[-1][5], Boom)
    assert guarded() is False
    assert wrapper(lambda *a: "rows", "SELECT 2", None, False, {}) == "rows"


def test_the_execute_wrapper_records_an_error_and_passes_through_when_guarded() -> None:
    rec = FakeRecorder()
    wrapper = _execute_wrapper(rec)
    raised = Boom("no table")

    def failing(sql: Any, params: Any, many: bool, context: Any) -> None:
        raise raised

    with pytest.raises(Boom) as caught:
        wrapper(failing, "SELECT * FROM missing", None, False, {})
    assert caught.value is raised
    assert rec.records[-1][2] == "SELECT * FROM missing" and rec.records[-1][5] is raised
    token = active.set(True)  # a hook above already times this query
    try:
        assert wrapper(lambda *a: "through", "SELECT 1", None, False, {}) == "through"
    finally:
        active.reset(token)
    assert len(rec.records) == 1
    with pytest.raises(TypeError, match="execute wrapper"):
        _core.TimedMethod(len, rec, guard=active, text=sql_text, execute_wrapper=True)
    with pytest.raises(TypeError, match="execute wrapper"):
        _core.TimedMethod(None, rec, guard=active, text=sql_text, many=True, execute_wrapper=True)
    with pytest.raises(TypeError, match="execute wrapper"):
        wrapper()
    assert repr(wrapper) == "<nanoprof timed execute wrapper>"


def test_a_non_callable_or_bad_guard_is_refused() -> None:
    with pytest.raises(TypeError):
        _core.TimedMethod(1, FakeRecorder(), guard=active, text=sql_text)
    with pytest.raises(TypeError):
        _core.TimedMethod(len, FakeRecorder(), guard=None, text=sql_text)
    with pytest.raises(TypeError, match="QueryGuard"):
        _core.TimedMethod(len, FakeRecorder(), guard=active.var, text=sql_text)
    with pytest.raises(TypeError):
        _core.TimedMethod(len, FakeRecorder(), guard=active)


# ---- the coroutine form --------------------------------------------------------------------


def test_async_result_untouched_and_guard_set_inside() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()

    async def main() -> list[Any]:
        out = []
        for result in ((1, 2), ValueError("a result"), None, StopIteration(3), (None,)):
            cur.result = result
            out.append(await cur.execute("SELECT ?", (1,)))
            assert not guarded()
        return out

    results = asyncio.run(main())
    assert results[0] == (1, 2) and results[3].args == (3,) and results[4] == (None,)
    assert isinstance(results[1], ValueError) and results[2] is None
    assert all(seen[3] for seen in cur.seen)
    assert [r[:7] for r in rec.records[:1]] == [("async", 42, "SELECT ?", (1,), 0, None, False)]
    assert len(rec.records) == 5


def test_async_exception_is_the_same_object() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()
    cur.error = Boom("async boom")

    async def main() -> None:
        await cur.execute("SELECT boom")

    with pytest.raises(Boom) as info:
        asyncio.run(main())
    assert info.value is cur.error and rec.records[0][5] is cur.error
    # Recorded after the driver's step: the coroutine form's guard covers only its steps
    # (the sync form records inside `except`, with its ContextVar still set).
    assert rec.records[0][6] is False
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-2:] == ["main", "execute"]  # no frame of the wrapper in between


def test_async_nested_and_guarded_calls_return_the_drivers_coroutine() -> None:
    rec = FakeRecorder()
    inner = _timed_async(rec)()

    class Outer:
        async def execute(self, query: Any, params: Any = None) -> Any:
            under = inner.execute(query, params)
            assert type(under) is not _core.TimedAwait  # the guard was set: no wrapper
            return await under

    Outer.execute = async_execute(Outer.execute, rec, "params")  # type: ignore[method-assign]
    inner.result = "deep"
    assert asyncio.run(Outer().execute("SELECT nested")) == "deep"
    assert len(rec.records) == 1


def test_async_executemany_and_asyncio_helpers() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()

    async def main() -> Any:
        n = await cur.executemany("m", iter([(1,), (2,)]))
        assert cur.seen[-1][1] == [(1,), (2,)]
        aw = cur.execute("SELECT task")
        assert asyncio.iscoroutine(aw)
        assert aw.__name__ == "execute" and aw.__qualname__ == "AsyncDriver.execute"
        task = asyncio.create_task(aw)
        assert "AsyncDriver.execute" in repr(task)  # asyncio names the driver's coroutine
        gathered = await asyncio.gather(cur.execute("g1"), cur.execute("g2"))
        return n, await task, gathered

    cur.result = "x"
    assert asyncio.run(main()) == (2, "x", ["x", "x"])
    assert sorted((r[2], r[4]) for r in rec.records) == [
        ("SELECT task", 0), ("g1", 0), ("g2", 0), ("m", 2)]


def test_positional_parameters_stay_as_they_were_for_whoever_kept_them() -> None:
    # A (query, *args) method's parameters are a tuple the wrapper makes, one per query.
    # This recorder keeps each one: none of them may change afterwards.
    rec = FakeRecorder()
    cur = _timed_async(rec)()

    async def run() -> list[Any]:
        out = [await cur.fetch("SELECT $1, $2", i, f"x{i}") for i in range(3)]
        return out + [await cur.fetch("SELECT $1", 9), await cur.fetch("SELECT 1")]

    assert asyncio.run(run()) == [(0, "x0"), (1, "x1"), (2, "x2"), (9,), ()]
    assert [r[3] for r in rec.records] == [(0, "x0"), (1, "x1"), (2, "x2"), (9,), None]
    assert [r[2] for r in rec.records][-1] == "SELECT 1"


# Argument lists of (query, *args) calls: none, one value, as many as the wrapper holds one
# by one (3), and more (a tuple); a repeat of the same values is a duplicate, other values or
# values without a hash never are.
STAR_CALLS = [(), (7,), (7,), (8,), (1, "a", None), (1, "a", None), (1, "a", None, 4.5),
              (1, "a", None, 4.5), (1, "a", None, 5.5), ([1], {"k": 2}), ([1], {"k": 2})]


def star_sql(n: int) -> str:
    return "SELECT " + (", ".join(f"${i + 1}" for i in range(n)) or "now()")


def test_parameters_after_the_query_read_as_the_tuple_of_them() -> None:
    """Through the hooks' real recorder, the parameters of a (query, *args) method are held
    one by one up to three and as a tuple beyond (ext/timed.c): either way the profile reads
    them as the tuple of them, summarized in order and told apart by value."""
    live = Live(_core.QueryRecorder())
    cur = _timed_async(live)()

    async def run() -> list[Any]:
        return [await cur.fetch(star_sql(len(args)), *args) for args in STAR_CALLS]

    nanoprof.start_profile("GET", "/star")
    try:
        assert asyncio.run(run()) == STAR_CALLS  # what the driver got, untouched
    finally:
        done = nanoprof.end_profile()
    abc = "$1=1, $2='a', $3=NULL"
    assert [q.params for q in done.sql_queries] == [
        None, "$1=7", "$1=7", "$1=8", abc, abc, f"{abc}, $4=4.5", f"{abc}, $4=4.5",
        f"{abc}, $4=5.5", "$1=[1], $2={'k': 2}", "$1=[1], $2={'k': 2}"]
    profile = json.loads(done.to_json())
    assert {d["example"]: d["exact_repeats"] for d in profile["duplicates"]} == {
        star_sql(1): 1, star_sql(3): 1, star_sql(4): 1}
    assert profile["duplicate_count"] == 3


def test_cancellation_is_recorded_and_propagates() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()

    async def main() -> None:
        cur.wait = asyncio.get_running_loop().create_future()
        state: dict[str, Any] = {}

        async def query() -> None:
            try:
                await cur.execute("SELECT slow")
            except asyncio.CancelledError:
                state["guard_after"] = guarded()
                raise

        task = asyncio.create_task(query())
        await asyncio.sleep(0)
        assert cur.seen and cur.seen[0][3] is True  # awaiting the future, guard set
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert state["guard_after"] is False
        assert cur.cleaned == 1

    asyncio.run(main())
    assert len(rec.records) == 1
    assert isinstance(rec.records[0][5], asyncio.CancelledError)


def test_send_throw_and_close_are_forwarded() -> None:
    rec = FakeRecorder()

    class Driver:
        async def execute(self, query: Any, params: Any = None) -> Any:
            try:
                got = await Step("first")
            except Boom as exc:
                got = ("caught", exc.args)
            try:
                second = await Step("second")
            finally:
                self.closed = True
            return got, second

    class Step:
        def __init__(self, name: str) -> None:
            self.name = name

        def __await__(self) -> Generator[str, Any, Any]:
            return (yield self.name)

    Driver.execute = async_execute(Driver.execute, rec, "params")  # type: ignore[method-assign]
    # send: values in, the yielded out, the result as StopIteration
    aw = Driver().execute("SELECT steps")
    assert aw.__await__() is aw and iter(aw) is aw
    assert aw.send(None) == "first"
    # Between steps the task is suspended: the guard covers code inside a step only.
    assert guarded() is False
    assert aw.send("one") == "second"
    assert _drive(aw, ("a", "tuple")) == ("return", ("one", ("a", "tuple")))
    assert guarded() is False
    assert rec.records[-1][5] is None
    with pytest.raises(RuntimeError):  # like a coroutine: cannot be reused
        aw.send(None)
    # throw: into the driver's coroutine, which catches it
    drv = Driver()
    aw = drv.execute("SELECT throw")
    assert next(aw) == "first"
    assert aw.throw(Boom("in")) == "second"
    assert _drive(aw, "two") == ("return", (("caught", ("in",)), "two"))
    assert rec.records[-1][2] == "SELECT throw" and rec.records[-1][5] is None
    # throw(type, value, tb), the old form: forwarded as given
    aw = Driver().execute("SELECT throw3")
    next(aw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+
        assert aw.throw(Boom, Boom("three-arg"), None) == "second"
    aw.close()
    # close: the driver's finally runs; recorded as ended by GeneratorExit
    drv = Driver()
    aw = drv.execute("SELECT close")
    next(aw)
    assert aw.send("one") == "second"  # inside the driver's try/finally
    assert aw.close() is None
    assert drv.closed and guarded() is False
    assert isinstance(rec.records[-1][5], GeneratorExit)
    assert aw.close() is None  # again: nothing


def test_throw_into_an_unstarted_query_records_nothing() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()
    aw = cur.execute("SELECT never")
    with pytest.raises(Boom):
        aw.throw(Boom("before the start"))
    assert rec.records == [] and not cur.seen and guarded() is False
    aw = cur.execute("SELECT closed before the start")
    aw.close()
    assert rec.records == [] and not cur.seen


def test_an_exception_result_of_throw_unwinds_as_the_same_object() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()

    async def main() -> None:
        cur.wait = asyncio.get_running_loop().create_future()
        aw = cur.execute("SELECT x")
        step = aw.send(None)
        assert step is cur.wait or step is not None
        err = Boom("thrown")
        with pytest.raises(Boom) as info:
            aw.throw(err)
        assert info.value is err and rec.records[-1][5] is err
        assert guarded() is False
        cur.wait.cancel()

    asyncio.run(main())


def test_dropping_an_unawaited_query_leaks_nothing_and_does_not_warn() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail
        aw = cur.execute("SELECT dropped")
        inner = weakref.ref(_inner(aw))
        del aw
        gc.collect()
    assert inner() is None
    assert rec.records == [] and guarded() is False


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_queries_dropped_or_awaited_one_after_another_never_warn() -> None:
    # Ended TimedAwaits are reused for later queries: one reused after being dropped must
    # still close its driver's coroutine when it is dropped too.
    rec = FakeRecorder()
    cur = _timed_async(rec)()
    for round in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            aw = cur.execute("SELECT dropped")
            inner = weakref.ref(_inner(aw))
            del aw
            gc.collect()
        assert inner() is None
        assert asyncio.run(_awaited(cur, round)) == cur.result
    assert [r[2] for r in rec.records] == ["SELECT awaited"] * 3


async def _awaited(cur: Any, n: int) -> Any:
    return await cur.execute("SELECT awaited", (n,))


def _inner(aw: Any) -> Any:
    """The driver's coroutine a TimedAwait holds (through gc, its only public view)."""
    coros = [o for o in gc.get_referents(aw) if asyncio.iscoroutine(o)]
    assert len(coros) == 1
    return coros[0]


def test_dropping_a_started_query_closes_the_driver() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()
    cur.wait = Waiter()
    aw = cur.execute("SELECT abandoned")
    inner = weakref.ref(_inner(aw))
    assert aw.send(None) == "waiting"
    assert cur.seen[-1][3] is True  # the driver's step ran guarded
    del aw
    gc.collect()
    assert guarded() is False
    assert inner() is None and cur.cleaned == 1  # the driver's finally ran
    assert rec.records == []


class Waiter:
    def __await__(self) -> Generator[str, None, None]:
        yield "waiting"


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_cycle_through_the_awaitable_is_collected() -> None:
    rec = FakeRecorder()
    cur = _timed_async(rec)()
    cur.wait = Waiter()
    aw = cur.execute("SELECT cycle")
    cur.keep = aw  # type: ignore[attr-defined]  # cursor -> awaitable -> cursor
    ref = weakref.ref(aw)
    aw.send(None)
    del aw, cur
    gc.collect()
    assert ref() is None
    assert guarded() is False
    # The collector finalized it, so it is not reused: CPython never finalizes an object
    # twice, and a query dropped unawaited through a reused one would leave its driver's
    # coroutine unclosed, which warns.
    again = _timed_async(rec)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aw = again.execute("SELECT dropped after the cycle")
        del aw
        gc.collect()


# ---- nothing leaks ------------------------------------------------------------------------

N = 100_000


def _flat(before: int, after: int, slack: int = 200) -> bool:
    return after - before < slack


def test_refcounts_stay_flat_over_many_calls() -> None:
    live = Live(_core.QueryRecorder())
    sync_cur = _timed_sync(live)()
    async_cur = _timed_async(live)()
    failing = _timed_async(live)()
    failing.error = Boom  # a new exception each time (one raised again grows its traceback)
    params = (1, "two")
    value = float("2.5")  # a parameter of its own, whose references are counted
    many = [(1,), (2,)]

    async def run_async(n: int) -> None:
        for i in range(n):
            if i % 100 == 0:
                nanoprof.end_profile()
                nanoprof.start_profile(method="TASK", path="/async")
            await async_cur.execute("SELECT ?", params)
            await async_cur.fetch("SELECT $1, $2", 1, value)  # the values held one by one
            await async_cur.fetch("SELECT $1, $2, $3, $4", *params, value, None)  # as a tuple
            await async_cur.executemany("INSERT ?", iter(many))
            if i % 10 == 0:
                try:
                    await failing.execute("SELECT boom")
                except Boom:
                    pass
                async_cur.execute("SELECT never awaited")  # dropped
                async_cur.fetch("SELECT $1", value)  # dropped, its value held

    def run_sync(n: int) -> None:
        for i in range(n):
            if i % 100 == 0:
                nanoprof.end_profile()
                nanoprof.start_profile(method="TASK", path="/sync")
            sync_cur.execute("SELECT ?", params)
            sync_cur.executemany("INSERT ?", iter(many))
            if i % 10 == 0:
                try:
                    sync_cur.execute("boom", params)
                except Boom:
                    pass

    def run(n: int) -> None:
        nanoprof.start_profile(method="TASK", path="/x")
        run_sync(n)
        asyncio.run(run_async(n // 2))
        nanoprof.end_profile()

    # The store keeps the last max_history profiles: a short history, filled by the warm-up,
    # so that the profiles it keeps take no more memory after the run than before.
    history = _core.config()["max_history"]
    _core.configure(max_history=8)
    try:
        run(2000)
        gc.collect()
        objects = len(gc.get_objects())
        refs = [sys.getrefcount(o) for o in (params, value, many, live)]
        blocks = _core.ctl("stats.memory.blocks")
        recorded = _core.hook_stats()["in_request"]
        run(N)
        gc.collect()
    finally:
        _core.configure(max_history=history)
    # Every query was recorded: sync 2 a round and 1 failing in 10, async 4 a round in half
    # as many rounds, and 1 failing in 10 of those.
    assert _core.hook_stats()["in_request"] - recorded == 2 * N + N // 10 + 4 * N // 2 + N // 20
    assert _flat(objects, len(gc.get_objects()))
    assert [sys.getrefcount(o) for o in (params, value, many, live)] == refs
    assert _core.ctl("stats.memory.blocks") - blocks < 64
    assert not guarded()
