/* goldg2odvg's two per-box loops in C: annotation structs -> columns, and records -> JSON Lines.
 *
 * The pure-Python path (goldg._ann_columns; goldg._block_spans + _records + orjson) is the
 * reference, and the fallback where this module was not built (no C compiler at install): the
 * two are tested to give the same columns and the same bytes. The filters stay in NumPy
 * (goldg._plan). What is left per box -- sorting its spans, building its phrase, finding its
 * region, merging spans, formatting -- costs ~2 us in Python and ~0.3 us here, and that is
 * what the >= 10x target needs (docs/convert.md#goldg).
 *
 * Box coordinates arrive already formatted by orjson (one call per block on the NumPy array), so
 * every float is written exactly as the Python path writes it. Strings are escaped as orjson
 * escapes them: '"', '\\' and control characters only; the rest stays UTF-8.
 *
 * format_block reads what it needs from Python objects first, then formats with the GIL
 * released, so blocks can be formatted on two threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_OBJECT_EX: msgspec Struct fields are member slots */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- what can fail without the GIL: a message, raised once the GIL is back ---- */

typedef struct {
    PyObject *type; /* NULL: no error; PyExc_MemoryError when an allocation failed */
    char msg[200];
} Err;

static int fail(Err *e, PyObject *type, const char *fmt, ...)
{
    if (e->type == NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->type = type;
    }
    return -1;
}

static int no_memory(Err *e) { return fail(e, PyExc_MemoryError, "out of memory"); }

/* ---- growable buffers (raw allocator: usable without the GIL) ---- */

typedef struct {
    char *p;
    size_t n, cap;
    Err *e;
} Buf;

static int grow(Buf *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : (size_t)1 << 16;
    while (cap < b->n + extra)
        cap *= 2;
    char *p = PyMem_RawRealloc(b->p, cap);
    if (p == NULL)
        return no_memory(b->e);
    b->p = p;
    b->cap = cap;
    return 0;
}

static int put(Buf *b, const char *s, size_t n)
{
    if (grow(b, n) < 0)
        return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

static int put_int(Buf *b, int64_t v)
{
    char tmp[24];
    int k = 24;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--k] = '-';
    return put(b, tmp + k, (size_t)(24 - k));
}

static const char HEX[] = "0123456789abcdef";

/* A JSON string of UTF-8 bytes, escaped exactly as orjson escapes. */
static int put_str(Buf *b, const char *s, size_t n)
{
    if (grow(b, 2 + 6 * n) < 0)
        return -1;
    char *o = b->p + b->n;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
        }
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
    return 0;
}

typedef struct {
    int64_t *p;
    Py_ssize_t n, cap;
} I64;

static int i64_reserve(I64 *a, Py_ssize_t extra)
{
    if (a->n + extra <= a->cap)
        return 0;
    Py_ssize_t cap = a->cap ? a->cap : 1024;
    while (cap < a->n + extra)
        cap *= 2;
    int64_t *p = PyMem_RawRealloc(a->p, sizeof(int64_t) * (size_t)cap);
    if (p == NULL)
        return -1;
    a->p = p;
    a->cap = cap;
    return 0;
}

/* ---- NumPy arrays through the buffer protocol (no NumPy headers needed to build) ---- */

typedef struct {
    Py_buffer v;
    int held;
} View;

/* A C-contiguous buffer of `itemsize`-byte numbers (8: int64 or float64; 1: bool). */
static int view_get(View *w, PyObject *o, Py_ssize_t itemsize, Py_ssize_t min_items, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(o, &w->v, flags) < 0)
        return -1;
    w->held = 1;
    const char *f = w->v.format ? w->v.format : "B";
    char kind = f[strlen(f) - 1];
    int ok = w->v.itemsize == itemsize &&
             (itemsize == 1 ? (kind == '?' || kind == 'B' || kind == 'b') : (kind == 'l' || kind == 'q' || kind == 'd'));
    if (!ok || w->v.len / itemsize < min_items) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd+ items of %zd bytes", name, min_items, itemsize);
        return -1;
    }
    return 0;
}

static void view_release(View *w)
{
    if (w->held)
        PyBuffer_Release(&w->v);
    w->held = 0;
}

/* ---- format_block ---- */

/* What one image needs from its Python objects, read while the GIL is held. */
typedef struct {
    const char *cap, *fn; /* UTF-8, owned by the str objects (which the caller's lists keep alive) */
    Py_ssize_t cap_len, cap_chars, fn_len;
    long long h, w;
} Image;

/* A caption with the byte offset of every character (spans count characters). */
typedef struct {
    const Image *im;
    Py_ssize_t *off; /* used unless the caption is ASCII (then offsets are the identity) */
    Py_ssize_t off_cap;
    int ascii;
} Text;

static int text_set(Text *t, const Image *im, Err *e)
{
    t->im = im;
    t->ascii = im->cap_chars == im->cap_len;
    if (t->ascii)
        return 0;
    if (t->off_cap < im->cap_chars + 1) {
        Py_ssize_t *off = PyMem_RawRealloc(t->off, sizeof(Py_ssize_t) * (size_t)(im->cap_chars + 1));
        if (off == NULL)
            return no_memory(e);
        t->off = off;
        t->off_cap = im->cap_chars + 1;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < im->cap_len; i++)
        if (((unsigned char)im->cap[i] & 0xC0) != 0x80)
            t->off[k++] = i;
    t->off[k] = im->cap_len;
    return 0;
}

static inline Py_ssize_t byte_at(const Text *t, int64_t ch) { return t->ascii ? (Py_ssize_t)ch : t->off[ch]; }

/* Stable sort of (start, end) pairs by start, as sorted(spans, key=lambda s: s[0]). */
static void sort_by_start(int64_t *sp, Py_ssize_t n)
{
    for (Py_ssize_t k = 1; k < n; k++) {
        int64_t s = sp[2 * k], e = sp[2 * k + 1];
        Py_ssize_t m = k;
        while (m > 0 && sp[2 * (m - 1)] > s) {
            sp[2 * m] = sp[2 * (m - 1)];
            sp[2 * m + 1] = sp[2 * (m - 1) + 1];
            m--;
        }
        sp[2 * m] = s;
        sp[2 * m + 1] = e;
    }
}

typedef struct {
    size_t key_off, key_len; /* the phrase text, in the per-image key buffer */
    Py_ssize_t first, last;  /* first and last box (block-relative) */
    int64_t *own;            /* its spans once a later mention added some; else the first box's */
    Py_ssize_t nsp, own_cap;
} Region;

/* A later mention of region r's phrase with spans sp[0 .. n): the spans r does not have yet are
 * added and r's spans re-sorted by start (goldg._merge). Returns how many were added. */
static Py_ssize_t merge_spans(Region *r, const int64_t *first_sp, const int64_t *sp, Py_ssize_t n, Err *e)
{
    const int64_t *known = r->own ? r->own : first_sp;
    Py_ssize_t n_known = r->nsp, added = 0;
    for (Py_ssize_t q = 0; q < n; q++) {
        int seen = 0;
        for (Py_ssize_t k = 0; k < n_known && !seen; k++)
            seen = known[2 * k] == sp[2 * q] && known[2 * k + 1] == sp[2 * q + 1];
        if (seen)
            continue;
        if (r->own == NULL || r->nsp + 1 > r->own_cap) {
            Py_ssize_t cap = (r->nsp + n) * 2;
            int64_t *own = PyMem_RawMalloc(sizeof(int64_t) * 2 * (size_t)cap);
            if (own == NULL)
                return no_memory(e);
            memcpy(own, known, sizeof(int64_t) * 2 * (size_t)r->nsp);
            PyMem_RawFree(r->own);
            r->own = own;
            r->own_cap = cap;
            known = own;
        }
        r->own[2 * r->nsp] = sp[2 * q];
        r->own[2 * r->nsp + 1] = sp[2 * q + 1];
        r->nsp++;
        added++;
    }
    if (added)
        sort_by_start(r->own, r->nsp);
    return added;
}

/* The phrase of pieces pc[0 .. n) ((start, stop) character pairs): a string, or a list of them. */
static int put_phrase(Buf *b, const Text *t, const int64_t *pc, Py_ssize_t n)
{
    if (n != 1 && PUT_LIT(b, "[") < 0)
        return -1;
    for (Py_ssize_t m = 0; m < n; m++) {
        Py_ssize_t a = byte_at(t, pc[2 * m]), z = byte_at(t, pc[2 * m + 1]);
        if ((m && PUT_LIT(b, ",") < 0) || put_str(b, t->im->cap + a, (size_t)(z - a)) < 0)
            return -1;
    }
    return n != 1 ? PUT_LIT(b, "]") : 0;
}

static int put_spans(Buf *b, const int64_t *sp, Py_ssize_t n)
{
    if (PUT_LIT(b, "[") < 0)
        return -1;
    for (Py_ssize_t q = 0; q < n; q++)
        if ((q && PUT_LIT(b, ",") < 0) || PUT_LIT(b, "[") < 0 || put_int(b, sp[2 * q]) < 0 || PUT_LIT(b, ",") < 0 ||
            put_int(b, sp[2 * q + 1]) < 0 || PUT_LIT(b, "]") < 0)
            return -1;
    return PUT_LIT(b, "]");
}

/* Everything format_block reads and writes; the formatting itself (format_images) touches no
 * Python object. */
typedef struct {
    Py_ssize_t nb, n, n_ann, n_sp;
    const char *kept;
    const int64_t *starts, *use, *span_start, *spans;
    const char *bt; /* box_text */
    Py_ssize_t btn;
    const Image *images; /* one per block image (unset where not kept) */
    Buf out;
    Py_ssize_t n_records, n_regions, n_spans_kept;
    Err err;
} Job;

static int format_images(Job *J)
{
    Err *e = &J->err;
    Py_ssize_t n = J->n, slots = n ? n : 1;
    Buf keys = {NULL, 0, 0, e};
    I64 ar = {0};
    Text text = {0};
    Py_ssize_t *box_off = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)(slots + 1));
    Py_ssize_t *next = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)slots);
    Py_ssize_t *sp_at = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)slots);
    Py_ssize_t *pc_at = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)slots);
    Py_ssize_t *pc_n = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)slots);
    Region *reg = PyMem_RawCalloc((size_t)slots, sizeof(Region));
    int rc = -1;
    if (box_off == NULL || next == NULL || sp_at == NULL || pc_at == NULL || pc_n == NULL || reg == NULL) {
        no_memory(e);
        goto done;
    }
    /* the rows of box_text, "[[..],[..],...]": row j is box_off[j] .. box_off[j + 1] - 2 (its ']') */
    Py_ssize_t pos = 1;
    for (Py_ssize_t j = 0; j < n; j++) {
        const char *close = pos < J->btn && J->bt[pos] == '[' ? memchr(J->bt + pos, ']', (size_t)(J->btn - pos)) : NULL;
        if (close == NULL)
            break;
        box_off[j] = pos;
        pos = (close - J->bt) + 2; /* past "]," */
    }
    if (n && pos != J->btn) {
        fail(e, PyExc_ValueError, "box_text does not hold one row per box");
        goto done;
    }
    box_off[n] = pos;

    for (Py_ssize_t k = 0; k < J->nb; k++) {
        if (!J->kept[k])
            continue;
        Py_ssize_t j0 = (Py_ssize_t)J->starts[k], j1 = (Py_ssize_t)J->starts[k + 1], nreg = 0;
        if (j0 < 0 || j1 < j0 || j1 > n) {
            fail(e, PyExc_ValueError, "starts out of range");
            goto done;
        }
        const Image *im = &J->images[k];
        if (text_set(&text, im, e) < 0)
            goto done;
        keys.n = 0;
        ar.n = 0;
        for (Py_ssize_t j = j0; j < j1; j++) {
            int64_t a = J->use[j];
            if (a < 0 || a >= J->n_ann || J->span_start[a] < 0 || J->span_start[a + 1] < J->span_start[a] ||
                J->span_start[a + 1] > J->n_sp) {
                fail(e, PyExc_ValueError, "annotation %lld: index or span offsets out of range", (long long)a);
                goto done;
            }
            Py_ssize_t cnt = (Py_ssize_t)(J->span_start[a + 1] - J->span_start[a]);
            if (i64_reserve(&ar, 4 * cnt) < 0) {
                no_memory(e);
                goto done;
            }
            /* upstream: spans sorted by start; a span that starts one character after the previous
             * one ends, at a space, extends the previous piece ("red" + " " + "shirt") */
            sp_at[j] = ar.n;
            memcpy(ar.p + ar.n, J->spans + 2 * J->span_start[a], sizeof(int64_t) * 2 * (size_t)cnt);
            sort_by_start(ar.p + ar.n, cnt);
            const int64_t *s = ar.p + ar.n;
            ar.n += 2 * cnt;
            pc_at[j] = ar.n;
            int64_t pre_end = -10;
            for (Py_ssize_t q = 0; q < cnt; q++) {
                int64_t start = s[2 * q], end = s[2 * q + 1];
                if (start < 0 || end < start || end > im->cap_chars) {
                    fail(e, PyExc_ValueError, "span [%lld, %lld] outside a caption of %zd characters",
                         (long long)start, (long long)end, im->cap_chars);
                    goto done;
                }
                if (pre_end + 1 == start && start >= 1 && im->cap[byte_at(&text, start - 1)] == ' ')
                    ar.p[ar.n - 1] = end; /* the piece is caption[its first start:this end] */
                else {
                    ar.p[ar.n++] = start;
                    ar.p[ar.n++] = end;
                }
                pre_end = end;
            }
            pc_n[j] = (ar.n - pc_at[j]) / 2;
            /* the region key: the pieces joined by one space */
            size_t key_off = keys.n;
            for (Py_ssize_t m = 0; m < pc_n[j]; m++) {
                Py_ssize_t b = byte_at(&text, ar.p[pc_at[j] + 2 * m]), z = byte_at(&text, ar.p[pc_at[j] + 2 * m + 1]);
                if ((m && PUT_LIT(&keys, " ") < 0) || put(&keys, im->cap + b, (size_t)(z - b)) < 0)
                    goto done;
            }
            size_t key_len = keys.n - key_off;
            Py_ssize_t r = 0;
            while (r < nreg &&
                   !(reg[r].key_len == key_len && memcmp(keys.p + reg[r].key_off, keys.p + key_off, key_len) == 0))
                r++;
            next[j] = -1;
            if (r == nreg) {
                Region *g = &reg[nreg++];
                g->key_off = key_off;
                g->key_len = key_len;
                g->first = g->last = j;
                g->own = NULL;
                g->nsp = cnt;
                g->own_cap = 0;
                continue;
            }
            keys.n = key_off; /* the same phrase: a later mention of region r */
            next[reg[r].last] = j;
            reg[r].last = j;
            Py_ssize_t added = merge_spans(&reg[r], ar.p + sp_at[reg[r].first], ar.p + sp_at[j], cnt, e);
            if (added < 0)
                goto done;
            J->n_spans_kept += added;
        }

        Buf *o = &J->out;
        if (PUT_LIT(o, "{\"filename\":") < 0 || put_str(o, im->fn, (size_t)im->fn_len) < 0 ||
            PUT_LIT(o, ",\"height\":") < 0 || put_int(o, im->h) < 0 || PUT_LIT(o, ",\"width\":") < 0 ||
            put_int(o, im->w) < 0 || PUT_LIT(o, ",\"grounding\":{\"caption\":") < 0 ||
            put_str(o, im->cap, (size_t)im->cap_len) < 0 || PUT_LIT(o, ",\"regions\":[") < 0)
            goto done;
        for (Py_ssize_t r = 0; r < nreg; r++) {
            Region *g = &reg[r];
            Py_ssize_t f = g->first;
            int many = f != g->last;
            if ((r && PUT_LIT(o, ",") < 0) || PUT_LIT(o, "{\"bbox\":") < 0 || (many && PUT_LIT(o, "[") < 0))
                goto done;
            for (Py_ssize_t j = f; j >= 0; j = next[j])
                if ((j != f && PUT_LIT(o, ",") < 0) ||
                    put(o, J->bt + box_off[j], (size_t)(box_off[j + 1] - 1 - box_off[j])) < 0)
                    goto done;
            if ((many && PUT_LIT(o, "]") < 0) || PUT_LIT(o, ",\"phrase\":") < 0 ||
                put_phrase(o, &text, ar.p + pc_at[f], pc_n[f]) < 0 || PUT_LIT(o, ",\"tokens_positive\":") < 0 ||
                put_spans(o, g->own ? g->own : ar.p + sp_at[f], g->nsp) < 0 || PUT_LIT(o, "}") < 0)
                goto done;
            PyMem_RawFree(g->own);
            g->own = NULL;
        }
        if (PUT_LIT(o, "]}}\n") < 0)
            goto done;
        J->n_regions += nreg;
        J->n_records++;
    }
    rc = 0;

done:
    for (Py_ssize_t r = 0; reg != NULL && r < slots; r++)
        PyMem_RawFree(reg[r].own);
    PyMem_RawFree(reg);
    PyMem_RawFree(box_off);
    PyMem_RawFree(next);
    PyMem_RawFree(sp_at);
    PyMem_RawFree(pc_at);
    PyMem_RawFree(pc_n);
    PyMem_RawFree(keys.p);
    PyMem_RawFree(ar.p);
    PyMem_RawFree(text.off);
    return rc;
}

/* The UTF-8 of a str (cached on the object by CPython). */
static const char *utf8(PyObject *s, Py_ssize_t *len, const char *what)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "%s must be str", what);
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(s, len);
}

PyDoc_STRVAR(format_block_doc,
"format_block(captions, file_names, heights, widths, b0, kept, starts, box_text, use, span_start, spans)\n"
"    -> (bytes, records, regions, spans_kept)\n\n"
"The JSON Lines of images b0 + k (k < len(kept), kept[k] true), as goldg._records + orjson write\n"
"them. Image b0 + k has the block's boxes starts[k] .. starts[k + 1] - 1; box j is annotation\n"
"use[j], whose text is row j of box_text (orjson of the block's (n, 4) box array) and whose\n"
"spans are spans[span_start[a] .. span_start[a + 1] - 1] ((start, end) pairs, file order).\n"
"Arrays are C-contiguous int64 (kept: bool). The GIL is released while formatting.");

static PyObject *format_block(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *captions, *file_names, *heights, *widths, *o_kept, *o_starts, *o_use, *o_span_start, *o_spans;
    Py_ssize_t b0;
    Py_buffer box_text;
    if (!PyArg_ParseTuple(args, "O!O!O!O!nOOy*OOO", &PyList_Type, &captions, &PyList_Type, &file_names,
                          &PyList_Type, &heights, &PyList_Type, &widths, &b0, &o_kept, &o_starts, &box_text,
                          &o_use, &o_span_start, &o_spans))
        return NULL;
    View kept = {0}, starts = {0}, use = {0}, span_start = {0}, spans = {0};
    Job J = {0};
    J.out.e = &J.err;
    Image *images = NULL;
    PyObject *result = NULL;

    if (view_get(&kept, o_kept, 1, 0, 0, "kept") < 0)
        goto done;
    J.nb = kept.v.len;
    if (b0 < 0 || b0 + J.nb > PyList_GET_SIZE(captions) || b0 + J.nb > PyList_GET_SIZE(file_names) ||
        b0 + J.nb > PyList_GET_SIZE(heights) || b0 + J.nb > PyList_GET_SIZE(widths)) {
        PyErr_SetString(PyExc_IndexError, "block outside the image lists");
        goto done;
    }
    if (view_get(&starts, o_starts, 8, J.nb + 1, 0, "starts") < 0)
        goto done;
    J.starts = starts.v.buf;
    J.n = (Py_ssize_t)J.starts[J.nb];
    if (view_get(&use, o_use, 8, J.n, 0, "use") < 0 || view_get(&span_start, o_span_start, 8, 1, 0, "span_start") < 0 ||
        view_get(&spans, o_spans, 8, 0, 0, "spans") < 0)
        goto done;
    J.kept = kept.v.buf;
    J.use = use.v.buf;
    J.span_start = span_start.v.buf;
    J.spans = spans.v.buf;
    J.n_ann = span_start.v.len / 8 - 1;
    J.n_sp = spans.v.len / 16;
    J.bt = box_text.buf;
    J.btn = box_text.len;
    images = PyMem_RawCalloc((size_t)(J.nb ? J.nb : 1), sizeof(Image));
    if (images == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < J.nb; k++) {
        if (!J.kept[k])
            continue;
        Image *im = &images[k];
        PyObject *cap = PyList_GET_ITEM(captions, b0 + k);
        if ((im->cap = utf8(cap, &im->cap_len, "captions")) == NULL ||
            (im->fn = utf8(PyList_GET_ITEM(file_names, b0 + k), &im->fn_len, "file names")) == NULL)
            goto done;
        im->cap_chars = PyUnicode_GET_LENGTH(cap);
        im->h = PyLong_AsLongLong(PyList_GET_ITEM(heights, b0 + k));
        im->w = PyLong_AsLongLong(PyList_GET_ITEM(widths, b0 + k));
        if (PyErr_Occurred())
            goto done;
    }
    J.images = images;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = format_images(&J);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_SetString(J.err.type ? J.err.type : PyExc_MemoryError, J.err.type ? J.err.msg : "out of memory");
        goto done;
    }
    result = Py_BuildValue("y#nnn", J.out.p ? J.out.p : "", (Py_ssize_t)J.out.n, J.n_records, J.n_regions,
                           J.n_spans_kept);

done:
    PyMem_RawFree(images);
    PyMem_RawFree(J.out.p);
    view_release(&kept);
    view_release(&starts);
    view_release(&use);
    view_release(&span_start);
    view_release(&spans);
    PyBuffer_Release(&box_text);
    return result;
}

/* ---- ann_columns ---- */

PyDoc_STRVAR(ann_columns_doc,
"ann_columns(items, cls, image_id, xywh, positive_area, crowd, counts) -> bytes\n\n"
"goldg._ann_columns for a list of `cls` (MdetrAnn) structs: fills the preallocated int64 image_id,\n"
"float64 xywh (4 per item), bool positive_area (area > 0) and crowd (iscrowd != 0) and int64\n"
"counts (spans per item), and returns the (start, end) pairs of all items as int64 bytes.");

enum { F_IMAGE_ID, F_BBOX, F_AREA, F_ISCROWD, F_TOKENS, N_FIELDS };
static const char *const FIELDS[N_FIELDS] = {"image_id", "bbox", "area", "iscrowd", "tokens_positive"};

/* The byte offsets of cls's fields: msgspec Struct fields are member slots, read here directly
 * (a generic getattr per field would cost as much as the rest of the loop). */
static int field_offsets(PyObject *cls, Py_ssize_t *off)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a type");
        return -1;
    }
    for (int f = 0; f < N_FIELDS; f++) {
        PyObject *d = PyObject_GetAttrString(cls, FIELDS[f]);
        if (d == NULL)
            return -1;
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
        if (ok)
            off[f] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%s is not an object slot of the struct", FIELDS[f]);
            return -1;
        }
    }
    return 0;
}

static PyObject *ann_columns(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *items, *cls, *o_img, *o_xywh, *o_pos, *o_crowd, *o_counts;
    if (!PyArg_ParseTuple(args, "O!OOOOOO", &PyList_Type, &items, &cls, &o_img, &o_xywh, &o_pos, &o_crowd, &o_counts))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items), off[N_FIELDS];
    View img = {0}, xywh = {0}, pos = {0}, crowd = {0}, counts = {0};
    I64 sp = {0};
    PyObject *result = NULL;
    if (field_offsets(cls, off) < 0 || view_get(&img, o_img, 8, n, 1, "image_id") < 0 ||
        view_get(&xywh, o_xywh, 8, 4 * n, 1, "xywh") < 0 || view_get(&pos, o_pos, 1, n, 1, "positive_area") < 0 ||
        view_get(&crowd, o_crowd, 1, n, 1, "crowd") < 0 || view_get(&counts, o_counts, 8, n, 1, "counts") < 0)
        goto done;
    int64_t *img_p = img.v.buf, *cnt_p = counts.v.buf;
    double *box_p = xywh.v.buf;
    char *pos_p = pos.v.buf, *crowd_p = crowd.v.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyList_GET_ITEM(items, i), *v[N_FIELDS];
        if (!Py_IS_TYPE(it, (PyTypeObject *)cls)) {
            PyErr_SetString(PyExc_TypeError, "items must all be of type cls");
            goto done;
        }
        for (int f = 0; f < N_FIELDS; f++)
            if ((v[f] = *(PyObject **)((char *)it + off[f])) == NULL) {
                PyErr_Format(PyExc_AttributeError, "%s is not set", FIELDS[f]);
                goto done;
            }
        img_p[i] = PyLong_AsLongLong(v[F_IMAGE_ID]);
        pos_p[i] = PyFloat_AsDouble(v[F_AREA]) > 0;
        crowd_p[i] = PyLong_AsLongLong(v[F_ISCROWD]) != 0;
        PyObject *bbox = v[F_BBOX], *toks = v[F_TOKENS];
        if (!PyTuple_Check(bbox) || PyTuple_GET_SIZE(bbox) != 4 || !PyList_Check(toks)) {
            PyErr_SetString(PyExc_TypeError, "bbox must be a 4-tuple and tokens_positive a list");
            goto done;
        }
        for (int c = 0; c < 4; c++)
            box_p[4 * i + c] = PyFloat_AsDouble(PyTuple_GET_ITEM(bbox, c));
        Py_ssize_t m = PyList_GET_SIZE(toks);
        cnt_p[i] = m;
        if (i64_reserve(&sp, 2 * m) < 0) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t q = 0; q < m; q++) {
            PyObject *pair = PyList_GET_ITEM(toks, q);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                PyErr_SetString(PyExc_TypeError, "tokens_positive must hold (start, end) pairs");
                goto done;
            }
            sp.p[sp.n++] = PyLong_AsLongLong(PyTuple_GET_ITEM(pair, 0));
            sp.p[sp.n++] = PyLong_AsLongLong(PyTuple_GET_ITEM(pair, 1));
        }
        if (PyErr_Occurred())
            goto done;
    }
    result = PyBytes_FromStringAndSize(sp.p ? (const char *)sp.p : "", (Py_ssize_t)(sizeof(int64_t) * (size_t)sp.n));

done:
    PyMem_RawFree(sp.p);
    view_release(&img);
    view_release(&xywh);
    view_release(&pos);
    view_release(&crowd);
    view_release(&counts);
    return result;
}

static PyMethodDef methods[] = {
    {"format_block", format_block, METH_VARARGS, format_block_doc},
    {"ann_columns", ann_columns, METH_VARARGS, ann_columns_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_goldg_format", "goldg2odvg's per-box loops in C (see goldg.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__goldg_format(void) { return PyModule_Create(&module); }
