"""The reference API on its own (no framework): clock, profiles, record_sql, the store,
Profiler and flame graphs, configure(), and what bad input gets."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

import nanoprof
from nanoprof import _core


# ---- clock ---------------------------------------------------------------------------------

def test_nanos_is_monotonic_and_elapsed_nanos_measures_from_it() -> None:
    a = nanoprof.nanos()
    b = nanoprof.nanos()
    assert b >= a > 0
    assert nanoprof.elapsed_nanos(a) >= b - a
    assert nanoprof.elapsed_nanos(b + 10**12) == 0  # a start in the future


def test_elapsed_nanos_refuses_what_is_not_a_timestamp() -> None:
    with pytest.raises(TypeError):
        nanoprof.elapsed_nanos("now")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nanos"):
        nanoprof.elapsed_nanos(-1)


def test_clock_info_names_its_source() -> None:
    info = nanoprof.clock_info()
    assert info["source"] in {"tsc", "cntvct", "monotonic"}
    assert info["frequency_hz"] > 0


# ---- manual profiles -------------------------------------------------------------------------

def test_start_and_end_profile_give_the_reference_fields() -> None:
    p = nanoprof.start_profile(method="TASK", path="generate_report")
    assert p is not None and nanoprof.get_current_profile() is p
    nanoprof.record_sql("SELECT * FROM users WHERE active = $1", 150_000, params=(True,))
    p.handler_ns = 90_000
    done = nanoprof.end_profile()
    assert done is p
    assert nanoprof.get_current_profile() is None
    assert (done.method, done.path) == ("TASK", "generate_report")
    assert done.handler_ns >= 90_000 and done.total_ns > 0 and done.start_ns > 0
    assert done.sql_count == 1 and done.sql_total_ns == 150_000
    q = done.sql_queries[0]
    assert isinstance(q, nanoprof.SQLQuery)
    assert q.sql == "SELECT * FROM users WHERE active = $1" and q.duration_ns == 150_000
    assert q.params == "active=True" and len(q.fingerprint) == 16
    d = done.to_dict()
    for key in ("method", "path", "total_ns", "total", "middleware_ns", "routing_ns",
                "handler_ns", "sql_total_ns", "sql_count", "queries"):
        assert key in d
    # Durations keep one decimal in their unit: us below 100 us, ms below 1 s.
    assert d["queries"][0]["duration"] == "0.2ms"
    assert done.to_header().startswith("total=") and "sql=0.2ms(1q)" in done.to_header()
    assert "request" in done.to_collapsed_stack()


def test_an_ended_profile_keeps_its_figures_after_its_memory_is_reused() -> None:
    nanoprof.configure(max_history=1)
    nanoprof.start_profile(method="GET", path="/first")
    nanoprof.record_sql("SELECT 1", 5)
    first = nanoprof.end_profile()
    for i in range(50):  # the store holds one: /first's C profile is reused by these
        nanoprof.start_profile(method="GET", path=f"/later/{i}")
        nanoprof.record_sql("SELECT 2", 7)
        nanoprof.record_sql("SELECT 3", 7)
        nanoprof.end_profile()
    assert first is not None
    assert (first.path, first.sql_count, first.sql_queries[0].sql) == ("/first", 1, "SELECT 1")
    nanoprof.configure(max_history=1000)


def test_handler_ns_can_only_grow_and_only_while_running() -> None:
    p = nanoprof.start_profile(method="TASK", path="x")
    assert p is not None
    p.handler_ns = 1_000
    with pytest.raises(ValueError, match="only grow"):
        p.handler_ns = 10
    with pytest.raises(TypeError):
        p.handler_ns = 1.5  # type: ignore[assignment]
    done = nanoprof.end_profile()
    with pytest.raises(nanoprof.StateError):
        done.handler_ns = 5_000  # type: ignore[union-attr]


def test_end_profile_without_a_profile_returns_none() -> None:
    assert nanoprof.end_profile() is None


@pytest.mark.parametrize("status", [-1, 1, 99, 1000, 2**32 + 200, 2**80])
def test_end_profile_refuses_a_status_no_response_has_and_keeps_the_profile(status: int) -> None:
    nanoprof.start_profile("GET", "/status")
    with pytest.raises(ValueError, match="100 to 999, or 0"):
        nanoprof.end_profile(status)
    # Nothing is lost: the profile is still the current one, and ends with a real status.
    assert nanoprof.get_current_profile() is not None
    done = nanoprof.end_profile(404)
    assert done is not None and done.status == 404


@pytest.mark.parametrize("status", [True, 200.0, "200", None])
def test_end_profile_refuses_a_status_that_is_no_int(status: object) -> None:
    nanoprof.start_profile("GET", "/status")
    with pytest.raises(TypeError, match="int HTTP status"):
        nanoprof.end_profile(status)  # type: ignore[arg-type]
    assert nanoprof.end_profile(status=0).status == 0  # type: ignore[union-attr]


def test_end_profile_takes_every_three_digit_status_and_zero() -> None:
    for status in (0, 100, 599, 600, 999):
        nanoprof.start_profile("GET", "/status")
        done = nanoprof.end_profile(status=status)
        assert done is not None and done.status == status


def test_request_profile_cannot_be_made_directly() -> None:
    with pytest.raises(TypeError, match="start_profile"):
        nanoprof.RequestProfile()  # type: ignore[call-arg]


# ---- record_sql ------------------------------------------------------------------------------

def test_record_sql_outside_a_request_records_nothing() -> None:
    assert nanoprof.record_sql("SELECT 1", 10) is False


@pytest.mark.parametrize(
    "args, exc",
    [
        ((123, 10), TypeError),
        (("SELECT 1", 1.5), TypeError),
        (("SELECT 1", True), TypeError),
        (("SELECT 1", -1), ValueError),
        (("SELECT 1", 10**30), ValueError),
        (("SELECT 1", 10, 5), TypeError),
    ],
)
def test_record_sql_refuses_wrong_types_and_values(args: tuple, exc: type) -> None:
    nanoprof.start_profile(method="T", path="/")
    try:
        with pytest.raises(exc):
            nanoprof.record_sql(*args)
    finally:
        done = nanoprof.end_profile()
    assert done is not None and done.sql_count == 0


def test_record_sql_takes_any_bytes_and_strings_and_renders_valid_json() -> None:
    nanoprof.start_profile(method="T", path="/\x00\udcff")
    texts = [b"SELECT '\xff\xfe' FROM t\x00", "SELECT '\udc80'", "SELECT '\x00'",
             b"SELECT '\xe2\x82'", "<script>alert(1)</script>", "x" * 100_000]
    for t in texts:
        assert nanoprof.record_sql(t, 1, params={"password": "hunter2", "n": None, "b": b"\x00"})
    done = nanoprof.end_profile()
    assert done is not None and done.sql_count == len(texts)
    doc = json.loads(done.to_json())
    assert len(doc["queries"]) == len(texts)
    assert "<script>" not in done.to_json()
    assert done.to_header().isascii()


def test_params_are_summarised_and_cut() -> None:
    nanoprof.start_profile(method="T", path="/")
    nanoprof.record_sql("SELECT $1, $2, $3, $4", 1, params=["a" * 500, 3.5, None, b"abc"])
    done = nanoprof.end_profile()
    assert done is not None
    summary = done.sql_queries[0].params
    assert summary.startswith("$1='aaaa") and "...'" in summary
    assert "$2=3.5, $3=NULL, $4=<binary 3 bytes>" in summary
    assert len(summary) < 200


def test_n_plus_one_is_reported_by_shape() -> None:
    nanoprof.start_profile(method="GET", path="/articles")
    nanoprof.record_sql("SELECT * FROM articles", 10)
    for i in range(6):
        nanoprof.record_sql(f"SELECT * FROM authors WHERE id = {i}", 10)
    done = nanoprof.end_profile()
    assert done is not None
    [pattern] = done.n_plus_one
    assert pattern["normalized"] == "SELECT * FROM authors WHERE id = ?"
    assert pattern["count"] == 6


# ---- spans and Profiler -------------------------------------------------------------------

def test_profiler_trace_is_a_span_inside_a_request() -> None:
    profiler = nanoprof.Profiler()
    nanoprof.start_profile(method="GET", path="/")
    with profiler.trace("render"):
        nanoprof.record_sql("SELECT 1", 10)
    done = nanoprof.end_profile()
    assert done is not None
    assert "render" in done.to_collapsed_stack()
    assert len(profiler.store) == 0  # the request's span, not a profile of its own


def test_profiler_trace_outside_a_request_is_kept_by_the_profiler(tmp_path: Path) -> None:
    profiler = nanoprof.Profiler()

    @profiler.trace("work")
    def work() -> int:
        with profiler.trace("inner"):
            return 42

    assert work() == 42
    assert len(profiler.store) == 1
    for suffix, check in ((".svg", "<svg"), (".json", "traceEvents"), (".txt", "inner")):
        out = profiler.dump_flamegraph(tmp_path / f"flame{suffix}")
        assert check in out.read_text()
    json.loads((tmp_path / "flame.json").read_text())
    with pytest.raises(ValueError, match="suffix"):
        profiler.dump_flamegraph(tmp_path / "flame.png")
    with pytest.raises(TypeError):
        profiler.trace(3)  # type: ignore[arg-type]


def test_profiler_trace_decorates_coroutines() -> None:
    profiler = nanoprof.Profiler()

    @profiler.trace("async-work")
    async def work() -> str:
        await asyncio.sleep(0)
        return "done"

    assert asyncio.run(work()) == "done"
    assert "async-work" in profiler.store.get_recent(1)[0].path


# ---- the store ----------------------------------------------------------------------------

def test_store_slowest_recent_flame_graph_and_clear() -> None:
    nanoprof.configure(max_history=100)
    store = nanoprof.get_store()
    store.clear()
    for i, ns in enumerate((1_000, 50_000, 5_000)):
        nanoprof.start_profile(method="GET", path=f"/r{i}")
        nanoprof.record_sql("SELECT 1", ns)
        nanoprof.end_profile()
    assert len(store) == 3 and store.capacity == 100
    assert [p.path for p in store.get_recent(2)] == ["/r2", "/r1"]
    assert len(store.get_slowest(n=2)) == 2
    assert "sql" in store.get_flame_graph()
    with pytest.raises(ValueError):
        store.get_slowest(n=-1)
    store.clear()
    assert len(store) == 0
    nanoprof.dump_flamegraph  # noqa: B018 (exists at the package level)


# ---- configure ------------------------------------------------------------------------------

def test_configure_names_the_wrong_option() -> None:
    with pytest.raises(nanoprof.ConfigError, match="unknown option 'slow_query_ms'"):
        nanoprof.configure(slow_query_ms=10)
    with pytest.raises(ValueError, match="slow_query_threshold_ms"):
        nanoprof.configure(slow_query_threshold_ms=-1)
    with pytest.raises(TypeError, match="max_history"):
        nanoprof.configure(max_history="many")
    with pytest.raises(TypeError, match="enabled"):
        nanoprof.configure(enabled="yes")
    with pytest.raises(nanoprof.ConfigError, match="sql_ignore"):
        nanoprof.configure(sql_ignore="(unclosed")
    with pytest.raises(TypeError):
        nanoprof.configure(1)  # type: ignore[misc]


def test_configure_applies_and_config_reads_back() -> None:
    nanoprof.configure(slow_query_threshold_ms=25, n_plus_one_threshold=3)
    cfg = nanoprof.config()
    assert cfg["slow_query_threshold_ms"] == 25.0 and cfg["n_plus_one_threshold"] == 3
    assert any(name == "max_history" for name, *_ in nanoprof.options())
    assert nanoprof.ctl("opt.n_plus_one_threshold") == 3
    with pytest.raises(KeyError):
        nanoprof.ctl("stats.nothing")
    assert "stats.requests" in nanoprof.stats("stats.")
    nanoprof.configure(slow_query_threshold_ms=100, n_plus_one_threshold=5)


def test_disabled_profiling_costs_a_branch_and_records_nothing() -> None:
    nanoprof.configure(enabled=False)
    try:
        assert nanoprof.start_profile(method="GET", path="/") is None

        @nanoprof.profile_handler
        def view() -> tuple[str, int, dict[str, str]]:
            return ("ok", 200, {})

        assert view() == ("ok", 200, {})
    finally:
        nanoprof.configure(enabled=True)


def test_errors_carry_the_c_code_and_name() -> None:
    with pytest.raises(nanoprof.ConfigError) as info:
        nanoprof.configure(nope=1)
    assert issubclass(nanoprof.ConfigError, nanoprof.Error)
    assert issubclass(nanoprof.StateError, nanoprof.Error)
    store = nanoprof.get_store()
    with pytest.raises(nanoprof.ConfigError):
        store.render("png")
    del info


# ---- the decorator ---------------------------------------------------------------------------

def test_profile_handler_attaches_x_profile_to_plain_results() -> None:
    @nanoprof.profile_handler
    def triple() -> tuple[str, int, dict[str, str]]:
        return ("ok", 201, {"A": "b"})

    @nanoprof.profile_handler
    def pair() -> tuple[str, list[tuple[str, str]]]:
        return ("ok", [("A", "b")])

    @nanoprof.profile_handler
    def value(x: int) -> int:
        return x + 1

    body, status, headers = triple()
    assert (body, status, headers["A"]) == ("ok", 201, "b")
    assert headers["X-Profile"].startswith("total=")
    assert pair()[1][-1][0] == "X-Profile"
    assert value(1) == 2
    assert triple.__name__ == "triple" and triple.__wrapped__ is not None  # type: ignore[attr-defined]


def test_profile_handler_propagates_errors_unchanged_and_ends_the_profile() -> None:
    store = nanoprof.get_store()
    store.clear()
    err = LookupError("boom")

    @nanoprof.profile_handler
    def fails() -> None:
        raise err

    with pytest.raises(LookupError) as info:
        fails()
    assert info.value is err
    assert nanoprof.get_current_profile() is None
    [p] = store.get_recent(1)
    assert p.status == 500


def test_profile_handler_works_on_methods_and_coroutines() -> None:
    class View:
        @nanoprof.profile_handler
        def get(self, x: int) -> tuple[str, int, dict[str, str]]:
            return (str(x), 200, {})

        @nanoprof.profile_handler
        async def aget(self) -> tuple[str, int, dict[str, str]]:
            await asyncio.sleep(0)
            return ("a", 200, {})

    assert View().get(3)[0] == "3" and "X-Profile" in View().get(3)[2]
    assert "X-Profile" in asyncio.run(View().aget())[2]
    with pytest.raises(TypeError):
        nanoprof.profile_handler(3)  # type: ignore[arg-type]


def test_threads_each_see_only_their_own_profile() -> None:
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        nanoprof.start_profile(method="GET", path=f"/t{n}")
        barrier.wait()
        for _ in range(n + 1):
            nanoprof.record_sql(f"SELECT {n}", 1)
        done = nanoprof.end_profile()
        if done is None or done.path != f"/t{n}" or done.sql_count != n + 1:
            errors.append(f"thread {n}: {done!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_interleaved_tasks_each_see_only_their_own_profile() -> None:
    async def task(n: int) -> tuple[int, int]:
        nanoprof.start_profile(method="GET", path=f"/a{n}")
        for _ in range(n % 7 + 1):
            await asyncio.sleep(0)
            nanoprof.record_sql(f"SELECT {n}", 1)
        done = nanoprof.end_profile()
        assert done is not None and done.path == f"/a{n}"
        return done.sql_count, n % 7 + 1

    async def main() -> list[tuple[int, int]]:
        return await asyncio.gather(*(task(n) for n in range(100)))

    assert all(got == want for got, want in asyncio.run(main()))


def test_the_c_current_profile_follows_the_sync_request() -> None:
    assert _core.get_current_profile() is None


def test_middleware_keeps_every_option_string_even_from_a_generator() -> None:
    # 64 rules made on the fly (their strings live only in the list made of the generator)
    # and 64 budgets: the most the options hold, all applied.
    rules = ((f"^/r{i}/[a-z]+$", f"/r{i}/{{slug}}") for i in range(64))
    mw = _core.Middleware(route_rules=rules, budgets={f"/b{i}": 3 for i in range(64)},
                          default_route_rules=False)
    req = mw.begin("GET", "/r63/abc")
    assert req is not None
    req.end(200)
    assert mw.route_stats("GET", "/r63/{slug}") is not None
    with pytest.raises(ValueError, match="at most 64"):
        _core.Middleware(route_rules=[("a", "b")] * 65)
