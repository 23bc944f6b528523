#include "CNNSystem.h"

#include <malloc.h>

int nn_limit_malloc_arenas(int count) {
    return mallopt(M_ARENA_MAX, count);
}
