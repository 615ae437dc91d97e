/* goldg2odvg's reader in C: a MDETR grounding json -> the columns goldg.read_mdetr builds.
 *
 * Why: decoding the file into msgspec Structs (one object per image, annotation, box tuple and
 * span pair) and then copying them into NumPy columns was ~60 % of goldg2odvg's CPU time on a
 * GoldG-scale file; skipping the same bytes costs ~15 % of that. This parser walks the file once
 * (memory-mapped, pages dropped behind it) and writes straight into the columns: the only Python
 * objects it makes are each image's file name and caption.
 *
 * It takes a strict subset of what the msgspec reader takes: well-formed JSON, top-level object
 * with one "images" and one "annotations" array, every element an object with the fields that
 * goldg.MdetrImage / MdetrAnn declare, of the plain types (ints that fit int64, positive sizes as
 * ints or digit strings, a 4-number bbox, [int, int] spans), no key repeated, no escaped key.
 * Anything else -- a malformed element, a size that needs reporting, a lone surrogate, invalid
 * UTF-8 in a caption, a number msgspec would reject -- returns None, and the caller reads the
 * file with the msgspec reader, which reports every problem exactly as before. So on the files
 * this parser accepts both readers give the same columns (tested), and on every other file the
 * output and the messages are the msgspec reader's.
 *
 * Floats: numbers of at most 15 significant digits and a decimal exponent within +-22 are
 * converted exactly (one correctly rounded IEEE operation, Clinger's fast path); the others go
 * through PyOS_string_to_double (CPython's correctly rounded strtod). Both give float(text).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FALLBACK 1 /* not the shape this parser takes: the caller uses the msgspec reader */
#define PYERR (-1) /* a Python exception is set */
#define MAX_DEPTH 512
#define PROGRESS_STEP ((size_t)8 << 20)

/* A growing column, kept in a bytearray that is returned as it is (no copy at the end; big
 * buffers grow by realloc, which moves pages rather than bytes). */
typedef struct {
    char *p;
    size_t n, cap;
    PyObject *ba;
} Arr;

static int arr_grow(Arr *a, size_t extra)
{
    if (a->n + extra <= a->cap)
        return 0;
    size_t cap = a->cap ? a->cap : (size_t)1 << 14;
    while (cap < a->n + extra)
        cap *= 2;
    if (a->ba == NULL) {
        if ((a->ba = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)cap)) == NULL)
            return PYERR;
    } else if (PyByteArray_Resize(a->ba, (Py_ssize_t)cap) < 0) {
        return PYERR;
    }
    a->p = PyByteArray_AS_STRING(a->ba);
    a->cap = cap;
    return 0;
}

static inline int arr_put(Arr *a, const void *x, size_t n)
{
    if (a->n + n > a->cap && arr_grow(a, n) < 0)
        return PYERR;
    memcpy(a->p + a->n, x, n);
    a->n += n;
    return 0;
}

/* The column as a bytearray of its n bytes (a new reference). */
static PyObject *arr_take(Arr *a)
{
    if (a->ba == NULL)
        return PyByteArray_FromStringAndSize("", 0);
    if (PyByteArray_Resize(a->ba, (Py_ssize_t)a->n) < 0)
        return NULL;
    PyObject *ba = a->ba;
    a->ba = NULL;
    a->p = NULL;
    return ba;
}

enum { IMG_ID, HEIGHT, WIDTH, CAP_LEN, ANN_IMG, XYWH, POS, CROWD, COUNTS, SPANS, N_ARR };

typedef struct {
    const unsigned char *base, *p, *end;
    size_t dropped, reported;
    PyObject *on_bytes;
    PyObject *file_names, *captions;
    Arr a[N_ARR];
    Arr scratch;
} P;

/* ---- progress, Ctrl-C, and the pages behind the cursor ---- */

static int progress(P *s, int last)
{
    size_t at = (size_t)(s->p - s->base);
    if (!last && at - s->reported < PROGRESS_STEP)
        return 0;
    if (PyErr_CheckSignals() < 0)
        return PYERR;
    long page = sysconf(_SC_PAGESIZE);
    size_t upto = page > 0 ? at / (size_t)page * (size_t)page : 0;
    if (upto > s->dropped) { /* read-only private file pages: dropping them only lowers the RSS */
        madvise((void *)(s->base + s->dropped), upto - s->dropped, MADV_DONTNEED);
        s->dropped = upto;
    }
    if (s->on_bytes != Py_None && at > s->reported) {
        PyObject *r = PyObject_CallFunction(s->on_bytes, "n", (Py_ssize_t)(at - s->reported));
        if (r == NULL)
            return PYERR;
        Py_DECREF(r);
    }
    s->reported = at;
    return 0;
}

/* ---- lexing ---- */

static inline void ws(P *s)
{
    const unsigned char *q = s->p, *end = s->end;
    while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
        q++;
    s->p = q;
}

static inline int peek(P *s) { return s->p < s->end ? *s->p : -1; }

static inline int expect(P *s, unsigned char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 0;
    }
    return FALLBACK;
}

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline unsigned hex4(const unsigned char *q);

/* The length of the valid UTF-8 sequence at q (strict, as Python decodes: no overlong forms, no
 * surrogates, nothing past U+10FFFF), else 0. */
static inline int utf8_seq(const unsigned char *q, const unsigned char *end)
{
    unsigned char c = q[0];
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return end - q >= 2 && (q[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (end - q < 3 || (q[1] & 0xC0) != 0x80 || (q[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && q[1] < 0xA0) || (c == 0xED && q[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (end - q < 4 || (q[1] & 0xC0) != 0x80 || (q[2] & 0xC0) != 0x80 || (q[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && q[1] < 0x90) || (c == 0xF4 && q[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* After the opening quote: the raw bytes up to the closing one. Escapes are checked (a lone
 * surrogate is refused, as the msgspec reader refuses it, also in a field nobody reads) and so is
 * the UTF-8 (the msgspec reader refuses a file that is not UTF-8 text), but nothing is decoded. */
/* Bytes a string scan must look at: the quote, the backslash, control characters, non-ASCII
 * (filled at import). */
static unsigned char STRING_STOP[256];

static int scan_string(P *s, const unsigned char **start, size_t *len, int *escaped)
{
    const unsigned char *q = s->p, *end = s->end;
    int esc = 0;
    while (q < end) {
        while (end - q >= 4 && !STRING_STOP[q[0]] && !STRING_STOP[q[1]] && !STRING_STOP[q[2]] && !STRING_STOP[q[3]])
            q += 4;
        while (q < end && !STRING_STOP[*q])
            q++;
        if (q >= end)
            break;
        unsigned char c = *q;
        if (c == '"') {
            *start = s->p;
            *len = (size_t)(q - s->p);
            *escaped = esc;
            s->p = q + 1;
            return 0;
        }
        if (c == '\\') {
            esc = 1;
            if (q + 1 >= end)
                return FALLBACK;
            unsigned char d = q[1];
            if (d == 'u') {
                if (end - q < 6)
                    return FALLBACK;
                for (int k = 2; k < 6; k++)
                    if (hexval(q[k]) < 0)
                        return FALLBACK;
                unsigned cp = hex4(q + 2);
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return FALLBACK;
                if (cp >= 0xD800 && cp <= 0xDBFF) { /* must be followed by a low surrogate */
                    if (end - q < 12 || q[6] != '\\' || q[7] != 'u')
                        return FALLBACK;
                    for (int k = 8; k < 12; k++)
                        if (hexval(q[k]) < 0)
                            return FALLBACK;
                    unsigned lo = hex4(q + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return FALLBACK;
                    q += 6;
                }
                q += 6;
                continue;
            }
            if (d == '"' || d == '\\' || d == '/' || d == 'b' || d == 'f' || d == 'n' || d == 'r' || d == 't') {
                q += 2;
                continue;
            }
            return FALLBACK;
        }
        if (c < 0x20) /* raw control character: not JSON */
            return FALLBACK;
        if (c >= 0x80) {
            int n = utf8_seq(q, end);
            if (n == 0)
                return FALLBACK;
            q += n;
            continue;
        }
        q++;
    }
    return FALLBACK;
}

static inline unsigned hex4(const unsigned char *q)
{
    return (unsigned)(hexval(q[0]) << 12 | hexval(q[1]) << 8 | hexval(q[2]) << 4 | hexval(q[3]));
}

/* A scanned string as a str (escapes decoded; invalid UTF-8 or a lone surrogate: FALLBACK). */
static int make_str(P *s, const unsigned char *a, size_t n, int escaped, PyObject **out)
{
    const char *text = (const char *)a;
    size_t len = n;
    if (escaped) {
        s->scratch.n = 0;
        if (arr_grow(&s->scratch, n + 4) < 0)
            return PYERR;
        unsigned char *o = (unsigned char *)s->scratch.p;
        const unsigned char *q = a, *end = a + n;
        while (q < end) {
            if (*q != '\\') {
                *o++ = *q++;
                continue;
            }
            unsigned char d = q[1];
            q += 2;
            switch (d) {
            case 'b': *o++ = '\b'; continue;
            case 'f': *o++ = '\f'; continue;
            case 'n': *o++ = '\n'; continue;
            case 'r': *o++ = '\r'; continue;
            case 't': *o++ = '\t'; continue;
            case 'u': break;
            default: *o++ = d; continue; /* " \ / */
            }
            unsigned cp = hex4(q);
            q += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return FALLBACK;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - q < 6 || q[0] != '\\' || q[1] != 'u')
                    return FALLBACK;
                unsigned lo = hex4(q + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return FALLBACK;
                q += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) {
                *o++ = (unsigned char)cp;
            } else if (cp < 0x800) {
                *o++ = (unsigned char)(0xC0 | cp >> 6);
                *o++ = (unsigned char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (unsigned char)(0xE0 | cp >> 12);
                *o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                *o++ = (unsigned char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (unsigned char)(0xF0 | cp >> 18);
                *o++ = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
                *o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                *o++ = (unsigned char)(0x80 | (cp & 0x3F));
            }
        }
        text = s->scratch.p;
        len = (size_t)(o - (unsigned char *)s->scratch.p);
    }
    PyObject *str = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, NULL);
    if (str == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            return PYERR;
        PyErr_Clear();
        return FALLBACK;
    }
    *out = str;
    return 0;
}

static inline int is_digit(int c) { return c >= '0' && c <= '9'; }

/* A JSON integer that fits int64 (a fraction or exponent: FALLBACK, msgspec rejects a float for an int). */
static int parse_i64(P *s, int64_t *out)
{
    const unsigned char *q = s->p, *end = s->end;
    int neg = 0;
    if (q < end && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= end || !is_digit(*q))
        return FALLBACK;
    uint64_t v = 0, limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
    if (*q == '0') {
        q++;
    } else {
        while (q < end && is_digit(*q)) {
            uint64_t d = (uint64_t)(*q - '0');
            if (v > (limit - d) / 10)
                return FALLBACK;
            v = v * 10 + d;
            q++;
        }
    }
    if (q < end && (is_digit(*q) || *q == '.' || *q == 'e' || *q == 'E'))
        return FALLBACK;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    s->p = q;
    return 0;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number (int or float) as float(text). */
static int parse_f64(P *s, double *out)
{
    const unsigned char *start = s->p, *q = s->p, *end = s->end;
    int neg = 0;
    if (q < end && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= end || !is_digit(*q))
        return FALLBACK;
    uint64_t m = 0;
    int ndig = 0;  /* significant digits in m */
    int exp10 = 0; /* value = m * 10^exp10 (while ndig <= 15) */
    int exact = 1;
    if (*q == '0') {
        q++;
        if (q < end && is_digit(*q))
            return FALLBACK;
    } else {
        while (q < end && is_digit(*q)) {
            if (ndig < 19)
                m = m * 10 + (uint64_t)(*q - '0');
            else
                exact = 0;
            ndig++;
            q++;
        }
    }
    if (q < end && *q == '.') {
        q++;
        if (q >= end || !is_digit(*q))
            return FALLBACK;
        while (q < end && is_digit(*q)) {
            if (m == 0 && *q == '0') { /* leading zeros of the fraction: not significant */
                exp10--;
            } else {
                if (ndig < 19)
                    m = m * 10 + (uint64_t)(*q - '0');
                else
                    exact = 0;
                ndig++;
                exp10--;
            }
            q++;
        }
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        int eneg = 0;
        if (q < end && (*q == '+' || *q == '-')) {
            eneg = *q == '-';
            q++;
        }
        if (q >= end || !is_digit(*q))
            return FALLBACK;
        int e = 0;
        while (q < end && is_digit(*q)) {
            if (e < 100000)
                e = e * 10 + (*q - '0');
            q++;
        }
        exp10 += eneg ? -e : e;
    }
    s->p = q;
    double d;
    if (exact && ndig <= 15 && exp10 >= -22 && exp10 <= 22) {
        d = (double)m;
        d = exp10 < 0 ? d / POW10[-exp10] : d * POW10[exp10];
    } else {
        char buf[512];
        size_t n = (size_t)(q - start);
        if (n >= sizeof buf)
            return FALLBACK;
        memcpy(buf, start, n);
        buf[n] = 0;
        char *stop = NULL;
        d = PyOS_string_to_double(buf, &stop, NULL);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return FALLBACK;
        }
        if (stop != buf + n || isinf(d))
            return FALLBACK;
        *out = d;
        return 0;
    }
    *out = neg ? -d : d;
    return 0;
}

/* A JSON number passed over (grammar only): is it negative, has it a non-zero digit, an exponent? */
static int scan_number(P *s, int *neg, int *nonzero, int *has_exp)
{
    const unsigned char *q = s->p, *end = s->end;
    int nz = 0;
    *neg = 0;
    if (q < end && *q == '-') {
        *neg = 1;
        q++;
    }
    if (q >= end || !is_digit(*q))
        return FALLBACK;
    if (*q == '0') {
        q++;
        if (q < end && is_digit(*q))
            return FALLBACK;
    } else {
        nz = 1;
        while (q < end && is_digit(*q))
            q++;
    }
    if (q < end && *q == '.') {
        q++;
        if (q >= end || !is_digit(*q))
            return FALLBACK;
        while (q < end && is_digit(*q))
            nz |= *q++ != '0';
    }
    *has_exp = 0;
    if (q < end && (*q == 'e' || *q == 'E')) {
        *has_exp = 1;
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || !is_digit(*q))
            return FALLBACK;
        while (q < end && is_digit(*q))
            q++;
    }
    *nonzero = nz;
    s->p = q;
    return 0;
}

/* area > 0, without converting the number when it has no exponent and is not absurdly long
 * (then its sign and digits decide: a non-zero digit within 300 characters is >= 1e-300). */
static int positive_number(P *s, int *positive)
{
    const unsigned char *start = s->p;
    int neg, nonzero, has_exp, rc;
    if ((rc = scan_number(s, &neg, &nonzero, &has_exp)))
        return rc;
    if (!has_exp && s->p - start < 300) {
        *positive = !neg && nonzero;
        return 0;
    }
    double d;
    s->p = start;
    if ((rc = parse_f64(s, &d)))
        return rc;
    *positive = d > 0;
    return 0;
}

static int skip_value(P *s, int depth);

static int skip_container(P *s, int depth, unsigned char close, int object)
{
    s->p++;
    ws(s);
    if (peek(s) == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        int rc;
        if (object) {
            const unsigned char *k;
            size_t kn;
            int esc;
            if ((rc = expect(s, '"')) || (rc = scan_string(s, &k, &kn, &esc)) || (rc = expect(s, ':')))
                return rc;
            ws(s);
        }
        if ((rc = skip_value(s, depth + 1)))
            return rc;
        ws(s);
        int c = peek(s);
        if (c < 0)
            return FALLBACK;
        s->p++;
        if (c == ',') {
            ws(s);
            continue;
        }
        return c == close ? 0 : FALLBACK;
    }
}

static int literal(P *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return FALLBACK;
    s->p += n;
    return 0;
}

/* Any JSON value, checked and passed over. */
static int skip_value(P *s, int depth)
{
    if (depth > MAX_DEPTH)
        return FALLBACK;
    int c = peek(s);
    const unsigned char *k;
    size_t kn;
    int esc, neg, nonzero, has_exp;
    switch (c) {
    case '"': s->p++; return scan_string(s, &k, &kn, &esc);
    case '{': return skip_container(s, depth, '}', 1);
    case '[': return skip_container(s, depth, ']', 0);
    case 't': return literal(s, "true", 4);
    case 'f': return literal(s, "false", 5);
    case 'n': return literal(s, "null", 4);
    default:
        if (c == '-' || is_digit(c))
            return scan_number(s, &neg, &nonzero, &has_exp);
        return FALLBACK;
    }
}

/* An object's next key (after '{' or ','): its raw bytes; an escaped key: FALLBACK. */
static int key(P *s, const unsigned char **k, size_t *kn)
{
    int rc, esc;
    if ((rc = expect(s, '"')) || (rc = scan_string(s, k, kn, &esc)))
        return rc;
    if (esc)
        return FALLBACK;
    if ((rc = expect(s, ':')))
        return rc;
    ws(s);
    return 0;
}

#define KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* ',' then another member (1), or the closing bracket (0). */
static int next_member(P *s, unsigned char close, int *more)
{
    ws(s);
    int c = peek(s);
    if (c < 0)
        return FALLBACK;
    s->p++;
    if (c == ',') {
        *more = 1;
        return 0;
    }
    *more = 0;
    return c == close ? 0 : FALLBACK;
}

/* A string field to a str. */
static int str_field(P *s, PyObject **out)
{
    const unsigned char *a;
    size_t n;
    int esc, rc;
    if (peek(s) != '"')
        return FALLBACK;
    s->p++;
    if ((rc = scan_string(s, &a, &n, &esc)))
        return rc;
    return make_str(s, a, n, esc, out);
}

/* height / width: a positive int, or a string of ASCII digits with a positive value (Flickr). */
static int size_field(P *s, int64_t *out)
{
    int rc;
    if (peek(s) == '"') {
        const unsigned char *a;
        size_t n;
        int esc;
        s->p++;
        if ((rc = scan_string(s, &a, &n, &esc)))
            return rc;
        if (esc || n == 0 || n > 18)
            return FALLBACK;
        int64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!is_digit(a[i]))
                return FALLBACK;
            v = v * 10 + (a[i] - '0');
        }
        *out = v;
    } else if ((rc = parse_i64(s, out))) {
        return rc;
    }
    return *out > 0 ? 0 : FALLBACK; /* not positive: the msgspec reader reports it */
}

static int image(P *s)
{
    enum { F_ID = 1, F_FN = 2, F_H = 4, F_W = 8, F_CAP = 16, ALL = 31 };
    int seen = 0, rc = 0, more = 1;
    int64_t id = 0, h = 0, w = 0;
    PyObject *fn = NULL, *cap = NULL;
    if ((rc = expect(s, '{')))
        return rc;
    ws(s);
    if (peek(s) == '}')
        return FALLBACK; /* no fields */
    while (more) {
        const unsigned char *k;
        size_t kn;
        int bit = 0;
        if ((rc = key(s, &k, &kn)))
            goto out;
        if (KEY_IS(k, kn, "id")) {
            bit = F_ID;
        } else if (KEY_IS(k, kn, "file_name")) {
            bit = F_FN;
        } else if (KEY_IS(k, kn, "height")) {
            bit = F_H;
        } else if (KEY_IS(k, kn, "width")) {
            bit = F_W;
        } else if (KEY_IS(k, kn, "caption")) {
            bit = F_CAP;
        }
        if (bit & seen) {
            rc = FALLBACK; /* a repeated key: msgspec keeps the last one */
            goto out;
        }
        seen |= bit;
        switch (bit) {
        case F_ID: rc = parse_i64(s, &id); break;
        case F_FN: rc = str_field(s, &fn); break;
        case F_H: rc = size_field(s, &h); break;
        case F_W: rc = size_field(s, &w); break;
        case F_CAP: rc = str_field(s, &cap); break;
        default: rc = skip_value(s, 2);
        }
        if (rc || (rc = next_member(s, '}', &more)))
            goto out;
    }
    if (seen != ALL) {
        rc = FALLBACK;
        goto out;
    }
    int64_t cap_len = (int64_t)PyUnicode_GET_LENGTH(cap);
    if (PyList_Append(s->file_names, fn) < 0 || PyList_Append(s->captions, cap) < 0) {
        rc = PYERR;
        goto out;
    }
    if (arr_put(&s->a[IMG_ID], &id, 8) || arr_put(&s->a[HEIGHT], &h, 8) || arr_put(&s->a[WIDTH], &w, 8) ||
        arr_put(&s->a[CAP_LEN], &cap_len, 8))
        rc = PYERR;
out:
    Py_XDECREF(fn);
    Py_XDECREF(cap);
    return rc;
}

static int annotation(P *s)
{
    enum { F_IMG = 1, F_BBOX = 2, F_AREA = 4, F_CROWD = 8, F_TOK = 16, ALL = 31 };
    int seen = 0, rc = 0, more = 1;
    int64_t img = 0, crowd = 0, count = 0;
    double box[4];
    int positive = 0;
    if ((rc = expect(s, '{')))
        return rc;
    ws(s);
    if (peek(s) == '}')
        return FALLBACK;
    while (more) {
        const unsigned char *k;
        size_t kn;
        int bit = 0;
        if ((rc = key(s, &k, &kn)))
            return rc;
        if (KEY_IS(k, kn, "image_id")) {
            bit = F_IMG;
        } else if (KEY_IS(k, kn, "bbox")) {
            bit = F_BBOX;
        } else if (KEY_IS(k, kn, "area")) {
            bit = F_AREA;
        } else if (KEY_IS(k, kn, "iscrowd")) {
            bit = F_CROWD;
        } else if (KEY_IS(k, kn, "tokens_positive")) {
            bit = F_TOK;
        }
        if (bit & seen)
            return FALLBACK;
        seen |= bit;
        switch (bit) {
        case F_IMG: rc = parse_i64(s, &img); break;
        case F_AREA: rc = positive_number(s, &positive); break;
        case F_CROWD: rc = parse_i64(s, &crowd); break;
        case F_BBOX:
            if ((rc = expect(s, '[')))
                return rc;
            for (int c = 0; c < 4 && !rc; c++) {
                ws(s);
                if (!(rc = parse_f64(s, &box[c])))
                    rc = expect(s, c < 3 ? ',' : ']');
            }
            break;
        case F_TOK:
            if ((rc = expect(s, '[')))
                return rc;
            ws(s);
            if (peek(s) == ']') {
                s->p++;
                break;
            }
            for (int more_spans = 1; more_spans && !rc;) {
                int64_t pair[2];
                if ((rc = expect(s, '[')))
                    return rc;
                ws(s);
                if ((rc = parse_i64(s, &pair[0])) || (rc = expect(s, ',')))
                    return rc;
                ws(s);
                if ((rc = parse_i64(s, &pair[1])) || (rc = expect(s, ']')))
                    return rc;
                if (arr_put(&s->a[SPANS], pair, 16))
                    return PYERR;
                count++;
                rc = next_member(s, ']', &more_spans);
            }
            break;
        default: rc = skip_value(s, 2);
        }
        if (rc || (rc = next_member(s, '}', &more)))
            return rc;
    }
    if (seen != ALL)
        return FALLBACK;
    unsigned char pos = (unsigned char)positive, cr = crowd != 0;
    if (arr_put(&s->a[ANN_IMG], &img, 8) || arr_put(&s->a[XYWH], box, 32) || arr_put(&s->a[POS], &pos, 1) ||
        arr_put(&s->a[CROWD], &cr, 1) || arr_put(&s->a[COUNTS], &count, 8))
        return PYERR;
    return 0;
}

static int array_of(P *s, int (*element)(P *))
{
    int rc, more = 1;
    if ((rc = expect(s, '[')))
        return rc;
    ws(s);
    if (peek(s) == ']') {
        s->p++;
        return 0;
    }
    while (more) {
        if ((rc = element(s)) || (rc = next_member(s, ']', &more)) || (rc = progress(s, 0)))
            return rc;
    }
    return 0;
}

static int document(P *s)
{
    int rc, more = 1, seen = 0;
    if ((rc = expect(s, '{')))
        return rc;
    ws(s);
    if (peek(s) == '}')
        return FALLBACK;
    while (more) {
        const unsigned char *k;
        size_t kn;
        if ((rc = key(s, &k, &kn)))
            return rc;
        int bit = KEY_IS(k, kn, "images") ? 1 : KEY_IS(k, kn, "annotations") ? 2 : 0;
        if (bit & seen)
            return FALLBACK;
        seen |= bit;
        rc = bit == 1 ? array_of(s, image) : bit == 2 ? array_of(s, annotation) : skip_value(s, 1);
        if (rc || (rc = next_member(s, '}', &more)))
            return rc;
    }
    ws(s);
    if (s->p != s->end || seen != 3)
        return FALLBACK;
    return progress(s, 1);
}

PyDoc_STRVAR(parse_doc,
             "parse(path: bytes, on_bytes) -> tuple | None\n\n"
             "A MDETR grounding json as columns: (image ids, file names, heights, widths, captions, caption\n"
             "lengths, annotation image ids, xywh, area > 0, iscrowd != 0, spans per annotation, spans) --\n"
             "lists of str and bytearrays of int64 / float64 / bool -- or None when the file is not of the\n"
             "plain shape this parser takes (the caller then uses the msgspec reader). on_bytes(n) is called\n"
             "as the parse advances (None: not called).");

static PyObject *parse(PyObject *Py_UNUSED(self), PyObject *args)
{
    const char *path;
    PyObject *on_bytes;
    if (!PyArg_ParseTuple(args, "yO:parse", &path, &on_bytes))
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        Py_RETURN_NONE; /* the msgspec reader says why, as it always did */
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        close(fd);
        Py_RETURN_NONE;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        Py_RETURN_NONE;
    madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);

    P s;
    memset(&s, 0, sizeof s);
    s.base = s.p = map;
    s.end = s.base + st.st_size;
    s.on_bytes = on_bytes;
    s.file_names = PyList_New(0);
    s.captions = PyList_New(0);
    PyObject *result = NULL;
    int rc = s.file_names && s.captions ? document(&s) : PYERR;
    if (rc == 0) {
        result = PyTuple_New(12);
        static const int order[12] = {IMG_ID, -1, HEIGHT, WIDTH, -2, CAP_LEN, ANN_IMG, XYWH, POS, CROWD, COUNTS, SPANS};
        for (int k = 0; result && k < 12; k++) {
            PyObject *o;
            if (order[k] == -1) {
                o = s.file_names;
                Py_INCREF(o);
            } else if (order[k] == -2) {
                o = s.captions;
                Py_INCREF(o);
            } else {
                o = arr_take(&s.a[order[k]]);
            }
            if (o == NULL)
                Py_CLEAR(result);
            else
                PyTuple_SET_ITEM(result, k, o);
        }
    } else if (rc == FALLBACK) {
        result = Py_None;
        Py_INCREF(result);
    }
    for (int k = 0; k < N_ARR; k++)
        Py_XDECREF(s.a[k].ba);
    Py_XDECREF(s.scratch.ba);
    Py_XDECREF(s.file_names);
    Py_XDECREF(s.captions);
    munmap(map, (size_t)st.st_size);
    return result;
}

PyDoc_STRVAR(group_doc,
             "group(keys, n_groups) -> bytearray\n\n"
             "The stable order that groups ``keys`` (int64, each in 0 .. n_groups - 1) by key: a counting\n"
             "sort, O(n), where NumPy's stable argsort of int64 is a merge sort. int64 indices.");

static PyObject *group(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer v;
    Py_ssize_t n_groups;
    if (!PyArg_ParseTuple(args, "y*n:group", &v, &n_groups))
        return NULL;
    PyObject *out = NULL;
    int64_t *start = NULL;
    Py_ssize_t n = v.len / 8;
    const int64_t *key = v.buf;
    if (v.len % 8 || n_groups < 0) {
        PyErr_SetString(PyExc_ValueError, "group: keys must be int64, n_groups >= 0");
        goto done;
    }
    start = PyMem_RawCalloc((size_t)n_groups + 1, sizeof(int64_t));
    out = PyByteArray_FromStringAndSize(NULL, n * 8);
    if (start == NULL || out == NULL) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (key[i] < 0 || key[i] >= n_groups) {
            Py_CLEAR(out);
            PyErr_SetString(PyExc_ValueError, "group: a key outside 0 .. n_groups - 1");
            goto done;
        }
        start[key[i] + 1]++;
    }
    for (Py_ssize_t g = 0; g < n_groups; g++)
        start[g + 1] += start[g];
    int64_t *order = (int64_t *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++)
        order[start[key[i]]++] = i;
done:
    PyMem_RawFree(start);
    PyBuffer_Release(&v);
    return out;
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS, parse_doc},
    {"group", group, METH_VARARGS, group_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_goldg_parse", "goldg2odvg's MDETR json reader in C (see goldg.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__goldg_parse(void)
{
    for (int c = 0; c < 256; c++)
        STRING_STOP[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
    return PyModule_Create(&module);
}
