#ifndef MVAULT_ALLOCATOR_H
#define MVAULT_ALLOCATOR_H

/// Makes glibc return large freed buffers to the system at once (fixed mmap threshold of
/// 256 KiB, at most four arenas), so a server moving 1 MiB buffers between threads keeps a
/// resident size that does not grow with the number of concurrent transfers.
void mvault_bound_allocator(void);

#endif
