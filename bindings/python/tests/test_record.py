"""Recording one query from Python (record_sql and the hooks' QueryRecorder): parameter
summaries named and redacted, call sites taken only where the profile keeps them, errors and
batches, the observer, and a recorder that never fails the application's query."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nanoprof
from nanoprof import _core

HERE = Path(__file__).name


@pytest.fixture
def profile() -> Iterator[list[Any]]:
    """Runs the test inside a request; the list receives the ended profile."""
    out: list[Any] = []
    nanoprof.start_profile("GET", "/record")
    yield out
    if nanoprof.get_current_profile() is not None:
        nanoprof.end_profile()


def end(out: list[Any]) -> Any:
    done = nanoprof.end_profile()
    out.append(done)
    return done


def line_here() -> int:
    return sys._getframe(1).f_lineno


def test_positional_parameters_are_named_after_their_columns_and_redacted(profile: list) -> None:
    nanoprof.record_sql(
        "INSERT INTO users (name, password, email, card) VALUES (%s, %s, %s, %s)", 10,
        ("bob", "hunter2", "bob@example.com", "4111 1111 1111 1111"),
    )
    nanoprof.record_sql("SELECT * FROM sessions WHERE token = $2 AND user_id = $1", 10,
                        (7, "tok-abc-123"))
    nanoprof.record_sql("SELECT * FROM t WHERE a = ? OR ? < b", 10, (1, 2))
    done = end(profile)
    q1, q2, q3 = done.sql_queries
    assert q1.params == "name='bob', password='[redacted]', email='[redacted]', card='[redacted]'"
    assert q2.params == "user_id=7, token='[redacted]'"
    assert q3.params == "a=1, $2=2"  # `? < b` does not say which column
    # In the JSON's text, not its numbers: a timing like start_offset_ns 641113 holds "4111".
    texts = list(json_strings(json.loads(done.to_json())))
    assert "user_id=7, token='[redacted]'" in texts  # the walk reaches the queries' fields
    for secret in ("hunter2", "bob@example.com", "4111", "tok-abc-123"):
        assert not [t for t in texts if secret in t], secret


def json_strings(v: Any) -> Iterator[str]:
    """Every string of a parsed JSON document, keys included."""
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from json_strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from json_strings(x)


def test_parameters_of_a_text_without_markers_read_by_position(profile: list) -> None:
    # No $, ? or %: nothing to name (the column scan is skipped), each value reads $<n>;
    # secrets are still redacted.  A marker inside a string literal binds no column.
    nanoprof.record_sql("SELECT * FROM t WHERE password = 'x' AND id = 5", 10,
                        (5, "a@example.com"))
    nanoprof.record_sql("SELECT * FROM t WHERE note = '?' AND id = %s", 10, (6,))
    plain, quoted = end(profile).sql_queries
    assert plain.params == "$1=5, $2='[redacted]'"
    assert quoted.params == "id=6"


def test_integer_parameters_read_as_python_prints_them(profile: list) -> None:
    import enum

    class Kind(enum.IntEnum):
        BOOK = 3

    values = (0, -5, 2**31 - 1, -(2**31), 2**70, -(2**64), True, Kind.BOOK)
    nanoprof.record_sql("SELECT f(" + ", ".join(["%s"] * len(values)) + ")", 10, values)
    # Card-like digit runs (13 to 19 digits) are redacted whatever their type.
    nanoprof.record_sql("SELECT g(%s, %s)", 10, (2**63 - 1, -4111111111111111))
    q, card = end(profile).sql_queries
    assert q.params == ", ".join(f"${i + 1}={v}" for i, v in enumerate(map(str, values)))
    assert card.params == "$1=[redacted], $2=-[redacted]"


def test_a_call_site_is_taken_for_the_first_query_of_each_shape_and_for_slow_ones(
    profile: list,
) -> None:
    first = line_here() + 1
    nanoprof.record_sql("SELECT * FROM authors WHERE id = 1", 1_000)
    nanoprof.record_sql("SELECT * FROM authors WHERE id = 2", 1_000)
    slow = line_here() + 1
    nanoprof.record_sql("SELECT * FROM authors WHERE id = 3", 500_000_000)
    done = end(profile)
    sites = [q.callsite for q in done.sql_queries]
    fn = "test_a_call_site_is_taken_for_the_first_query_of_each_shape_and_for_slow_ones"
    assert sites[1] is None  # neither the first of its shape nor slow: no stack walk
    assert sites[0].endswith(f"{HERE}:{first} in {fn}")
    assert sites[2].endswith(f"{HERE}:{slow} in {fn}")
    # Paths are shown relative to the directory the process started in.
    assert not sites[0].startswith("/")
    assert done.to_dict()["queries"][0]["callsite"] == sites[0]


def test_frames_under_excluded_paths_are_skipped(tmp_path: Path, profile: list) -> None:
    helper = tmp_path / "repo_layer.py"
    helper.write_text("import nanoprof\n\ndef load():\n    nanoprof.record_sql('SELECT 1', 5)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import repo_layer  # type: ignore[import-not-found]

        repo_layer.load()
        first = end(profile).sql_queries[0].callsite
        assert first.endswith("repo_layer.py:4 in load")
        nanoprof.exclude_callsite_paths(str(tmp_path))
        nanoprof.start_profile("GET", "/again")
        line = line_here() + 1
        repo_layer.load()
        again = end(profile).sql_queries[0].callsite
        assert again.endswith(f"{HERE}:{line} in test_frames_under_excluded_paths_are_skipped")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("repo_layer", None)
        from nanoprof import _callsite

        _callsite._extra.clear()
        _callsite._apply()
    with pytest.raises(TypeError, match="path strings"):
        nanoprof.exclude_callsite_paths("")


def test_the_recorder_keeps_errors_and_batch_sizes(profile: list) -> None:
    rec = _core.QueryRecorder()
    t = rec.start()
    assert t > 0
    rec.finish(t, "INSERT INTO t VALUES (%s)", [5], 250)
    err = ZeroDivisionError("division by zero")
    rec.finish(rec.start(), b"SELECT 1/0", None, 0, err)
    rec.finish(rec.start(), "SELECT 2", error="server closed the connection")
    done = end(profile)
    a, b, c = done.sql_queries
    assert (a.rows, a.error) == (250, None)
    assert (b.sql, b.rows, b.error) == ("SELECT 1/0", 0, "ZeroDivisionError: division by zero")
    assert c.error == "server closed the connection"
    queries = done.to_dict()["queries"]
    assert queries[0]["rows"] == 250 and "error" not in queries[0]
    assert queries[1]["error"] == "ZeroDivisionError: division by zero"


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


def test_the_recorder_never_fails_the_applications_query(profile: list) -> None:
    rec = _core.QueryRecorder()
    before = _core.hook_stats()["failures"]
    rec.finish(rec.start(), Hostile(), None)  # text: the type's name
    rec.finish(rec.start(), "SELECT %s", [Hostile()])  # a parameter without text
    rec.finish(rec.start(), "SELECT 3", 12345)  # params of no known shape
    rec.finish(rec.start(), "SELECT \0 'caf\udce9'", {"k": b"\xff\xfe"}, -5, Hostile())
    done = end(profile)
    first, second, third, fourth = done.sql_queries
    assert first.sql == "<query of type Hostile>"
    assert second.params == third.params == "<parameters without a text form>"
    assert fourth.params == "k=<binary 2 bytes>" and fourth.rows == 0
    assert fourth.error == "Hostile"  # its str() raised: the type's name
    assert _core.hook_stats()["failures"] == before
    nanoprof.start_profile("GET", "/after")
    assert nanoprof.end_profile() is not None


def test_a_given_caller_frame_is_where_the_call_site_is_looked_for_first(profile: list) -> None:
    from dbcheck import assert_site, line

    def awaiting() -> Any:  # stands for the task greenlet's frame (SQLAlchemy's async hook)
        return sys._getframe()  # line: given-caller

    rec = _core.QueryRecorder()
    rec.finish_async(rec.start_async(), "SELECT * FROM given", caller=awaiting())
    rec.finish_async(rec.start_async(), "SELECT * FROM running", caller=None)  # line: running
    given, running = end(profile).sql_queries
    assert_site(given.callsite, __file__, line("given-caller"))
    assert_site(running.callsite, __file__, line("running"))
    with pytest.raises(TypeError, match="caller is a frame or None, got int"):
        rec.finish(rec.start(), "SELECT 1", caller=5)  # type: ignore[arg-type]


def test_the_recorder_rejects_a_start_it_did_not_give(profile: list) -> None:
    rec = _core.QueryRecorder()
    with pytest.raises(TypeError, match="start"):
        rec.finish("soon", "SELECT 1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rec.finish()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="threshold_ms"):
        _core.QueryRecorder(threshold_ms="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold_ms"):
        _core.QueryRecorder(threshold_ms=-1)


def test_outside_a_request_start_says_there_is_nothing_to_record() -> None:
    rec = _core.QueryRecorder()
    assert rec.start() == 0 and rec.start_async() == 0
    rec.finish(0, "SELECT 1")  # a no-op
    assert nanoprof.record_sql("SELECT 1", 5) is False
    with pytest.raises(TypeError, match="sql must be str or bytes"):
        nanoprof.record_sql(42, 5)  # type: ignore[arg-type]


def test_the_observer_sees_every_query_with_its_call_site(profile: list) -> None:
    seen: list[Any] = []
    prev = _core.set_query_observer(seen.append)
    try:
        line = line_here() + 1
        nanoprof.record_sql("SELECT * FROM a WHERE id = %s", 1_000, (3,))
        end(profile)
        rec = _core.QueryRecorder()
        rec.finish(rec.start(), "SELECT * FROM a WHERE id = 9")  # outside any request
    finally:
        assert _core.set_query_observer(prev) == seen.append
    first, second = seen
    assert first.in_request and not second.in_request
    assert first.fingerprint == second.fingerprint and first.normalized == second.normalized
    assert first.params == "id=3" and first.duration_ns == 1_000
    assert first.callsite.endswith(f":{line} in test_the_observer_sees_every_query_with_its_call_site")


def test_an_observer_that_raises_is_reported_and_the_query_still_recorded(
    profile: list,
) -> None:
    def bad(event: Any) -> None:
        raise RuntimeError("observer bug")

    reported: list[Any] = []
    prev = _core.set_query_observer(bad)
    hook = sys.unraisablehook
    sys.unraisablehook = reported.append
    try:
        nanoprof.record_sql("SELECT 1", 5)
    finally:
        sys.unraisablehook = hook
        _core.set_query_observer(prev)
    assert [type(r.exc_value) for r in reported] == [RuntimeError]
    assert end(profile).sql_count == 1
    with pytest.raises(TypeError, match="callable"):
        _core.set_query_observer(42)  # type: ignore[arg-type]


def test_call_sites_stay_right_when_the_code_table_fills_and_is_emptied() -> None:
    """More code objects than the per-code table (codetab.c) keeps: it is emptied at 3/4 of
    4,096 entries and learns again, and every call site still names its own function."""
    namespace: dict[str, Any] = {"_core": _core}
    source = "".join(f"def f{i}():\n    return _core.callsite()\n" for i in range(5000))
    exec(compile(source, "/tmp/nprof_generated_sites.py", "exec"), namespace)
    for round_ in range(2):
        for i in range(5000):
            site = namespace[f"f{i}"]()
            assert site == f"/tmp/nprof_generated_sites.py:{2 * i + 2} in f{i}", (round_, site)


def test_the_path_tables_refuse_bad_input_and_keep_what_they_had() -> None:
    """set_callsite_exclude() and set_sampler_paths() (one path table each, ext/paths.c):
    a refused call changes nothing, and exclude_callsite_paths() keeps no refused path."""
    from nanoprof import _callsite

    def where() -> str | None:
        return _core.callsite()

    before = where()
    assert before is not None and f"{HERE}:" in before and before.endswith(".<locals>.where")
    with pytest.raises(TypeError, match="sequence of paths, not one str"):
        _core.set_callsite_exclude("/usr/lib/python3/")
    with pytest.raises(ValueError, match="at most 64 path prefixes"):
        _core.set_callsite_exclude([f"/p{i}/" for i in range(65)])
    with pytest.raises(TypeError):
        _core.set_callsite_exclude(["/ok/", 7])
    with pytest.raises(ValueError, match="at most 64 sampler paths"):
        _core.set_sampler_paths([f"/l{i}/" for i in range(40)], [f"/o{i}/" for i in range(25)])
    with pytest.raises(TypeError, match="sequence of paths, not one str"):
        _core.set_sampler_paths(["/l/"], "/own/")
    assert where() == before  # the tables are as they were
    try:
        with pytest.raises(ValueError, match="at most 64"):
            nanoprof.exclude_callsite_paths(*(f"/tmp/nprof_many_{i}" for i in range(64)))
        assert _callsite._extra == []  # nothing of the refused call was kept
        assert where() == before
    finally:
        _callsite._extra.clear()
        _callsite._apply()
