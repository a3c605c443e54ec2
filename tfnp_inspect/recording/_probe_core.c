/* The compiled per-call core: a C twin of CallProbe.call (probe.py) for the common calls.
 *
 * probe.py stays the reference implementation. This file does what it does for a call whose
 * probe is configured for the active plan (CallProbe._fast) and needs no 'full' capture:
 * describe the inputs, call func, check retained references and mutation, describe the outputs,
 * build the row and store it. Everything rare (a violation or hint to word, an array that is not
 * a plain C-contiguous one, a failed call) and the state watch (Python objects read through
 * StateWatch) go to the same Python methods the reference path uses, so both cores produce the
 * same rows and the same verdicts; tests run the TensorFlow tier with each.
 *
 * Every Python object it needs comes from probe.py through init(); the tuple layouts it builds
 * (FastPath, CallRow, RawArray) are exported below and checked against probe.py at import.
 *
 * It also reads the columns of a batch of stored rows for the recorder's aggregates: columns(),
 * the twin of model/columns.columns_of, which needs no init().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>
#include <time.h>

/* FastPath fields, in probe.FastPath's order */
enum {
    F_PLAN, F_SWITCHES_VERSION, F_EVERY_BYTE, F_CAPTURE, F_RETAINED, F_MUTATION, F_TOUT_CHECK,
    F_TOUT_SINGLE, F_SHAPE_CHECK, F_STATIC_SHAPES, F_NONDETERMINISM, F_GRAPH, F_GENERATOR,
    F_HASH_OUTPUTS, F_EXACT_SINKS, F_FITTED_SINKS, F_CALLS, F_SITE_ROW, F_WATCH, F_COUNT
};
static const char *FAST_FIELDS[] = {
    "plan", "switches_version", "every_byte", "capture", "retained", "mutation", "tout_check",
    "tout_single", "shape_check", "static_shapes", "nondeterminism", "graph", "generator",
    "hash_outputs", "exact_sinks", "fitted_sinks", "calls", "site_row", "watch", NULL
};
/* RawArray fields */
enum { A_SHAPE, A_DTYPE, A_NBYTES, A_FINGERPRINT, A_FLAGS, A_ALIAS, A_WILL_BE_COPIED, A_SAMPLE, A_DATA,
       A_NOTE, A_COUNT };
static const char *ARRAY_FIELDS[] = {
    "shape", "dtype", "nbytes", "fingerprint", "flags", "aliases_input", "will_be_copied", "sample",
    "data", "capture_note", NULL
};
/* CallRow fields */
enum { R_SEQ, R_SITE, R_THREAD_ID, R_THREAD_NAME, R_START, R_DURATION, R_INPUTS, R_OUTPUTS, R_ERROR,
       R_VIOLATIONS, R_HINTS, R_PROCESS, R_BYTES_IN, R_BYTES_OUT, R_COUNT };
static const char *ROW_FIELDS[] = {
    "seq", "site", "thread_id", "thread_name", "start_ns", "duration_ns", "raw_inputs", "raw_outputs",
    "error", "violations", "static_hints", "process", "bytes_in", "bytes_out", NULL
};
/* RowColumns fields (model/columns.py), what columns() returns */
enum { K_DURATIONS, K_STARTS, K_ERRORS, K_BYTES_IN, K_BYTES_OUT, K_VIOLATIONS, K_THREADS, K_ONE_SITE, K_UNIFORM,
       K_COUNT };
static const char *COLUMN_FIELDS[] = {
    "durations", "starts", "errors", "bytes_in", "bytes_out", "violations", "threads", "one_site", "uniform", NULL
};

/* What init() hands over (strong references, kept for the process's life). */
static PyObject *xxh3, *py_describe, *perf_counter_ns, *seq_counter, *thread_name_fn, *threads, *thread_name_property,
    *switches, *records_dict, *output_refcounts, *rows_of, *deliver_rest, *reference_call;
static PyTypeObject *ndarray_type, *tensor_wrapper_type;
/* python-xxhash's own XXH3 (fingerprints.xxh3_function_address: the CPU-dispatched one where it is
 * exported), NULL where none is or it does not give what xxhash.xxh3_64_intdigest gives: then
 * `xxh3` is called. */
static unsigned long long (*xxh3_direct)(const void *, size_t);
static long long wall_offset_ns;
static Py_ssize_t sampled_min_bytes, copy_hint_min_bytes, sample_elements, unhashed_from_bytes, sample_blocks,
    sample_block_bytes, sample_window_bytes;
static long full_check_calls, full_check_every;
static long flag_c_contiguous, flag_writeable, flag_shares_tensor, flag_stats_exact, flag_buffer_hash,
    flag_sampled;
static int initialized;

static PyObject *s_fast, *s_snapshot, *s_check_state, *s_name, *s_private_name, *s_kept_outputs, *s_version,
    *s_process, *s_store, *s_hot, *s_trim, *s_record_failure, *s_check_retained_inputs, *s_check_kept_outputs,
    *s_find_mutations, *s_check_tout, *s_check_shapes, *s_check_determinism, *s_copied_hint;

#define MAX_STACK_ARGS 16

/* A __slots__ attribute read at its offset, without the attribute protocol (a type lookup and a
 * descriptor call, on objects that the work between two calls pushed out of the caches). Bound to
 * the last type seen: while that type is unchanged (its version tag) and `name` is one of its
 * plain object slots, the slot is read directly; anything else reads the attribute as Python does. */
typedef struct {
    PyObject **name;
    PyTypeObject *type;  /* borrowed: only compared */
    unsigned int version_tag;
    Py_ssize_t offset;  /* -1: not a plain slot of `type` */
} SlotReader;

static SlotReader fast_slot = {&s_fast, NULL, 0, -1}, kept_outputs_slot = {&s_kept_outputs, NULL, 0, -1},
                  version_slot = {&s_version, NULL, 0, -1}, hot_slot = {&s_hot, NULL, 0, -1};

static void
slot_reader_bind(SlotReader *reader, PyTypeObject *type)
{
    PyObject *descriptor = _PyType_Lookup(type, *reader->name);  /* borrowed; assigns the version tag */
    reader->type = type;
    reader->version_tag = type->tp_version_tag;
    reader->offset = -1;
    if (descriptor != NULL && Py_TYPE(descriptor) == &PyMemberDescr_Type
        && (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
        if (member->type == T_OBJECT_EX && !(member->flags & READONLY)) {
            reader->offset = member->offset;
        }
    }
}

/* The attribute (a new reference), or NULL with an exception set. */
static PyObject *
slot_read(SlotReader *reader, PyObject *owner)
{
    PyTypeObject *type = Py_TYPE(owner);
    if (type != reader->type || type->tp_version_tag != reader->version_tag
        || !(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        slot_reader_bind(reader, type);
    }
    if (reader->offset >= 0) {
        PyObject *value = *(PyObject **)((char *)owner + reader->offset);
        if (value != NULL) {
            return Py_NewRef(value);
        }
    }
    return PyObject_GetAttr(owner, *reader->name);
}

static int
is_plain_kind(char kind)
{
    return kind != 0 && strchr("biufcmMSU", kind) != NULL;
}

/* TF hands graph-mode inputs over as views whose base is a `tensorflow_wrapper`. */
static int
is_tensor_wrapper(PyObject *base)
{
    PyTypeObject *type = Py_TYPE(base);
    if (type == tensor_wrapper_type) {
        return 1;
    }
    if (type == ndarray_type) {
        return 0;
    }
    const char *name = strrchr(type->tp_name, '.');
    name = name ? name + 1 : type->tp_name;
    if (strcmp(name, "tensorflow_wrapper") == 0) {
        tensor_wrapper_type = type;
        return 1;
    }
    return 0;
}

/* The object that owns an array's memory: the end of the .base chain (fingerprints.alias_root). */
static PyObject *
alias_root(PyObject *array)
{
    PyObject *root = array;
    PyObject *base = PyArray_BASE((PyArrayObject *)array);
    while (base != NULL) {
        root = base;
        base = Py_TYPE(root) == ndarray_type ? PyArray_BASE((PyArrayObject *)root) : NULL;
    }
    return root;
}

/* What the garbage collector would do to this tuple at its first pass (_PyTuple_MaybeUntrack),
 * done now: rows of atomic values are never traversed, so storing them costs no collections. */
static void
untrack_if_atomic(PyObject *tuple)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (PyObject_IS_GC(item) && PyObject_GC_IsTracked(item)) {
            return;
        }
    }
    PyObject_GC_UnTrack(tuple);
}

static PyObject *
list_ready(PyObject *list)
{
    return list != NULL ? list : PyList_New(0);
}

/* Shape tuples seen lately, reused: an op's calls mostly repeat their shapes, and a tuple not
 * allocated is one the garbage collector does not count. Direct-mapped, GIL-protected. */
#define SHAPE_CACHE_SLOTS 64
#define SHAPE_CACHE_MAX_DIMS 4
static struct {
    int ndim;
    npy_intp dims[SHAPE_CACHE_MAX_DIMS];
    PyObject *shape;
} shape_cache[SHAPE_CACHE_SLOTS];

static PyObject *
new_shape(int ndim, const npy_intp *dims)
{
    PyObject *shape = PyTuple_New(ndim);
    for (int i = 0; shape != NULL && i < ndim; i++) {
        PyObject *dim = PyLong_FromSsize_t(dims[i]);
        if (dim == NULL) {
            Py_CLEAR(shape);
            break;
        }
        PyTuple_SET_ITEM(shape, i, dim);
    }
    if (shape != NULL) {
        PyObject_GC_UnTrack(shape);  /* ints only */
    }
    return shape;
}

/* A shape tuple of ints (a reused one when this shape was seen lately). */
static PyObject *
cached_shape(int ndim, const npy_intp *dims)
{
    if (ndim > SHAPE_CACHE_MAX_DIMS) {
        return new_shape(ndim, dims);
    }
    size_t hash = (size_t)ndim;
    for (int i = 0; i < ndim; i++) {
        hash = hash * 1000003u ^ (size_t)dims[i];
    }
    size_t slot = hash % SHAPE_CACHE_SLOTS;
    if (shape_cache[slot].shape != NULL && shape_cache[slot].ndim == ndim
        && (ndim == 0 || memcmp(shape_cache[slot].dims, dims, (size_t)ndim * sizeof(npy_intp)) == 0)) {
        return Py_NewRef(shape_cache[slot].shape);
    }
    PyObject *shape = new_shape(ndim, dims);
    if (shape != NULL) {
        shape_cache[slot].ndim = ndim;
        if (ndim > 0) {
            memcpy(shape_cache[slot].dims, dims, (size_t)ndim * sizeof(npy_intp));
        }
        Py_XSETREF(shape_cache[slot].shape, Py_NewRef(shape));
    }
    return shape;
}

/* ndarray.shape */
static PyObject *
shape_of(PyArrayObject *array)
{
    return cached_shape(PyArray_NDIM(array), PyArray_DIMS(array));
}

/* The int objects of recent values, reused (an int is a value, the same object will do): one
 * allocation less per call for values that repeat call after call. GIL-protected. */
typedef struct {
    unsigned long long key;
    PyObject *number;
} IntSlot;

static PyObject *
cached_int(IntSlot *slot, unsigned long long key)
{
    if (slot->number != NULL && slot->key == key) {
        return Py_NewRef(slot->number);
    }
    PyObject *number = PyLong_FromUnsignedLongLong(key);
    if (number != NULL) {
        slot->key = key;
        Py_XSETREF(slot->number, Py_NewRef(number));
    }
    return number;
}

/* RawArray.flags as an int: an op's arrays have the same few flag values call after call. */
#define FLAGS_CACHE_SLOTS 16
static IntSlot flags_cache[FLAGS_CACHE_SLOTS];

static PyObject *
flags_number(long bits)
{
    return cached_int(&flags_cache[(size_t)(bits ^ (bits >> 16)) % FLAGS_CACHE_SLOTS], (unsigned long long)bits);
}

/* The strided sample for lazy stats (arrays.stats_sample) of a C-contiguous array, copied to
 * `out` (sample_elements items at most); its length in bytes. */
static Py_ssize_t
stats_sample(PyArrayObject *array, Py_ssize_t size, long *bits, char *out)
{
    const char *data = PyArray_BYTES(array);
    Py_ssize_t itemsize = PyArray_ITEMSIZE(array);
    if (size <= sample_elements) {
        *bits |= flag_stats_exact;
        memcpy(out, data, (size_t)(size * itemsize));
        return size * itemsize;
    }
    Py_ssize_t step = (size + sample_elements - 1) / sample_elements;
    Py_ssize_t count = (size + step - 1) / step;
    /* a copy of known size per item (no memcpy call per item) for the usual item sizes */
#define COPY_STRIDED(type)                                                                     \
    for (Py_ssize_t i = 0; i < count; i++) {                                                   \
        memcpy(out + i * (Py_ssize_t)sizeof(type), data + i * step * (Py_ssize_t)sizeof(type), sizeof(type)); \
    }
    switch (itemsize) {
    case 1: COPY_STRIDED(uint8_t) break;
    case 2: COPY_STRIDED(uint16_t) break;
    case 4: COPY_STRIDED(uint32_t) break;
    case 8: COPY_STRIDED(uint64_t) break;
    default:
        for (Py_ssize_t i = 0; i < count; i++) {
            memcpy(out + i * itemsize, data + i * step * itemsize, (size_t)itemsize);
        }
    }
#undef COPY_STRIDED
    return count * itemsize;
}

/* xxh3 of `size` bytes through the Python callable (when there is no direct XXH3). */
static int
hash_by_call(const char *data, Py_ssize_t size, PyObject *array, unsigned long long *hash)
{
    PyObject *bytes = array != NULL ? Py_NewRef(array) : PyBytes_FromStringAndSize(data, size);
    PyObject *digest = bytes != NULL ? PyObject_CallOneArg(xxh3, bytes) : NULL;
    Py_XDECREF(bytes);
    if (digest == NULL) {
        return -1;
    }
    *hash = PyLong_AsUnsignedLongLong(digest);
    Py_DECREF(digest);
    return *hash == (unsigned long long)-1 && PyErr_Occurred() ? -1 : 0;
}

/* Whole hashes from this size on are computed without the GIL (about 100 us of hashing): the
 * other threads of a parallel tf.data map run meanwhile. Not below: under contention, taking the
 * GIL back can wait for another thread's switch interval (5 ms), far longer than a short hash. */
#define UNLOCKED_HASH_MIN_BYTES ((Py_ssize_t)1 << 20)
/* Samples up to this size are gathered on the stack (the default one is 4 KiB). */
#define SAMPLE_STACK_BYTES 8192

/* The fingerprint of a plain C-contiguous array, as fingerprints.fingerprint (whole) or
 * fingerprints.sampled_fingerprint (sampled: 16 blocks spread over its bytes, then a window
 * that moves with `turn`; the same bytes in the same order, so the same hash) give it. */
static int
array_hash(PyArrayObject *array, int sampled, long turn, unsigned long long *hash)
{
    const char *data = PyArray_BYTES(array);
    Py_ssize_t size = PyArray_NBYTES(array);
    if (sampled) {
        Py_ssize_t step = (size - sample_block_bytes) / (sample_blocks - 1);
        Py_ssize_t windows = (size + sample_window_bytes - 1) / sample_window_bytes;
        Py_ssize_t start = (turn % windows) * sample_window_bytes;
        Py_ssize_t window = size - start < sample_window_bytes ? size - start : sample_window_bytes;
        Py_ssize_t length = sample_blocks * sample_block_bytes + window;
        char on_stack[SAMPLE_STACK_BYTES];
        char *sample = length <= SAMPLE_STACK_BYTES ? on_stack : PyMem_Malloc((size_t)length);
        if (sample == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < sample_blocks; i++) {
            memcpy(sample + i * sample_block_bytes, data + i * step, (size_t)sample_block_bytes);
        }
        memcpy(sample + sample_blocks * sample_block_bytes, data + start, (size_t)window);
        int failed = 0;
        if (xxh3_direct != NULL) {
            *hash = xxh3_direct(sample, (size_t)length);
        }
        else {
            failed = hash_by_call(sample, length, NULL, hash);
        }
        if (sample != on_stack) {
            PyMem_Free(sample);
        }
        return failed;
    }
    if (xxh3_direct == NULL) {
        return hash_by_call(data, size, (PyObject *)array, hash);
    }
    if (size >= UNLOCKED_HASH_MIN_BYTES) {  /* this call holds a reference to the array */
        Py_BEGIN_ALLOW_THREADS
        *hash = xxh3_direct(data, (size_t)size);
        Py_END_ALLOW_THREADS
    }
    else {
        *hash = xxh3_direct(data, (size_t)size);
    }
    return 0;
}

/* What describe() finds about one array, before any Python object is made of it: a RawArray's
 * fields (model/records.py) as C values. The sample points to memory the caller owns. */
typedef struct {
    PyArray_Descr *dtype;  /* borrowed */
    Py_ssize_t nbytes;
    unsigned long long fingerprint;
    int hashed;  /* else the fingerprint is None */
    long bits;  /* RawArray.flags */
    int alias;  /* the input whose memory an output shares; -1: None */
    int will_be_copied;  /* -1: None (not known) */
    const char *sample;  /* NULL: None */
    Py_ssize_t sample_bytes;
} RawFields;

/* Arrays the compiled core describes itself: plain C-contiguous ndarrays of plain kinds. */
static int
is_plain_array(PyObject *value)
{
    return Py_TYPE(value) == ndarray_type && (PyArray_FLAGS((PyArrayObject *)value) & NPY_ARRAY_C_CONTIGUOUS)
           && is_plain_kind(PyArray_DESCR((PyArrayObject *)value)->kind);
}

/* Bytes that describe_plain() may write as a plain array's stats sample. */
static Py_ssize_t
sample_room(PyObject *value, long capture)
{
    PyArrayObject *array = (PyArrayObject *)value;
    return capture && strchr("biuf", PyArray_DESCR(array)->kind) != NULL ? sample_elements * PyArray_ITEMSIZE(array) : 0;
}

/* Stats samples up to this size are gathered on the stack (128 items of 16 bytes). */
#define SAMPLE_ROOM_STACK 2048

/* arrays.describe for a plain array (is_plain_array), into `fields`; its stats sample, if
 * `capture` asks for one, into `sample` (sample_room() bytes). */
static int
describe_plain(PyObject *value, long capture, int alias, int copy_check, long turn, int hash_large,
               RawFields *fields, char *sample)
{
    PyArrayObject *array = (PyArrayObject *)value;
    Py_ssize_t nbytes = PyArray_NBYTES(array);
    char kind = PyArray_DESCR(array)->kind;
    long bits = PyArray_FLAGS(array) & (flag_c_contiguous | flag_writeable);
    PyObject *base = PyArray_BASE(array);
    if (base != NULL && is_tensor_wrapper(base)) {
        bits |= flag_shares_tensor;
    }
    fields->dtype = PyArray_DESCR(array);
    fields->nbytes = nbytes;
    fields->alias = alias;
    fields->hashed = hash_large || nbytes < unhashed_from_bytes;
    fields->fingerprint = 0;
    if (fields->hashed) {
        int sampled = turn >= 0 && nbytes >= sampled_min_bytes;
        if (array_hash(array, sampled, turn, &fields->fingerprint) < 0) {
            return -1;
        }
        bits |= sampled ? flag_sampled : flag_buffer_hash;
    }
    fields->sample = NULL;
    fields->sample_bytes = 0;
    if (capture && strchr("biuf", kind) != NULL) {
        fields->sample_bytes = stats_sample(array, PyArray_SIZE(array), &bits, sample);
        fields->sample = sample;
    }
    fields->will_be_copied = -1;
    if (copy_check && nbytes >= copy_hint_min_bytes) {  /* arrays.tf_will_copy, C-contiguous */
        fields->will_be_copied = ((Py_uintptr_t)PyArray_DATA(array) % 64) != 0;
    }
    fields->bits = bits;
    return 0;
}

static PyObject *
optional_int(int value)
{
    return value < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(value);
}

/* The RawArray tuple of `fields`, whose shape is `shape` (a new reference, taken over). */
static PyObject *
raw_tuple(const RawFields *fields, PyObject *shape)
{
    PyObject *row = shape != NULL ? PyTuple_New(A_COUNT) : NULL;
    if (row == NULL) {
        Py_XDECREF(shape);
        return NULL;
    }
    PyTuple_SET_ITEM(row, A_SHAPE, shape);
    PyTuple_SET_ITEM(row, A_DTYPE, Py_NewRef((PyObject *)fields->dtype));
    PyTuple_SET_ITEM(row, A_NBYTES, PyLong_FromSsize_t(fields->nbytes));
    PyTuple_SET_ITEM(row, A_FINGERPRINT,
                     fields->hashed ? PyLong_FromUnsignedLongLong(fields->fingerprint) : Py_NewRef(Py_None));
    PyTuple_SET_ITEM(row, A_FLAGS, flags_number(fields->bits));
    PyTuple_SET_ITEM(row, A_ALIAS, optional_int(fields->alias));
    PyTuple_SET_ITEM(row, A_WILL_BE_COPIED,
                     Py_NewRef(fields->will_be_copied < 0 ? Py_None : fields->will_be_copied ? Py_True : Py_False));
    PyTuple_SET_ITEM(row, A_SAMPLE, fields->sample != NULL
                                        ? PyBytes_FromStringAndSize(fields->sample, fields->sample_bytes)
                                        : Py_NewRef(Py_None));
    PyTuple_SET_ITEM(row, A_DATA, Py_NewRef(Py_None));
    PyTuple_SET_ITEM(row, A_NOTE, Py_NewRef(Py_None));
    for (int k = 0; k < A_COUNT; k++) {
        if (PyTuple_GET_ITEM(row, k) == NULL) {
            Py_DECREF(row);  /* unset items are NULL: tuple dealloc skips them */
            return NULL;
        }
    }
    untrack_if_atomic(row);
    return row;
}

/* arrays.describe: a RawArray tuple (the Python one for anything but a plain array). */
static PyObject *
describe(PyObject *value, long capture, int alias, int copy_check, long turn, int hash_large)
{
    if (!is_plain_array(value)) {
        PyObject *alias_number = optional_int(alias);
        PyObject *raw = alias_number == NULL ? NULL : PyObject_CallFunction(
            py_describe, "OlOOOlO", value, capture, alias_number, copy_check ? Py_True : Py_False, Py_None, turn,
            hash_large ? Py_True : Py_False);
        Py_XDECREF(alias_number);
        return raw;
    }
    RawFields fields;
    char on_stack[SAMPLE_ROOM_STACK];
    Py_ssize_t room = sample_room(value, capture);
    char *sample = room <= SAMPLE_ROOM_STACK ? on_stack : PyMem_Malloc((size_t)room);
    if (sample == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *raw = NULL;
    if (describe_plain(value, capture, alias, copy_check, turn, hash_large, &fields, sample) == 0) {
        raw = raw_tuple(&fields, shape_of((PyArrayObject *)value));
    }
    if (sample != on_stack) {
        PyMem_Free(sample);
    }
    return raw;
}

static long
raw_flags(PyObject *raw)
{
    return PyLong_AsLong(PyTuple_GET_ITEM(raw, A_FLAGS));
}

/* probe.<name>(*args): a check of the reference core, called with the same arguments. */
static PyObject *
call_method(PyObject *probe, PyObject *name, PyObject *const *args, size_t nargs)
{
    PyObject *stack[8];  /* the most any check takes is 6 */
    stack[0] = probe;
    for (size_t i = 0; i < nargs; i++) {
        stack[i + 1] = args[i];
    }
    return PyObject_VectorcallMethod(name, stack, (nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* A check that appends to `violations` (its result, None, is dropped). */
static int
call_check(PyObject *probe, PyObject *name, PyObject *const *args, size_t nargs)
{
    PyObject *done = call_method(probe, name, args, nargs);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* A check that returns hints (a tuple, or one Hint): they are added to `hints`. */
static int
call_hints(PyObject *probe, PyObject *name, PyObject *const *args, size_t nargs, PyObject *hints)
{
    PyObject *found = call_method(probe, name, args, nargs);
    if (found == NULL) {
        return -1;
    }
    int failed = 0;
    if (PyTuple_Check(found) || PyList_Check(found)) {
        failed = PyList_SetSlice(hints, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, found);  /* extend */
    }
    else if (found != Py_None) {
        failed = PyList_Append(hints, found);
    }
    Py_DECREF(found);
    return failed < 0 ? -1 : 0;
}

/* Reference counts of an input array and of its base (retained-reference check). */
static void
count_refs(PyObject *value, Py_ssize_t *counts)
{
    if (Py_TYPE(value) == ndarray_type) {
        PyObject *base = PyArray_BASE((PyArrayObject *)value);
        counts[0] = Py_REFCNT(value);
        counts[1] = base != NULL ? Py_REFCNT(base) : 0;
    }
    else {
        counts[0] = counts[1] = 0;
    }
}

static PyObject *
counts_list(Py_ssize_t *counts, Py_ssize_t n)
{
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *count = PyLong_FromSsize_t(counts[i]);
        if (count == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, count);
    }
    return list;
}

/* Returned arrays held elsewhere (probe._output_refcounts), without a Python call for the common
 * result: one fresh array that owns its memory, whose only reference is the one we hold. */
static PyObject *
held_outputs(PyObject *result)
{
    if (Py_TYPE(result) == ndarray_type && PyArray_BASE((PyArrayObject *)result) == NULL) {
        Py_ssize_t extra = Py_REFCNT(result) - 1;
        if (extra > 0 && (PyArray_FLAGS((PyArrayObject *)result) & NPY_ARRAY_WRITEABLE)) {
            return Py_BuildValue("[(iOn)]", 0, result, extra);
        }
        Py_RETURN_NONE;  /* nothing held (an empty list, without allocating one) */
    }
    return PyObject_CallOneArg(output_refcounts, result);
}

/* Recorder.store for each exact sink; its common case (Recorder._hot) without a Python frame:
 * append, and trim when the buffer ran EVICTION_BATCH over capacity and no other thread trims. */
static int
store(PyObject *sinks, PyObject *row, int has_violations)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(sinks); i++) {
        PyObject *sink = PyTuple_GET_ITEM(sinks, i);
        PyObject *hot = has_violations ? NULL : slot_read(&hot_slot, sink);
        if (hot == NULL && PyErr_Occurred()) {
            return -1;
        }
        PyObject *done;
        if (hot == NULL || hot == Py_None || !PyTuple_Check(hot) || PyTuple_GET_SIZE(hot) != 4) {
            done = PyObject_CallMethodOneArg(sink, s_store, row);
        }
        else {
            done = PyObject_CallOneArg(PyTuple_GET_ITEM(hot, 0), row);
            if (done != NULL) {
                Py_ssize_t length = PyObject_Size(PyTuple_GET_ITEM(hot, 1));
                Py_ssize_t trim_above = PyLong_AsSsize_t(PyTuple_GET_ITEM(hot, 2));
                if (length > trim_above) {
                    PyObject *trimming = PyObject_CallNoArgs(PyTuple_GET_ITEM(hot, 3));
                    int busy = trimming == NULL ? -1 : PyObject_IsTrue(trimming);
                    Py_XDECREF(trimming);
                    Py_DECREF(done);
                    done = busy < 0 ? NULL : busy ? Py_NewRef(Py_None) : PyObject_CallMethodNoArgs(sink, s_trim);
                }
                else if (length < 0 || (trim_above == -1 && PyErr_Occurred())) {
                    Py_CLEAR(done);
                }
            }
        }
        Py_XDECREF(hot);
        if (done == NULL) {
            return -1;
        }
        Py_DECREF(done);
    }
    return 0;
}

/* The calling thread's ident as an int (the objects of recent idents are reused). */
#define IDENT_CACHE_SLOTS 64
static IntSlot ident_cache[IDENT_CACHE_SLOTS];

static PyObject *
thread_ident(void)
{
    unsigned long ident = PyThread_get_thread_ident();
    return cached_int(&ident_cache[(size_t)(ident ^ (ident >> 12)) % IDENT_CACHE_SLOTS], ident);  /* pthread_t: an address */
}

/* The calling thread's name, as probe._thread_name reads it (threading.current_thread().name):
 * the thread threading knows under this ident, else the Python function, whose current_thread()
 * makes the dummy thread that threading knows from then on. Nothing cached per thread: TF calls
 * under a thread state made for each call. Where the thread's class keeps threading.Thread's
 * own `name` property, what it returns (the `_name` attribute) is read without its Python frame. */
static PyObject *
thread_name(PyObject *ident)
{
    PyObject *thread = PyDict_GetItemWithError(threads, ident);
    if (thread == NULL) {
        return PyErr_Occurred() ? NULL : PyObject_CallNoArgs(thread_name_fn);
    }
    int plain = _PyType_Lookup(Py_TYPE(thread), s_name) == thread_name_property;  /* borrowed */
    return PyObject_GetAttr(thread, plain ? s_private_name : s_name);
}

/* time.perf_counter_ns(): CLOCK_MONOTONIC on Linux (what CPython reads there), else CPython's. */
static long long
perf_ns(void)
{
#ifdef __linux__
    struct timespec clock;
    if (clock_gettime(CLOCK_MONOTONIC, &clock) == 0) {
        return (long long)clock.tv_sec * 1000000000LL + clock.tv_nsec;
    }
#endif
    PyObject *now = PyObject_CallNoArgs(perf_counter_ns);
    if (now == NULL) {
        return -1;
    }
    long long ns = PyLong_AsLongLong(now);
    Py_DECREF(now);
    return ns;
}

static PyObject *ensure_raws(PyObject **raws, const RawFields *fields, PyObject *const *values, Py_ssize_t count);

/* The call failed: record it through the Python path, then re-raise the user's exception as is. */
static PyObject *
call_failed(PyObject *probe, PyObject *plan, PyObject *args, PyObject **raw_inputs, const RawFields *in_fields,
            PyObject *const *values, Py_ssize_t n, long long start, long long duration, long turn, int generator)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (generator && type == PyExc_StopIteration) {
        PyErr_Restore(type, value, traceback);  /* the end of the dataset, not a failed call */
        return NULL;
    }
    if (ensure_raws(raw_inputs, in_fields, values, n) == NULL) {
        PyErr_Clear();  /* recording never replaces the user's exception */
        PyErr_Restore(type, value, traceback);
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    PyObject *exc = value != NULL ? value : Py_None;
    PyObject *start_ns = PyLong_FromLongLong(start), *duration_ns = PyLong_FromLongLong(duration);
    PyObject *turn_now = PyLong_FromLong(turn);
    PyObject *recorded = NULL;
    if (start_ns != NULL && duration_ns != NULL && turn_now != NULL) {
        recorded = PyObject_CallMethodObjArgs(probe, s_record_failure, plan, args, *raw_inputs, start_ns,
                                              duration_ns, exc, turn_now, NULL);
    }
    if (recorded == NULL) {
        PyErr_Clear();  /* recording never replaces the user's exception */
    }
    Py_XDECREF(recorded);
    Py_XDECREF(start_ns);
    Py_XDECREF(duration_ns);
    Py_XDECREF(turn_now);
    PyErr_Restore(type, value, traceback);
    return NULL;
}

static PyObject *
reference(PyObject *const *argv, Py_ssize_t argc)
{
    return PyObject_Vectorcall(reference_call, argv, (size_t)argc, NULL);
}

static int
fast_flag(PyObject *fast, int field)
{
    return PyObject_IsTrue(PyTuple_GET_ITEM(fast, field));
}

/* ---- PackedRow: a stored row whose fields are C values, made into Python objects when read -----
 *
 * A recorded call that needs nothing worded (no violation, no hint, no failure) and whose arrays
 * are plain is stored as one PackedRow instead of a CallRow tuple of some thirteen objects (the
 * tuples of its arrays, their fingerprints, samples and numbers). Inside TF the cost of a
 * recorded call follows the objects it makes, keeps and frees (benchmarks/core_floor.py). A
 * PackedRow reads as the tuple it stands for: the same fields at the same indices (each made
 * anew at every read), equal to it, hashed and pickled as it. Readers that look at every field
 * (Invocation.from_row) turn it into that tuple. It holds only atomic objects (the site, the
 * thread name, the process, dtypes), so the garbage collector never tracks it. */
#define PACKED_MAX_DIMS 6
#define PACKED_MAX_ARRAYS 8  /* inputs, and outputs */
#define PACKED_SAMPLE_BYTES 4096  /* a call's stats samples, gathered on the stack first */

typedef struct {
    RawFields fields;  /* dtype: a strong reference; sample: into the row's own memory */
    int ndim;
    npy_intp dims[PACKED_MAX_DIMS];
} PackedArray;

typedef struct {
    PyObject_VAR_HEAD  /* ob_size: the bytes of `arrays`, then of their samples */
    PyObject *site, *thread_name, *process;
    long long seq, start, duration, bytes_in, bytes_out;
    unsigned long thread_id;
    int inputs, outputs;
    PackedArray arrays[];
} PackedRow;

static PyTypeObject PackedRowType;

/* Whether a plain array (is_plain_array) fits a PackedRow. */
static int
packable(PyObject *value)
{
    return PyArray_NDIM((PyArrayObject *)value) <= PACKED_MAX_DIMS;
}

static PyObject *
packed_row_new(PyObject *site, PyObject *thread_name, PyObject *process, long long seq, long long start,
               long long duration, unsigned long thread_id, long long bytes_in, long long bytes_out,
               const RawFields *inputs, PyObject *const *in_values, int n,
               const RawFields *outputs, PyObject *const *out_values, int m)
{
    Py_ssize_t samples = 0;
    for (int k = 0; k < n + m; k++) {
        samples += k < n ? inputs[k].sample_bytes : outputs[k - n].sample_bytes;
    }
    Py_ssize_t size = (Py_ssize_t)((n + m) * sizeof(PackedArray)) + samples;
    PackedRow *row = PyObject_NewVar(PackedRow, &PackedRowType, size);
    if (row == NULL) {
        return NULL;
    }
    row->site = Py_NewRef(site);
    row->thread_name = Py_NewRef(thread_name);
    row->process = Py_NewRef(process);
    row->seq = seq;
    row->start = start;
    row->duration = duration;
    row->thread_id = thread_id;
    row->inputs = n;
    row->outputs = m;
    row->bytes_in = bytes_in;
    row->bytes_out = bytes_out;
    char *sample = (char *)&row->arrays[n + m];
    for (int k = 0; k < n + m; k++) {
        PackedArray *array = &row->arrays[k];
        PyArrayObject *value = (PyArrayObject *)(k < n ? in_values[k] : out_values[k - n]);
        array->fields = k < n ? inputs[k] : outputs[k - n];
        Py_INCREF(array->fields.dtype);
        if (array->fields.sample != NULL) {
            memcpy(sample, array->fields.sample, (size_t)array->fields.sample_bytes);
            array->fields.sample = sample;
            sample += array->fields.sample_bytes;
        }
        array->ndim = PyArray_NDIM(value);
        memcpy(array->dims, PyArray_DIMS(value), (size_t)array->ndim * sizeof(npy_intp));
    }
    return (PyObject *)row;
}

static void
packed_row_dealloc(PackedRow *row)
{
    for (int k = 0; k < row->inputs + row->outputs; k++) {
        Py_DECREF(row->arrays[k].fields.dtype);
    }
    Py_DECREF(row->site);
    Py_DECREF(row->thread_name);
    Py_DECREF(row->process);
    PyObject_Free(row);
}

/* A tuple of RawArray tuples, the k-th made by raw_at(source, k), untracked like them. */
static PyObject *
raws_tuple(Py_ssize_t count, PyObject *(*raw_at)(const void *, Py_ssize_t), const void *source)
{
    PyObject *raws = PyTuple_New(count);
    for (Py_ssize_t k = 0; raws != NULL && k < count; k++) {
        PyObject *raw = raw_at(source, k);
        if (raw == NULL) {
            Py_CLEAR(raws);
            break;
        }
        PyTuple_SET_ITEM(raws, k, raw);
    }
    if (raws != NULL) {
        untrack_if_atomic(raws);
    }
    return raws;
}

static PyObject *
packed_raw_at(const void *arrays, Py_ssize_t k)
{
    const PackedArray *array = (const PackedArray *)arrays + k;
    return raw_tuple(&array->fields, cached_shape(array->ndim, array->dims));
}

/* The RawArray tuples of `count` of a row's arrays, from `first` on. */
static PyObject *
packed_raws(PackedRow *row, int first, int count)
{
    return raws_tuple(count, packed_raw_at, &row->arrays[first]);
}

static Py_ssize_t
packed_row_length(PyObject *row)
{
    (void)row;
    return R_COUNT;
}

/* CallRow field `index`, made from the row's C values. */
static PyObject *
packed_row_item(PyObject *self, Py_ssize_t index)
{
    PackedRow *row = (PackedRow *)self;
    switch (index) {
    case R_SEQ: return PyLong_FromLongLong(row->seq);
    case R_SITE: return Py_NewRef(row->site);
    case R_THREAD_ID: return PyLong_FromUnsignedLong(row->thread_id);
    case R_THREAD_NAME: return Py_NewRef(row->thread_name);
    case R_START: return PyLong_FromLongLong(row->start);
    case R_DURATION: return PyLong_FromLongLong(row->duration);
    case R_INPUTS: return packed_raws(row, 0, row->inputs);
    case R_OUTPUTS: return packed_raws(row, row->inputs, row->outputs);
    case R_ERROR: return Py_NewRef(Py_None);
    case R_VIOLATIONS: return PyTuple_New(0);
    case R_HINTS: return PyTuple_New(0);
    case R_PROCESS: return Py_NewRef(row->process);
    case R_BYTES_IN: return PyLong_FromLongLong(row->bytes_in);
    case R_BYTES_OUT: return PyLong_FromLongLong(row->bytes_out);
    default:
        PyErr_SetString(PyExc_IndexError, "tuple index out of range");
        return NULL;
    }
}

static PyObject *
packed_row_subscript(PyObject *self, PyObject *key)
{
    if (PyIndex_Check(key)) {
        Py_ssize_t index = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (index == -1 && PyErr_Occurred()) {
            return NULL;
        }
        return packed_row_item(self, index < 0 ? index + R_COUNT : index);
    }
    PyObject *tuple = PySequence_Tuple(self);
    PyObject *item = tuple != NULL ? PyObject_GetItem(tuple, key) : NULL;
    Py_XDECREF(tuple);
    return item;
}

/* Compared, hashed, shown and pickled as the CallRow tuple it stands for. */
static PyObject *
packed_row_richcompare(PyObject *self, PyObject *other, int op)
{
    PyObject *mine = PySequence_Tuple(self);
    PyObject *theirs = Py_TYPE(other) == &PackedRowType ? PySequence_Tuple(other) : Py_NewRef(other);
    PyObject *result = mine != NULL && theirs != NULL ? PyObject_RichCompare(mine, theirs, op) : NULL;
    Py_XDECREF(mine);
    Py_XDECREF(theirs);
    return result;
}

static Py_hash_t
packed_row_hash(PyObject *self)
{
    PyObject *tuple = PySequence_Tuple(self);
    Py_hash_t hash = tuple != NULL ? PyObject_Hash(tuple) : -1;
    Py_XDECREF(tuple);
    return hash;
}

static PyObject *
packed_row_repr(PyObject *self)
{
    PyObject *tuple = PySequence_Tuple(self);
    PyObject *text = tuple != NULL ? PyObject_Repr(tuple) : NULL;
    Py_XDECREF(tuple);
    return text;
}

static PyObject *
packed_row_reduce(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *tuple = PySequence_Tuple(self);
    PyObject *reduced = tuple != NULL ? Py_BuildValue("(O(O))", (PyObject *)&PyTuple_Type, tuple) : NULL;
    Py_XDECREF(tuple);
    return reduced;
}

static PySequenceMethods packed_row_as_sequence = {
    .sq_length = packed_row_length,
    .sq_item = packed_row_item,
};

static PyMappingMethods packed_row_as_mapping = {
    .mp_length = packed_row_length,
    .mp_subscript = packed_row_subscript,
};

static PyMethodDef packed_row_methods[] = {
    {"__reduce__", packed_row_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PackedRowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tfnp_inspect.recording._probe_core.PackedRow",
    .tp_doc = "A stored CallRow whose fields are C values, made into Python objects when read.",
    .tp_basicsize = offsetof(PackedRow, arrays),
    .tp_itemsize = 1,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_SEQUENCE,
    .tp_dealloc = (destructor)packed_row_dealloc,
    .tp_as_sequence = &packed_row_as_sequence,
    .tp_as_mapping = &packed_row_as_mapping,
    .tp_richcompare = packed_row_richcompare,
    .tp_hash = packed_row_hash,
    .tp_repr = packed_row_repr,
    .tp_methods = packed_row_methods,
};

/* A row's field (a new reference), whether the row is a CallRow tuple or a PackedRow. */
static PyObject *
row_field(PyObject *row, int index)
{
    return Py_TYPE(row) == &PackedRowType ? packed_row_item(row, index) : Py_NewRef(PyTuple_GET_ITEM(row, index));
}

typedef struct {
    const RawFields *fields;
    PyObject *const *values;
} Described;

static PyObject *
described_raw_at(const void *described, Py_ssize_t k)
{
    const Described *arrays = described;
    return raw_tuple(&arrays->fields[k], shape_of((PyArrayObject *)arrays->values[k]));
}

/* `*raws` made from the fields where it is not made yet (a packed call that a Python check or a
 * CallRow tuple needs after all); borrowed, NULL on error. */
static PyObject *
ensure_raws(PyObject **raws, const RawFields *fields, PyObject *const *values, Py_ssize_t count)
{
    if (*raws == NULL) {
        Described described = {fields, values};
        *raws = raws_tuple(count, described_raw_at, &described);
    }
    return *raws;
}

/* Whether a plain array's shape is `declared` (a tuple of ints); 0 for anything else (None
 * dimensions: the reference check decides). */
static int
shape_is(PyObject *value, PyObject *declared)
{
    PyArrayObject *array = (PyArrayObject *)value;
    if (!PyTuple_CheckExact(declared) || PyTuple_GET_SIZE(declared) != PyArray_NDIM(array)) {
        return 0;
    }
    for (int k = 0; k < PyArray_NDIM(array); k++) {
        PyObject *dim = PyTuple_GET_ITEM(declared, k);
        if (!PyLong_CheckExact(dim)) {
            return 0;
        }
        Py_ssize_t size = PyLong_AsSsize_t(dim);
        if (size == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (size != PyArray_DIM(array, k)) {
            return 0;
        }
    }
    return 1;
}

/* call(probe, func, args, plan, eager_inputs=()) -- what CallProbe.call does, for the common calls. */
static PyObject *
core_call(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    if (argc < 4 || argc > 5) {
        PyErr_SetString(PyExc_TypeError, "call(probe, func, args, plan, eager_inputs=())");
        return NULL;
    }
    if (!initialized) {
        PyErr_SetString(PyExc_RuntimeError, "tfnp_inspect._probe_core.init() was not called");
        return NULL;
    }
    PyObject *probe = argv[0], *func = argv[1], *args = argv[2], *plan = argv[3];
    PyObject *eager_inputs = argc == 5 ? argv[4] : NULL;

    /* -- the reference path for what this core does not do ------------------------------------ */
    PyObject *fast = slot_read(&fast_slot, probe);
    if (fast == NULL) {
        return NULL;
    }
    int delegate = fast == Py_None || !PyTuple_Check(fast) || PyTuple_GET_SIZE(fast) != F_COUNT
                   || PyTuple_GET_ITEM(fast, F_PLAN) != plan;
    if (!delegate) {
        PyObject *version = slot_read(&version_slot, switches);
        if (version == NULL) {
            Py_DECREF(fast);
            return NULL;
        }
        delegate = PyObject_RichCompareBool(version, PyTuple_GET_ITEM(fast, F_SWITCHES_VERSION), Py_NE);
        Py_DECREF(version);
        if (delegate < 0) {
            Py_DECREF(fast);
            return NULL;
        }
    }
    if (delegate) {
        Py_DECREF(fast);
        return reference(argv, argc);
    }

    PyObject *result = NULL, *items = NULL, *raw_inputs = NULL, *raw_outputs = NULL, *violations = NULL,
             *hints = NULL, *seq = NULL, *row = NULL, *out_items = NULL, *tokens_before = NULL;
    PyObject *watch = PyTuple_GET_ITEM(fast, F_WATCH);
    PyObject *stack_roots[MAX_STACK_ARGS];
    Py_ssize_t stack_counts[4 * MAX_STACK_ARGS];
    long stack_bits[MAX_STACK_ARGS];
    PyObject **roots = stack_roots;
    Py_ssize_t *counts = stack_counts;
    long *in_bits = stack_bits;  /* each input's RawArray.flags */
    RawFields in_fields[PACKED_MAX_ARRAYS], out_fields[PACKED_MAX_ARRAYS];
    char samples[PACKED_SAMPLE_BYTES];  /* a packed call's stats samples, until its row is made */
    int ok = 0;

    long capture = PyLong_AsLong(PyTuple_GET_ITEM(fast, F_CAPTURE));
    int retained = fast_flag(fast, F_RETAINED);
    int graph = fast_flag(fast, F_GRAPH);
    int hash_outputs = fast_flag(fast, F_HASH_OUTPUTS);

    /* byte_checks='sampled': large arrays are hashed whole on the first calls and one in
     * full_check_every, sampled on the others (turn -1: every byte) */
    PyObject *counter = PyTuple_GET_ITEM(fast, F_CALLS);
    if (!PyList_Check(counter) || PyList_GET_SIZE(counter) != 1) {
        PyErr_SetString(PyExc_TypeError, "CallProbe._calls must be a one-item list");
        goto done;
    }
    long calls = PyLong_AsLong(PyList_GET_ITEM(counter, 0));
    PyObject *calls_next = PyLong_FromLong(calls + 1);
    if (calls_next == NULL) {
        goto done;
    }
    PyList_SetItem(counter, 0, calls_next);  /* steals the new count, drops the old one */
    long turn = (fast_flag(fast, F_EVERY_BYTE) || calls < full_check_calls || calls % full_check_every == 0)
                    ? -1 : calls;

    /* -- before the call: describe the inputs as TF passed them -------------------------------- */
    items = PySequence_Fast(args, "numpy_function arguments must be a sequence");
    if (items == NULL) {
        goto done;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    PyObject **values = PySequence_Fast_ITEMS(items);
    if (n > MAX_STACK_ARGS) {
        roots = PyMem_Malloc(n * sizeof(PyObject *));
        counts = PyMem_Malloc(4 * n * sizeof(Py_ssize_t));
        in_bits = PyMem_Malloc(n * sizeof(long));
        if (roots == NULL || counts == NULL || in_bits == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    /* packed: every input is described as C values (in_fields), made into RawArray tuples
     * (raw_inputs) only if a Python check or a CallRow tuple needs them; else raw_inputs at once */
    int packed = n <= PACKED_MAX_ARRAYS;
    Py_ssize_t in_room = 0, samples_used = 0;
    for (Py_ssize_t i = 0; packed && i < n; i++) {
        packed = is_plain_array(values[i]) && packable(values[i]);
        in_room += packed ? sample_room(values[i], capture) : 0;
    }
    packed = packed && in_room <= PACKED_SAMPLE_BYTES;
    if (!packed && (raw_inputs = PyTuple_New(n)) == NULL) {
        goto done;
    }
    long long bytes_in = 0;
    int inputs_rehashable = 1;  /* every input array re-hashable here (else: the Python check) */
    int inputs_sampled = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = values[i];
        roots[i] = Py_TYPE(value) == ndarray_type ? alias_root(value) : NULL;
        if (retained) {
            count_refs(value, counts + 2 * i);
        }
        if (packed) {
            if (describe_plain(value, capture, -1, 0, turn, 1, &in_fields[i], samples + samples_used) < 0) {
                goto done;
            }
            samples_used += in_fields[i].sample_bytes;
            in_bits[i] = in_fields[i].bits;
            bytes_in += in_fields[i].nbytes;
        }
        else {
            PyObject *raw = describe(value, capture, -1, 0, turn, 1);
            if (raw == NULL) {
                goto done;
            }
            PyTuple_SET_ITEM(raw_inputs, i, raw);
            in_bits[i] = raw_flags(raw);
            bytes_in += PyLong_AsLongLong(PyTuple_GET_ITEM(raw, A_NBYTES));
        }
        if (roots[i] != NULL && !(in_bits[i] & (flag_buffer_hash | flag_sampled))) {
            inputs_rehashable = 0;
        }
        inputs_sampled |= (in_bits[i] & flag_sampled) != 0;
    }

    if (watch != Py_None && (tokens_before = PyObject_CallMethodNoArgs(watch, s_snapshot)) == NULL) {
        goto done;
    }

    /* -- the call itself ------------------------------------------------------------------------ */
    long long start = perf_ns();
    if (start < 0) {
        goto done;
    }
    result = PyObject_Vectorcall(func, values, (size_t)n, NULL);
    long long duration = perf_ns() - start;
    if (result == NULL) {
        call_failed(probe, plan, args, &raw_inputs, in_fields, values, n, start, duration, turn,
                    fast_flag(fast, F_GENERATOR));
        goto done;
    }
    seq = PyIter_Next(seq_counter);
    if (seq == NULL) {
        goto done;
    }

    /* -- retained references: counted before anything else takes a reference ------------------ */
    if (retained) {
        int changed = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            count_refs(values[i], counts + 2 * n + 2 * i);
            changed |= counts[2 * n + 2 * i] != counts[2 * i] || counts[2 * n + 2 * i + 1] != counts[2 * i + 1];
        }
        PyObject *held = held_outputs(result);
        if (held == NULL) {
            goto done;
        }
        if (changed) {
            PyObject *expected = counts_list(counts, 2 * n), *after = counts_list(counts + 2 * n, 2 * n);
            int failed = expected == NULL || after == NULL;
            if (!failed) {
                failed = (violations = list_ready(violations)) == NULL;
            }
            if (!failed) {
                PyObject *check[] = {args, expected, after, result, seq, violations};
                failed = call_check(probe, s_check_retained_inputs, check, 6) < 0;
            }
            Py_XDECREF(expected);
            Py_XDECREF(after);
            if (failed) {
                Py_DECREF(held);
                goto done;
            }
        }
        PyObject *kept = slot_read(&kept_outputs_slot, probe);
        int remembered = kept == NULL ? -1 : PyObject_IsTrue(kept);
        Py_XDECREF(kept);
        if (remembered < 0) {
            Py_DECREF(held);
            goto done;
        }
        if (remembered || (held != Py_None && PyList_GET_SIZE(held))) {
            if (held == Py_None) {
                Py_SETREF(held, PyList_New(0));
            }
            PyObject *root_list = PyList_New(n);
            int failed = root_list == NULL || held == NULL;
            for (Py_ssize_t i = 0; !failed && i < n; i++) {
                PyObject *root = roots[i] != NULL ? roots[i] : Py_None;
                Py_INCREF(root);
                PyList_SET_ITEM(root_list, i, root);
            }
            if (!failed) {
                failed = (violations = list_ready(violations)) == NULL;
            }
            if (!failed) {
                PyObject *check[] = {held, root_list, args, seq, violations};
                failed = call_check(probe, s_check_kept_outputs, check, 5) < 0;
            }
            Py_XDECREF(root_list);
            if (failed) {
                Py_XDECREF(held);
                goto done;
            }
        }
        Py_DECREF(held);
    }

    /* -- mutated inputs: hash again the way they were hashed before the call ------------------- */
    if (fast_flag(fast, F_MUTATION)) {
        int mutated = !inputs_rehashable;
        for (Py_ssize_t i = 0; !mutated && i < n; i++) {
            if (roots[i] == NULL) {
                continue;
            }
            unsigned long long now, before = packed ? in_fields[i].fingerprint : PyLong_AsUnsignedLongLong(
                PyTuple_GET_ITEM(PyTuple_GET_ITEM(raw_inputs, i), A_FINGERPRINT));
            if ((before == (unsigned long long)-1 && PyErr_Occurred())
                || array_hash((PyArrayObject *)values[i], (in_bits[i] & flag_sampled) != 0, turn, &now) < 0) {
                goto done;
            }
            mutated = now != before && (PyArray_FLAGS((PyArrayObject *)values[i]) & NPY_ARRAY_WRITEABLE);
        }
        if (mutated) {  /* the reference check words the violations (and handles sampled arrays) */
            PyObject *turn_now = PyLong_FromLong(turn);
            violations = list_ready(violations);
            PyObject *check[] = {args, ensure_raws(&raw_inputs, in_fields, values, n), seq, violations, turn_now};
            int failed = turn_now == NULL || violations == NULL || check[1] == NULL
                         || call_check(probe, s_find_mutations, check, 5) < 0;
            Py_XDECREF(turn_now);
            if (failed) {
                goto done;
            }
        }
    }

    /* -- outputs -------------------------------------------------------------------------------- */
    PyObject **outputs = &result;
    Py_ssize_t m = result == Py_None ? 0 : 1;
    if (PyTuple_CheckExact(result) || PyList_CheckExact(result)) {
        out_items = PySequence_Fast(result, "result");
        if (out_items == NULL) {
            goto done;
        }
        outputs = PySequence_Fast_ITEMS(out_items);
        m = PySequence_Fast_GET_SIZE(out_items);
    }
    /* packed_out: the outputs described as C values too (out_fields), where the inputs were */
    int packed_out = packed && m <= PACKED_MAX_ARRAYS;
    Py_ssize_t out_room = 0;
    for (Py_ssize_t j = 0; packed_out && j < m; j++) {
        packed_out = is_plain_array(outputs[j]) && packable(outputs[j]);
        out_room += packed_out ? sample_room(outputs[j], capture) : 0;
    }
    packed_out = packed_out && samples_used + out_room <= PACKED_SAMPLE_BYTES;
    if (!packed_out && (raw_outputs = PyTuple_New(m)) == NULL) {
        goto done;
    }
    long long bytes_out = 0;
    int outputs_sampled = 0;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *value = outputs[j];
        int alias = -1;
        if (Py_TYPE(value) == ndarray_type) {
            PyObject *root = alias_root(value);
            for (Py_ssize_t i = 0; i < n; i++) {
                if (roots[i] == root) {
                    alias = (int)i;
                    break;
                }
            }
        }
        if (packed_out) {
            RawFields *fields = &out_fields[j];
            if (describe_plain(value, capture, alias, graph, turn, hash_outputs, fields, samples + samples_used) < 0) {
                goto done;
            }
            samples_used += fields->sample_bytes;
            bytes_out += fields->nbytes;
            outputs_sampled |= (fields->bits & flag_sampled) != 0;
        }
        else {
            PyObject *raw = describe(value, capture, alias, graph, turn, hash_outputs);
            if (raw == NULL) {
                goto done;
            }
            PyTuple_SET_ITEM(raw_outputs, j, raw);
            bytes_out += PyLong_AsLongLong(PyTuple_GET_ITEM(raw, A_NBYTES));
            outputs_sampled |= (raw_flags(raw) & flag_sampled) != 0;
        }
    }

    if (fast_flag(fast, F_TOUT_CHECK)
        && (Py_TYPE(result) != ndarray_type
            || (PyObject *)PyArray_DESCR((PyArrayObject *)result) != PyTuple_GET_ITEM(fast, F_TOUT_SINGLE))) {
        PyObject *eager = eager_inputs != NULL ? eager_inputs : PyTuple_New(0);
        violations = list_ready(violations);
        hints = list_ready(hints);
        int failed = eager == NULL || violations == NULL || hints == NULL;
        if (!failed) {
            PyObject *check[] = {result, seq, violations, eager};
            failed = call_hints(probe, s_check_tout, check, 4, hints) < 0;
        }
        if (eager_inputs == NULL) {
            Py_XDECREF(eager);
        }
        if (failed) {
            goto done;
        }
    }
    if (fast_flag(fast, F_SHAPE_CHECK)) {
        PyObject *declared = PyTuple_GET_ITEM(fast, F_STATIC_SHAPES);
        Py_ssize_t known = PyTuple_Check(declared) ? PyTuple_GET_SIZE(declared) : 0;
        for (Py_ssize_t j = 0; j < m && j < known; j++) {
            PyObject *shape = PyTuple_GET_ITEM(declared, j);
            if (shape == Py_None) {
                continue;
            }
            int same = packed_out ? shape_is(outputs[j], shape) : PyObject_RichCompareBool(
                PyTuple_GET_ITEM(PyTuple_GET_ITEM(raw_outputs, j), A_SHAPE), shape, Py_EQ);
            if (same < 0) {
                goto done;
            }
            if (!same) {  /* the reference check decides (partly known shapes) and words it */
                if ((violations = list_ready(violations)) == NULL
                    || ensure_raws(&raw_outputs, out_fields, outputs, m) == NULL) {
                    goto done;
                }
                PyObject *check[] = {raw_outputs, seq, violations};
                if (call_check(probe, s_check_shapes, check, 3) < 0) {
                    goto done;
                }
                break;
            }
        }
    }
    if (fast_flag(fast, F_NONDETERMINISM) && (turn < 0 || !(inputs_sampled || outputs_sampled))) {
        if ((violations = list_ready(violations)) == NULL || ensure_raws(&raw_inputs, in_fields, values, n) == NULL
            || ensure_raws(&raw_outputs, out_fields, outputs, m) == NULL) {
            goto done;
        }
        PyObject *check[] = {raw_inputs, raw_outputs, seq, violations};
        if (call_check(probe, s_check_determinism, check, 4) < 0) {
            goto done;
        }
    }
    if (watch != Py_None) {  /* hidden state (stateless functions), purity evidence (stateful ones) */
        if ((violations = list_ready(violations)) == NULL || (hints = list_ready(hints)) == NULL) {
            goto done;
        }
        PyObject *check[] = {watch, tokens_before, seq, violations};
        if (call_hints(probe, s_check_state, check, 4, hints) < 0) {
            goto done;
        }
    }
    if (graph && !packed_out) {  /* plain arrays are C-contiguous: no such hint */
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *raw = PyTuple_GET_ITEM(raw_outputs, j);
            if (PyTuple_GET_ITEM(raw, A_WILL_BE_COPIED) == Py_True && !(raw_flags(raw) & flag_c_contiguous)) {
                if ((hints = list_ready(hints)) == NULL) {
                    goto done;
                }
                PyObject *check[] = {seq, raw_outputs};
                if (call_hints(probe, s_copied_hint, check, 2, hints) < 0) {
                    goto done;
                }
                break;
            }
        }
    }

    /* -- the row: a PackedRow where nothing was found and every array was described in C --------- */
    int violated = violations != NULL && PyList_GET_SIZE(violations) > 0;
    int hinted = hints != NULL && PyList_GET_SIZE(hints) > 0;
    PyObject *ident = thread_ident();
    PyObject *name = ident != NULL ? thread_name(ident) : NULL;
    PyObject *process = name != NULL ? PyDict_GetItemWithError(records_dict, s_process) : NULL;  /* borrowed */
    if (process == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "tfnp_inspect: records._process is missing");
        }
        Py_XDECREF(ident);
        Py_XDECREF(name);
        goto done;
    }
    if (packed_out && !violated && !hinted) {
        long long number = PyLong_AsLongLong(seq);
        unsigned long thread = PyLong_AsUnsignedLong(ident);
        if (!PyErr_Occurred()) {
            row = packed_row_new(PyTuple_GET_ITEM(fast, F_SITE_ROW), name, process, number, start + wall_offset_ns,
                                 duration, thread, bytes_in, bytes_out, in_fields, values, (int)n, out_fields,
                                 outputs, (int)m);
        }
        Py_DECREF(ident);
        Py_DECREF(name);
        if (row == NULL) {
            goto done;
        }
    }
    else {
        if (ensure_raws(&raw_inputs, in_fields, values, n) == NULL
            || ensure_raws(&raw_outputs, out_fields, outputs, m) == NULL || (row = PyTuple_New(R_COUNT)) == NULL) {
            Py_DECREF(ident);
            Py_DECREF(name);
            goto done;
        }
        untrack_if_atomic(raw_inputs);
        untrack_if_atomic(raw_outputs);
        PyTuple_SET_ITEM(row, R_SEQ, Py_NewRef(seq));
        PyTuple_SET_ITEM(row, R_SITE, Py_NewRef(PyTuple_GET_ITEM(fast, F_SITE_ROW)));
        PyTuple_SET_ITEM(row, R_THREAD_ID, ident);
        PyTuple_SET_ITEM(row, R_THREAD_NAME, name);
        PyTuple_SET_ITEM(row, R_START, PyLong_FromLongLong(start + wall_offset_ns));
        PyTuple_SET_ITEM(row, R_DURATION, PyLong_FromLongLong(duration));
        PyTuple_SET_ITEM(row, R_INPUTS, Py_NewRef(raw_inputs));
        PyTuple_SET_ITEM(row, R_OUTPUTS, Py_NewRef(raw_outputs));
        PyTuple_SET_ITEM(row, R_ERROR, Py_NewRef(Py_None));
        PyTuple_SET_ITEM(row, R_VIOLATIONS, violated ? PyObject_CallOneArg(rows_of, violations) : PyTuple_New(0));
        PyTuple_SET_ITEM(row, R_HINTS, hinted ? PyObject_CallOneArg(rows_of, hints) : PyTuple_New(0));
        PyTuple_SET_ITEM(row, R_PROCESS, Py_NewRef(process));
        PyTuple_SET_ITEM(row, R_BYTES_IN, PyLong_FromLongLong(bytes_in));
        PyTuple_SET_ITEM(row, R_BYTES_OUT, PyLong_FromLongLong(bytes_out));
        for (int k = 0; k < R_COUNT; k++) {
            if (PyTuple_GET_ITEM(row, k) == NULL) {
                goto done;
            }
        }
        untrack_if_atomic(row);
    }
    if (store(PyTuple_GET_ITEM(fast, F_EXACT_SINKS), row, violated) < 0) {
        goto done;
    }
    if (PyTuple_GET_SIZE(PyTuple_GET_ITEM(fast, F_FITTED_SINKS)) || violated) {
        PyObject *delivered = PyObject_CallFunctionObjArgs(deliver_rest, plan, row, NULL);
        if (delivered == NULL) {  /* strict mode: ViolationError */
            goto done;
        }
        Py_DECREF(delivered);
    }
    ok = 1;

done:
    if (roots != stack_roots) {
        PyMem_Free(roots);
    }
    if (counts != stack_counts) {
        PyMem_Free(counts);
    }
    if (in_bits != stack_bits) {
        PyMem_Free(in_bits);
    }
    Py_DECREF(fast);
    Py_XDECREF(items);
    Py_XDECREF(out_items);
    Py_XDECREF(raw_inputs);
    Py_XDECREF(raw_outputs);
    Py_XDECREF(violations);
    Py_XDECREF(hints);
    Py_XDECREF(seq);
    Py_XDECREF(row);
    Py_XDECREF(tokens_before);
    if (!ok) {
        Py_XDECREF(result);
        return NULL;
    }
    return result;
}

static int
take(PyObject *kwargs, const char *name, PyObject **slot)
{
    PyObject *value = PyDict_GetItemString(kwargs, name);
    if (value == NULL) {
        PyErr_Format(PyExc_TypeError, "init() needs %s", name);
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
    return 0;
}

static int
take_number(PyObject *kwargs, const char *name, long long *out)
{
    PyObject *value = NULL;
    if (take(kwargs, name, &value) < 0) {
        return -1;
    }
    *out = PyLong_AsLongLong(value);
    Py_DECREF(value);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* Call XXH3 at `address` from now on, if it hashes probe texts as `xxh3` does (else, or for 0,
 * keep calling `xxh3`): a short one and one past 240 bytes, where XXH3 switches to its long,
 * vectorised loop (the one a dispatching build picks by CPU). */
static int
use_direct_xxh3(Py_uintptr_t address)
{
    static const char text[] = "tfnp_inspect: the compiled core's direct XXH3, checked at init";
    char long_text[4096];
    xxh3_direct = NULL;
    if (address == 0) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(long_text); i++) {
        long_text[i] = text[i % (sizeof(text) - 1)] ^ (char)(i >> 6);
    }
    unsigned long long (*candidate)(const void *, size_t) = (unsigned long long (*)(const void *, size_t))address;
    unsigned long long expected, expected_long;
    if (hash_by_call(text, (Py_ssize_t)sizeof(text), NULL, &expected) < 0
        || hash_by_call(long_text, (Py_ssize_t)sizeof(long_text), NULL, &expected_long) < 0) {
        return -1;
    }
    if (candidate(text, sizeof(text)) == expected && candidate(long_text, sizeof(long_text)) == expected_long) {
        xxh3_direct = candidate;
    }
    return 0;
}

/* init(**objects): what probe.py hands over once, at import. True when XXH3 is called directly. */
static PyObject *
core_init(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    if (PyTuple_GET_SIZE(args) != 0 || kwargs == NULL) {
        PyErr_SetString(PyExc_TypeError, "init() takes keyword arguments only");
        return NULL;
    }
    PyObject *ndarray = NULL;
    long long numbers[17];
    if (take(kwargs, "ndarray", &ndarray) < 0 || take(kwargs, "xxh3", &xxh3) < 0
        || take(kwargs, "describe", &py_describe) < 0 || take(kwargs, "perf_counter_ns", &perf_counter_ns) < 0
        || take(kwargs, "seq", &seq_counter) < 0
        || take(kwargs, "thread_name", &thread_name_fn) < 0 || take(kwargs, "threads", &threads) < 0
        || take(kwargs, "thread_name_property", &thread_name_property) < 0
        || take(kwargs, "switches", &switches) < 0
        || take(kwargs, "records", &records_dict) < 0 || take(kwargs, "output_refcounts", &output_refcounts) < 0
        || take(kwargs, "rows_of", &rows_of) < 0 || take(kwargs, "deliver_rest", &deliver_rest) < 0
        || take(kwargs, "reference_call", &reference_call) < 0
        || take_number(kwargs, "wall_offset_ns", &numbers[0]) < 0
        || take_number(kwargs, "sampled_min_bytes", &numbers[1]) < 0
        || take_number(kwargs, "full_check_calls", &numbers[2]) < 0
        || take_number(kwargs, "full_check_every", &numbers[3]) < 0
        || take_number(kwargs, "copy_hint_min_bytes", &numbers[4]) < 0
        || take_number(kwargs, "sample_elements", &numbers[5]) < 0
        || take_number(kwargs, "flag_c_contiguous", &numbers[6]) < 0
        || take_number(kwargs, "flag_writeable", &numbers[7]) < 0
        || take_number(kwargs, "flag_shares_tensor", &numbers[8]) < 0
        || take_number(kwargs, "flag_stats_exact", &numbers[9]) < 0
        || take_number(kwargs, "flag_buffer_hash", &numbers[10]) < 0
        || take_number(kwargs, "flag_sampled", &numbers[11]) < 0
        || take_number(kwargs, "unhashed_from_bytes", &numbers[12]) < 0
        || take_number(kwargs, "sample_blocks", &numbers[13]) < 0
        || take_number(kwargs, "sample_block_bytes", &numbers[14]) < 0
        || take_number(kwargs, "sample_window_bytes", &numbers[15]) < 0
        || take_number(kwargs, "xxh3_address", &numbers[16]) < 0) {
        Py_XDECREF(ndarray);
        return NULL;
    }
    /* sampling needs arrays of at least one block per sample (the Python twin assumes it too) */
    if ((PyTypeObject *)ndarray != &PyArray_Type || !PyDict_Check(records_dict) || !PyDict_Check(threads) || numbers[3] <= 0
        || numbers[5] <= 0 || numbers[13] < 2 || numbers[15] <= 0 || numbers[1] < numbers[13] * numbers[14]) {
        Py_DECREF(ndarray);
        PyErr_SetString(PyExc_ValueError, "init(): not the numpy this core was built for, or bad constants");
        return NULL;
    }
    ndarray_type = (PyTypeObject *)ndarray;  /* kept: a static type, alive as long as numpy */
    wall_offset_ns = numbers[0];
    sampled_min_bytes = (Py_ssize_t)numbers[1];
    full_check_calls = (long)numbers[2];
    full_check_every = (long)numbers[3];
    copy_hint_min_bytes = (Py_ssize_t)numbers[4];
    sample_elements = (Py_ssize_t)numbers[5];
    flag_c_contiguous = (long)numbers[6];
    flag_writeable = (long)numbers[7];
    flag_shares_tensor = (long)numbers[8];
    flag_stats_exact = (long)numbers[9];
    flag_buffer_hash = (long)numbers[10];
    flag_sampled = (long)numbers[11];
    unhashed_from_bytes = (Py_ssize_t)numbers[12];
    sample_blocks = (Py_ssize_t)numbers[13];
    sample_block_bytes = (Py_ssize_t)numbers[14];
    sample_window_bytes = (Py_ssize_t)numbers[15];
    if (use_direct_xxh3((Py_uintptr_t)numbers[16]) < 0) {
        return NULL;
    }
    initialized = 1;
    return PyBool_FromLong(xxh3_direct != NULL);
}


/* A row's int at `index` as a C integer; 0 with *usable cleared where it is not an exact int that
 * fits (the Python twin then reads the batch). */
static long long
row_int(PyObject *row, int index, int *usable)
{
    PyObject *value = PyTuple_GET_ITEM(row, index);
    int overflow = 0;
    long long number = PyLong_CheckExact(value) ? PyLong_AsLongLongAndOverflow(value, &overflow) : 0;
    if (!PyLong_CheckExact(value) || overflow || (number == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        *usable = 0;
        return 0;
    }
    return number;
}

/* Whether two RawArray tuples (at one position of two rows) have one shape and one dtype. */
static int
same_array_kind(PyObject *raw, PyObject *first)
{
    if (!PyTuple_CheckExact(raw) || PyTuple_GET_SIZE(raw) != A_COUNT) {
        return 0;
    }
    int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(raw, A_SHAPE), PyTuple_GET_ITEM(first, A_SHAPE), Py_EQ);
    if (same > 0) {
        same = PyObject_RichCompareBool(PyTuple_GET_ITEM(raw, A_DTYPE), PyTuple_GET_ITEM(first, A_DTYPE), Py_EQ);
    }
    return same;
}

/* Whether a row's arrays (inputs or outputs) are as many as the first row's, each of the same
 * shape and dtype; -1 on error. */
static int
same_arrays(PyObject *arrays, PyObject *first)
{
    if (arrays == first) {
        return 1;
    }
    if (!PyTuple_CheckExact(arrays) || PyTuple_GET_SIZE(arrays) != PyTuple_GET_SIZE(first)) {
        return 0;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(arrays); k++) {
        int same = same_array_kind(PyTuple_GET_ITEM(arrays, k), PyTuple_GET_ITEM(first, k));
        if (same <= 0) {
            return same;
        }
    }
    return 1;
}

/* Whether two PackedRows have as many inputs and as many outputs, at each position of one shape
 * and one dtype; -1 on error. */
static int
packed_same_arrays(const PackedRow *row, const PackedRow *first)
{
    if (row->inputs != first->inputs || row->outputs != first->outputs) {
        return 0;
    }
    for (int k = 0; k < row->inputs + row->outputs; k++) {
        const PackedArray *array = &row->arrays[k], *other = &first->arrays[k];
        if (array->ndim != other->ndim || memcmp(array->dims, other->dims, (size_t)array->ndim * sizeof(npy_intp))) {
            return 0;
        }
        if (array->fields.dtype != other->fields.dtype) {
            int same = PyObject_RichCompareBool((PyObject *)array->fields.dtype, (PyObject *)other->fields.dtype, Py_EQ);
            if (same <= 0) {
                return same;
            }
        }
    }
    return 1;
}

/* Whether a row's arrays are as many as the first row's inputs and outputs (their RawArray
 * tuples), each of the same shape and dtype; -1 on error. */
static int
same_arrays_as(PyObject *row, PyObject *first_inputs, PyObject *first_outputs)
{
    PyObject *inputs = row_field(row, R_INPUTS);
    PyObject *outputs = inputs != NULL ? row_field(row, R_OUTPUTS) : NULL;
    int same = outputs == NULL ? -1 : same_arrays(inputs, first_inputs);
    if (same > 0) {
        same = same_arrays(outputs, first_outputs);
    }
    Py_XDECREF(inputs);
    Py_XDECREF(outputs);
    return same;
}

/* columns(rows) -- model.columns.columns_of in one pass over a list of stored rows (CallRow
 * tuples and PackedRows), as a tuple in RowColumns' order; None where the Python twin must read
 * them (an empty batch, a row of another kind, a value beyond int64). */
static PyObject *
core_columns(PyObject *module, PyObject *rows)
{
    (void)module;
    if (!PyList_CheckExact(rows) || PyList_GET_SIZE(rows) == 0) {
        Py_RETURN_NONE;
    }
    npy_intp n = PyList_GET_SIZE(rows);
    PyObject *first = PyList_GET_ITEM(rows, 0);
    int first_packed = Py_TYPE(first) == &PackedRowType;
    if (!first_packed && (!PyTuple_CheckExact(first) || PyTuple_GET_SIZE(first) != R_COUNT)) {
        Py_RETURN_NONE;
    }
    PyObject *durations = PyArray_SimpleNew(1, &n, NPY_INT64), *starts = PyArray_SimpleNew(1, &n, NPY_INT64);
    PyObject *violations = PyList_New(0), *threads = PyDict_New();
    PyObject *first_inputs = row_field(first, R_INPUTS), *first_outputs = row_field(first, R_OUTPUTS);
    PyObject *site = first_packed ? ((PackedRow *)first)->site : PyTuple_GET_ITEM(first, R_SITE);
    PyObject *result = NULL, *last_ident = NULL;
    unsigned long last_thread = 0;
    int last_thread_known = 0;  /* last_thread is the thread of the row before (a PackedRow) */
    if (durations == NULL || starts == NULL || violations == NULL || threads == NULL || first_inputs == NULL
        || first_outputs == NULL) {
        goto done;
    }
    int64_t *duration_at = PyArray_DATA((PyArrayObject *)durations), *start_at = PyArray_DATA((PyArrayObject *)starts);
    int usable = PyTuple_CheckExact(first_inputs) && PyTuple_CheckExact(first_outputs);
    int one_site = 1, uniform = 1;
    long long errors = 0, bytes_in = 0, bytes_out = 0;
    for (npy_intp i = 0; usable && i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        int packed = Py_TYPE(row) == &PackedRowType;
        if (!packed && (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != R_COUNT)) {
            usable = 0;
            break;
        }
        PyObject *row_site = packed ? ((PackedRow *)row)->site : PyTuple_GET_ITEM(row, R_SITE);
        if (one_site && row_site != site) {
            one_site = PyObject_RichCompareBool(row_site, site, Py_EQ);
            if (one_site < 0) {
                goto done;
            }
        }
        long long in, out;
        if (packed) {
            const PackedRow *record = (const PackedRow *)row;
            duration_at[i] = record->duration;
            start_at[i] = record->start;
            in = record->bytes_in;
            out = record->bytes_out;
            if (!last_thread_known || record->thread_id != last_thread) {
                PyObject *ident = PyLong_FromUnsignedLong(record->thread_id);
                if (ident == NULL || PyDict_SetDefault(threads, ident, record->thread_name) == NULL) {
                    Py_XDECREF(ident);
                    goto done;
                }
                Py_DECREF(ident);
                last_thread = record->thread_id;
                last_thread_known = 1;
                last_ident = NULL;
            }
        }
        else {
            duration_at[i] = row_int(row, R_DURATION, &usable);
            start_at[i] = row_int(row, R_START, &usable);
            in = row_int(row, R_BYTES_IN, &usable);
            out = row_int(row, R_BYTES_OUT, &usable);
            if (PyTuple_GET_ITEM(row, R_ERROR) != Py_None) {
                errors++;
                uniform = 0;
            }
            PyObject *found = PyTuple_GET_ITEM(row, R_VIOLATIONS);
            if (!PyTuple_CheckExact(found)) {
                usable = 0;
            }
            else if (PyTuple_GET_SIZE(found)
                     && PyList_SetSlice(violations, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, found) < 0) {  /* extend */
                goto done;
            }
            PyObject *ident = PyTuple_GET_ITEM(row, R_THREAD_ID);
            if (ident != last_ident) {  /* most rows come from the thread of the row before */
                if (PyDict_SetDefault(threads, ident, PyTuple_GET_ITEM(row, R_THREAD_NAME)) == NULL) {
                    goto done;
                }
                last_ident = ident;
                last_thread_known = 0;
            }
        }
        if (__builtin_add_overflow(bytes_in, in, &bytes_in) || __builtin_add_overflow(bytes_out, out, &bytes_out)) {
            usable = 0;
        }
        if (uniform && i) {
            uniform = packed && first_packed ? packed_same_arrays((const PackedRow *)row, (const PackedRow *)first)
                                             : same_arrays_as(row, first_inputs, first_outputs);
            if (uniform < 0) {
                goto done;
            }
        }
    }
    if (!usable) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyTuple_New(K_COUNT);
    if (result == NULL) {
        goto done;
    }
    PyTuple_SET_ITEM(result, K_DURATIONS, Py_NewRef(durations));
    PyTuple_SET_ITEM(result, K_STARTS, Py_NewRef(starts));
    PyTuple_SET_ITEM(result, K_ERRORS, PyLong_FromLongLong(errors));
    PyTuple_SET_ITEM(result, K_BYTES_IN, PyLong_FromLongLong(bytes_in));
    PyTuple_SET_ITEM(result, K_BYTES_OUT, PyLong_FromLongLong(bytes_out));
    PyTuple_SET_ITEM(result, K_VIOLATIONS, Py_NewRef(violations));
    PyTuple_SET_ITEM(result, K_THREADS, Py_NewRef(threads));
    PyTuple_SET_ITEM(result, K_ONE_SITE, Py_NewRef(one_site ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, K_UNIFORM, Py_NewRef(uniform ? Py_True : Py_False));
    for (int k = 0; k < K_COUNT; k++) {
        if (PyTuple_GET_ITEM(result, k) == NULL) {
            Py_CLEAR(result);
            break;
        }
    }

done:
    Py_XDECREF(durations);
    Py_XDECREF(starts);
    Py_XDECREF(violations);
    Py_XDECREF(threads);
    Py_XDECREF(first_inputs);
    Py_XDECREF(first_outputs);
    return result;
}

static PyMethodDef core_methods[] = {
    {"call", (PyCFunction)(void (*)(void))core_call, METH_FASTCALL,
     "call(probe, func, args, plan, eager_inputs=()): CallProbe.call for the common calls."},
    {"init", (PyCFunction)(void (*)(void))core_init, METH_VARARGS | METH_KEYWORDS,
     "init(**objects): the Python objects and constants the core uses (from probe.py); True when it calls "
     "XXH3 directly."},
    {"columns", (PyCFunction)core_columns, METH_O,
     "columns(rows): model.columns.columns_of for a list of stored rows, or None where it must decide."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "_probe_core",
    "The compiled per-call core of tfnp_inspect (a C twin of probe.CallProbe.call).", -1, core_methods,
    NULL, NULL, NULL, NULL,
};

static PyObject *
names(const char **fields)
{
    Py_ssize_t n = 0;
    while (fields[n] != NULL) {
        n++;
    }
    PyObject *tuple = PyTuple_New(n);
    for (Py_ssize_t i = 0; tuple != NULL && i < n; i++) {
        PyObject *name = PyUnicode_FromString(fields[i]);
        if (name == NULL) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, i, name);
    }
    return tuple;
}

static int
add_names(PyObject *module, const char *name, const char **fields)
{
    PyObject *tuple = names(fields);
    if (tuple == NULL) {
        return -1;
    }
    int added = PyModule_AddObjectRef(module, name, tuple);
    Py_DECREF(tuple);
    return added;
}

PyMODINIT_FUNC
PyInit__probe_core(void)
{
    import_array();
    struct { PyObject **slot; const char *text; } strings[] = {
        {&s_fast, "_fast"}, {&s_snapshot, "snapshot"}, {&s_check_state, "_check_state"}, {&s_name, "name"}, {&s_private_name, "_name"},
        {&s_kept_outputs, "_kept_outputs"}, {&s_version, "version"}, {&s_process, "_process"},
        {&s_store, "store"}, {&s_hot, "_hot"}, {&s_trim, "_trim"}, {&s_record_failure, "_record_failure"},
        {&s_check_retained_inputs, "_check_retained_inputs"}, {&s_check_kept_outputs, "_check_kept_outputs"},
        {&s_find_mutations, "_find_mutations"}, {&s_check_tout, "_check_tout"}, {&s_check_shapes, "_check_shapes"},
        {&s_check_determinism, "_check_determinism"}, {&s_copied_hint, "_copied_hint"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        *strings[i].slot = PyUnicode_InternFromString(strings[i].text);
        if (*strings[i].slot == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&PackedRowType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&core_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "PackedRow", (PyObject *)&PackedRowType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    if (add_names(module, "FAST_FIELDS", FAST_FIELDS) < 0 || add_names(module, "ROW_FIELDS", ROW_FIELDS) < 0
        || add_names(module, "ARRAY_FIELDS", ARRAY_FIELDS) < 0
        || add_names(module, "COLUMN_FIELDS", COLUMN_FIELDS) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
