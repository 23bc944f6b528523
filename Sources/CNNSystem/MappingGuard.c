#define _GNU_SOURCE
#include "CNNSystem.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

// A fixed table, so the handler needs no allocation and no lock: a slot is published by
// storing its length last (release), and read by loading the length first (acquire).
enum { slot_count = 64, message_bytes = 1024 };

struct guarded_mapping {
    _Atomic(size_t) length;     // 0: the slot is free
    const char *base;
    int status;
    char message[message_bytes];
};

static struct guarded_mapping slots[slot_count];
static atomic_flag slot_lock = ATOMIC_FLAG_INIT;
static atomic_int handler_installed;
// Several threads (BLAS workers) can fault on the same lost pages at once: one reports.
static atomic_flag reported = ATOMIC_FLAG_INIT;

static void on_sigbus(int signal, siginfo_t *info, void *context) {
    (void)context;
    const char *address = (const char *)info->si_addr;
    for (int i = 0; i < slot_count; i++) {
        size_t length = atomic_load_explicit(&slots[i].length, memory_order_acquire);
        if (length == 0) continue;
        const char *base = slots[i].base;
        if (address >= base && address < base + length) {
            // write(2), pause(2) and _exit(2) are async-signal-safe; nothing else is used here.
            if (atomic_flag_test_and_set(&reported)) {
                for (;;) pause();  // the reporting thread is about to end the process
            }
            size_t n = strnlen(slots[i].message, message_bytes);
            ssize_t ignored = write(STDERR_FILENO, slots[i].message, n);
            ignored = write(STDERR_FILENO, "\n", 1);
            (void)ignored;
            _exit(slots[i].status);
        }
    }
    // Not ours: die of the signal as the program would have without this handler.
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signal, &fallback, NULL);
    raise(signal);
}

static void install_handler(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&handler_installed, &expected, 1)) return;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, NULL);
}

int nn_guard_mapping(const void *base, size_t length, const char *message, int status) {
    if (base == NULL || length == 0) return -1;
    install_handler();
    while (atomic_flag_test_and_set_explicit(&slot_lock, memory_order_acquire)) {}
    int found = -1;
    for (int i = 0; i < slot_count; i++) {
        if (atomic_load_explicit(&slots[i].length, memory_order_relaxed) == 0) {
            slots[i].base = (const char *)base;
            slots[i].status = status;
            strncpy(slots[i].message, message, message_bytes - 1);
            slots[i].message[message_bytes - 1] = 0;
            atomic_store_explicit(&slots[i].length, length, memory_order_release);
            found = i;
            break;
        }
    }
    atomic_flag_clear_explicit(&slot_lock, memory_order_release);
    return found;
}

void nn_unguard_mapping(int slot) {
    if (slot < 0 || slot >= slot_count) return;
    atomic_store_explicit(&slots[slot].length, 0, memory_order_release);
}
