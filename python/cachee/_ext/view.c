/*
 * view.c -- View: one pinned value in shared memory.  It exports a
 * read-only buffer (memoryview, numpy), DLPack (numpy.from_dlpack,
 * torch.from_dlpack, JAX, CuPy) and ndarrays over itself; the pin is released
 * when the View is freed, which happens when the last object built on it is.
 */
#include "ext.h"
#include "npy.h"

ViewObject *view_new(RegionObject *region, const cachee_l0_view *v,
                     ValueLayout *l) {
    ViewObject *o = PyObject_NewVar(ViewObject, &View_Type, l->ndim);
    if (o == NULL) {
        cachee_l0_view tmp = *v;
        cachee_l0_release(region->h, &tmp);
        layout_clear(l);
        return NULL;
    }
    Py_INCREF(region);
    o->region = region;
    o->v = *v;
    o->descr = l->descr; /* taken over (NULL until numpy is needed) */
    l->descr = NULL;
    memcpy(o->dtype, l->dtype, sizeof o->dtype);
    o->itemsize = l->itemsize;
    o->exports = 0;
    memcpy(o->format, l->format, sizeof o->format);
    o->kind = l->kind;
    o->raw = (char)l->raw;
    Py_ssize_t stride = l->itemsize;
    for (int i = l->ndim - 1; i >= 0; i--) {
        VIEW_SHAPE(o)[i] = (Py_ssize_t)l->shape[i];
        VIEW_STRIDES(o)[i] = stride;
        stride *= (Py_ssize_t)l->shape[i];
    }
    return o;
}

static void view_dealloc(ViewObject *o) {
    if (o->region) {
        if (o->v.pin_) cachee_l0_release(o->region->h, &o->v);
        Py_DECREF(o->region);
    }
    Py_XDECREF(o->descr);
    PyObject_Free(o);
}

/* ---------------------------------------------------------- buffers */

static int view_getbuffer(ViewObject *o, Py_buffer *b, int flags) {
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError,
                        "cachee views are read-only: shared memory is written "
                        "with set()/set_numpy()");
        b->obj = NULL;
        return -1;
    }
    b->buf = (void *)o->v.data;
    b->obj = (PyObject *)o;
    Py_INCREF(o);
    b->len = (Py_ssize_t)o->v.len;
    b->readonly = 1;
    b->suboffsets = NULL;
    b->internal = NULL;
    if ((flags & PyBUF_ND) == PyBUF_ND) {
        b->itemsize = o->itemsize;
        b->format = (flags & PyBUF_FORMAT) ? o->format : NULL;
        b->ndim = VIEW_NDIM(o);
        b->shape = VIEW_SHAPE(o);
        b->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? VIEW_STRIDES(o) : NULL;
    } else {
        b->itemsize = 1;
        b->format = (flags & PyBUF_FORMAT) ? "B" : NULL;
        b->ndim = 1;
        b->shape = NULL;
        b->strides = NULL;
    }
    o->exports++;
    return 0;
}

static void view_releasebuffer(ViewObject *o, Py_buffer *b) {
    (void)b;
    o->exports--;
}

static PyBufferProcs view_as_buffer = {
    (getbufferproc)view_getbuffer,
    (releasebufferproc)view_releasebuffer,
};

/* ------------------------------------------------------------ ndarray */

/* The view's numpy descriptor (borrowed), made on first use. */
static PyArray_Descr *view_descr(ViewObject *o) {
    if (o->descr == NULL && (o->descr = descr_for(o->dtype)) == NULL) return NULL;
    return (PyArray_Descr *)o->descr;
}

PyObject *view_to_ndarray(ViewObject *o) {
    if (numpy_ready() < 0 || view_descr(o) == NULL) return NULL;
    npy_intp dims[64];
    for (int i = 0; i < VIEW_NDIM(o); i++) dims[i] = (npy_intp)VIEW_SHAPE(o)[i];
    PyArray_Descr *d = (PyArray_Descr *)o->descr;
    Py_INCREF(d); /* stolen below */
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, d, VIEW_NDIM(o), dims, NULL,
                                         (void *)o->v.data, NPY_ARRAY_C_CONTIGUOUS,
                                         NULL);
    if (arr == NULL) return NULL;
    Py_INCREF(o);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)o) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyObject *view_numpy(ViewObject *o, PyObject *unused) {
    (void)unused;
    return view_to_ndarray(o);
}

/* ------------------------------------------------------------- DLPack */

/* The DLPack ABI (https://dmlc.github.io/dlpack/latest/c_api.html), v1.0. */
typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;
typedef struct { uint32_t major; uint32_t minor; } DLPackVersion;
typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;
enum { kDLCPU = 1 };
enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLComplex = 5, kDLBool = 6 };
#define DLPACK_FLAG_BITMASK_READ_ONLY (1ull << 0)

/* Everything an exported tensor needs, in one allocation; it holds a
 * reference to the View (and so the pin) until the consumer's deleter. */
typedef struct {
    DLManagedTensorVersioned versioned;
    DLManagedTensor legacy;
    ViewObject *view;
    int64_t shape[64];
} DLHolder;

static void holder_free(DLHolder *hd) {
    PyGILState_STATE st = PyGILState_Ensure();
    Py_DECREF(hd->view);
    PyGILState_Release(st);
    PyMem_RawFree(hd);
}
static void deleter_versioned(DLManagedTensorVersioned *t) {
    holder_free((DLHolder *)t->manager_ctx);
}
static void deleter_legacy(DLManagedTensor *t) {
    holder_free((DLHolder *)t->manager_ctx);
}

static void capsule_versioned(PyObject *cap) {
    if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
        DLManagedTensorVersioned *t = PyCapsule_GetPointer(cap, "dltensor_versioned");
        if (t && t->deleter) t->deleter(t);
    }
}
static void capsule_legacy(PyObject *cap) {
    if (PyCapsule_IsValid(cap, "dltensor")) {
        DLManagedTensor *t = PyCapsule_GetPointer(cap, "dltensor");
        if (t && t->deleter) t->deleter(t);
    }
}

static int dl_dtype(const ViewObject *o, DLDataType *out) {
    const uint16_t probe = 1;
    char native = *(const uint8_t *)&probe ? '<' : '>';
    if (o->dtype[0] != '|' && o->dtype[0] != '=' && o->dtype[0] != native) {
        PyErr_SetString(PyExc_BufferError, "DLPack needs native byte order");
        return -1;
    }
    if (o->itemsize > 32) {
        PyErr_SetString(PyExc_BufferError, "items wider than 256 bits have no DLPack type");
        return -1;
    }
    out->lanes = 1;
    out->bits = (uint8_t)(8 * o->itemsize);
    switch (o->dtype[1]) {
    case 'i': out->code = kDLInt; break;
    case 'u': out->code = kDLUInt; break;
    case 'f': out->code = kDLFloat; break;
    case 'c': out->code = kDLComplex; break;
    case 'b': out->code = kDLBool; break;
    default:
        PyErr_Format(PyExc_BufferError, "dtype '%s' has no DLPack type", o->dtype);
        return -1;
    }
    return 0;
}

static PyObject *view_dlpack(ViewObject *o, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"stream", "max_version", "dl_device", "copy", NULL};
    PyObject *stream = Py_None, *max_version = Py_None, *dl_device = Py_None,
             *copy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$OOOO", kwlist, &stream,
                                     &max_version, &dl_device, &copy))
        return NULL;
    if (stream != Py_None) {
        PyErr_SetString(PyExc_BufferError, "cachee views live in host memory: stream must be None");
        return NULL;
    }
    if (copy == Py_True) {
        PyErr_SetString(PyExc_BufferError,
                        "cachee exports zero-copy views only; copy the result instead");
        return NULL;
    }
    if (dl_device != Py_None) {
        int dt = 0, di = 0;
        if (!PyArg_ParseTuple(dl_device, "ii", &dt, &di)) return NULL;
        if (dt != kDLCPU || di != 0) {
            PyErr_SetString(PyExc_BufferError, "cachee views live on the CPU (device (1, 0))");
            return NULL;
        }
    }
    int versioned = 0;
    if (max_version != Py_None) {
        int major = 0, minor = 0;
        if (!PyArg_ParseTuple(max_version, "ii", &major, &minor)) return NULL;
        versioned = major >= 1;
    }
    DLDataType dt;
    if (dl_dtype(o, &dt) < 0) return NULL;
    DLHolder *hd = PyMem_RawCalloc(1, sizeof *hd);
    if (hd == NULL) return PyErr_NoMemory();
    hd->view = o;
    Py_INCREF(o);
    for (int i = 0; i < VIEW_NDIM(o); i++) hd->shape[i] = VIEW_SHAPE(o)[i];
    DLTensor t = {(void *)o->v.data, {kDLCPU, 0}, VIEW_NDIM(o), dt, hd->shape, NULL, 0};
    PyObject *cap;
    if (versioned) {
        hd->versioned.version.major = 1;
        hd->versioned.version.minor = 0;
        hd->versioned.manager_ctx = hd;
        hd->versioned.deleter = deleter_versioned;
        hd->versioned.flags = DLPACK_FLAG_BITMASK_READ_ONLY;
        hd->versioned.dl_tensor = t;
        cap = PyCapsule_New(&hd->versioned, "dltensor_versioned", capsule_versioned);
    } else {
        /* The legacy ABI cannot say "read-only": the memory is still mapped
         * PROT_READ, so a consumer that writes faults instead of corrupting
         * other processes' data. */
        hd->legacy.manager_ctx = hd;
        hd->legacy.deleter = deleter_legacy;
        hd->legacy.dl_tensor = t;
        cap = PyCapsule_New(&hd->legacy, "dltensor", capsule_legacy);
    }
    if (cap == NULL) {
        Py_DECREF(o);
        PyMem_RawFree(hd);
    }
    return cap;
}

static PyObject *view_dlpack_device(ViewObject *o, PyObject *unused) {
    (void)o;
    (void)unused;
    return Py_BuildValue("(ii)", kDLCPU, 0);
}

/* ---------------------------------------------------------- attributes */

static PyObject *view_get_nbytes(ViewObject *o, void *c) {
    (void)c;
    return PyLong_FromUnsignedLongLong(o->v.len);
}
static PyObject *view_get_shape(ViewObject *o, void *c) {
    (void)c;
    PyObject *t = PyTuple_New(VIEW_NDIM(o));
    for (int i = 0; t && i < VIEW_NDIM(o); i++)
        PyTuple_SET_ITEM(t, i, PyLong_FromSsize_t(VIEW_SHAPE(o)[i]));
    return t;
}
static PyObject *view_get_dtype(ViewObject *o, void *c) {
    (void)c;
    PyArray_Descr *d = view_descr(o);
    Py_XINCREF(d);
    return (PyObject *)d;
}
static PyObject *view_get_version(ViewObject *o, void *c) {
    (void)c;
    return PyLong_FromUnsignedLongLong(o->v.version);
}

static PyGetSetDef view_getset[] = {
    {"nbytes", (getter)view_get_nbytes, NULL, "Length of the value in bytes.", NULL},
    {"shape", (getter)view_get_shape, NULL, "Shape stored with the value.", NULL},
    {"dtype", (getter)view_get_dtype, NULL, "numpy dtype stored with the value.", NULL},
    {"version", (getter)view_get_version, NULL,
     "Version of the stored value (increases with every write to its shard).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef view_methods[] = {
    {"numpy", (PyCFunction)view_numpy, METH_NOARGS,
     "Return a read-only ndarray over the value (no copy)."},
    {"__dlpack__", (PyCFunction)(void (*)(void))view_dlpack, METH_VARARGS | METH_KEYWORDS,
     "Export the value as a DLPack capsule (read-only, CPU, no copy)."},
    {"__dlpack_device__", (PyCFunction)view_dlpack_device, METH_NOARGS,
     "The device of the value: (kDLCPU, 0)."},
    {NULL, NULL, 0, NULL},
};

static Py_ssize_t view_len(ViewObject *o) { return (Py_ssize_t)o->v.len; }
static PySequenceMethods view_as_sequence = {.sq_length = (lenfunc)view_len};

PyTypeObject View_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cachee.View",
    .tp_basicsize = offsetof(ViewObject, dims),
    .tp_itemsize = 2 * sizeof(Py_ssize_t),
    .tp_dealloc = (destructor)view_dealloc,
    .tp_as_sequence = &view_as_sequence,
    .tp_as_buffer = &view_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A value in shared memory, pinned for as long as this object (or "
              "anything built on it: memoryview, ndarray, DLPack tensor) lives. "
              "Read-only.",
    .tp_methods = view_methods,
    .tp_getset = view_getset,
};
