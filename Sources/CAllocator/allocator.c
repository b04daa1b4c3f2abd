#include "allocator.h"
#include <malloc.h>

void mvault_bound_allocator(void) {
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 4);
}
