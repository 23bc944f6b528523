#ifndef NN_KERNELS_HELPER_H
#define NN_KERNELS_HELPER_H

#include <stdbool.h>
#include <stddef.h>

/// A piece of work that can be split: computes parts [first, end) of what `context` describes.
typedef void (*nn_task)(const void *context, size_t first, size_t end);

/// Runs task(context, 0, split) on the calling thread and task(context, split, end) on the
/// process's helper thread (or on the caller, when the helper has not picked it up by the time
/// the caller is done with its own part). `context` must stay valid until this returns, which
/// is after both parts are done. Returns false, having run nothing, when the helper cannot be
/// started or another thread is using it.
bool nn_helper_run(nn_task task, const void *context, size_t split, size_t end);

/// The work loop of one thread of a blocked product: takes units from the job's shared atomic
/// counter `next` until all `units` are taken, calling `run_unit(job, unit, buffer)` for each.
/// Threads share the counter, so a thread that finishes early takes more units.
#define NN_DRAIN_UNITS(job, run_unit, buffer)                                                      \
    for (size_t unit_; (unit_ = atomic_fetch_add_explicit(&(job)->next, 1, memory_order_relaxed)) < (job)->units;) \
    run_unit(job, unit_, buffer)

#endif
