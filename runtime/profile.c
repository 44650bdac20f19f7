/*
 * runtime/profile.c: building a RequestProfile on the request path: begin, phases, spans,
 * queries, end, and the thread's current profile.
 *
 * Everything here runs inside the host's request, so it reads the clock inline, writes only
 * into memory the profile already owns (inline arrays and text area first; the allocator only
 * when a request outgrows them) and takes no lock.  Profiles are recycled through the
 * runtime's pool (pool.c) instead of being freed.
 *
 * The thread's current profile is a (profile, generation) pair checked against the
 * generation cell of the profile, so that it can never hand out a request that has ended
 * (profile.h of the API says what that guarantees).  The cells are the one thing here that is
 * not the runtime's: they outlive profiles, stores and runtimes, because a thread's slot may
 * point at any of them long after they are gone.
 */
#include "profile.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "text.h"

static _Thread_local uint64_t request_sequence;

/* ---- generation cells and the thread's current profile ---------------------------------- */

/* The cell of an empty slot: its generation stays 0 and the slot's is 0 too, so reading the
 * current profile needs no test for "none" before the compare. */
static nprof__gen_cell no_cell;
#define EMPTY_SLOT ((nprof_current_saved){.profile_ = NULL, .cell_ = &no_cell, .generation_ = 0})

static _Thread_local nprof_current_saved current_slot = {NULL, &no_cell, 0};

/* Cells come from slabs that are never unmapped, and freed cells wait on one list for the
 * next profile.  Taken and given back only when a profile is allocated or freed (the pools
 * serve most requests), so one lock is enough.  mmap rather than malloc: it keeps them off
 * the host's heap, as the runtime's jemalloc arena does for everything else. */
#define CELL_SLAB_BYTES (64u * 1024u)
static pthread_mutex_t cell_lock = PTHREAD_MUTEX_INITIALIZER;
static nprof__gen_cell *free_cells;

static nprof__gen_cell *cell_take(void)
{
    pthread_mutex_lock(&cell_lock);
    if (!free_cells) {
        void *slab = mmap(NULL, CELL_SLAB_BYTES, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (slab != MAP_FAILED) {
            nprof__gen_cell *cells = slab;
            for (size_t i = CELL_SLAB_BYTES / sizeof *cells; i-- > 0;) {
                cells[i].next_free = free_cells;
                free_cells = &cells[i];
            }
        }
    }
    nprof__gen_cell *c = free_cells;
    if (c)
        free_cells = c->next_free;
    pthread_mutex_unlock(&cell_lock);
    return c;
}

/* Gives a freed profile's cell back.  Its generation is even (no request live) and goes on
 * growing in the next profile, so no slot that saw this one can match that one. */
static void cell_give_back(nprof__gen_cell *c)
{
    pthread_mutex_lock(&cell_lock);
    c->next_free = free_cells;
    free_cells = c;
    pthread_mutex_unlock(&cell_lock);
}

/* The generation of the request live in `p` (odd), or of its last one once ended (even). */
static uint64_t generation_of(const nprof_profile *p)
{
    return atomic_load_explicit(&p->cell->gen, memory_order_relaxed);
}

/* Moves the generation on: to odd when a request begins, to even when it ends.  Only the
 * thread that owns the profile writes it, so a load and a store do; relaxed is enough, as a
 * slot compares for equality with a value the generation has left behind for good, and no
 * other data is published through it. */
static void generation_step(nprof_profile *p)
{
    atomic_store_explicit(&p->cell->gen, generation_of(p) + 1, memory_order_relaxed);
}

/* Ends the request's generation if it is still live (discard of a request not ended). */
static void generation_close(nprof_profile *p)
{
    if (generation_of(p) & 1)
        generation_step(p);
}

nprof_profile *nprof_current(void)
{
    nprof_current_saved *slot = &current_slot;
    nprof__gen_cell *cell = slot->cell_;
    if (NPROF_LIKELY(atomic_load_explicit(&cell->gen, memory_order_relaxed) == slot->generation_))
        return slot->profile_;
    *slot = EMPTY_SLOT; /* its request has ended: forget it, the next call is the fast one */
    return NULL;
}

NPROF__HOT_PATH
nprof_current_saved nprof_current_save(void)
{
    nprof_current_saved s = nprof_current() ? current_slot : EMPTY_SLOT;
    if (!s.profile_)
        s.cell_ = NULL; /* "none" is all zero for the caller */
    return s;
}

void nprof_current_restore(nprof_current_saved saved)
{
    current_slot = saved.profile_ && saved.cell_ ? saved : EMPTY_SLOT;
}

NPROF__HOT_PATH
nprof_profile *nprof_current_set(nprof_profile *p)
{
    nprof_profile *prev = nprof_current();
    uint64_t g = p ? generation_of(p) : 0;
    current_slot = g & 1 ? (nprof_current_saved){.profile_ = p, .cell_ = p->cell, .generation_ = g}
                         : EMPTY_SLOT;
    return prev;
}

void nprof__current_forget_runtime(const nprof_runtime *rt)
{
    nprof_profile *p = nprof_current(); /* a live request: its memory is still there */
    if (p && p->rt == rt)
        current_slot = EMPTY_SLOT;
}

/* ---- memory owned by the profile ---------------------------------------------------- */

static size_t budget_left(const nprof_profile *p)
{
    size_t max = p->rt->cfg.max_profile_bytes;
    size_t used = sizeof *p + p->heap_bytes;
    return used < max ? max - used : 0;
}

/* The smallest overflow chunk of text: a page, so that a request whose SQL outgrows the
 * inline area by a few queries makes one allocation for many, not one per query.  Past it,
 * chunks grow with the profile's heap (geometric growth). */
#define TEXT_CHUNK_MIN 4096

/* Bytes of a copied span name kept: names are labels (flame graphs, the X-Profile header),
 * so a longer one is a caller's mistake, and cutting it keeps it from eating the text budget
 * that SQL needs.  Static names are cut at the same length, so both kinds read alike. */
#define SPAN_NAME_MAX 1024

/* text_alloc() past the current area: a new chunk, or NULL past the budget.  Out of line:
 * most requests never get here, and text_alloc() is inlined at every copy of a query. */
static NPROF__RARE char *text_alloc_chunk(nprof_profile *p, size_t size)
{
    size_t want = sizeof(nprof__chunk) + (size > TEXT_CHUNK_MIN ? size : TEXT_CHUNK_MIN);
    if (p->heap_bytes >= TEXT_CHUNK_MIN && want < p->heap_bytes)
        want = p->heap_bytes; /* grow geometrically: few chunks for big requests */
    if (want > budget_left(p)) {
        want = sizeof(nprof__chunk) + size;
        if (want > budget_left(p))
            return NULL;
    }
    nprof__chunk *c = nprof__alloc_bytes(&p->rt->alloc, want);
    if (!c)
        return NULL;
    c->next = p->chunks;
    c->size = want;
    p->chunks = c;
    p->heap_bytes += want;
    char *data = (char *)(c + 1);
    p->text_cur = data + size;
    p->text_left = want - sizeof *c - size;
    return data;
}

/* `size` bytes of text storage that live as long as the profile, or NULL past the budget. */
static inline char *text_alloc(nprof_profile *p, size_t size)
{
    if (NPROF_LIKELY(size <= p->text_left)) {
        char *r = p->text_cur;
        p->text_cur += size;
        p->text_left -= size;
        return r;
    }
    return text_alloc_chunk(p, size);
}

void *nprof__profile_arena(nprof_profile *p, size_t bytes)
{
    size_t pad = (size_t)(-(uintptr_t)p->text_cur & 7);
    if (pad <= p->text_left) {
        p->text_cur += pad;
        p->text_left -= pad;
    }
    char *mem = text_alloc(p, bytes + 7);
    if (!mem)
        return NULL;
    return (void *)(((uintptr_t)mem + 7) & ~(uintptr_t)7);
}

/* Copies up to `max` bytes of `s`; *kept receives how many.  NULL past the budget. */
NPROF__HOT_PATH
static NPROF__NOINLINE const char *copy_text(nprof_profile *p, const char *s, size_t len,
                                             size_t max, uint32_t *kept)
{
    size_t n = len < max ? len : max;
    *kept = (uint32_t)n;
    if (n == 0)
        return "";
    char *dst = text_alloc(p, n);
    if (!dst)
        return NULL;
    memcpy(dst, s, n);
    return dst;
}

const char *nprof__profile_copy_text(nprof_profile *p, const char *s, size_t len, size_t max,
                                     uint32_t *kept)
{
    return copy_text(p, s, len, max, kept);
}

/* Doubles an array (inline or heap) up to `limit` elements within the budget. */
static NPROF__RARE int grow_array(nprof_profile *p, void **array, uint32_t *cap,
                                  void *inline_array, size_t elem, uint32_t limit)
{
    if (*cap >= limit)
        return NPROF_ELIMIT;
    uint32_t new_cap = *cap * 2 > limit ? limit : *cap * 2;
    size_t bytes = (size_t)new_cap * elem;
    if (bytes > budget_left(p))
        return NPROF_ELIMIT;
    void *fresh = nprof__alloc_bytes(&p->rt->alloc, bytes);
    if (!fresh)
        return NPROF_ENOMEM;
    memcpy(fresh, *array, (size_t)*cap * elem);
    if (*array != inline_array) {
        nprof__free_bytes(&p->rt->alloc, *array, (size_t)*cap * elem);
        p->heap_bytes -= (size_t)*cap * elem;
    }
    p->heap_bytes += bytes;
    *array = fresh;
    *cap = new_cap;
    return NPROF_OK;
}

static void release_heap(nprof_profile *p)
{
    nprof__alloc *a = &p->rt->alloc;
    for (nprof__chunk *c = p->chunks, *next; c; c = next) {
        next = c->next;
        nprof__free_bytes(a, c, c->size);
    }
    p->chunks = NULL;
    if (p->spans != p->spans_inline)
        nprof__free_bytes(a, p->spans, (size_t)p->span_cap * sizeof(nprof__span));
    if (p->queries != p->queries_inline)
        nprof__free_bytes(a, p->queries, (size_t)p->query_cap * sizeof(nprof__query));
    p->spans = p->spans_inline;
    p->span_cap = NPROF__INLINE_SPANS;
    p->queries = p->queries_inline;
    p->query_cap = NPROF__INLINE_QUERIES;
}

void nprof__profile_release_heap(nprof_profile *p)
{
    release_heap(p);
    p->heap_bytes = 0;
}

/* The inline hash tables of the fingerprints and exact texts, emptied. */
static void clear_pattern_tables(nprof_profile *p)
{
    memset(p->index_inline, 0, sizeof p->index_inline);
    memset(p->exact_inline, 0, sizeof p->exact_inline);
}

NPROF__HOT_PATH
void nprof__profile_reset(nprof_profile *p)
{
    nprof__profile_trim(p); /* what a big request grew, given back before the next one */
    memset(&p->ended, 0, (size_t)(p->reset_end - (char *)&p->ended));
    p->current_span = NPROF_SPAN_ROOT;
    if (p->index_cap) /* only a request that counted patterns left anything in them */
        clear_pattern_tables(p);
    p->patterns = p->patterns_inline;
    p->pattern_index = p->index_inline;
    p->exact = p->exact_inline;
    p->pattern_cap = NPROF__INLINE_PATTERNS;
    p->index_cap = 0; /* set to the inline size by the first pattern (patterns.c) */
    p->exact_cap = NPROF__INLINE_EXACT;
    p->text_cur = p->text_inline;
    p->text_left = sizeof p->text_inline;
    p->route = "";
}

/* `p` is not zeroed (nprof__alloc_cacheline_unzeroed): this writes the fields above `ended`
 * and the inline hash tables, which reset() leaves alone, and reset() the rest that a
 * request reads before it writes. */
int nprof__profile_init(nprof_profile *p, nprof_runtime *rt, uint32_t owner_shard)
{
    p->cell = cell_take();
    if (!p->cell)
        return NPROF_ENOMEM;
    p->rt = rt;
    p->next = NULL;
    p->chunks = NULL;
    p->spans = p->spans_inline;
    p->queries = p->queries_inline;
    p->owner_shard = owner_shard;
    release_heap(p); /* (sets span_cap and query_cap) */
    p->index_cap = 0;
    clear_pattern_tables(p);
    nprof__profile_reset(p);
    return NPROF_OK;
}

void nprof__profile_free(nprof_profile *p)
{
    cell_give_back(p->cell); /* even: pools and stores hold only requests that are over */
    release_heap(p);
    nprof__free_cacheline(&p->rt->alloc, p, sizeof *p);
}

/* ---- begin / end ------------------------------------------------------------------------ */

static void generate_request_id(nprof_profile *p)
{
    /* Unique per (runtime, thread, sequence); the multiply-xorshift only scatters the bits. */
    uint64_t v = p->rt->request_id_seed ^ ((uint64_t)nprof__thread_index() << 40) ^ ++request_sequence;
    v ^= v >> 31;
    v *= 0x9E3779B97F4A7C15ull; /* odd: a bijection, so distinct inputs stay distinct */
    v ^= v >> 29;
    nprof__format_hex64(v, p->request_id);
    p->request_id_len = 16;
}

NPROF__HOT_PATH
int nprof_request_begin(nprof_runtime *rt, const char *method, size_t method_len,
                        const char *path, size_t path_len, uint64_t start_ticks,
                        nprof_profile **out)
{
    if (NPROF_UNLIKELY(!rt || !out || (!method && method_len) || (!path && path_len))) {
        if (out)
            *out = NULL;
        return NPROF_EINVAL;
    }
    if (NPROF_UNLIKELY(!atomic_load_explicit(&rt->enabled, memory_order_relaxed))) {
        *out = NULL;
        return NPROF_ENOPROFILE;
    }
    uint64_t now = nprof_ticks();
    nprof_profile *p = nprof__profile_obtain(rt);
    if (NPROF_UNLIKELY(!p)) {
        *out = NULL;
        return NPROF_ENOMEM;
    }
    generation_step(p); /* a new request: no slot set for an earlier one matches it */
    p->start_ticks = start_ticks ? start_ticks : now;
    p->start_ns = nprof_ticks_to_timeline_ns(p->start_ticks);
    p->method_len = (uint32_t)(method_len < NPROF__METHOD_MAX ? method_len : NPROF__METHOD_MAX);
    memcpy(p->method, method ? method : "", p->method_len);
    uint32_t kept;
    const char *copied = copy_text(p, path, path_len, p->rt->cfg.max_sql_bytes, &kept);
    p->path = copied ? copied : "";
    p->path_len = copied ? kept : 0;
    generate_request_id(p);
    nprof__counter_add(&rt->requests, 1);
    *out = p;
    return NPROF_OK;
}

int nprof_profile_set_request_id(nprof_profile *p, const char *id, size_t len)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!id && len)
        return NPROF_EINVAL;
    size_t n = len < NPROF__REQUEST_ID_MAX ? len : NPROF__REQUEST_ID_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        /* Ids travel in headers and logs: keep them to printable ASCII. */
        p->request_id[i] = c > 0x20 && c < 0x7F ? (char)c : '_';
    }
    p->request_id_len = (uint32_t)n;
    return NPROF_OK;
}

NPROF__HOT_PATH
int nprof_profile_set_route(nprof_profile *p, const char *route, size_t len)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (!route && len)
        return NPROF_EINVAL;
    uint32_t kept;
    const char *copied = copy_text(p, route, len, p->rt->cfg.max_sql_bytes, &kept);
    if (!copied)
        return NPROF_ELIMIT;
    p->route = copied;
    p->route_len = kept;
    return NPROF_OK;
}

/* ---- spans and phases ------------------------------------------------------------------- */

static void pop_phase(nprof_profile *p, uint64_t now)
{
    nprof__phase_entry *e = &p->phase_stack[--p->phase_depth];
    p->phase_ticks[e->phase] += now - e->resume_ticks;
    if (p->phase_depth)
        p->phase_stack[p->phase_depth - 1].resume_ticks = now; /* the outer phase runs again */
}

/* Span `s` ends at `now`; `implicit`: ended because something around it did. */
static inline void mark_span_ended(nprof__span *s, uint64_t now, int implicit)
{
    s->end_ticks = now;
    s->open = 0;
    s->unclosed = (uint8_t)implicit;
}

NPROF__HOT_PATH
static void close_span(nprof_profile *p, int id, uint64_t now, int implicit)
{
    nprof__span *s = &p->spans[id];
    mark_span_ended(s, now, implicit);
    if (s->phase >= 0) {
        /* A phase closed with its span: pop its entry and anything still open above it. */
        for (uint32_t k = p->phase_depth; k-- > 0;) {
            if (p->phase_stack[k].span == id) {
                while (p->phase_depth > k)
                    pop_phase(p, now);
                break;
            }
        }
    }
}

/* Closes the tracked spans of the current chain from the innermost up to and including
 * `stop` (a span on the chain, or NPROF_SPAN_ROOT for all of them). */
static void unwind_to(nprof_profile *p, int stop, uint64_t now, int implicit_stop)
{
    while (p->current_span != NPROF_SPAN_ROOT) {
        int id = p->current_span;
        p->current_span = p->spans[id].parent;
        close_span(p, id, now, id == stop ? implicit_stop : 1);
        if (id == stop)
            return;
    }
}

static int add_span(nprof_profile *p, int parent, const char *name, size_t name_len,
                    unsigned flags, int phase, uint64_t now)
{
    if (p->span_count >= p->rt->cfg.max_spans ||
        (p->span_count == p->span_cap &&
         grow_array(p, (void **)&p->spans, &p->span_cap, p->spans_inline, sizeof(nprof__span),
                    p->rt->cfg.max_spans) != NPROF_OK)) {
        p->spans_dropped++;
        return NPROF_ELIMIT;
    }
    const char *stored = name;
    uint32_t kept = (uint32_t)(name_len > SPAN_NAME_MAX ? SPAN_NAME_MAX : name_len);
    if (!(flags & NPROF_SPAN_STATIC_NAME)) {
        stored = copy_text(p, name, name_len, SPAN_NAME_MAX, &kept);
        if (!stored) {
            p->spans_dropped++;
            return NPROF_ELIMIT;
        }
    }
    int id = (int)p->span_count++;
    nprof__span *s = &p->spans[id];
    s->name = stored ? stored : "";
    s->name_len = kept;
    s->parent = parent == NPROF_SPAN_CURRENT ? p->current_span : parent;
    s->start_ticks = now;
    s->end_ticks = 0;
    s->phase = (int8_t)phase;
    s->tracked = parent == NPROF_SPAN_CURRENT;
    s->open = 1;
    s->unclosed = 0;
    if (s->tracked)
        p->current_span = id;
    return id;
}

int nprof_span_begin_ex(nprof_profile *p, int parent, const char *name, size_t name_len,
                        unsigned flags)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (p->ended)
        return NPROF_ESTATE;
    if ((!name && name_len) || parent < NPROF_SPAN_CURRENT ||
        (parent >= 0 && ((uint32_t)parent >= p->span_count || !p->spans[parent].open)))
        return NPROF_EINVAL;
    return add_span(p, parent, name ? name : "", name_len, flags, -1, nprof_ticks());
}

int nprof_span_begin(nprof_profile *p, const char *name, size_t name_len)
{
    return nprof_span_begin_ex(p, NPROF_SPAN_CURRENT, name, name_len, 0);
}

int nprof_span_begin_static(nprof_profile *p, const char *name, size_t name_len)
{
    return nprof_span_begin_ex(p, NPROF_SPAN_CURRENT, name, name_len, NPROF_SPAN_STATIC_NAME);
}

int nprof_span_end(nprof_profile *p, int id)
{
    if (id < 0)
        return id;
    if (!p)
        return NPROF_ENOPROFILE;
    uint64_t now = nprof_ticks();
    if ((uint32_t)id >= p->span_count || p->spans[id].phase >= 0)
        return NPROF_EINVAL; /* phases end with nprof_phase_end() */
    nprof__span *s = &p->spans[id];
    if (!s->open)
        return NPROF_ESTATE;
    if (s->tracked)
        unwind_to(p, id, now, 0);
    else
        close_span(p, id, now, 0);
    return NPROF_OK;
}

static const char *const phase_names[NPROF_PHASE_COUNT] = {"middleware", "routing", "handler"};
static const size_t phase_name_lens[NPROF_PHASE_COUNT] = {10, 7, 7};

/* A phase begins at `now`, pausing the one it runs inside. */
NPROF__HOT_PATH
static int phase_begin_at(nprof_profile *p, int phase, uint64_t now)
{
    if (p->phase_depth == NPROF__PHASE_DEPTH)
        return NPROF_ELIMIT;
    if (p->phase_depth) {
        nprof__phase_entry *outer = &p->phase_stack[p->phase_depth - 1];
        p->phase_ticks[outer->phase] += now - outer->resume_ticks; /* pause the outer phase */
    }
    int span = add_span(p, NPROF_SPAN_CURRENT, phase_names[phase], phase_name_lens[phase],
                        NPROF_SPAN_STATIC_NAME, phase, now);
    nprof__phase_entry *e = &p->phase_stack[p->phase_depth++];
    e->phase = phase;
    e->span = span >= 0 ? span : -1;
    e->resume_ticks = now;
    return NPROF_OK;
}

/* The innermost running `phase` ends at `now`, with the phases and spans opened inside it. */
NPROF__HOT_PATH
static int phase_end_at(nprof_profile *p, int phase, uint64_t now)
{
    nprof__phase_entry *top = p->phase_depth ? &p->phase_stack[p->phase_depth - 1] : NULL;
    if (NPROF_LIKELY(top && top->phase == phase && top->span >= 0 &&
                     p->current_span == top->span)) {
        /* The usual case (a framework's hooks moving the request on): `phase` is the
         * innermost one and nothing is open inside it.  Its span closes and its entry pops,
         * as below, without the searches: this runs cold at every mark, so a straight run
         * of code is what it costs. */
        nprof__span *ended = &p->spans[top->span];
        mark_span_ended(ended, now, 0);
        p->current_span = ended->parent;
        pop_phase(p, now);
        return NPROF_OK;
    }
    for (uint32_t k = p->phase_depth; k-- > 0;) {
        if (p->phase_stack[k].phase != phase)
            continue;
        int span = p->phase_stack[k].span;
        if (span >= 0 && p->spans[span].open)
            unwind_to(p, span, now, 0); /* pops this entry and the ones above it */
        while (p->phase_depth > k)
            pop_phase(p, now);
        return NPROF_OK;
    }
    return NPROF_ESTATE;
}

/* Whether `phase` of `p` can be begun, ended or added to now: NPROF_OK or the error. */
static int phase_usable(const nprof_profile *p, int phase)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if ((unsigned)phase >= NPROF_PHASE_COUNT)
        return NPROF_EINVAL;
    return p->ended ? NPROF_ESTATE : NPROF_OK;
}

NPROF__HOT_PATH
int nprof_phase_begin(nprof_profile *p, int phase)
{
    int rc = phase_usable(p, phase);
    return rc != NPROF_OK ? rc : phase_begin_at(p, phase, nprof_ticks());
}

NPROF__HOT_PATH
int nprof_phase_end(nprof_profile *p, int phase)
{
    int rc = phase_usable(p, phase);
    return rc != NPROF_OK ? rc : phase_end_at(p, phase, nprof_ticks());
}

NPROF__HOT_PATH
int nprof__phase_switch(nprof_profile *p, int from, int to)
{
    int rc = phase_usable(p, to);
    if (rc != NPROF_OK)
        return rc;
    /* One tick: `to` begins where `from` ended, and the outer phase, resumed and paused at
     * that tick, gains nothing.  A `from` not running leaves only the begin to do. */
    uint64_t now = nprof_ticks();
    if ((unsigned)from < NPROF_PHASE_COUNT)
        phase_end_at(p, from, now);
    return phase_begin_at(p, to, now);
}

int nprof_phase_add_ns(nprof_profile *p, int phase, uint64_t ns)
{
    int rc = phase_usable(p, phase);
    if (rc == NPROF_OK)
        p->phase_extra_ns[phase] += ns;
    return rc;
}

uint64_t nprof__phase_ns(const nprof_profile *p, int phase)
{
    return nprof_ticks_to_ns(p->phase_ticks[phase]) + p->phase_extra_ns[phase];
}

/* ---- queries ---------------------------------------------------------------------------- */

/* An optional text of a query, copied (NULL stays NULL with length 0).  0, or -1 when the
 * profile's budget is spent. */
static int copy_optional(nprof_profile *p, const char *s, size_t len, size_t max,
                         const char **out, uint32_t *kept)
{
    *out = NULL;
    *kept = 0;
    if (!s)
        return 0;
    *out = copy_text(p, s, len, max, kept);
    return *out ? 0 : -1;
}

/* Copies `q` into the next query slot and returns its number, or -1 when it cannot be kept
 * (max_queries or the budget).  Every field of the slot is written: a recycled profile's
 * slots still hold the last request's pointers. */
static int32_t keep_query(nprof_profile *p, const nprof_query *q, uint64_t now)
{
    const nprof_config *cfg = &p->rt->cfg;
    if (p->query_count >= cfg->max_queries ||
        (p->query_count == p->query_cap &&
         grow_array(p, (void **)&p->queries, &p->query_cap, p->queries_inline,
                    sizeof(nprof__query), cfg->max_queries) != NPROF_OK))
        return -1;
    nprof__query r = {
        .sql_full_len = (uint32_t)(q->sql_len > UINT32_MAX ? UINT32_MAX : q->sql_len),
        .batch_rows = q->batch_rows,
        .flags = q->flags,
        .fingerprint = q->fingerprint,
        .duration_ns = q->duration_ns,
        .span = p->current_span,
    };
    /* A repeat of the shape memo's query (sqlhooks/record.c hands over that record's own
     * text and shape) shares its copies: an N+1 loop's texts take no arena space and no
     * copying.  The arena's texts are never written after they are copied. */
    const nprof__query *memo = p->shape_memo ? &p->queries[p->shape_memo - 1] : NULL;
    if (memo && q->sql == memo->sql && q->sql_len == memo->sql_len &&
        q->normalized == memo->normalized && q->normalized_len == memo->normalized_len) {
        r.sql = memo->sql;
        r.sql_len = memo->sql_len;
        r.normalized = memo->normalized;
        r.normalized_len = memo->normalized_len;
    } else {
        r.sql = copy_text(p, q->sql, q->sql_len, cfg->max_sql_bytes, &r.sql_len);
        if (!r.sql || copy_optional(p, q->normalized, q->normalized_len, cfg->max_sql_bytes,
                                    &r.normalized, &r.normalized_len))
            return -1;
    }
    /* Text copied before a failure stays in the arena until the profile is reused. */
    if ((nprof_profile_wants_params(p, q->duration_ns, q->error_len != 0) &&
         copy_optional(p, q->params, q->params_len, cfg->max_params_bytes, &r.params,
                       &r.params_len)) ||
        copy_optional(p, q->error, q->error_len, NPROF_QUERY_ERROR_MAX, &r.error, &r.error_len))
        return -1;
    /* Where it sits in the request: from its start when given, else it ended just now. */
    if (q->start_ticks) {
        r.start_offset_ns = q->start_ticks > p->start_ticks
                                ? nprof_ticks_to_ns(q->start_ticks - p->start_ticks) : 0;
    } else {
        uint64_t end_offset = now > p->start_ticks ? nprof_ticks_to_ns(now - p->start_ticks) : 0;
        r.start_offset_ns = end_offset > q->duration_ns ? end_offset - q->duration_ns : 0;
    }
    p->queries[p->query_count] = r;
    return (int32_t)p->query_count++;
}

/*
 * Asks the recorder where the query came from, when the profile keeps that: on the shape
 * (`shape` >= 0: the first query of a new shape) or on a kept slow query (`kept` >= 0).
 * Finding a call site means walking the host's stack (a Python frame walk costs
 * microseconds), so every other query is left alone.  The buffer is zeroed first: a callback
 * that claims more than it wrote copies zeros, never an earlier call's stack bytes.
 */
static NPROF__NOINLINE void ask_callsite(nprof_profile *p, const nprof_query *q, int32_t kept,
                                         int32_t shape)
{
    char buf[NPROF_CALLSITE_MAX];
    memset(buf, 0, sizeof buf);
    size_t n = q->callsite(q->callsite_user, buf, sizeof buf);
    uint32_t len;
    const char *site = n ? copy_text(p, buf, n, sizeof buf, &len) : NULL;
    if (!site)
        return; /* none known, or the budget is spent: the query stays without one */
    /* Indexes, not pointers taken before the call: the arrays do not move while the query
     * is recorded, but the callback is the host's code. */
    if (kept >= 0) {
        p->queries[kept].callsite = site;
        p->queries[kept].callsite_len = len;
    }
    if (shape >= 0) {
        p->patterns[shape].callsite = site;
        p->patterns[shape].callsite_len = len;
    }
}

static inline void keep_callsite(nprof_profile *p, const nprof_query *q, int32_t kept,
                                 int32_t shape)
{
    int slow = q->duration_ns > p->rt->slow_query_ns;
    if (shape >= 0 || (slow && kept >= 0))
        ask_callsite(p, q, kept, shape);
}

void nprof_profile_set_param_summaries(nprof_profile *p, int on)
{
    if (p)
        p->params_off = !on;
}

uint64_t nprof_profile_params_from_ns(const nprof_profile *p)
{
    if (!p || !p->params_off)
        return 0;
    uint64_t slow = p->rt->slow_query_ns;
    return slow == UINT64_MAX ? UINT64_MAX : slow + 1; /* "over the threshold" */
}

NPROF__HOT_PATH
int nprof_profile_wants_params(const nprof_profile *p, uint64_t duration_ns, int failed)
{
    return failed || duration_ns >= nprof_profile_params_from_ns(p);
}

int nprof_query_record(nprof_profile *p, const nprof_query *q)
{
    return nprof__query_record_hashed(p, q, 0);
}

NPROF__HOT_PATH
int nprof__query_record_hashed(nprof_profile *p, const nprof_query *q, uint64_t text_hash)
{
    if (NPROF_UNLIKELY(!p))
        return NPROF_ENOPROFILE;
    if (NPROF_UNLIKELY(!q || (!q->sql && q->sql_len) || (!q->params && q->params_len) ||
                       (!q->normalized && q->normalized_len) || (!q->error && q->error_len)))
        return NPROF_EINVAL;
    if (NPROF_UNLIKELY(p->ended))
        return NPROF_ESTATE;
    uint64_t now = nprof_ticks();
    p->sql_count++;
    p->sql_total_ns += q->duration_ns;
    int32_t kept = keep_query(p, q, now);
    if (kept < 0)
        p->queries_dropped++;
    int32_t shape = nprof__patterns_count(p, q, kept, text_hash);
    if (q->callsite)
        keep_callsite(p, q, kept, shape);
    return kept >= 0 ? NPROF_OK : NPROF_ELIMIT;
}

/* ---- end, submit, discard ------------------------------------------------------------------ */

NPROF__HOT_PATH
int nprof_request_end(nprof_profile *p, int status)
{
    if (!p)
        return NPROF_ENOPROFILE;
    if (p->ended)
        return NPROF_ESTATE;
    uint64_t now = nprof_ticks();
    unwind_to(p, NPROF_SPAN_ROOT, now, 1);
    while (p->phase_depth)
        pop_phase(p, now);
    for (uint32_t i = 0; i < p->span_count; i++)
        if (p->spans[i].open)
            close_span(p, (int)i, now, 1);
    p->end_ticks = now;
    p->total_ns = now > p->start_ticks ? nprof_ticks_to_ns(now - p->start_ticks) : 0;
    p->status = status;
    p->ended = 1;
    generation_step(p); /* no thread's current profile any more */
    /* The runtime's counters are bumped once per request, not once per event. */
    nprof_runtime *rt = p->rt;
    if (p->sql_count)
        nprof__counter_add(&rt->queries, p->sql_count);
    if (p->queries_dropped)
        nprof__counter_add(&rt->queries_dropped, p->queries_dropped);
    if (p->spans_dropped)
        nprof__counter_add(&rt->spans_dropped, p->spans_dropped);
    return NPROF_OK;
}

void nprof__profile_finish(nprof_profile *p)
{
    if (!p->ended)
        nprof_request_end(p, 0);
}

int nprof_request_submit(nprof_profile *p)
{
    if (!p)
        return NPROF_ENOPROFILE;
    nprof__counter_add(&p->rt->requests_submitted, 1);
    return nprof_store_push(p->rt->store, p);
}

void nprof_request_discard(nprof_profile *p)
{
    if (!p)
        return;
    generation_close(p);
    nprof__profile_recycle(p);
}

/* ---- read access ------------------------------------------------------------------------- */

NPROF__HOT_PATH
int nprof_profile_get_info(const nprof_profile *p, nprof_profile_info *out)
{
    if (!p || !out)
        return p ? NPROF_EINVAL : NPROF_ENOPROFILE;
    memset(out, 0, sizeof *out);
    out->method = p->method;
    out->method_len = p->method_len;
    out->path = p->path;
    out->path_len = p->path_len;
    out->route = p->route;
    out->route_len = p->route_len;
    out->request_id = p->request_id;
    out->request_id_len = p->request_id_len;
    out->status = p->status;
    out->ended = p->ended;
    out->start_ns = p->start_ns;
    out->total_ns = p->total_ns;
    out->middleware_ns = nprof__phase_ns(p, NPROF_PHASE_MIDDLEWARE);
    out->routing_ns = nprof__phase_ns(p, NPROF_PHASE_ROUTING);
    out->handler_ns = nprof__phase_ns(p, NPROF_PHASE_HANDLER);
    out->sql_total_ns = p->sql_total_ns;
    out->sql_count = p->sql_count;
    out->queries_kept = p->query_count;
    out->queries_dropped = p->queries_dropped;
    out->span_count = p->span_count;
    out->spans_dropped = p->spans_dropped;
    out->memory_bytes = sizeof *p + p->heap_bytes;
    out->slow_count = p->slow_count;
    out->exact_repeats = p->exact_repeats;
    out->pattern_count = p->pattern_count;
    out->patterns_dropped = p->patterns_dropped;
    for (uint32_t i = 0; i < p->pattern_count; i++)
        out->n_plus_one_count += p->patterns[i].count >= p->rt->cfg.n_plus_one_threshold;
    return NPROF_OK;
}

static uint64_t offset_ns(const nprof_profile *p, uint64_t ticks)
{
    return ticks > p->start_ticks ? nprof_ticks_to_ns(ticks - p->start_ticks) : 0;
}

void nprof__profile_interim_begin(nprof_profile *p, uint64_t now, nprof__interim *undo)
{
    *undo = (nprof__interim){.active = !p->ended, .phase = -1, .phase_ticks = 0};
    if (p->ended)
        return;
    /* As nprof_request_end() would fix them at `now`, so the total covers the phases. */
    p->total_ns = offset_ns(p, now);
    if (p->phase_depth) {
        const nprof__phase_entry *top = &p->phase_stack[p->phase_depth - 1];
        undo->phase = top->phase;
        undo->phase_ticks = p->phase_ticks[top->phase];
        if (now > top->resume_ticks)
            p->phase_ticks[top->phase] += now - top->resume_ticks;
    }
}

void nprof__profile_interim_end(nprof_profile *p, const nprof__interim *undo)
{
    if (!undo->active)
        return;
    p->total_ns = 0; /* a live request has no total yet */
    if (undo->phase >= 0)
        p->phase_ticks[undo->phase] = undo->phase_ticks;
}

/* The checks of the three item readers below: NPROF_ENOPROFILE for a NULL profile,
 * NPROF_EINVAL for a NULL output, NPROF_ENOENT past the `count` items there are. */
static int item_check(const nprof_profile *p, const void *out, size_t index, size_t count)
{
    if (!p || !out)
        return p ? NPROF_EINVAL : NPROF_ENOPROFILE;
    return index < count ? NPROF_OK : NPROF_ENOENT;
}

int nprof_profile_get_query(const nprof_profile *p, size_t index, nprof_query_info *out)
{
    int rc = item_check(p, out, index, p ? p->query_count : 0);
    if (rc != NPROF_OK)
        return rc;
    const nprof__query *q = &p->queries[index];
    out->sql = q->sql;
    out->sql_len = q->sql_len;
    out->sql_full_len = q->sql_full_len;
    out->params = q->params;
    out->params_len = q->params_len;
    out->normalized = q->normalized;
    out->normalized_len = q->normalized_len;
    out->fingerprint = q->fingerprint;
    out->duration_ns = q->duration_ns;
    out->start_offset_ns = q->start_offset_ns;
    out->span = q->span;
    out->slow = q->duration_ns > p->rt->slow_query_ns;
    out->batch_rows = q->batch_rows;
    out->flags = q->flags;
    out->error = q->error;
    out->error_len = q->error_len;
    out->callsite = q->callsite;
    out->callsite_len = q->callsite_len;
    return NPROF_OK;
}

int nprof_profile_get_pattern(const nprof_profile *p, size_t index, nprof_pattern_info *out)
{
    int rc = item_check(p, out, index, p ? p->pattern_count : 0);
    if (rc != NPROF_OK)
        return rc;
    const nprof__pattern *pat = &p->patterns[index];
    memset(out, 0, sizeof *out);
    out->fingerprint = pat->fingerprint;
    if (pat->first_query >= 0) {
        const nprof__query *q = &p->queries[pat->first_query];
        out->normalized = q->normalized;
        out->normalized_len = q->normalized_len;
        out->example = q->sql;
        out->example_len = q->sql_len;
    }
    out->count = pat->count;
    out->exact_repeats = pat->exact_repeats;
    out->slow_count = pat->slow_count;
    out->total_ns = pat->total_ns;
    out->max_ns = pat->max_ns;
    out->n_plus_one = pat->count >= p->rt->cfg.n_plus_one_threshold;
    out->callsite = pat->callsite;
    out->callsite_len = pat->callsite_len;
    return NPROF_OK;
}

int nprof_profile_get_span(const nprof_profile *p, size_t index, nprof_span_info *out)
{
    int rc = item_check(p, out, index, p ? p->span_count : 0);
    if (rc != NPROF_OK)
        return rc;
    const nprof__span *s = &p->spans[index];
    out->name = s->name;
    out->name_len = s->name_len;
    out->parent = s->parent;
    out->phase = s->phase;
    out->unclosed = s->unclosed;
    out->start_offset_ns = offset_ns(p, s->start_ticks);
    out->duration_ns = nprof__span_ns(s);
    return NPROF_OK;
}
