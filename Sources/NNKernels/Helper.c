#include "Helper.h"

#include "NNKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

// How long the helper keeps polling for the next product before it sleeps. Calls in a loop
// arrive within microseconds; a process that stops predicting wastes at most this much CPU.
static const double spin_seconds = 200e-6;

static struct {
    pthread_once_t once;
    bool started;
    atomic_flag in_use;
    // Generation g of the posted product in the high bits; bit 0 set once it is claimed, by
    // the helper or by the caller. Whoever sets the bit computes the helper's panels.
    _Atomic unsigned long state;
    // The last generation the helper finished.
    _Atomic unsigned long finished;
    _Atomic int sleeping;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    // Written by the caller before it posts a generation; read by the helper after it claims it.
    nn_task task;
    const void *context;
    size_t first, end;
} helper = {
    .once = PTHREAD_ONCE_INIT,
    .in_use = ATOMIC_FLAG_INIT,
    .mutex = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/// Returns the first state whose generation is not `seen`: polling first, then asleep.
static unsigned long next_state(unsigned long seen) {
    double deadline = seconds() + spin_seconds;
    for (unsigned n = 1;; n++) {
        unsigned long s = atomic_load_explicit(&helper.state, memory_order_acquire);
        if (s >> 1 != seen) return s;
        relax();
        // Another thread may be waiting for this CPU (OpenBLAS's workers poll for about 0.1 s
        // after each product): without yielding, sharing a CPU with one made products 5x slower.
        if (n % 64 == 0) sched_yield();
        if (n % 256 == 0 && seconds() > deadline) break;
    }
    pthread_mutex_lock(&helper.mutex);
    // Pairs with the caller's store of state and load of sleeping (both sequentially
    // consistent): either the caller sees sleeping and signals, or this load sees its product.
    atomic_store(&helper.sleeping, 1);
    unsigned long s;
    while ((s = atomic_load(&helper.state)) >> 1 == seen) pthread_cond_wait(&helper.wake, &helper.mutex);
    atomic_store(&helper.sleeping, 0);
    pthread_mutex_unlock(&helper.mutex);
    return s;
}

static void *helper_main(void *unused) {
    (void)unused;
    unsigned long seen = 0;
    for (;;) {
        unsigned long s = next_state(seen);
        seen = s >> 1;
        if (s & 1) continue;  // the caller got there first
        if (!atomic_compare_exchange_strong(&helper.state, &s, s | 1)) continue;
        helper.task(helper.context, helper.first, helper.end);
        atomic_store_explicit(&helper.finished, seen, memory_order_release);
    }
    return NULL;
}

static void start_helper(void) {
    pthread_attr_t attributes;
    if (pthread_attr_init(&attributes) != 0) return;
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    pthread_t thread;
    helper.started = pthread_create(&thread, &attributes, helper_main, NULL) == 0;
    pthread_attr_destroy(&attributes);
}

bool nn_helper_run(nn_task task, const void *context, size_t split, size_t end) {
    if (atomic_flag_test_and_set(&helper.in_use)) return false;
    pthread_once(&helper.once, start_helper);
    if (!helper.started) {
        atomic_flag_clear(&helper.in_use);
        return false;
    }
    helper.task = task;
    helper.context = context;
    helper.first = split;
    helper.end = end;
    unsigned long generation = (atomic_load_explicit(&helper.state, memory_order_relaxed) >> 1) + 1;
    unsigned long posted = generation << 1;
    atomic_store(&helper.state, posted);
    if (atomic_load(&helper.sleeping)) {
        pthread_mutex_lock(&helper.mutex);
        pthread_cond_signal(&helper.wake);
        pthread_mutex_unlock(&helper.mutex);
    }
    task(context, 0, split);
    if (atomic_compare_exchange_strong(&helper.state, &posted, posted | 1)) {
        task(context, split, end);  // the helper had not started on them
    } else {
        for (unsigned n = 1; atomic_load_explicit(&helper.finished, memory_order_acquire) != generation; n++) {
            relax();
            if (n % 64 == 0) sched_yield();  // the helper may be sharing this CPU
        }
    }
    atomic_flag_clear(&helper.in_use);
    return true;
}

typedef struct {
    nn_unit_body body;
    void *context;
    size_t units;
    _Atomic size_t next;
} unit_job;

/// A thread's loop: it claims the unit after the one it runs before running it, so that the body
/// knows what comes next on this thread.
static void unit_task(const void *context, size_t thread, size_t end) {
    (void)end;
    unit_job *job = (unit_job *)context;
    size_t unit = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
    while (unit < job->units) {
        size_t upcoming = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        job->body(job->context, unit, upcoming < job->units ? upcoming : SIZE_MAX, thread);
        unit = upcoming;
    }
}

void nn_run_units(size_t units, nn_unit_body body, void *context, int threads) {
    unit_job job = {.body = body, .context = context, .units = units};
    atomic_init(&job.next, 0);
    if (threads < 2 || units < 2 || !nn_helper_run(unit_task, &job, 1, 2)) unit_task(&job, 0, 1);
}
