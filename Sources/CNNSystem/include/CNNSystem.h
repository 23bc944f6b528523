#ifndef CNN_SYSTEM_H
#define CNN_SYSTEM_H

// What Swift cannot do safely itself, or cannot reach: a SIGBUS handler, and glibc's allocator
// settings (mallopt is not in Swift's Glibc module).
//
// Touching a mapped page whose file was truncated after it was mapped raises SIGBUS; a Swift
// program would die of it. The handler below turns a fault inside a guarded mapping into one
// line on standard error and a documented exit status, and leaves every other SIGBUS to the
// default action.

#include <stddef.h>

/// Registers [base, base + length) so that a SIGBUS inside it prints `message` (one line,
/// newline added) and exits with `status`. Installs the process-wide handler on first use.
/// Returns a slot number for `nn_unguard_mapping`, or -1 when all slots are taken (the mapping
/// then stays unguarded, as before).
int nn_guard_mapping(const void *base, size_t length, const char *message, int status);

/// Removes a registration made by `nn_guard_mapping`.
void nn_unguard_mapping(int slot);

/// Caps the number of glibc malloc arenas (`mallopt(M_ARENA_MAX, count)`). Returns 1 on
/// success, 0 when the C library refused.
int nn_limit_malloc_arenas(int count);

#endif
