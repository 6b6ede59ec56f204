#ifndef CEVENTLOG_H
#define CEVENTLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/prctl.h>

/// The calling thread's kernel id (glibc's gettid() is not visible to Swift here).
static inline int clickd_gettid(void) { return (int)syscall(SYS_gettid); }

/// Names the calling thread (at most 15 bytes kept), for `top -H` and debuggers
/// (prctl is variadic, which Swift cannot call).
static inline void clickd_name_thread(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

/// CRC-32C (Castagnoli), the checksum of every log record and segment header.
/// `crc` is the running value: start with 0, feed the result of the previous call.
/// Uses the SSE4.2 `crc32` instruction when the CPU has it, slicing-by-8 otherwise.
uint32_t clickd_crc32c(uint32_t crc, const void *data, size_t length);

/// The portable slicing-by-8 implementation, exposed so tests can check that both
/// paths agree and benchmarks can compare them.
uint32_t clickd_crc32c_portable(uint32_t crc, const void *data, size_t length);

/// 1 when the hardware path is in use.
int clickd_crc32c_hardware(void);

#endif
