/* The checker's native core: the pass of rift_checker._analyzer (its loop and its
 * fast path) in C.
 *
 * Theory of operation. The pass (rift_checker._analyzer.analyze) hands each batch of
 * decoded lines to run(), which takes events from a given index for as long as it
 * can take each exactly as _Pass.events would, and returns the index of the first
 * one it cannot; _Pass.events takes that one, and run() goes on after it. run()
 * takes every event of a line the typed decoder shaped (a ModelLine) whose
 * envelope and pairing are right:
 *
 *   - an invoke, which it opens;
 *   - an ok send, or an ok poll or final read, of a client, whose values the typed
 *     decoder shaped and that pass the same tests as in _Pass.events: it folds it
 *     in itself (the fast path);
 *   - any other completion, which it pairs with its invoke and hands to the
 *     general path (_fold.fold), and an observation, which it hands to _fold.observe.
 *
 * It stops at a line the typed decoder refused, at any envelope or pairing error
 * (Python words every error) and at a position beyond 64 bits. It tests all the
 * fast path needs before it changes anything, so an op that turns out not to be
 * the fast path's goes to _fold.fold untouched. What it folds in, it folds into the
 * same Python state (rift_checker._state.LogState) as _fold.acked and fold_read do,
 * the rare branches (a conflict, a case to report) through the same Python
 * helpers; the tests run histories through both and compare
 * (tests/unit/test_decoding.py, tests/unit/test_anomalies.py).
 *
 * It reads the fields of the msgspec structs by their slot offsets, found once from
 * the classes' member descriptors, and only on objects of exactly those classes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* Bound once by setup(). */
static PyTypeObject *ModelLine_T, *Value_T;
static PyObject *UNSET, *grow_fn, *send_went_back_fn, *poll_went_back_fn, *fold_fn, *observe_fn;
static PyObject *s_invoke, *s_ok, *s_info, *s_observe, *s_nemesis, *s_send, *s_poll,
    *s_final_read;
static PyObject *a_path, *a_native, *a_expected, *a_last_time, *a_last_done, *a_open_ops, *a_retired, *a_state,
    *a_stats, *a_latency, *a_op, *a_tp_id, *a_tp_of, *a_place, *a_frombytes;
static PyObject *a_sent, *a_tp_pairs, *a_acked, *a_reach_top, *a_reach_done, *a_suspects,
    *a_val_at, *a_where, *a_last_send, *a_positions, *a_read, *a_tps, *a_final_tps,
    *a_max_read, *a_touch, *a_gaps, *a_done_at;
static Py_ssize_t L_index, L_time, L_type, L_process, L_f, L_value, L_error;
static Py_ssize_t V_topic, V_partition, V_offset, V_value, V_records, V_assigned, V_log_start;
static int bound;

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

static int
member_offset(PyTypeObject *type, const char *name, Py_ssize_t *out)
{
    PyObject *d = PyObject_GetAttrString((PyObject *)type, name);
    if (d == NULL)
        return -1;
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) &&
             (((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX ||
              ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT);
    if (ok)
        *out = ((PyMemberDescrObject *)d)->d_member->offset;
    Py_DECREF(d);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
        return -1;
    }
    return 0;
}

/* An exact int that fits 64 bits, into *out; 0 if it is no such int (no error set). */
static inline int
as_i64(PyObject *o, long long *out)
{
    if (o == NULL || !PyLong_CheckExact(o))
        return 0;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow)
        return 0;
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = v;
    return 1;
}

/* Compare a with the int b (any size): -1, 0 or 1; -2 with an error set. */
static int
cmp_int(long long a, PyObject *b)
{
    if (!PyLong_Check(b)) {
        PyErr_SetString(PyExc_TypeError, "the checker's state holds a non-integer offset");
        return -2;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(b, &overflow);
    if (overflow)
        return overflow > 0 ? -1 : 1;
    if (x == -1 && PyErr_Occurred())
        return -2;
    return (a > x) - (a < x);
}

/* Equal strings, as == says (the decoder's Literal strings are the same objects). */
static inline int
same_str(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (!PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b))
        return 0;
    if (PyUnicode_CHECK_INTERNED(a) && PyUnicode_CHECK_INTERNED(b))
        return 0; /* two interned strings are equal only if they are one */
    return PyUnicode_Compare(a, b) == 0;
}

/* Latencies gathered in C, appended to the stats' array when run() returns. */
typedef struct {
    long long *v;
    Py_ssize_t n, cap;
} lat_buf;

static int
lat_push(lat_buf *b, long long x)
{
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap ? 2 * b->cap : 256;
        long long *v = PyMem_Realloc(b->v, cap * sizeof(long long));
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return 0;
}

static int
lat_flush(lat_buf *b, PyObject *array)
{
    int rc = 0;
    if (b->n && array != NULL) {
        PyObject *bytes = PyBytes_FromStringAndSize((char *)b->v, b->n * sizeof(long long));
        PyObject *r = bytes ? PyObject_CallMethodOneArg(array, a_frombytes, bytes) : NULL;
        Py_XDECREF(bytes);
        if (r == NULL)
            rc = -1;
        Py_XDECREF(r);
    }
    PyMem_Free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
    return rc;
}

/* What run() works on: the pass's state, looked up once per pass (load_ctx). */
typedef struct {
    PyObject *state, *stats, *open_ops, *retired, *latency, *path;
    PyObject *sent, *tp_pairs, *acked, *reach_top, *reach_done, *suspects, *val_at, *where,
        *last_send, *positions, *read, *tps, *final_tps, *max_read, *touch, *gaps, *done_at;
    PyObject *lat_send_arr, *lat_poll_arr; /* the stats' arrays, if they exist yet */
    lat_buf lat_send, lat_poll;
    PyObject *owned[32]; /* new references, released with the pass's capsule */
    int n_owned;
} ctx;

static PyObject *
ctx_get(ctx *c, PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v != NULL)
        c->owned[c->n_owned++] = v;
    return v;
}

/* An item of one of the state's per-partition lists. */
static inline PyObject *
per_tp(PyObject *list, Py_ssize_t tp)
{
    if (!PyList_Check(list) || tp < 0 || tp >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_IndexError, "the checker's per-partition state is short");
        return NULL;
    }
    return PyList_GET_ITEM(list, tp);
}

/* reach_top[tp] and reach_done[tp], each a list. */
static int
reach_lists(ctx *c, Py_ssize_t tp, PyObject **tops, PyObject **dones)
{
    *tops = per_tp(c->reach_top, tp);
    *dones = per_tp(c->reach_done, tp);
    if (*tops == NULL || *dones == NULL)
        return -1;
    if (!PyList_Check(*tops) || !PyList_Check(*dones)) {
        PyErr_SetString(PyExc_TypeError, "the reach lists of a partition are not lists");
        return -1;
    }
    return 0;
}

static int
list_append_new(PyObject *list, PyObject *item)
{
    if (item == NULL)
        return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

static int
set_done_at(ctx *c, long long op, long long done_index, PyObject *op_obj)
{
    if (op >= PyObject_Length(c->done_at)) {
        PyObject *r = PyObject_CallFunctionObjArgs(grow_fn, c->state, op_obj, NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(c->done_at, &view, PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return -1;
    int rc = 0;
    if (view.itemsize != 8 || op >= view.len / 8) {
        PyErr_SetString(PyExc_RuntimeError, "done_at is not a big enough array of 'q'");
        rc = -1;
    } else {
        ((long long *)view.buf)[op] = done_index;
    }
    PyBuffer_Release(&view);
    return rc;
}

/* Count an ok op of f (send or poll) with its latency, as _Pass.events does: through
   Stats.op while the stats have no array for f yet, else into that array. */
static int
count_ok(ctx *c, PyObject *f, PyObject *inv, PyObject *e, lat_buf *buf, PyObject **arr,
         long long latency)
{
    if (*arr != NULL)
        return lat_push(buf, latency);
    PyObject *r = PyObject_CallMethodObjArgs(c->stats, a_op, f, s_ok, SLOT(inv, L_time),
                                             SLOT(e, L_time), NULL);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    *arr = PyDict_GetItemWithError(c->latency, f);
    return *arr == NULL && PyErr_Occurred() ? -1 : 0;
}

/* rift_checker._fold.acked: op of process p wrote v, acked at offset of tp. */
static int
acked(ctx *c, PyObject *p, Py_ssize_t tp, PyObject *tp_obj, long long offset,
      PyObject *offset_obj, PyObject *v, long long op, PyObject *op_obj, PyObject *done_obj)
{
    PyObject *pair = PyTuple_Pack(2, tp_obj, offset_obj);
    if (pair == NULL || PyDict_SetItem(c->acked, v, pair) < 0) {
        Py_XDECREF(pair);
        return -1;
    }
    Py_DECREF(pair);
    PyObject *tops, *dones;
    if (reach_lists(c, tp, &tops, &dones) < 0)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(tops);
    int c_last = n ? cmp_int(offset, PyList_GET_ITEM(tops, n - 1)) : 1;
    if (c_last == -2)
        return -1;
    if (c_last <= 0) {
        /* Offset `offset` or a later one had been shown already: had it been by the
           time this write was invoked? (bisect_left of op in reach_done) */
        Py_ssize_t lo = 0, hi = PyList_GET_SIZE(dones);
        while (lo < hi) {
            Py_ssize_t mid = (lo + hi) / 2;
            int k = cmp_int(op, PyList_GET_ITEM(dones, mid));
            if (k == -2)
                return -1;
            if (k > 0) /* dones[mid] < op */
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo) {
            if (lo - 1 >= n) {
                PyErr_SetString(PyExc_IndexError, "reach lists differ in length");
                return -1;
            }
            int k = cmp_int(offset, PyList_GET_ITEM(tops, lo - 1));
            if (k == -2)
                return -1;
            if (k <= 0 && PySet_Add(c->suspects, tp_obj) < 0)
                return -1;
        }
    } else {
        if (PyList_Append(tops, offset_obj) < 0 || PyList_Append(dones, done_obj) < 0)
            return -1;
    }
    PyObject *vat = per_tp(c->val_at, tp);
    if (vat == NULL)
        return -1;
    int has = PyDict_Contains(vat, offset_obj);
    int seen = has ? 0 : PyDict_Contains(c->where, v);
    if (has < 0 || seen < 0)
        return -1;
    if (!has && !seen) {
        if (PyDict_SetItem(vat, offset_obj, v) < 0)
            return -1;
    } else {
        PyObject *r = PyObject_CallMethodObjArgs(c->state, a_place, tp_obj, offset_obj, v,
                                                 op_obj, NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    PyObject *sends = per_tp(c->last_send, tp);
    if (sends == NULL)
        return -1;
    PyObject *last = PyDict_GetItemWithError(sends, p);
    if (last == NULL && PyErr_Occurred())
        return -1;
    if (last != NULL) {
        if (!PyTuple_Check(last) || PyTuple_GET_SIZE(last) != 2) {
            PyErr_SetString(PyExc_TypeError, "last_send holds a non-pair");
            return -1;
        }
        int k = cmp_int(offset, PyTuple_GET_ITEM(last, 0));
        if (k == -2)
            return -1;
        if (k <= 0) {
            PyObject *args[] = {c->state, p, tp_obj, offset_obj, v, op_obj, last};
            PyObject *r = PyObject_Vectorcall(send_went_back_fn, args, 7, NULL);
            if (r == NULL)
                return -1;
            Py_DECREF(r);
        }
    }
    pair = PyTuple_Pack(2, offset_obj, op_obj);
    if (pair == NULL || PyDict_SetItem(sends, p, pair) < 0) {
        Py_XDECREF(pair);
        return -1;
    }
    Py_DECREF(pair);
    return 0;
}

/* The fast path of an ok send. 1: folded in (run() then closes the op); 0: not taken
   (nothing changed); -1: error. */
static int
fast_send(ctx *c, PyObject *inv, PyObject *e, PyObject *p, long long op, long long latency)
{
    PyObject *iv = SLOT(inv, L_value), *dv = SLOT(e, L_value);
    if (iv == NULL || dv == NULL || Py_TYPE(iv) != Value_T || Py_TYPE(dv) != Value_T)
        return 0;
    PyObject *v = SLOT(iv, V_value), *topic = SLOT(iv, V_topic);
    if (v == NULL || topic == NULL || v == UNSET || topic == UNSET)
        return 0;
    if (!PyUnicode_CheckExact(topic) || PyUnicode_GET_LENGTH(topic) == 0)
        return 0;
    Py_ssize_t slash = PyUnicode_FindChar(topic, '/', 0, PyUnicode_GET_LENGTH(topic), 1);
    if (slash == -2)
        return -1;
    if (slash != -1)
        return 0;
    PyObject *partition = SLOT(dv, V_partition), *offset_obj = SLOT(dv, V_offset);
    long long offset, part;
    if (!as_i64(partition, &part) || !as_i64(offset_obj, &offset) || offset < 0 || part < 0)
        return 0;
    PyObject *dvv = SLOT(dv, V_value), *dvt = SLOT(dv, V_topic);
    if (dvv == NULL || dvt == NULL)
        return 0;
    if (dvv != UNSET) {
        int eq = PyObject_RichCompareBool(dvv, v, Py_EQ);
        if (eq <= 0)
            return eq;
    }
    if (dvt != UNSET) {
        int eq = PyObject_RichCompareBool(dvt, topic, Py_EQ);
        if (eq <= 0)
            return eq;
    }
    int dup = PyDict_Contains(c->sent, v);
    if (dup != 0)
        return dup < 0 ? -1 : 0; /* Python says "sent twice" */
    /* The partition's id (registering a new one changes nothing Python would not). */
    PyObject *key = PyTuple_Pack(2, topic, partition);
    if (key == NULL)
        return -1;
    PyObject *tp_obj = PyDict_GetItemWithError(c->tp_pairs, key);
    Py_DECREF(key);
    if (tp_obj != NULL) {
        Py_INCREF(tp_obj);
    } else {
        if (PyErr_Occurred())
            return -1;
        tp_obj = PyObject_CallMethodObjArgs(c->state, a_tp_of, topic, partition, NULL);
        if (tp_obj == NULL)
            return -1;
    }
    long long tp;
    if (!as_i64(tp_obj, &tp)) {
        Py_DECREF(tp_obj);
        PyErr_SetString(PyExc_TypeError, "a partition id is not an int");
        return -1;
    }
    /* From here on it is the fast path's: record the send, fold it in. */
    PyObject *op_obj = SLOT(inv, L_index);
    int rc = PyDict_SetItem(c->sent, v, op_obj) < 0 ||
                     count_ok(c, s_send, inv, e, &c->lat_send, &c->lat_send_arr, latency) < 0 ||
                     acked(c, p, (Py_ssize_t)tp, tp_obj, offset, offset_obj, v, op, op_obj,
                           SLOT(e, L_index)) < 0
                 ? -1
                 : 1;
    Py_DECREF(tp_obj);
    return rc;
}

/* The records of a read, checked before anything changes: every key a partition,
   every record an (int offset within 64 bits, int or str value) tuple. */
static int
read_takes(ctx *c, PyObject *records)
{
    Py_ssize_t pos = 0;
    PyObject *key, *recs;
    while (PyDict_Next(records, &pos, &key, &recs)) {
        PyObject *tp = PyDict_GetItemWithError(c->tps, key);
        if (tp == NULL) {
            if (PyErr_Occurred())
                return -1;
            tp = PyObject_CallMethodOneArg(c->state, a_tp_id, key); /* registers it */
            if (tp == NULL)
                return -1;
            long long id;
            int ok = as_i64(tp, &id) && id >= 0;
            Py_DECREF(tp);
            if (!ok)
                return 0; /* Python words the error */
        }
        if (!PyList_CheckExact(recs))
            return 0;
        Py_ssize_t n = PyList_GET_SIZE(recs);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *rec = PyList_GET_ITEM(recs, i);
            long long o;
            if (!PyTuple_CheckExact(rec) || PyTuple_GET_SIZE(rec) != 2 ||
                !as_i64(PyTuple_GET_ITEM(rec, 0), &o) || o < 0)
                return 0;
            PyObject *v = PyTuple_GET_ITEM(rec, 1);
            if (!PyLong_CheckExact(v) && !PyUnicode_CheckExact(v))
                return 0;
        }
    }
    return 1;
}

static PyObject *
pair_ll(long long a, PyObject *b)
{
    PyObject *x = PyLong_FromLongLong(a);
    if (x == NULL)
        return NULL;
    PyObject *t = PyTuple_Pack(2, x, b);
    Py_DECREF(x);
    return t;
}

static int
went_back(ctx *c, PyObject *ops, PyObject *p, PyObject *key, long long o, PyObject *prev)
{
    PyObject *o_obj = PyLong_FromLongLong(o);
    if (o_obj == NULL)
        return -1;
    PyObject *args[] = {c->state, ops, p, key, o_obj, prev};
    PyObject *r = PyObject_Vectorcall(poll_went_back_fn, args, 6, NULL);
    Py_DECREF(o_obj);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int
append_gap(ctx *c, PyObject *tp_obj, long long lo, long long hi, PyObject *before,
           PyObject *after)
{
    PyObject *lo_obj = PyLong_FromLongLong(lo), *hi_obj = PyLong_FromLongLong(hi);
    PyObject *gap = lo_obj && hi_obj ? PyTuple_Pack(5, tp_obj, lo_obj, hi_obj, before, after)
                                     : NULL;
    Py_XDECREF(lo_obj);
    Py_XDECREF(hi_obj);
    return list_append_new(c->gaps, gap);
}

/* rift_checker._fold.fold_read over records that read_takes() accepted. */
static int
fold_read(ctx *c, PyObject *p, long long op, PyObject *op_obj, PyObject *records, int final,
          PyObject *done_obj)
{
    PyObject *positions = NULL;
    if (!final) {
        positions = PyDict_GetItemWithError(c->positions, p);
        if (positions == NULL) {
            if (PyErr_Occurred())
                return -1;
            PyObject *fresh = PyDict_New();
            if (fresh == NULL || PyDict_SetItem(c->positions, p, fresh) < 0) {
                Py_XDECREF(fresh);
                return -1;
            }
            Py_DECREF(fresh);
            positions = fresh; /* the positions dict holds it */
        }
        if (!PyDict_Check(positions)) {
            PyErr_SetString(PyExc_TypeError, "positions of a process is not a dict");
            return -1;
        }
    }
    PyObject *neg_op = PyLong_FromLongLong(~op);
    if (neg_op == NULL)
        return -1;
    int rc = -1;
    Py_ssize_t pos = 0;
    PyObject *key, *recs;
    while (PyDict_Next(records, &pos, &key, &recs)) {
        PyObject *tp_obj = PyDict_GetItemWithError(c->tps, key); /* read_takes() made it */
        long long tp;
        if (tp_obj == NULL || !as_i64(tp_obj, &tp)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_KeyError, "a partition key vanished");
            goto done;
        }
        if (final && PySet_Add(c->final_tps, tp_obj) < 0)
            goto done;
        Py_ssize_t n = PyList_GET_SIZE(recs);
        if (n == 0)
            continue;
        PyObject *known = per_tp(c->val_at, (Py_ssize_t)tp);
        if (known == NULL)
            goto done;
        long long first = 0;
        as_i64(PyTuple_GET_ITEM(PyList_GET_ITEM(recs, 0), 0), &first);
        PyObject *at = NULL;
        if (positions != NULL) {
            at = PyDict_GetItemWithError(positions, tp_obj);
            if (at == NULL && PyErr_Occurred())
                goto done;
        }
        if (at != NULL) {
            /* Continuing from the process's previous read of this partition. */
            if (!PyTuple_Check(at) || PyTuple_GET_SIZE(at) != 2) {
                PyErr_SetString(PyExc_TypeError, "a position is not a pair");
                goto done;
            }
            PyObject *prev_obj = PyTuple_GET_ITEM(at, 0), *prev_op = PyTuple_GET_ITEM(at, 1);
            int k = cmp_int(first, prev_obj);
            if (k == -2)
                goto done;
            if (k <= 0) {
                PyObject *ops = PyTuple_Pack(2, prev_op, op_obj);
                int r = ops ? went_back(c, ops, p, key, first, prev_obj) : -1;
                Py_XDECREF(ops);
                if (r < 0)
                    goto done;
            } else if (cmp_int(first - 1, prev_obj) != 0) { /* first > prev: no overflow */
                long long prev = 0;
                as_i64(prev_obj, &prev); /* prev < first, so it fits */
                if (append_gap(c, tp_obj, prev, first, prev_op, op_obj) < 0)
                    goto done;
            }
        }
        /* From here on each record is compared with the one before it in this read. */
        long long prev = first - 1, top = -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *rec = PyList_GET_ITEM(recs, i);
            PyObject *o_obj = PyTuple_GET_ITEM(rec, 0), *v = PyTuple_GET_ITEM(rec, 1);
            long long o = 0;
            as_i64(o_obj, &o);
            if (o - 1 != prev) { /* a step back or a gap (o >= 0: no overflow) */
                if (o <= prev) {
                    PyObject *prev_obj = PyLong_FromLongLong(prev);
                    PyObject *ops = prev_obj ? PyTuple_Pack(1, op_obj) : NULL;
                    int r = ops ? went_back(c, ops, p, key, o, prev_obj) : -1;
                    Py_XDECREF(ops);
                    Py_XDECREF(prev_obj);
                    if (r < 0)
                        goto done;
                    if (prev > top) /* a peak: the highest offset is the last one or a peak */
                        top = prev;
                } else if (append_gap(c, tp_obj, prev, o, op_obj, op_obj) < 0) {
                    goto done;
                }
            }
            prev = o;
            PyObject *had = PyDict_GetItemWithError(known, o_obj);
            int differs = 1;
            if (had != NULL) {
                differs = PyObject_RichCompareBool(had, v, Py_NE);
                if (differs < 0)
                    goto done;
            } else if (PyErr_Occurred()) {
                goto done;
            }
            if (differs) {
                PyObject *r = PyObject_CallMethodObjArgs(c->state, a_place, tp_obj, o_obj, v,
                                                         op_obj, NULL);
                if (r == NULL)
                    goto done;
                Py_DECREF(r);
            }
            if (PyDict_SetDefault(c->read, v, op_obj) == NULL)
                goto done;
        }
        if (prev > top)
            top = prev;
        PyObject *top_obj = PyLong_FromLongLong(top);
        if (top_obj == NULL)
            goto done;
        PyObject *mr = per_tp(c->max_read, (Py_ssize_t)tp);
        int k = -2;
        if (mr != NULL && PyTuple_Check(mr) && PyTuple_GET_SIZE(mr) == 2)
            k = cmp_int(top, PyTuple_GET_ITEM(mr, 0));
        else if (mr != NULL)
            PyErr_SetString(PyExc_TypeError, "max_read holds a non-pair");
        if (k == 1) {
            PyObject *pair = PyTuple_Pack(2, top_obj, op_obj);
            if (pair == NULL || PyList_SetItem(c->max_read, (Py_ssize_t)tp, pair) < 0)
                k = -2; /* PyList_SetItem stole the pair, even on failure */
        }
        PyObject *touch = k == -2 ? NULL : per_tp(c->touch, (Py_ssize_t)tp);
        if (touch == NULL || PyDict_SetDefault(touch, top_obj, neg_op) == NULL) {
            Py_DECREF(top_obj);
            goto done;
        }
        PyObject *tops, *dones;
        if (reach_lists(c, (Py_ssize_t)tp, &tops, &dones) < 0) {
            Py_DECREF(top_obj);
            goto done;
        }
        Py_ssize_t nt = PyList_GET_SIZE(tops);
        k = nt ? cmp_int(top, PyList_GET_ITEM(tops, nt - 1)) : 1;
        if (k == -2 || (k == 1 && (PyList_Append(tops, top_obj) < 0 ||
                                   PyList_Append(dones, done_obj) < 0))) {
            Py_DECREF(top_obj);
            goto done;
        }
        Py_DECREF(top_obj);
        if (positions != NULL) {
            PyObject *pair = pair_ll(prev, op_obj);
            if (pair == NULL || PyDict_SetItem(positions, tp_obj, pair) < 0) {
                Py_XDECREF(pair);
                goto done;
            }
            Py_DECREF(pair);
        }
    }
    rc = 0;
done:
    Py_DECREF(neg_op);
    return rc;
}

/* The fast path of an ok poll or final read; as fast_send. */
static int
fast_read(ctx *c, PyObject *inv, PyObject *e, PyObject *p, long long op, long long latency,
          int final)
{
    PyObject *dv = SLOT(e, L_value);
    if (dv == NULL || Py_TYPE(dv) != Value_T)
        return 0;
    PyObject *records = SLOT(dv, V_records);
    if (records == NULL || !PyDict_CheckExact(records) || SLOT(dv, V_assigned) != Py_None ||
        SLOT(dv, V_log_start) != Py_None)
        return 0;
    int takes = read_takes(c, records);
    if (takes <= 0)
        return takes;
    /* From here on it is the fast path's. */
    if (final) {
        PyObject *r = PyObject_CallMethodObjArgs(c->stats, a_op, s_final_read, s_ok,
                                                 SLOT(inv, L_time), SLOT(e, L_time), NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    } else if (count_ok(c, s_poll, inv, e, &c->lat_poll, &c->lat_poll_arr, latency) < 0) {
        return -1;
    }
    return fold_read(c, p, op, SLOT(inv, L_index), records, final, SLOT(e, L_index)) < 0 ? -1
                                                                                         : 1;
}

static void
free_ctx(ctx *c)
{
    for (int i = 0; i < c->n_owned; i++)
        Py_DECREF(c->owned[i]);
    PyMem_Free(c->lat_send.v);
    PyMem_Free(c->lat_poll.v);
    PyMem_Free(c);
}

static void
drop_ctx(PyObject *capsule)
{
    free_ctx(PyCapsule_GetPointer(capsule, "rift_checker._native.ctx"));
}

/* The pass's state, looked up once per pass and kept in a capsule on it. */
static ctx *
load_ctx(PyObject *pass)
{
    PyObject *capsule = PyObject_GetAttr(pass, a_native);
    if (capsule == NULL)
        return NULL;
    if (capsule != Py_None) {
        ctx *c = PyCapsule_GetPointer(capsule, "rift_checker._native.ctx");
        Py_DECREF(capsule);
        return c;
    }
    Py_DECREF(capsule);
    ctx *c = PyMem_Calloc(1, sizeof(ctx));
    if (c == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (!(c->state = ctx_get(c, pass, a_state)) || !(c->stats = ctx_get(c, pass, a_stats)) ||
        !(c->open_ops = ctx_get(c, pass, a_open_ops)) ||
        !(c->retired = ctx_get(c, pass, a_retired)) ||
        !(c->latency = ctx_get(c, c->stats, a_latency)) ||
        !(c->path = ctx_get(c, pass, a_path)))
        goto fail;
    PyObject *names[] = {a_sent,     a_tp_pairs,  a_acked,    a_reach_top, a_reach_done,
                         a_suspects, a_val_at,    a_where,    a_last_send, a_positions,
                         a_read,     a_tps,       a_final_tps, a_max_read, a_touch,
                         a_gaps,     a_done_at};
    PyObject **slots[] = {&c->sent,      &c->tp_pairs,  &c->acked,     &c->reach_top,
                          &c->reach_done, &c->suspects, &c->val_at,    &c->where,
                          &c->last_send, &c->positions, &c->read,      &c->tps,
                          &c->final_tps, &c->max_read,  &c->touch,     &c->gaps,
                          &c->done_at};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!(*slots[i] = ctx_get(c, c->state, names[i])))
            goto fail;
    if (!PyDict_CheckExact(c->open_ops) || !PyAnySet_CheckExact(c->retired) ||
        !PyDict_CheckExact(c->latency) || !PyDict_CheckExact(c->sent) ||
        !PyDict_CheckExact(c->tp_pairs) || !PyDict_CheckExact(c->acked) ||
        !PyList_CheckExact(c->reach_top) || !PyList_CheckExact(c->reach_done) ||
        !PySet_CheckExact(c->suspects) || !PyList_CheckExact(c->val_at) ||
        !PyDict_CheckExact(c->where) || !PyList_CheckExact(c->last_send) ||
        !PyDict_CheckExact(c->positions) || !PyDict_CheckExact(c->read) ||
        !PyDict_CheckExact(c->tps) || !PySet_CheckExact(c->final_tps) ||
        !PyList_CheckExact(c->max_read) || !PyList_CheckExact(c->touch) ||
        !PyList_CheckExact(c->gaps)) {
        PyErr_SetString(PyExc_TypeError, "the checker's state is not of the expected types");
        goto fail;
    }
    capsule = PyCapsule_New(c, "rift_checker._native.ctx", drop_ctx);
    if (capsule == NULL)
        goto fail;
    int rc = PyObject_SetAttr(pass, a_native, capsule);
    Py_DECREF(capsule); /* the pass holds it now, and frees c with it */
    return rc < 0 ? NULL : c;
fail:
    free_ctx(c);
    return NULL;
}

/* The stats' latency arrays, which appear when Python folds the first ok op. */
static int
load_latency(ctx *c)
{
    c->lat_send_arr = PyDict_GetItemWithError(c->latency, s_send);
    if (c->lat_send_arr == NULL && PyErr_Occurred())
        return -1;
    c->lat_poll_arr = PyDict_GetItemWithError(c->latency, s_poll);
    if (c->lat_poll_arr == NULL && PyErr_Occurred())
        return -1;
    return 0;
}

static int
set_ll(PyObject *obj, PyObject *name, long long v)
{
    PyObject *x = PyLong_FromLongLong(v);
    if (x == NULL)
        return -1;
    int rc = PyObject_SetAttr(obj, name, x);
    Py_DECREF(x);
    return rc;
}

PyDoc_STRVAR(run_doc,
             "run(pass_, batch, start) -> int\n\n"
             "Take the events of batch from index start on, as _Pass.events would, up to\n"
             "the first one this core leaves to it; return that one's index (len(batch)\n"
             "when it took them all).");

static PyObject *
run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!bound) {
        PyErr_SetString(PyExc_RuntimeError, "rift_checker._native.setup() was not called");
        return NULL;
    }
    if (nargs != 3 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "run(pass_, batch: list, start: int)");
        return NULL;
    }
    PyObject *pass = args[0], *batch = args[1];
    Py_ssize_t i = PyLong_AsSsize_t(args[2]);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0) {
        PyErr_SetString(PyExc_ValueError, "run(): start must be >= 0");
        return NULL;
    }
    long long expected, last_time, last_done = 0;
    int have_done = 0, failed = 1;
    ctx *c = load_ctx(pass);
    if (c == NULL || load_latency(c) < 0)
        return NULL;
    /* A position beyond 64 bits (a time, after Python took such a line): Python's. */
    PyObject *x = PyObject_GetAttr(pass, a_expected);
    int ok = x != NULL && as_i64(x, &expected);
    Py_XDECREF(x);
    if (ok) {
        x = PyObject_GetAttr(pass, a_last_time);
        ok = x != NULL && as_i64(x, &last_time);
        Py_XDECREF(x);
    }
    if (!ok)
        return PyErr_Occurred() ? NULL : PyLong_FromSsize_t(i);
    Py_ssize_t n = PyList_GET_SIZE(batch);
    for (; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(batch, i);
        if (Py_TYPE(e) != ModelLine_T)
            break;
        long long index, t;
        if (!as_i64(SLOT(e, L_index), &index) || index != expected ||
            !as_i64(SLOT(e, L_time), &t) || t < last_time)
            break;
        PyObject *typ = SLOT(e, L_type), *p = SLOT(e, L_process);
        if (typ == NULL || p == NULL)
            break;
        if (same_str(typ, s_invoke)) {
            if (p == Py_None || SLOT(e, L_error) != Py_None)
                break;
            int k = PyDict_Contains(c->open_ops, p);
            if (k == 0)
                k = PySet_Contains(c->retired, p);
            if (k < 0)
                goto out;
            if (k)
                break;
            if (PyDict_SetItem(c->open_ops, p, e) < 0)
                goto out;
            last_time = t;
            expected++;
            continue;
        }
        if (same_str(typ, s_observe)) {
            last_time = t;
            expected++;
            PyObject *args[] = {e, c->state, c->stats, c->path};
            PyObject *r = PyObject_Vectorcall(observe_fn, args, 4, NULL);
            if (r == NULL)
                goto out;
            Py_DECREF(r);
            continue;
        }
        /* A completion (ok, fail or info: the decoder's Literal allows no other). */
        PyObject *inv = PyDict_GetItemWithError(c->open_ops, p);
        if (inv == NULL) {
            if (PyErr_Occurred())
                goto out;
            break; /* no open op: Python words the error */
        }
        PyObject *f = SLOT(e, L_f), *inv_f = SLOT(inv, L_f);
        if (f == NULL || inv_f == NULL)
            break;
        int k = PyObject_RichCompareBool(inv_f, f, Py_EQ);
        if (k < 0)
            goto out;
        if (!k)
            break; /* another f than its invoke's: Python words the error */
        /* The fast path: an ok send or read of a client whose values the typed decoder
           shaped, with the invoke's index and time within 64 bits. */
        int ok = same_str(typ, s_ok) && PyLong_CheckExact(p), r = 0;
        long long op, inv_t, latency;
        if (ok && Py_TYPE(inv) == ModelLine_T && as_i64(SLOT(inv, L_index), &op) && op >= 0 &&
            as_i64(SLOT(inv, L_time), &inv_t) && !__builtin_sub_overflow(t, inv_t, &latency)) {
            if (same_str(f, s_send))
                r = fast_send(c, inv, e, p, op, latency);
            else if (same_str(f, s_poll))
                r = fast_read(c, inv, e, p, op, latency, 0);
            else if (same_str(f, s_final_read))
                r = fast_read(c, inv, e, p, op, latency, 1);
        }
        if (r > 0) { /* folded in: the op is done (its invoke held by inv until now) */
            Py_INCREF(inv);
            r = PyDict_DelItem(c->open_ops, p) < 0 ||
                        set_done_at(c, op, index, SLOT(inv, L_index)) < 0
                    ? -1
                    : 1;
            Py_DECREF(inv);
        }
        if (r < 0)
            goto out;
        last_time = t;
        expected++;
        if (r) {
            last_done = t;
            have_done = 1;
            continue;
        }
        /* Everything else: paired here, folded in by the general path (_fold). */
        Py_INCREF(inv);
        int rc = PyDict_DelItem(c->open_ops, p);
        if (rc == 0 && same_str(typ, s_info)) {
            /* the nemesis is one actor, never retired */
            int nemesis = PyObject_RichCompareBool(p, s_nemesis, Py_EQ);
            rc = nemesis < 0 ? -1 : nemesis ? 0 : PySet_Add(c->retired, p);
        }
        PyObject *res = NULL;
        if (rc == 0) {
            PyObject *args[] = {inv, e, typ, c->state, c->stats};
            res = PyObject_Vectorcall(fold_fn, args, 5, NULL);
        }
        Py_DECREF(inv);
        if (res == NULL)
            goto out;
        Py_DECREF(res);
    }
    if (lat_flush(&c->lat_send, c->lat_send_arr) < 0 || lat_flush(&c->lat_poll, c->lat_poll_arr) < 0)
        goto out;
    if (set_ll(pass, a_expected, expected) < 0 || set_ll(pass, a_last_time, last_time) < 0 ||
        (have_done && set_ll(pass, a_last_done, last_done) < 0))
        goto out;
    failed = 0;
out:
    /* run() leaves no latency behind: flushed, or the check failed anyway */
    PyMem_Free(c->lat_send.v);
    PyMem_Free(c->lat_poll.v);
    c->lat_send = c->lat_poll = (lat_buf){0};
    return failed ? NULL : PyLong_FromSsize_t(i);
}

PyDoc_STRVAR(object_lines_doc,
             "object_lines(block: bytes) -> int\n\n"
             "The number of lines of block if it is lines of one shape, each starting with\n"
             "'{' and ending with '}' and a newline (the last one too); else -1.\n\n"
             "If a decoder then finds exactly that many JSON values in block, each line\n"
             "holds exactly one: a newline can only be whitespace between the tokens of a\n"
             "value (JSON strings hold no raw newline), and no value has '}' newline '{'\n"
             "inside it, so no value spans two lines, and so none holds two.");

static PyObject *
object_lines(PyObject *module, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "object_lines() takes bytes");
        return NULL;
    }
    const char *b = PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg), count = 0;
    if (n < 3 || b[0] != '{' || b[n - 1] != '\n')
        return PyLong_FromLong(-1);
    const char *p = b, *end = b + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        if (nl == NULL || nl == b || nl[-1] != '}' || (nl + 1 < end && nl[1] != '{'))
            return PyLong_FromLong(-1);
        count++;
        p = nl + 1;
    }
    return PyLong_FromSsize_t(count);
}

PyDoc_STRVAR(sort_q_doc,
             "sort_q(values: array.array) -> None\n\n"
             "Sort an array of signed 64-bit integers ('q') in place (a radix sort: the\n"
             "latencies of a million ops take a list sort a third of a second).");

static PyObject *
sort_q(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return NULL;
    if (view.itemsize != 8 || view.format == NULL || strcmp(view.format, "q") != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "sort_q() takes an array of 'q'");
        return NULL;
    }
    Py_ssize_t n = view.len / 8;
    unsigned long long *a = view.buf, *tmp = n > 1 ? PyMem_Malloc(n * 8) : NULL;
    if (n > 1 && tmp == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    /* Least significant byte first, the sign bit flipped so that the unsigned order
       is the signed one; a pass where every key has the same byte is skipped. */
    const unsigned long long flip = 1ULL << 63;
    for (Py_ssize_t i = 0; i < n; i++)
        a[i] ^= flip;
    unsigned long long *src = a, *dst = tmp;
    for (int shift = 0; n > 1 && shift < 64; shift += 8) {
        Py_ssize_t count[256] = {0};
        for (Py_ssize_t i = 0; i < n; i++)
            count[(src[i] >> shift) & 0xff]++;
        if (count[(src[0] >> shift) & 0xff] == n)
            continue;
        Py_ssize_t at = 0;
        for (int d = 0; d < 256; d++) {
            Py_ssize_t k = count[d];
            count[d] = at;
            at += k;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 0xff]++] = src[i];
        unsigned long long *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * 8);
    for (Py_ssize_t i = 0; i < n; i++)
        a[i] ^= flip;
    PyMem_Free(tmp);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(setup_doc,
             "setup(ModelLine, Value, UNSET, grow, send_went_back, poll_went_back, fold,\n"
             "      observe)\n\n"
             "Bind the decoder's classes and the pass's Python helpers (once, at import).");

static PyObject *
setup(PyObject *module, PyObject *args)
{
    PyObject *ml, *val, *unset, *grow, *swb, *pwb, *fold, *observe;
    if (!PyArg_ParseTuple(args, "O!O!OOOOOO", &PyType_Type, &ml, &PyType_Type, &val, &unset,
                          &grow, &swb, &pwb, &fold, &observe))
        return NULL;
    struct {
        PyObject *type;
        const char *name;
        Py_ssize_t *offset;
    } fields[] = {
        {ml, "index", &L_index},         {ml, "time", &L_time},
        {ml, "type", &L_type},           {ml, "process", &L_process},
        {ml, "f", &L_f},                 {ml, "value", &L_value},
        {ml, "error", &L_error},         {val, "topic", &V_topic},
        {val, "partition", &V_partition}, {val, "offset", &V_offset},
        {val, "value", &V_value},        {val, "records", &V_records},
        {val, "assigned", &V_assigned},  {val, "log_start", &V_log_start},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (member_offset((PyTypeObject *)fields[i].type, fields[i].name, fields[i].offset) < 0)
            return NULL;
    Py_XSETREF(ModelLine_T, (PyTypeObject *)Py_NewRef(ml));
    Py_XSETREF(Value_T, (PyTypeObject *)Py_NewRef(val));
    Py_XSETREF(UNSET, Py_NewRef(unset));
    Py_XSETREF(grow_fn, Py_NewRef(grow));
    Py_XSETREF(send_went_back_fn, Py_NewRef(swb));
    Py_XSETREF(poll_went_back_fn, Py_NewRef(pwb));
    Py_XSETREF(fold_fn, Py_NewRef(fold));
    Py_XSETREF(observe_fn, Py_NewRef(observe));
    bound = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))run, METH_FASTCALL, run_doc},
    {"setup", setup, METH_VARARGS, setup_doc},
    {"object_lines", object_lines, METH_O, object_lines_doc},
    {"sort_q", sort_q, METH_O, sort_q_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rift_checker._native",
    "The checker's native core: the fast path of rift_checker._analyzer in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } strings[] = {
        {&s_invoke, "invoke"},       {&s_ok, "ok"},
        {&s_send, "send"},           {&s_poll, "poll"},
        {&s_final_read, "final-read"}, {&a_expected, "expected"},
        {&a_native, "native"},       {&a_path, "path"},
        {&s_info, "info"},           {&s_observe, "observe"},
        {&s_nemesis, "nemesis"},
        {&a_last_time, "last_time"}, {&a_last_done, "last_done"},
        {&a_open_ops, "open_ops"},   {&a_retired, "retired"},
        {&a_state, "state"},         {&a_stats, "stats"},
        {&a_latency, "latency"},     {&a_op, "op"},
        {&a_tp_id, "tp_id"},         {&a_tp_of, "tp_of"},
        {&a_place, "place"},         {&a_frombytes, "frombytes"},
        {&a_sent, "sent"},           {&a_tp_pairs, "tp_pairs"},
        {&a_acked, "acked"},         {&a_reach_top, "reach_top"},
        {&a_reach_done, "reach_done"}, {&a_suspects, "suspects"},
        {&a_val_at, "val_at"},       {&a_where, "where"},
        {&a_last_send, "last_send"}, {&a_positions, "positions"},
        {&a_read, "read"},           {&a_tps, "tps"},
        {&a_final_tps, "final_tps"}, {&a_max_read, "max_read"},
        {&a_touch, "touch"},         {&a_gaps, "gaps"},
        {&a_done_at, "done_at"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (!(*strings[i].slot = PyUnicode_InternFromString(strings[i].text)))
            return NULL;
    return PyModule_Create(&module);
}
