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
 * A batch is split in two when it is big enough (SPLIT_MIN): a helper thread of this module's
 * own, with no Python state and every signal blocked, sends the second half while the caller
 * sends the first, and the call returns when both are done. On loopback each send also runs the
 * receiving side's TCP path (~7 us a socket here), so a pass over 10,000 sockets is ~75 ms of
 * kernel work on one core; with a core free beside it, half of that runs there. The helper is
 * started by the first call that splits, from the caller's thread, so it inherits that
 * thread's niceness (the fan-out thread's 19), and started again in a forked child (a fork
 * keeps only the thread that forked: pthread_atfork resets the child's state). It serves one
 * caller at a time: a second caller while it is busy sends its whole batch itself.
 *
 * `wait_while(flag, longest)` lets the fan-out thread step aside for buyers' writes between two
 * batches: it waits, without the GIL, while `flag[0]` (the event loop's count of writes in
 * flight, an array('q') the loop keeps) is not zero, `longest` seconds at most. Sleeping in
 * Python instead would take the GIL back at every look, from the loop that is doing the writes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPLIT_MIN 32 /* sockets: below this a batch is not worth a hand-off (~20 us) */

/* One socket's send: the inode check, then one non-blocking send. Returns 1 if all went. */
static int
send_one(const char *buf, size_t len, int fd, unsigned long long ino, long long *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *out = -(long long)errno;
        return 0;
    }
    if (!S_ISSOCK(st.st_mode) || (unsigned long long)st.st_ino != ino) {
        *out = -(long long)EBADF;
        return 0;
    }
    ssize_t sent;
    do {
        sent = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    *out = sent < 0 ? -(long long)errno : (long long)sent;
    return sent >= 0 && (size_t)sent == len;
}

static Py_ssize_t
send_range(const char *buf, size_t len, const int *fd, const unsigned long long *ino,
           long long *out, Py_ssize_t count)
{
    Py_ssize_t whole = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        whole += send_one(buf, len, fd[i], ino[i], &out[i]);
    }
    return whole;
}

/* The helper thread and the one task it may have. Everything below is guarded by `mu`. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t task_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t task_done = PTHREAD_COND_INITIALIZER;
static pid_t helper_pid; /* the process the helper was started in (0: none in this one) */
static int helper_failed; /* it could not be started: every batch is sent whole */
static int helper_busy;   /* a caller has handed it a task and not collected the result */
static unsigned long given, taken;
static unsigned long long split_count; /* batches whose second half the helper sent */
static struct {
    const char *buf;
    size_t len;
    const int *fd;
    const unsigned long long *ino;
    long long *out;
    Py_ssize_t count;
    Py_ssize_t whole;
} task;

static void *
helper(void *unused)
{
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the interpreter's main thread's */
    pthread_mutex_lock(&mu);
    for (;;) {
        while (taken == given) {
            pthread_cond_wait(&task_ready, &mu);
        }
        pthread_mutex_unlock(&mu);
        Py_ssize_t whole = send_range(task.buf, task.len, task.fd, task.ino, task.out, task.count);
        pthread_mutex_lock(&mu);
        task.whole = whole;
        taken = given;
        pthread_cond_signal(&task_done);
    }
    return NULL;
}

/* A fork keeps only the thread that called it: the child starts with no helper and no task.
 * `mu` is held across the fork, so the child's copy is never left locked by another thread. */
static void
before_fork(void)
{
    pthread_mutex_lock(&mu);
}

static void
after_fork_parent(void)
{
    pthread_mutex_unlock(&mu);
}

static void
after_fork_child(void)
{
    pthread_cond_init(&task_ready, NULL);
    pthread_cond_init(&task_done, NULL);
    helper_pid = 0;
    helper_busy = 0;
    given = taken = 0;
    split_count = 0;
    pthread_mutex_unlock(&mu);
}

/* With `mu` held: whether the helper runs in this process (starting it if need be). */
static int
helper_ready(void)
{
    if (helper_pid != 0) {
        return 1;
    }
    if (helper_failed) {
        return 0;
    }
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&thread, &attr, helper, NULL);
    pthread_attr_destroy(&attr);
    if (failed) {
        helper_failed = 1;
        return 0;
    }
    helper_pid = getpid();
    return 1;
}

/* Without the GIL: the whole batch, its second half on the helper when it is free. */
static Py_ssize_t
send_batch(const char *buf, size_t len, const int *fd, const unsigned long long *ino,
           long long *out, Py_ssize_t count)
{
    Py_ssize_t half = count / 2;
    int split = 0;
    if (count >= SPLIT_MIN) {
        pthread_mutex_lock(&mu);
        if (!helper_busy && helper_ready()) {
            helper_busy = 1;
            split = 1;
            task.buf = buf;
            task.len = len;
            task.fd = fd + half;
            task.ino = ino + half;
            task.out = out + half;
            task.count = count - half;
            given++;
            pthread_cond_signal(&task_ready);
        }
        pthread_mutex_unlock(&mu);
    }
    if (!split) {
        return send_range(buf, len, fd, ino, out, count);
    }
    Py_ssize_t whole = send_range(buf, len, fd, ino, out, half);
    pthread_mutex_lock(&mu);
    while (taken != given) {
        pthread_cond_wait(&task_done, &mu);
    }
    whole += task.whole;
    helper_busy = 0;
    split_count++;
    pthread_mutex_unlock(&mu);
    return whole;
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
    whole = send_batch(buf, len, fd, ino, out, count);
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

PyDoc_STRVAR(splits_doc,
             "splits() -> int\n\n"
             "How many batches this process has sent in two halves, the second on the helper "
             "thread (what tests and a profile read to see the split happen).");

static PyObject *
splits(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    unsigned long long count;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&mu);
    count = split_count;
    pthread_mutex_unlock(&mu);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(count);
}

static PyMethodDef methods[] = {
    {"splits", splits, METH_NOARGS, splits_doc},
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
    if (pthread_atfork(before_fork, after_fork_parent, after_fork_child) != 0) {
        helper_failed = 1; /* no safe fork without the handlers: never start the helper */
    }
    return PyModule_Create(&module);
}
