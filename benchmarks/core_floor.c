/* Included by benchmarks/core_floor.py into a copy of tfnp_inspect/recording/_probe_core.c, before
 * its method table (it uses the core's helpers): not built on its own. */

/* ---- the floor of a compact record (benchmarks/core_floor.py) ---------------------------------- */
#define FLOOR_RECORDS 10000
#define FLOOR_ARENA_BYTES ((Py_ssize_t)20 << 20)
#define FLOOR_MAX_DIMS 8
#define FLOOR_SAMPLE_BYTES 1024  /* 128 elements of 8 bytes */

typedef struct {  /* one input or output, followed in the arena by its stats sample */
    PyArray_Descr *dtype;  /* a strong reference */
    npy_intp dims[FLOOR_MAX_DIMS];
    Py_ssize_t nbytes, sample_bytes;
    unsigned long long fingerprint;
    long flags;
    int ndim, alias;
} FloorArray;

typedef struct {  /* one call, followed in the arena by its arrays */
    long long seq, start, duration, bytes_in, bytes_out;
    unsigned long ident;
    PyObject *site, *thread_name;  /* strong references */
    int inputs, outputs, mutated, retained;
    Py_ssize_t size;
} FloorRecord;

static char *floor_arena;
static Py_ssize_t floor_head;
static FloorRecord *floor_index[FLOOR_RECORDS];
static long long floor_stored, floor_calls, floor_skipped;
static struct { long long count, total, min, max; } floor_totals;

static void
floor_release(FloorRecord *record)
{
    FloorArray *array = (FloorArray *)(record + 1);
    for (int k = 0; k < record->inputs + record->outputs; k++) {
        Py_DECREF(array->dtype);
        array = (FloorArray *)((char *)(array + 1) + array->sample_bytes);
    }
    Py_DECREF(record->site);
    Py_DECREF(record->thread_name);
    long long duration = record->duration;  /* what a fold at eviction counts */
    floor_totals.count++;
    floor_totals.total += duration;
    floor_totals.min = floor_totals.count == 1 || duration < floor_totals.min ? duration : floor_totals.min;
    floor_totals.max = duration > floor_totals.max ? duration : floor_totals.max;
}

/* Room for `size` bytes at the arena's head: records overwritten there are released first. */
static char *
floor_room(Py_ssize_t size)
{
    if (floor_arena == NULL && (floor_arena = PyMem_RawMalloc((size_t)FLOOR_ARENA_BYTES)) == NULL) {
        return NULL;
    }
    if (floor_head + size > FLOOR_ARENA_BYTES) {
        floor_head = 0;
    }
    FloorRecord **slot = &floor_index[floor_stored % FLOOR_RECORDS];
    if (*slot != NULL) {
        floor_release(*slot);
        *slot = NULL;
    }
    char *room = floor_arena + floor_head;
    floor_head += (size + 15) & ~(Py_ssize_t)15;
    return room;
}

/* One array's description into `out` (the core's describe_plain for plain arrays: the same
 * hashes and stats sample; for others their dtype and shape only), its stats sample into `sample`
 * where that is not NULL. */
static int
floor_describe(PyObject *value, long turn, int hash, FloorArray *out, char *sample)
{
    PyArrayObject *array = (PyArrayObject *)value;
    RawFields fields = {.dtype = PyArray_DESCR(array), .nbytes = PyArray_NBYTES(array), .alias = -1,
                        .bits = PyArray_FLAGS(array) & (flag_c_contiguous | flag_writeable)};
    if (is_plain_array(value) && describe_plain(value, sample != NULL, -1, 0, turn, hash, &fields, sample) < 0) {
        return -1;
    }
    out->dtype = fields.dtype;
    Py_INCREF(out->dtype);
    out->ndim = PyArray_NDIM(array) < FLOOR_MAX_DIMS ? PyArray_NDIM(array) : FLOOR_MAX_DIMS;
    memcpy(out->dims, PyArray_DIMS(array), (size_t)out->ndim * sizeof(npy_intp));
    out->nbytes = fields.nbytes;
    out->flags = fields.bits;
    out->alias = -1;
    out->fingerprint = fields.fingerprint;
    out->sample_bytes = fields.sample_bytes;
    return 0;
}

/* compact_call(probe, func, args, plan, eager_inputs=()): a call recorded as the common case of
 * `call` records it (inputs and outputs described and hashed, the default checks that run on
 * every call, thread, timing), into a preallocated arena of fixed-layout records: no Python
 * object made per call. Anything else goes to `call`. */
static PyObject *
floor_call_as(PyObject *module, PyObject *const *argv, Py_ssize_t argc, int keep)
{
    if (argc < 4 || !initialized) {  /* core_call says what is wrong */
        return core_call(module, argv, argc);
    }
    PyObject *probe = argv[0], *func = argv[1], *args = argv[2], *plan = argv[3];
    PyObject *fast = slot_read(&fast_slot, probe);
    if (fast == NULL) {
        return NULL;
    }
    int simple = fast != Py_None && PyTuple_Check(fast) && PyTuple_GET_SIZE(fast) == F_COUNT
                 && PyTuple_GET_ITEM(fast, F_PLAN) == plan && (PyTuple_CheckExact(args) || PyList_CheckExact(args))
                 && PySequence_Fast_GET_SIZE(args) <= 4 && PyTuple_GET_ITEM(fast, F_WATCH) == Py_None;
    if (simple) {
        PyObject *version = slot_read(&version_slot, switches);
        simple = version != NULL
                 && PyObject_RichCompareBool(version, PyTuple_GET_ITEM(fast, F_SWITCHES_VERSION), Py_EQ) == 1;
        Py_XDECREF(version);
        PyErr_Clear();
    }
    Py_ssize_t n = simple ? PySequence_Fast_GET_SIZE(args) : 0;
    PyObject **values = simple ? PySequence_Fast_ITEMS(args) : NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = values[i];
        simple &= Py_TYPE(value) == ndarray_type
                  && (PyArray_FLAGS((PyArrayObject *)value) & NPY_ARRAY_C_CONTIGUOUS) != 0
                  && sample_elements * PyArray_ITEMSIZE((PyArrayObject *)value) <= FLOOR_SAMPLE_BYTES;
    }
    if (!simple) {
        Py_DECREF(fast);
        return core_call(module, argv, argc);
    }
    long capture = keep ? PyLong_AsLong(PyTuple_GET_ITEM(fast, F_CAPTURE)) : 0;
    int retained = fast_flag(fast, F_RETAINED), mutation = fast_flag(fast, F_MUTATION);
    int hash_outputs = fast_flag(fast, F_HASH_OUTPUTS);
    long calls = floor_calls++;
    long turn = (calls < full_check_calls || calls % full_check_every == 0) ? -1 : calls;

    PyObject *roots[4];
    Py_ssize_t counts[16];
    FloorArray described[4];
    char samples[4][FLOOR_SAMPLE_BYTES];  /* the inputs' samples, copied into the arena after the call */
    for (Py_ssize_t i = 0; i < n; i++) {
        roots[i] = alias_root(values[i]);
        if (retained) {
            count_refs(values[i], counts + 2 * i);
        }
        if (floor_describe(values[i], turn, 1, &described[i], capture ? samples[i] : NULL) < 0) {
            Py_DECREF(fast);
            return NULL;
        }
    }
    long long start = perf_ns();
    PyObject *result = PyObject_Vectorcall(func, values, (size_t)n, NULL);
    long long duration = perf_ns() - start;
    if (result == NULL) {
        Py_DECREF(fast);
        return NULL;
    }
    int mutated = 0, kept = 0;
    if (retained) {
        for (Py_ssize_t i = 0; i < n; i++) {
            count_refs(values[i], counts + 2 * n + 2 * i);
            kept |= counts[2 * n + 2 * i] != counts[2 * i] || counts[2 * n + 2 * i + 1] != counts[2 * i + 1];
        }
    }
    if (mutation) {
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned long long now;
            if (array_hash((PyArrayObject *)values[i], (described[i].flags & flag_sampled) != 0, turn, &now) < 0) {
                Py_DECREF(fast);
                Py_DECREF(result);
                return NULL;
            }
            mutated |= now != described[i].fingerprint;
        }
    }
    PyObject **outputs = &result;
    Py_ssize_t m = 1;
    if (PyTuple_CheckExact(result) || PyList_CheckExact(result)) {
        outputs = PySequence_Fast_ITEMS(result);
        m = PySequence_Fast_GET_SIZE(result);
    }
    int plain_outputs = m <= 4;
    for (Py_ssize_t j = 0; plain_outputs && j < m; j++) {
        plain_outputs = Py_TYPE(outputs[j]) == ndarray_type
                        && (PyArray_FLAGS((PyArrayObject *)outputs[j]) & NPY_ARRAY_C_CONTIGUOUS);
    }
    if (!keep) {  /* the byte work alone: outputs hashed as a record would hash them, nothing kept */
        for (Py_ssize_t j = 0; plain_outputs && j < m; j++) {
            FloorArray output;
            if (floor_describe(outputs[j], turn, hash_outputs, &output, NULL) < 0) {
                PyErr_Clear();
                continue;
            }
            Py_DECREF(output.dtype);
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_DECREF(described[i].dtype);
        }
        floor_skipped += !plain_outputs;
        Py_DECREF(fast);
        return result;
    }
    Py_ssize_t sample_room = 0;
    for (Py_ssize_t i = 0; capture && plain_outputs && i < n + m; i++) {
        PyArrayObject *array = (PyArrayObject *)(i < n ? values[i] : outputs[i - n]);
        sample_room += sample_elements * PyArray_ITEMSIZE(array);
    }
    PyObject *ident = plain_outputs ? thread_ident() : NULL;
    PyObject *name = ident != NULL ? thread_name(ident) : NULL;
    Py_XDECREF(ident);
    Py_ssize_t size = (Py_ssize_t)sizeof(FloorRecord) + (n + m) * (Py_ssize_t)sizeof(FloorArray) + sample_room;
    char *room = name != NULL && size <= FLOOR_ARENA_BYTES / FLOOR_RECORDS ? floor_room(size) : NULL;
    if (room == NULL) {  /* unusual outputs: not what this floor measures */
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_DECREF(described[i].dtype);
        }
        Py_XDECREF(name);
        Py_DECREF(fast);
        if (name == NULL && PyErr_Occurred()) {
            Py_DECREF(result);
            return NULL;
        }
        floor_skipped++;  /* not what this floor measures (or too large for its arena): not recorded */
        return result;
    }
    FloorRecord *record = (FloorRecord *)room;
    FloorArray *array = (FloorArray *)(record + 1);
    long long bytes_in = 0, bytes_out = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        *array = described[i];
        memcpy(array + 1, samples[i], (size_t)array->sample_bytes);
        bytes_in += array->nbytes;
        array = (FloorArray *)((char *)(array + 1) + array->sample_bytes);
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        if (floor_describe(outputs[j], turn, hash_outputs, array, capture ? (char *)(array + 1) : NULL) < 0) {
            PyErr_Clear();
        }
        PyObject *root = alias_root(outputs[j]);
        for (Py_ssize_t i = 0; i < n; i++) {
            array->alias = roots[i] == root ? (int)i : array->alias;
        }
        bytes_out += array->nbytes;
        array = (FloorArray *)((char *)(array + 1) + array->sample_bytes);
    }
    record->seq = ++floor_stored;
    record->start = start + wall_offset_ns;
    record->duration = duration;
    record->bytes_in = bytes_in;
    record->bytes_out = bytes_out;
    record->ident = PyThread_get_thread_ident();
    record->site = Py_NewRef(PyTuple_GET_ITEM(fast, F_SITE_ROW));
    record->thread_name = name;
    record->inputs = (int)n;
    record->outputs = (int)m;
    record->mutated = mutated;
    record->retained = kept;
    record->size = size;
    floor_index[(record->seq - 1) % FLOOR_RECORDS] = record;
    Py_DECREF(fast);
    return result;
}

static PyObject *
floor_call(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    return floor_call_as(module, argv, argc, 1);
}

/* bytes_call(probe, func, args, plan, eager_inputs=()): only the byte work of compact_call (the
 * inputs hashed before and after the call, the outputs hashed), nothing described or kept. */
static PyObject *
bytes_call(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    return floor_call_as(module, argv, argc, 0);
}

static PyObject *
floor_stats(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return Py_BuildValue("{s:L,s:L,s:L,s:L,s:n}", "stored", floor_stored, "skipped", floor_skipped, "folded", floor_totals.count,
                         "mean_ns", floor_totals.count ? floor_totals.total / floor_totals.count : 0LL,
                         "arena_head", floor_head);
}
