/* Byte-level BPE: symbol interning, merge-rank table, merge loop.  See bpe.h. */
#include "text/bpe.h"

#include <string.h>

#include "text/text_norm.h"

/* ------------------------------------------------------------ id buffer */

cdf_status cdf_i64buf_push(cdf_i64buf *b, int64_t v) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 128;
        int64_t *p = cdf_realloc(b->p, cap * sizeof *p);
        if (!p || cap < b->cap) return CDF_ERR_NOMEM;
        b->p = p;
        b->cap = cap;
    }
    b->p[b->n++] = v;
    return CDF_OK;
}

void cdf_i64buf_free(cdf_i64buf *b) {
    cdf_free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---------------------------------------------------------- hash tables */

static uint64_t hash_str(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) { /* splitmix64 finaliser */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint32_t table_size(size_t n) { /* power of two >= 2n, at least 64 */
    uint32_t s = 64;
    while (s < 2 * n && s < (1u << 30)) s <<= 1;
    return s;
}

cdf_status cdf_bpe_init(cdf_bpe_model *m, size_t n_strings_hint, size_t n_merges) {
    memset(m, 0, sizeof *m);
    uint32_t ss = table_size(n_strings_hint), ps = table_size(n_merges);
    m->slots = cdf_calloc(ss, sizeof *m->slots);
    m->pairs = cdf_calloc(ps, sizeof *m->pairs);
    if (!m->slots || !m->pairs) {
        cdf_bpe_free(m);
        return CDF_ERR_NOMEM;
    }
    m->slot_mask = ss - 1;
    m->pair_mask = ps - 1;
    /* bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the
     * other 68 bytes for U+0100.. in byte order. */
    uint32_t extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        m->byte_char[b] = printable ? (uint32_t)b : 0x100 + extra++;
        m->byte_sym[b] = m->byte_end_sym[b] = CDF_BPE_NOSYM;
    }
    return CDF_OK;
}

void cdf_bpe_free(cdf_bpe_model *m) {
    cdf_free(m->arena);
    cdf_free(m->sym_off);
    cdf_free(m->sym_len);
    cdf_free(m->sym_id);
    cdf_free(m->slots);
    cdf_free(m->pairs);
    memset(m, 0, sizeof *m);
}

uint32_t cdf_bpe_find(const cdf_bpe_model *m, const char *s, size_t len) {
    uint32_t i = (uint32_t)hash_str(s, len) & m->slot_mask;
    for (;;) {
        uint32_t v = m->slots[i];
        if (!v) return CDF_BPE_NOSYM;
        v--;
        if (m->sym_len[v] == len && memcmp(m->arena + m->sym_off[v], s, len) == 0) return v;
        i = (i + 1) & m->slot_mask;
    }
}

static cdf_status grow_slots(cdf_bpe_model *m) {
    uint32_t size = (m->slot_mask + 1) * 2;
    if (size == 0 || size > (1u << 31)) return CDF_ERR_NOMEM;
    uint32_t *slots = cdf_calloc(size, sizeof *slots);
    if (!slots) return CDF_ERR_NOMEM;
    for (uint32_t s = 0; s < m->n_sym; s++) {
        uint32_t i = (uint32_t)hash_str(m->arena + m->sym_off[s], m->sym_len[s]) & (size - 1);
        while (slots[i]) i = (i + 1) & (size - 1);
        slots[i] = s + 1;
    }
    cdf_free(m->slots);
    m->slots = slots;
    m->slot_mask = size - 1;
    return CDF_OK;
}

cdf_status cdf_bpe_intern(cdf_bpe_model *m, const char *s, size_t len, uint32_t *sym) {
    uint32_t found = cdf_bpe_find(m, s, len);
    if (found != CDF_BPE_NOSYM) {
        *sym = found;
        return CDF_OK;
    }
    if (len > UINT32_MAX || m->n_sym >= (1u << 30)) return CDF_ERR_NOMEM;
    if ((size_t)m->n_sym + 1 > (m->slot_mask + 1) / 2 && grow_slots(m) != CDF_OK) return CDF_ERR_NOMEM;
    if (m->n_sym == m->cap_sym) {
        uint32_t cap = m->cap_sym ? m->cap_sym * 2 : 1024;
        size_t *off = cdf_realloc(m->sym_off, cap * sizeof *off);
        if (!off) return CDF_ERR_NOMEM;
        m->sym_off = off;
        uint32_t *ln = cdf_realloc(m->sym_len, cap * sizeof *ln);
        if (!ln) return CDF_ERR_NOMEM;
        m->sym_len = ln;
        int64_t *id = cdf_realloc(m->sym_id, cap * sizeof *id);
        if (!id) return CDF_ERR_NOMEM;
        m->sym_id = id;
        m->cap_sym = cap;
    }
    if (len > m->arena_cap - m->arena_len) {
        size_t cap = m->arena_cap ? m->arena_cap : 1 << 16;
        while (cap - m->arena_len < len) {
            if (cap > SIZE_MAX / 2) return CDF_ERR_NOMEM;
            cap *= 2;
        }
        char *a = cdf_realloc(m->arena, cap);
        if (!a) return CDF_ERR_NOMEM;
        m->arena = a;
        m->arena_cap = cap;
    }
    if (len) memcpy(m->arena + m->arena_len, s, len); /* the arena is still NULL for a first empty symbol */
    uint32_t v = m->n_sym++;
    m->sym_off[v] = m->arena_len;
    m->sym_len[v] = (uint32_t)len;
    m->sym_id[v] = -1;
    m->arena_len += len;
    uint32_t i = (uint32_t)hash_str(s, len) & m->slot_mask;
    while (m->slots[i]) i = (i + 1) & m->slot_mask;
    m->slots[i] = v + 1;
    *sym = v;
    return CDF_OK;
}

static const cdf_bpe_pair *find_pair(const cdf_bpe_model *m, uint32_t a, uint32_t b) {
    uint64_t key = ((uint64_t)a << 32) | b;
    uint32_t i = (uint32_t)hash_u64(key) & m->pair_mask;
    for (;;) {
        const cdf_bpe_pair *p = &m->pairs[i];
        if (!p->used) return NULL;
        if (p->key == key) return p;
        i = (i + 1) & m->pair_mask;
    }
}

static cdf_status grow_pairs(cdf_bpe_model *m) {
    uint32_t size = (m->pair_mask + 1) * 2;
    if (size == 0 || size > (1u << 30)) return CDF_ERR_NOMEM;
    cdf_bpe_pair *pairs = cdf_calloc(size, sizeof *pairs);
    if (!pairs) return CDF_ERR_NOMEM;
    for (uint32_t k = 0; k <= m->pair_mask; k++) {
        if (!m->pairs[k].used) continue;
        uint32_t i = (uint32_t)hash_u64(m->pairs[k].key) & (size - 1);
        while (pairs[i].used) i = (i + 1) & (size - 1);
        pairs[i] = m->pairs[k];
    }
    cdf_free(m->pairs);
    m->pairs = pairs;
    m->pair_mask = size - 1;
    return CDF_OK;
}

cdf_status cdf_bpe_add_merge(cdf_bpe_model *m, const char *a, size_t alen, const char *b, size_t blen, uint32_t rank) {
    uint32_t sa, sb, sab;
    if (cdf_bpe_intern(m, a, alen, &sa) != CDF_OK || cdf_bpe_intern(m, b, blen, &sb) != CDF_OK) return CDF_ERR_NOMEM;
    if (alen > SIZE_MAX - blen) return CDF_ERR_NOMEM;
    char small[256];
    char *cat = alen + blen <= sizeof small ? small : cdf_malloc(alen + blen);
    if (!cat) return CDF_ERR_NOMEM;
    memcpy(cat, a, alen);
    memcpy(cat + alen, b, blen);
    cdf_status st = cdf_bpe_intern(m, cat, alen + blen, &sab);
    if (cat != small) cdf_free(cat);
    if (st != CDF_OK) return st;
    uint64_t key = ((uint64_t)sa << 32) | sb;
    uint32_t i = (uint32_t)hash_u64(key) & m->pair_mask;
    while (m->pairs[i].used && m->pairs[i].key != key) i = (i + 1) & m->pair_mask;
    if (!m->pairs[i].used) {
        if ((size_t)m->n_pairs + 1 > (m->pair_mask + 1) / 2) {
            if (grow_pairs(m) != CDF_OK) return CDF_ERR_NOMEM;
            i = (uint32_t)hash_u64(key) & m->pair_mask;
            while (m->pairs[i].used) i = (i + 1) & m->pair_mask;
        }
        m->n_pairs++;
    }
    m->pairs[i] = (cdf_bpe_pair){.key = key, .rank = rank, .merged = sab, .used = 1};
    return CDF_OK;
}

void cdf_bpe_finish(cdf_bpe_model *m) {
    for (int b = 0; b < 256; b++) {
        unsigned char u[8];
        int k = cdf_utf8_put(m->byte_char[b], u);
        m->byte_sym[b] = cdf_bpe_find(m, (const char *)u, (size_t)k);
        memcpy(u + k, "</w>", 4);
        m->byte_end_sym[b] = cdf_bpe_find(m, (const char *)u, (size_t)k + 4);
    }
}

/* ------------------------------------------------------------ merging */

typedef struct cdf_bpe_heap_item {
    uint32_t rank;
    int32_t left, right; /* node indices of the pair */
} cdf_bpe_heap_item;

static int item_less(const cdf_bpe_heap_item *a, const cdf_bpe_heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(cdf_bpe_heap_item *h, size_t *n, cdf_bpe_heap_item it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!item_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static cdf_bpe_heap_item heap_pop(cdf_bpe_heap_item *h, size_t *n) {
    cdf_bpe_heap_item top = h[0], last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && item_less(&h[c + 1], &h[c])) c++;
        if (!item_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

void cdf_bpe_work_free(cdf_bpe_work *w) {
    cdf_free(w->sym);
    cdf_free(w->prev);
    cdf_free(w->next);
    cdf_free(w->alive);
    cdf_free(w->heap);
    cdf_free(w->batch);
    memset(w, 0, sizeof *w);
}

static cdf_status work_reserve(cdf_bpe_work *w, size_t n) {
    if (n <= w->cap) return CDF_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n) cap *= 2;
    if (cap > (size_t)INT32_MAX / 4) return CDF_ERR_LIMIT;
    cdf_bpe_work nw = {0};
    nw.sym = cdf_mallocn(cap, sizeof *nw.sym);
    nw.prev = cdf_mallocn(cap, sizeof *nw.prev);
    nw.next = cdf_mallocn(cap, sizeof *nw.next);
    nw.alive = cdf_malloc(cap);
    nw.heap = cdf_mallocn(3 * cap, sizeof *nw.heap);
    nw.batch = cdf_mallocn(3 * cap, sizeof *nw.batch);
    nw.cap = cap;
    nw.hcap = 3 * cap;
    if (!nw.sym || !nw.prev || !nw.next || !nw.alive || !nw.heap || !nw.batch) {
        cdf_bpe_work_free(&nw);
        return CDF_ERR_NOMEM;
    }
    cdf_bpe_work_free(w);
    *w = nw;
    return CDF_OK;
}

/* Pushes the pair (i, j) of adjacent nodes when it is a merge rule. */
static void push_pair(const cdf_bpe_model *m, cdf_bpe_work *w, size_t *hn, int32_t i, int32_t j) {
    if (w->sym[i] == CDF_BPE_NOSYM || w->sym[j] == CDF_BPE_NOSYM) return;
    const cdf_bpe_pair *p = find_pair(m, w->sym[i], w->sym[j]);
    if (p) heap_push(w->heap, hn, (cdf_bpe_heap_item){p->rank, i, j});
}

cdf_status cdf_bpe_encode(const cdf_bpe_model *m, const unsigned char *tok, size_t n, int64_t unk_id, cdf_bpe_work *w,
                          cdf_i64buf *out) {
    if (n == 0) return CDF_OK;
    cdf_status st = work_reserve(w, n);
    if (st != CDF_OK) return st;
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = i + 1 < n ? m->byte_sym[tok[i]] : m->byte_end_sym[tok[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        w->alive[i] = 1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(m, w, &hn, (int32_t)i, (int32_t)i + 1);
    while (hn) {
        cdf_bpe_heap_item top = heap_pop(w->heap, &hn);
        int32_t i = top.left, j = top.right;
        if (!w->alive[i] || w->next[i] != j) continue;
        const cdf_bpe_pair *p = find_pair(m, w->sym[i], w->sym[j]);
        if (!p || p->rank != top.rank) continue; /* stale: a side was merged since */
        /* Python merges every occurrence of this pair (left to right,
         * non-overlapping) before looking at any other pair: take all entries
         * of this rank, already in left-to-right order. */
        uint32_t a = w->sym[i], b = w->sym[j], ab = p->merged;
        size_t nb = 0;
        w->batch[nb++] = top;
        while (hn && w->heap[0].rank == top.rank) w->batch[nb++] = heap_pop(w->heap, &hn);
        for (size_t k = 0; k < nb; k++) {
            i = w->batch[k].left, j = w->batch[k].right;
            if (!w->alive[i] || !w->alive[j] || w->next[i] != j || w->sym[i] != a || w->sym[j] != b) continue;
            w->sym[i] = ab;
            w->alive[j] = 0;
            int32_t nx = w->next[j];
            w->next[i] = nx;
            if (nx >= 0) w->prev[nx] = i;
            /* new pairs never equal (a, b): ab is longer than a and b */
            if (w->prev[i] >= 0) push_pair(m, w, &hn, w->prev[i], i);
            if (nx >= 0) push_pair(m, w, &hn, i, nx);
        }
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        uint32_t s = w->sym[i];
        int64_t id = s == CDF_BPE_NOSYM ? -1 : m->sym_id[s];
        if (cdf_i64buf_push(out, id >= 0 ? id : unk_id) != CDF_OK) return CDF_ERR_NOMEM;
    }
    return CDF_OK;
}
