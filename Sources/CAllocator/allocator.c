#include "allocator.h"
#include <malloc.h>

void mvault_bound_allocator(void) {
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 4);
}

void mvault_keep_freed_buffers(void) {
    mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
}
