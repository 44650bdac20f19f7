"""The C extension behind the nanoprof package (private: import from `nanoprof`).

It is the one place that touches the CPython C API, and it uses nanoprof's public C API only.
A request's state lives in one context variable (`current_request`), so requests interleaved
on one event loop, or served by threads, never see each other's queries.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar, Token
from types import FrameType
from typing import Any, Final, NamedTuple

__version__: Final[str]
"""The version of the libnanoprof the extension runs on."""

# ---- errors -----------------------------------------------------------------------------
class Error(Exception):
    """A nanoprof call failed; `code` is the C result code, `name` its symbolic name."""

    code: int
    name: str
    detail: str

class ConfigError(Error, ValueError):
    """An option's name or value was refused (the message names the option)."""

class StateError(Error):
    """A call made in the wrong state (ending a span that is not open, a profile that ended)."""

# ---- clock ------------------------------------------------------------------------------
def nanos() -> int:
    """Nanoseconds on the C clock's time line (CLOCK_MONOTONIC's), read from the TSC."""

def elapsed_nanos(start: int) -> int:
    """Nanoseconds since `start` (a value of nanos()); 0 if `start` is in the future."""

def clock_info() -> dict[str, Any]: ...

# ---- configuration and introspection ------------------------------------------------------
def configure(**options: Any) -> None:
    """Makes a new default runtime from the current options with `options` applied.

    Profiles begun afterwards use it; profiles and middlewares made before keep theirs.
    Keys are the C runtime's options (`slow_query_threshold_ms`, `n_plus_one_threshold`,
    `max_history`, `enabled`, `production`, `max_queries`, ...); NANOPROF_CONF still wins.
    Raises ConfigError naming the option for an unknown key or a bad value, TypeError for a
    value of the wrong type.
    """

def config() -> dict[str, Any]:
    """The options in force in the default runtime."""

def options() -> list[tuple[str, str, str, str]]:
    """(name, type, default, doc) of every runtime option."""

def ctl(name: str) -> int | float | str:
    """One introspection value by dotted name ("stats.requests", "opt.max_history")."""

def stats(prefix: str = "") -> dict[str, int | float | str]:
    """Every introspection value whose name starts with `prefix`."""

def set_enabled(enabled: bool) -> None: ...
def is_enabled() -> bool: ...

# ---- profiles -------------------------------------------------------------------------------
class SQLQuery(NamedTuple):
    sql: str
    duration_ns: int
    params: str | None
    normalized: str | None
    fingerprint: str
    start_offset_ns: int
    slow: bool
    # Attributes beyond the reference's seven tuple fields (not part of the tuple):
    @property
    def callsite(self) -> str | None: ...  # first of its shape, or slow
    @property
    def rows(self) -> int: ...  # parameter sets of a batch, 0 for one statement
    @property
    def error(self) -> str | None: ...

class RequestProfile:
    """One request's record.  While the request runs it reads the C profile directly; when
    the request ends it is frozen (a copy is made) only if someone still holds it."""

    method: str
    path: str
    route: str
    request_id: str
    status: int
    ended: bool
    start_ns: int
    total_ns: int
    middleware_ns: int
    routing_ns: int
    handler_ns: int  # settable on a running profile: adds the difference
    sql_total_ns: int
    sql_count: int
    sql_queries: list[SQLQuery]
    queries_dropped: int
    slow_count: int
    span_count: int
    memory_bytes: int
    patterns: list[dict[str, Any]]
    n_plus_one: list[dict[str, Any]]
    samples_info: dict[str, int]  # stacks, samples, sampled_ns, dropped, dropped_ns
    samples: dict[str, Any] | None
    """The sampled call stacks (to_dict()["samples"]): sampled_ns, samples, dropped,
    dropped_ns and stacks, each {frames (outermost first), libs, ns, count, sql}."""
    def to_header(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def to_collapsed_stack(self) -> str: ...
    def flame(self, format: str = "collapsed", collapse_libs: bool = False) -> str:
        """The sampled call stacks as 'collapsed', 'speedscope', 'chrome' or 'svg';
        ``collapse_libs`` merges each run of one library's frames into "[lib]"."""

def record_sql(sql: str | bytes, duration_ns: int, params: object = None) -> bool:
    """Records a query into the current request's profile; False when there is none."""

def start_profile(method: str = "", path: str = "") -> RequestProfile | None:
    """Begins a profile and makes it current (None when profiling is disabled)."""

def end_profile(status: int = 200) -> RequestProfile | None:
    """Ends the current profile begun by start_profile(), stores it, returns it (frozen).

    `status` is the response's HTTP status (100 to 999), or 0 when none was sent; any other
    value raises, and the profile stays current."""

def get_current_profile() -> RequestProfile | None: ...

def span_begin(name: str) -> int:
    """Opens a span in the current profile (a negative id when there is none)."""

def span_end(span_id: int) -> None: ...

current_request: ContextVar[Any]
"""The context variable holding the running request's state (a Request or standalone)."""

# ---- the store ----------------------------------------------------------------------------
class ProfileStore:
    """get_store() gives the runtime's; ProfileStore(capacity) a separate one (Profiler's)."""

    capacity: int
    def __init__(self, capacity: int = 1000) -> None: ...
    def __len__(self) -> int: ...
    def get_slowest(self, n: int = 10) -> list[RequestProfile]: ...
    def get_recent(self, n: int = 10) -> list[RequestProfile]: ...
    def get_flame_graph(self) -> str: ...
    def clear(self) -> None: ...
    def render(self, what: str) -> str:
        """'svg' (flame graph), 'trace' (Chrome Trace Event JSON) or 'collapsed' stacks."""
    def render_samples(self, format: str = "collapsed", route: str | None = None,
                       collapse_libs: bool = False) -> str:
        """The sampled call stacks of the stored requests (of one route), summed per stack,
        as 'collapsed', 'speedscope', 'chrome' or 'svg'."""
    def push_current(self) -> bool:
        """Ends the current start_profile() request into this store (False without one)."""

def get_store() -> ProfileStore: ...

# ---- the handler decorator ------------------------------------------------------------------
def profile_handler_sync(func: Callable[..., Any]) -> Callable[..., Any]:
    """The C wrapper behind @profile_handler for a plain (sync) function."""

def handler_enter(args: Sequence[Any], qualname: str) -> Any:
    """For async handlers: begins the handler's profile (or marks the middleware's handler
    phase); returns a state token for handler_exit."""

def handler_exit(token: Any, result: Any, failed: bool) -> Any:
    """Ends what handler_enter began; returns `result` with X-Profile attached."""

def set_attach_hook(hook: Callable[[Any, str], Any]) -> None:
    """Python function attaching the header to results the C side does not know."""

def set_request_info_hook(hook: Callable[[Sequence[Any]], tuple[str, str] | None]) -> None:
    """Python function that finds (method, path) of a framework request in a call's args."""

# ---- the middleware core --------------------------------------------------------------------
Header = tuple[bytes, bytes]
StrHeader = tuple[str, str]

class Middleware:
    """The C middleware: aggregation, headers, sampling, the dashboard."""

    def __init__(
        self,
        *,
        dashboard_path: str | None = "/debug/performance",
        token: str | None = None,
        sample_every: int = 0,
        slow_request_ms: float = 500.0,
        headers: str = "auto",
        default_route_rules: bool = True,
        route_rules: Sequence[tuple[str, str]] = (),
        budgets: Mapping[str, int | tuple[int, float]] = ...,
        max_routes: int = 500,
        max_n_plus_one: int = 256,
        refresh_seconds: int = 5,
        dashboard_items: int = 50,
    ) -> None: ...
    dashboard_path: str | None
    def handle(
        self, method: str, path: str, query: bytes | str, headers: Iterable[Header] | Mapping[str, str] | None
    ) -> tuple[int, list[StrHeader], bytes] | None:
        """A dashboard response (status, str header pairs with Content-Type first, body), or
        None when the path is not a dashboard path."""
    def begin(
        self,
        method: str,
        path: str,
        query: bytes | str = b"",
        headers: Iterable[Header] | Mapping[str, str] | None = None,
        route: str | None = None,
    ) -> Request | None:
        """Begins a request and makes it current; None when profiling is off."""
    def asgi_begin(self, scope: Mapping[str, Any]) -> Request | tuple[int, list[Header], bytes] | None:
        """Begins an http request of the ASGI scope, or serves the dashboard: a tuple with
        byte header pairs (content-type first), as ASGI sends them.  None when profiling is
        off, and when the scope cannot be read or the request not begun: a RuntimeWarning
        says why, and the adapter hands the request to the app unprofiled."""
    def wsgi_begin(self, environ: Mapping[str, Any]) -> Request | tuple[int, list[StrHeader], bytes] | None:
        """The same from a WSGI environ (or any dict with its keys, such as Django's
        request.META); the dashboard's headers as str pairs, as start_response takes them."""
    store: ProfileStore
    def totals(self) -> dict[str, int]: ...
    def route_stats(self, method: str, route: str) -> dict[str, Any] | None: ...
    def render(self, what: str) -> bytes:
        """'json', 'html', 'prometheus', 'flamegraph.svg', 'flamegraph.txt', 'trace'."""

class Request:
    """One request through the middleware.  Phases: 0 middleware, 1 routing, 2 handler."""

    profile_mode: int  # 0 none, 1 header, 2 json
    authorized: bool  # development mode, or ?profile= with the right token
    ended: bool
    status: int
    profile: RequestProfile | None
    def phase(self, phase: int) -> None: ...
    def set_route(self, route: str) -> None: ...
    def response_headers(self, status: int) -> list[Header]:
        """Headers to send at the response start (the request goes on: streamed bodies)."""
    def response_headers_str(self, status: int) -> list[StrHeader]:
        """The same as str pairs, for WSGI's start_response and Django's response."""
    def end(self, status: int) -> bytes | None:
        """Ends the request (aggregation, store); the JSON body for ?profile=json, else None.
        Resets the context variable.  Idempotent."""

PHASE_MIDDLEWARE: Final[int]
PHASE_ROUTING: Final[int]
PHASE_HANDLER: Final[int]
PROFILE_NONE: Final[int]
PROFILE_HEADER: Final[int]
PROFILE_JSON: Final[int]

def mark_phase(phase: int) -> bool:
    """Marks `phase` on the current middleware request, if any (framework hooks call it)."""

def mark_route(route: str) -> bool:
    """Sets the route template of the current middleware request, if any."""

def pq_preload_path() -> str:
    """Path of the libnanoprof_pq.so shipped beside the extension (for LD_PRELOAD)."""

# ---- database hooks (ext/dbhook.c, ext/callsite.c, ext/slowlog.c) ------------------------------

class QueryEvent(NamedTuple):
    """One query as a query observer sees it (set_query_observer)."""
    sql: str
    normalized: str
    fingerprint: str          # 16 hex digits
    duration_ns: int
    params: str | None        # the redacted summary
    rows: int                 # batch rows (executemany), 0 for a single statement
    error: str | None         # "ExceptionType: message" when the query raised
    callsite: str | None      # "file.py:42 in function", the innermost application frame
    in_request: bool          # recorded into a request's profile

class QueryRecorder:
    """What a database hook calls around each query: ``start()`` before it is sent,
    ``finish()`` after it returned or raised.  Recording happens in C, in ``finish``:
    the current request's profile (call site taken for the first query of each shape and for
    slow ones), the slow-query log when the query took at least ``threshold_ms``, and the
    query observer (budgets).  ``finish`` never raises and never changes the query's outcome;
    what it could not record is counted in ``stats()``."""
    def __init__(self, slow_log: SlowLog | None = None, threshold_ms: float | None = None) -> None: ...
    slow_log: SlowLog | None
    threshold_ms: float | None
    def start(self) -> int:
        """Sync hooks: starts the clock and keeps ``libnanoprof_pq.so`` (when preloaded) from
        recording the same query on this thread until ``finish``.  Returns 0 when nothing
        would be recorded (profiling off, no request, no observer, no slow log)."""
    def finish(self, start: int, sql: object, params: object = None, rows: int = 0,
               error: object = None, caller: FrameType | None = None) -> None:
        """Pairs ``start``.  ``sql``: str, bytes (decoded as UTF-8, bad bytes replaced) or any
        object (``str()`` of it).  ``params``: None, a sequence, a mapping or a scalar (for a
        batch, the first row's).  ``rows``: parameter sets of an executemany (0: one statement).
        ``error``: the exception the query raised, a string, or None.  ``caller``: a frame in
        which the call site is looked for first, before the running stack (SQLAlchemy's async
        hook gives the task greenlet's, the running greenlet holding only SQLAlchemy's)."""
    def start_async(self) -> int:
        """Coroutine hooks: starts the clock only (other tasks run while the query is awaited,
        so nothing thread-wide may be changed)."""
    def finish_async(self, start: int, sql: object, params: object = None, rows: int = 0,
                     error: object = None, caller: FrameType | None = None) -> None: ...

class LiveRecorder:
    """A QueryRecorder as one install of the hooks uses it: the same start and finish until
    ``off()``, after which ``start()`` and ``start_async()`` return 0 (a query already
    started still finishes).  TimedMethod calls it directly from C."""
    def __init__(self, recorder: QueryRecorder, /) -> None: ...
    recorder: QueryRecorder
    on: bool
    def start(self) -> int: ...
    def finish(self, start: int, sql: object, params: object = None, rows: int = 0,
               error: object = None, caller: FrameType | None = None) -> None: ...
    def start_async(self) -> int: ...
    def finish_async(self, start: int, sql: object, params: object = None, rows: int = 0,
                     error: object = None, caller: FrameType | None = None) -> None: ...
    def off(self) -> None: ...

def in_timed_step() -> bool:
    """True while a step of a timed coroutine query (TimedAwait) runs on this thread: the
    hooks' guard for coroutine queries, beside the ContextVar of sync ones."""

def set_query_observer(observer: Callable[[QueryEvent], None] | None) -> Callable[[QueryEvent], None] | None:
    """Calls ``observer`` with every query any QueryRecorder or record_sql() records, in or
    out of a request, from any thread (call sites are always taken while an observer is set).
    Returns the previous observer.  An observer that raises is reported as unraisable."""

def callsite() -> str | None:
    """The innermost frame of the calling stack outside the excluded paths, as
    ``"file.py:42 in function"``, or None."""

def set_callsite_exclude(prefixes: Sequence[str], base: str | None = None) -> None:
    """File path prefixes whose frames are never a call site (nanoprof, the standard library,
    site-packages; set at import).  Replaces the list; paths under `base` are shown relative
    to it."""

def hook_stats() -> dict[str, int]:
    """Counters of the recorders: recorded, in_request, slow_logged, slow_dropped, failures,
    held (queries held back until their request's profile was next read).  A held query is
    counted, in recorded and held, when it is recorded, not while it waits."""

class TimedMethod:
    """A driver's execute method timed as one query per call (ext/timed.c; built by
    nanoprof.db._base.sync_execute and async_execute).  Set as a class attribute it binds as
    a method; called as ``(self, query, *args, **kwargs)``, with the parameters ``args[0]``
    or ``kwargs[pname]`` (with ``many``, a sequence of parameter sets: the first is
    recorded, and its length as rows; an iterator is consumed into a list the driver then
    gets).  When ``guard`` is set or ``recorder.start()`` (``start_async()``) returns 0,
    ``func``'s result is returned as it is; otherwise the query is recorded with
    ``recorder.finish`` (``finish_async``) and ``text(query, self)`` for a query not str or
    bytes.  With ``asynchronous``, the result is a TimedAwait over ``func``'s awaitable."""
    def __new__(cls, func: Callable[..., Any] | None, recorder: Any, /, *, guard: QueryGuard,
                text: Callable[[Any, Any], str | bytes], pname: str = "", many: bool = False,
                asynchronous: bool = False, execute_wrapper: bool = False) -> TimedMethod: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, obj: Any, owner: type | None = None) -> Any: ...
    __wrapped__: Callable[..., Any]
    __name__: str
    __qualname__: str
    pname: Final[str]
    many: Final[bool]
    asynchronous: Final[bool]
    recorder: Final[Any]

class QueryGuard:
    """A ContextVar (default False) with ContextVar's get/set/reset that counts the set()
    tokens not reset yet: while none is, the C wrappers skip reading it."""
    def __init__(self, name: str) -> None: ...
    def get(self) -> Any: ...
    def set(self, value: Any, /) -> Token[Any]: ...
    def reset(self, token: Token[Any], /) -> None: ...
    @property
    def var(self) -> ContextVar[Any]: ...
    @property
    def outstanding(self) -> int: ...

class TimedAwait:
    """What a TimedMethod with ``asynchronous`` returns when it records: a coroutine-like
    awaitable over the driver's.  Its first step sets the guard (in the awaiting task's
    context); it resets it and records the query when the driver's coroutine returns or
    raises.  Not made from Python."""
    def __await__(self) -> TimedAwait: ...
    def __iter__(self) -> TimedAwait: ...
    def __next__(self) -> Any: ...
    def send(self, value: Any, /) -> Any: ...
    def throw(self, typ: Any, val: Any = ..., tb: Any = ..., /) -> Any: ...
    def close(self) -> None: ...

class ASGICall:
    """What calling an ASGIMiddleware returns for an http scope: a coroutine-like awaitable
    whose first step begins the request (in the awaiting task) and makes what it awaits, the
    application's coroutine; it ends the request when that returns (with the response's
    status) or raises (500).  Not made from Python."""
    def __await__(self) -> ASGICall: ...
    def __iter__(self) -> ASGICall: ...
    def __next__(self) -> Any: ...
    def send(self, value: Any, /) -> Any: ...
    def throw(self, typ: Any, val: Any = ..., tb: Any = ..., /) -> Any: ...
    def close(self) -> None: ...

def asgi_call(middleware: Any, scope: Any, receive: Any, send: Any, /) -> Any:
    """The awaitable of one ASGI call of an ASGIMiddleware (reads its ``app`` and ``_mw``):
    the app's own coroutine for a scope other than http, else an ASGICall."""

def install_asgi_call(cls: type, /) -> None:
    """Calling an instance of exactly ``cls`` runs asgi_call() in C (its ``__call__`` stays
    what servers inspect)."""

class SlowLog:
    """The C slow-query log (nanoprof/slowlog.h): its own libpq connection and a background
    COPY writer; enqueueing never blocks."""
    def __init__(self, conninfo: str, *, table: str | None = None, queue_slots: int | None = None,
                 logged: bool = False, normalized_only: bool | None = None, redact: bool = True,
                 redact_rules: Sequence[str] = (), explain: bool = False,
                 retention_s: int | None = None, max_rows: int | None = None) -> None: ...
    def wait_ready(self, timeout_ms: int = 5000) -> None:
        """Blocks until the table exists; raises nanoprof.Error (code EIO) with the server's
        message on timeout.  Releases the GIL while waiting."""
    def enqueue(self, sql: str, duration_ms: float, params: object = None, *, fingerprint: int = 0,
                method: str | None = None, route: str | None = None,
                request_id: str | None = None, callsite: str | None = None) -> bool:
        """False when the queue was full (the entry was dropped and counted)."""
    def read_recent(self, n: int = 50) -> str: ...
    def read_slowest(self, n: int = 50, since_s: int = 0) -> str: ...
    def read_by_fingerprint(self, n: int = 50, since_s: int = 0) -> str: ...
    def stats(self) -> dict[str, int | str]: ...
    def close(self, timeout_ms: int = 5000) -> bool:
        """Flushes and closes; True when everything queued was written."""
    closed: bool

# ---- sampled call stacks (sampler.c) --------------------------------------------------------
PROFILE_FLAME: int
PROFILE_GUIDED: bool  # built with profile-guided optimization (NPROF_PGO)

def sample_current(interval_ms: float | None = None) -> bool:
    """Samples the current request's Python call stacks every ``interval_ms`` of wall time
    (default: the stack_sample_interval_ms option) until it ends.  False when there is no
    current request or it is sampled already."""

def unsample_current() -> bool:
    """Stops sampling the current request; whether it was sampled."""

def is_sampled() -> bool: ...

def sampler_stats() -> dict[str, Any]:
    """active, thread_running, ticks, samples, sql_samples, tick_ns_total, tick_ns_max,
    interval_ns, saved_switch_interval."""

def set_sampler_paths(libraries: Sequence[str], own: Sequence[str], base: str | None = None) -> None:
    """Library roots (a frame under one is named after the first path component below it),
    nanoprof's own roots (never shown), the directory application paths are shown from."""

def _sampler_shutdown() -> None: ...
def _sampler_query_begin() -> None: ...
def _sampler_query(sql: str, duration_ns: int) -> None: ...
def _sampler_stack() -> list[tuple[str, str | None]]: ...
