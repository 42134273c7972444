/* The text-encoder result cache: a hash table of entries on an LRU list,
 * bounded by max_bytes, and the fill of prompt rows through it.  See
 * text_cache.h. */
#include "pipelines/text_cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdiffusers/rng.h"

#define DEFAULT_MAX_BYTES ((size_t)256 << 20)
#define MIN_BUCKETS 64

/* One cached row: key, LRU links, then [n] floats and the text in one block. */
typedef struct entry {
    struct entry *chain;      /* next in its bucket */
    struct entry *newer, *older;
    uint64_t hash, uid;
    const void *encoder;
    int which, precision, layer, pooled;
    size_t n;                 /* floats */
    size_t bytes;             /* the whole block */
    const char *text;         /* inside the block, after data */
    float data[];             /* [n] */
} entry;

struct cdf_text_cache {
    size_t max_bytes, bytes, count, nbuckets;
    entry **buckets;          /* [nbuckets], a power of two; NULL until the first store */
    entry *newest, *oldest;
    uint64_t hits, misses;
};

/* What a lookup or store is about. */
typedef struct key {
    const cdf_text_source *src;
    const cdf_text_part *part;
    const char *text;
    uint64_t hash;
} key;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static key make_key(const cdf_text_source *src, const cdf_text_part *part, const char *text) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the text, then the rest mixed in */
    for (const unsigned char *s = (const unsigned char *)text; *s; s++) h = (h ^ *s) * 0x100000001b3ull;
    h = mix64(h ^ src->uid);
    h = mix64(h ^ (uint64_t)(uintptr_t)src->encoder);
    h = mix64(h ^ ((uint64_t)(unsigned)src->which << 48) ^ ((uint64_t)(unsigned)src->precision << 40) ^
              ((uint64_t)(unsigned)part->layer << 8) ^ (uint64_t)part->pooled);
    h = mix64(h ^ (uint64_t)part->n);
    key k = {src, part, text, h};
    return k;
}

static int same(const entry *e, const key *k) {
    return e->hash == k->hash && e->uid == k->src->uid && e->encoder == k->src->encoder &&
           e->which == k->src->which && e->precision == k->src->precision && e->layer == k->part->layer &&
           e->pooled == k->part->pooled && e->n == k->part->n && strcmp(e->text, k->text) == 0;
}

static entry **slot(const cdf_text_cache *c, uint64_t hash) { return &c->buckets[hash & (c->nbuckets - 1)]; }

static entry *find(const cdf_text_cache *c, const key *k) {
    if (!c->nbuckets) return NULL;
    for (entry *e = *slot(c, k->hash); e; e = e->chain)
        if (same(e, k)) return e;
    return NULL;
}

static void lru_unlink(cdf_text_cache *c, entry *e) {
    if (e->newer) e->newer->older = e->older;
    else c->newest = e->older;
    if (e->older) e->older->newer = e->newer;
    else c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(cdf_text_cache *c, entry *e) {
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest) c->newest->newer = e;
    c->newest = e;
    if (!c->oldest) c->oldest = e;
}

static void evict(cdf_text_cache *c, entry *e) {
    entry **pp = slot(c, e->hash);
    while (*pp != e) pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(c, e);
    c->bytes -= e->bytes;
    c->count--;
    cdf_free(e);
}

/* Room in the index for one more entry: doubles it at load factor 1; 0 when
 * there is no index and none can be made (a failed growth keeps the old one). */
static int index_room(cdf_text_cache *c) {
    if (c->count < c->nbuckets) return 1;
    size_t nb = c->nbuckets ? c->nbuckets * 2 : MIN_BUCKETS;
    entry **b = nb > c->nbuckets ? cdf_calloc(nb, sizeof *b) : NULL;
    if (!b) return c->nbuckets != 0;
    for (size_t i = 0; i < c->nbuckets; i++)
        for (entry *e = c->buckets[i], *next; e; e = next) {
            next = e->chain;
            e->chain = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    cdf_free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
    return 1;
}

/* A copy of data [k->part->n] under k; not stored when it cannot be (too big, out of memory). */
static void store(cdf_text_cache *c, const key *k, const float *data) {
    entry *e = find(c, k);
    if (e) {
        lru_unlink(c, e);
        lru_push(c, e);
        return;
    }
    size_t n = k->part->n, tl = strlen(k->text) + 1, head = offsetof(entry, data);
    if (n > (SIZE_MAX - head - tl) / sizeof(float)) return;
    size_t bytes = head + n * sizeof(float) + tl;
    if (bytes > c->max_bytes || !index_room(c)) return;
    if (!(e = cdf_malloc(bytes))) return;
    while (c->oldest && c->bytes + bytes > c->max_bytes) evict(c, c->oldest);
    memset(e, 0, head);
    e->hash = k->hash;
    e->uid = k->src->uid;
    e->encoder = k->src->encoder;
    e->which = k->src->which;
    e->precision = k->src->precision;
    e->layer = k->part->layer;
    e->pooled = k->part->pooled;
    e->n = n;
    e->bytes = bytes;
    memcpy(e->data, data, n * sizeof(float));
    char *text = (char *)(e->data + n);
    memcpy(text, k->text, tl);
    e->text = text;
    entry **b = slot(c, e->hash);
    e->chain = *b;
    *b = e;
    lru_push(c, e);
    c->bytes += bytes;
    c->count++;
}

cdf_status cdf_text_cache_new(size_t max_bytes, cdf_text_cache **out, cdf_error *err) {
    if (!out) return cdf_error_set(err, CDF_ERR_ARG, "cdf_text_cache_new: out is NULL");
    *out = NULL;
    cdf_text_cache *c = cdf_calloc(1, sizeof *c);
    if (!c) return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory making a text cache");
    c->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
    *out = c;
    return CDF_OK;
}

void cdf_text_cache_free(cdf_text_cache *c) {
    if (!c) return;
    for (entry *e = c->newest, *next; e; e = next) {
        next = e->older;
        cdf_free(e);
    }
    cdf_free(c->buckets);
    cdf_free(c);
}

void cdf_text_cache_stats(const cdf_text_cache *c, uint64_t *hits, uint64_t *misses) {
    if (hits) *hits = c ? c->hits : 0;
    if (misses) *misses = c ? c->misses : 0;
}

uint64_t cdf_text_uid(const void *salt) {
    char buf[32];
    cdf_error e = {0};
    uint64_t r = 0;
    if (cdf_seed_from_os(buf, sizeof buf, &e) == CDF_OK) r = strtoull(buf, NULL, 10);
    struct timespec ts = {0, 0};
    timespec_get(&ts, TIME_UTC);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return mix64(r ^ mix64(t ^ mix64((uint64_t)(uintptr_t)salt)));
}

/* A missing row: its text and index (sorted by text, then row). */
typedef struct miss_row {
    const char *text;
    int row;
} miss_row;

static int by_text_row(const void *a, const void *b) {
    const miss_row *x = a, *y = b;
    int d = strcmp(x->text, y->text);
    return d ? d : (x->row > y->row) - (x->row < y->row);
}

cdf_status cdf_text_cache_fill(cdf_text_cache *c, const cdf_text_source *src, const char *const *texts,
                               const int64_t *ids, int rows, const cdf_text_part *parts, int nparts, cdf_error *err) {
    if (nparts < 1 || nparts > CDF_TEXT_MAX_PARTS)
        return cdf_error_set(err, CDF_ERR_ARG, "text cache: %d outputs per encoder call (1 to %d)", nparts,
                             CDF_TEXT_MAX_PARTS);
    float *outs[CDF_TEXT_MAX_PARTS] = {NULL};
    if (!c) {
        for (int p = 0; p < nparts; p++) outs[p] = parts[p].out;
        return src->forward(src->user, ids, rows, outs);
    }
    const size_t seq = (size_t)src->seq;
    cdf_status s = CDF_OK;
    miss_row *miss = cdf_mallocn((size_t)rows, sizeof *miss); /* [m] rows missing a part, then sorted */
    int *uniq_of = cdf_mallocn((size_t)rows, sizeof *uniq_of); /* [rows]: -1 found, else its unique text */
    int *first = cdf_mallocn((size_t)rows, sizeof *first);     /* [u]: the first row of each unique text */
    int64_t *uniq_ids = NULL;                                  /* [u, seq] their ids */
    if (!miss || !uniq_of || !first) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "text cache: out of memory looking up %d prompts", rows);
        goto done;
    }
    int m = 0;
    for (int r = 0; r < rows; r++) {
        int found = 1;
        for (int p = 0; p < nparts; p++) {
            key k = make_key(src, &parts[p], texts[r]);
            entry *e = find(c, &k);
            if (e) {
                c->hits++;
                lru_unlink(c, e);
                lru_push(c, e);
                memcpy(parts[p].out + (size_t)r * parts[p].n, e->data, parts[p].n * sizeof(float));
            } else {
                c->misses++;
                found = 0;
            }
        }
        uniq_of[r] = -1;
        if (!found) miss[m++] = (miss_row){texts[r], r};
    }
    if (m == 0) goto done;
    qsort(miss, (size_t)m, sizeof *miss, by_text_row);
    int u = 0;
    for (int i = 0; i < m; i++) {
        if (i == 0 || strcmp(miss[i].text, miss[i - 1].text) != 0) first[u++] = miss[i].row;
        uniq_of[miss[i].row] = u - 1;
    }
    if (!(uniq_ids = cdf_mallocn((size_t)u * seq, sizeof *uniq_ids))) goto nomem;
    for (int p = 0; p < nparts; p++)
        if (!(outs[p] = cdf_mallocn((size_t)u * parts[p].n, sizeof(float)))) goto nomem; /* [u, n] */
    for (int i = 0; i < u; i++)
        memcpy(uniq_ids + (size_t)i * seq, ids + (size_t)first[i] * seq, seq * sizeof *uniq_ids);
    if ((s = src->forward(src->user, uniq_ids, u, outs))) goto done;
    for (int r = 0; r < rows; r++)
        if (uniq_of[r] >= 0)
            for (int p = 0; p < nparts; p++)
                memcpy(parts[p].out + (size_t)r * parts[p].n, outs[p] + (size_t)uniq_of[r] * parts[p].n,
                       parts[p].n * sizeof(float));
    for (int i = 0; i < u; i++)
        for (int p = 0; p < nparts; p++) {
            key k = make_key(src, &parts[p], texts[first[i]]);
            store(c, &k, outs[p] + (size_t)i * parts[p].n);
        }
    goto done;
nomem:
    s = cdf_error_set(err, CDF_ERR_NOMEM, "text cache: out of memory encoding %d prompts", u);
done:
    for (int p = 0; p < nparts; p++) cdf_free(outs[p]);
    cdf_free(uniq_ids);
    cdf_free(first);
    cdf_free(uniq_of);
    cdf_free(miss);
    return s;
}
