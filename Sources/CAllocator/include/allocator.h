#ifndef MVAULT_ALLOCATOR_H
#define MVAULT_ALLOCATOR_H

/// Makes glibc return large freed buffers to the system at once (fixed mmap threshold of
/// 256 KiB, at most four arenas), so a server moving 1 MiB buffers between threads keeps a
/// resident size that does not grow with the number of concurrent transfers.
void mvault_bound_allocator(void);

/// Lets each glibc arena keep up to 4 MiB of freed memory instead of 128 KiB. Segments sealed or
/// opened on several threads are allocated in the workers' arenas and freed by the thread that
/// writes them out; with the default, every batch shrank those arenas and the next one
/// page-faulted them back in (half of a parallel seal's time went to the kernel).
void mvault_keep_freed_buffers(void);

#endif
