/* One frame to many sockets with the GIL released for the whole loop.
 *
 * The fan-out thread (sneakerd/web/send_thread.py) writes the same bytes to thousands of
 * sockets. With os.write per socket it gives the GIL up and takes it back once a socket, and
 * each taking back waits while the event loop runs Python: a pass over 10,000 sockets took
 * 150-320 ms for ~66 ms of sends. Here the loop over a batch of descriptors runs without the
 * GIL, so the loop and the kernel's sends go on side by side.
 *
 * This function only sends: what each result means for a subscriber (owed frames, a partial
 * write to finish, a dead socket) is decided in Python (sneakerd/web/sendmany.py and
 * subscriber.py), exactly as for the Python fallback.
 *
 * A batch is sent some time after Python checked its sockets (under each subscriber's lock),
 * and the event loop may close a transport meanwhile (uvloop closes the descriptor in the
 * loop's thread, outside those locks): its number could then be reused by a socket just
 * accepted. Each descriptor is therefore sent to only if it still names the socket it named
 * when the subscriber went live (its sockfs inode number, which is never reused while the
 * process lives), checked right before its send.
 *
 * `wait_while(flag, longest)` lets the fan-out thread step aside for buyers' writes between two
 * batches: it waits, without the GIL, while `flag[0]` (the event loop's count of writes in
 * flight, an array('q') the loop keeps) is not zero, `longest` seconds at most. Sleeping in
 * Python instead would take the GIL back at every look, from the loop that is doing the writes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

static int
check_items(Py_buffer *view, Py_ssize_t itemsize, const char *what)
{
    if (view->itemsize != itemsize || view->len % itemsize != 0) {
        PyErr_Format(PyExc_TypeError, "%s: items of %zd bytes expected, got %zd", what,
                     itemsize, view->itemsize);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(send_each_doc,
             "send_each(data, fds, inodes, results) -> int\n\n"
             "Send all of `data` to each descriptor of `fds` (an array('i')) with one "
             "send(MSG_DONTWAIT | MSG_NOSIGNAL) each, without the GIL, and store in `results` "
             "(an array('q') as long as `fds`) the bytes each took or -errno (-EBADF when it "
             "no longer names the socket of inode `inodes[i]`, an array('Q')). Returns how "
             "many took all of `data`.");

static PyObject *
send_each(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "send_each(data, fds, inodes, results)");
        return NULL;
    }
    Py_buffer data = {0}, fds = {0}, inodes = {0}, results = {0};
    PyObject *answer = NULL;
    Py_ssize_t count, whole = 0;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &fds, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        goto done;
    }
    if (PyObject_GetBuffer(args[2], &inodes, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        goto done;
    }
    if (PyObject_GetBuffer(args[3], &results, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        goto done;
    }
    if (check_items(&fds, sizeof(int), "fds") < 0 ||
        check_items(&inodes, sizeof(unsigned long long), "inodes") < 0 ||
        check_items(&results, sizeof(long long), "results") < 0) {
        goto done;
    }
    count = fds.len / (Py_ssize_t)sizeof(int);
    if (inodes.len / (Py_ssize_t)sizeof(unsigned long long) != count ||
        results.len / (Py_ssize_t)sizeof(long long) != count) {
        PyErr_SetString(PyExc_ValueError, "fds, inodes and results must be as long");
        goto done;
    }
    const char *buf = data.buf;
    size_t len = (size_t)data.len;
    const int *fd = fds.buf;
    const unsigned long long *ino = inodes.buf;
    long long *out = results.buf;
    /* The buffers stay exported until PyBuffer_Release: none can move or shrink meanwhile. */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        struct stat st;
        if (fstat(fd[i], &st) != 0) {
            out[i] = -(long long)errno;
            continue;
        }
        if (!S_ISSOCK(st.st_mode) || (unsigned long long)st.st_ino != ino[i]) {
            out[i] = -(long long)EBADF;
            continue;
        }
        ssize_t sent;
        do {
            sent = send(fd[i], buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (sent < 0 && errno == EINTR);
        out[i] = sent < 0 ? -(long long)errno : (long long)sent;
        if (sent >= 0 && (size_t)sent == len) {
            whole++;
        }
    }
    Py_END_ALLOW_THREADS
    answer = PyLong_FromSsize_t(whole);
done:
    if (results.obj != NULL) {
        PyBuffer_Release(&results);
    }
    if (inodes.obj != NULL) {
        PyBuffer_Release(&inodes);
    }
    if (fds.obj != NULL) {
        PyBuffer_Release(&fds);
    }
    PyBuffer_Release(&data);
    return answer;
}

static double
now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

PyDoc_STRVAR(wait_while_doc,
             "wait_while(flag, longest) -> bool\n\n"
             "Wait without the GIL while flag[0] (an array('q') of one item or more) is not 0, "
             "`longest` seconds at most. Returns whether it is 0 at the end.");

static PyObject *
wait_while(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "wait_while(flag, longest)");
        return NULL;
    }
    double longest = PyFloat_AsDouble(args[1]);
    if (longest == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer flag = {0};
    if (PyObject_GetBuffer(args[0], &flag, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (check_items(&flag, sizeof(long long), "flag") < 0 || flag.len < (Py_ssize_t)sizeof(long long)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "flag must hold one item");
        }
        PyBuffer_Release(&flag);
        return NULL;
    }
    /* Written by the loop's thread as it runs: a relaxed read is all that is needed. */
    const long long *value = flag.buf;
    long long now;
    Py_BEGIN_ALLOW_THREADS
    const struct timespec poll = {0, 100 * 1000}; /* 100 us */
    double until = now_seconds() + longest;
    while ((now = __atomic_load_n(value, __ATOMIC_RELAXED)) != 0 && now_seconds() < until) {
        nanosleep(&poll, NULL);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&flag);
    return PyBool_FromLong(now == 0);
}

static PyMethodDef methods[] = {
    {"send_each", (PyCFunction)(void (*)(void))send_each, METH_FASTCALL, send_each_doc},
    {"wait_while", (PyCFunction)(void (*)(void))wait_while, METH_FASTCALL, wait_while_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sneakerd.web._sendmany",
    .m_doc = "One frame to many sockets, the GIL released for the whole loop.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__sendmany(void)
{
    return PyModule_Create(&module);
}
