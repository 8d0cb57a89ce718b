/*
 * region.c -- _Region: owns one engine handle.  The SharedCache that opened
 * it and every View over it hold references, so the mapping (and this
 * process's slot, with its pins) stays valid until the last of them is gone.
 */
#include "ext.h"
#include "tiers.h"

RegionObject *region_open(const char *path, const cachee_l0_options *o) {
    RegionObject *r = PyObject_GC_New(RegionObject, &Region_Type);
    if (r == NULL) return NULL;
    r->h = NULL;
    r->path = NULL;
    r->weakreflist = NULL;
    r->demoteq = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cachee_l0_open(path, o, &r->h);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        Py_DECREF(r);
        return (RegionObject *)raise_l0(rc, path);
    }
    cachee_l0_info info;
    cachee_l0_info_get(r->h, &info);
    r->value_max = info.value_max;
    r->path = PyUnicode_DecodeFSDefault(info.path);
    if (r->path == NULL) {
        Py_DECREF(r);
        return NULL;
    }
    PyObject_GC_Track(r);
    return r;
}

static void region_dealloc(RegionObject *r) {
    PyObject_GC_UnTrack(r);
    if (r->weakreflist) PyObject_ClearWeakRefs((PyObject *)r);
    if (r->h) cachee_l0_close(r->h); /* no eviction hook runs after this */
    tiers_demote_free(r->demoteq);
    Py_XDECREF(r->path);
    PyObject_GC_Del(r);
}

static int region_traverse(RegionObject *r, visitproc visit, void *arg) {
    (void)r;
    (void)visit;
    (void)arg;
    return 0;
}

/* Fork hooks (registered by cachee/__init__.py with os.register_at_fork):
 * hand this process's pins to the child so inherited views stay valid. */
static PyObject *region_fork_prepare(RegionObject *r, PyObject *unused) {
    (void)unused;
    if (r->h) cachee_l0_fork_prepare(r->h); /* failure: child registers lazily */
    Py_RETURN_NONE;
}
static PyObject *region_fork_parent(RegionObject *r, PyObject *unused) {
    (void)unused;
    if (r->h) cachee_l0_fork_parent(r->h);
    Py_RETURN_NONE;
}
static PyObject *region_fork_child(RegionObject *r, PyObject *unused) {
    (void)unused;
    if (r->h) cachee_l0_fork_child(r->h);
    Py_RETURN_NONE;
}

static PyMethodDef region_methods[] = {
    {"_fork_prepare", (PyCFunction)region_fork_prepare, METH_NOARGS, NULL},
    {"_fork_parent", (PyCFunction)region_fork_parent, METH_NOARGS, NULL},
    {"_fork_child", (PyCFunction)region_fork_child, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

PyTypeObject Region_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cachee._cachee._Region",
    .tp_basicsize = sizeof(RegionObject),
    .tp_dealloc = (destructor)region_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An open cachee region (internal).",
    .tp_traverse = (traverseproc)region_traverse,
    .tp_weaklistoffset = offsetof(RegionObject, weakreflist),
    .tp_methods = region_methods,
};
