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
 * Two optional arguments let the fan-out step aside for buyers' writes: `stop`, an
 * array('q') of one item that the event loop's thread keeps as its count of writes in flight,
 * read before each send, and `longest`, in seconds. The first time `stop` is not zero the loop
 * waits, still without the GIL, until it is zero again or `longest` has passed, then sends the
 * rest of the batch without looking again: a hold that arrives mid-batch finds the cores free
 * within one send, and a batch is delayed once at most.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

static double
now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait until *flag is 0 or `longest` seconds have passed; called without the GIL. */
static void
wait_for_zero(const long long *flag, double longest)
{
    const struct timespec poll = {0, 100 * 1000}; /* 100 us */
    double until = now_seconds() + longest;
    while (__atomic_load_n(flag, __ATOMIC_RELAXED) != 0 && now_seconds() < until) {
        nanosleep(&poll, NULL);
    }
}

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
             "no longer names the socket of inode `inodes[i]`, an array('Q')). With `stop` "
             "(an array('q') of one item) and `longest` (seconds), the first time stop[0] is "
             "not 0 before a send, waits until it is 0 or `longest` has passed, then goes on. "
             "Returns how many took all of `data`.");

static PyObject *
send_each(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 && nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "send_each(data, fds, inodes, results[, stop, longest])");
        return NULL;
    }
    double longest = 0.0;
    if (nargs == 6) {
        longest = PyFloat_AsDouble(args[5]);
        if (longest == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    Py_buffer data = {0}, fds = {0}, inodes = {0}, results = {0}, stop = {0};
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
    if (nargs == 6 && args[4] != Py_None &&
        PyObject_GetBuffer(args[4], &stop, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        goto done;
    }
    if (stop.obj != NULL && (check_items(&stop, sizeof(long long), "stop") < 0 || stop.len < 8)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "stop must hold one item");
        }
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
    const long long *halt = stop.obj != NULL ? stop.buf : NULL;
    /* The buffers stay exported until PyBuffer_Release: none can move or shrink meanwhile. */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        /* Written by the loop's thread as it runs: a relaxed read is all that is needed. */
        if (halt != NULL && __atomic_load_n(halt, __ATOMIC_RELAXED) != 0) {
            wait_for_zero(halt, longest);
            halt = NULL; /* once a batch at most */
        }
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
    if (stop.obj != NULL) {
        PyBuffer_Release(&stop);
    }
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

static PyMethodDef methods[] = {
    {"send_each", (PyCFunction)(void (*)(void))send_each, METH_FASTCALL, send_each_doc},
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
