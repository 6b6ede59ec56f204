// The disk's own limit for the log benchmark: appends BATCH_BYTES with one write() and
// one fdatasync() per batch, BATCHES times, to a fresh file — what a perfect group commit
// of that batch size could reach. Prints one JSON object.
//
//   fsync-baseline FILE BATCH_BYTES BATCHES [prealloc]
//
// With `prealloc` the file is first zero-filled to its final size and synced (untimed), and
// the batches overwrite it: the pattern clickd's preallocated segments use, where a sync
// writes data without a file-size change.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s FILE BATCH_BYTES BATCHES [prealloc]\n", argv[0]);
        return 64;
    }
    size_t bytes = strtoul(argv[2], NULL, 10);
    long batches = strtol(argv[3], NULL, 10);
    if (bytes == 0 || batches <= 0) return 64;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    if (argc == 5 && strcmp(argv[4], "prealloc") == 0) {
        size_t chunk = 1 << 20, total = bytes * (size_t)batches;
        char *zeros = calloc(1, chunk);
        for (size_t done = 0; done < total; done += chunk) {
            size_t n = total - done < chunk ? total - done : chunk;
            if (write(fd, zeros, n) != (ssize_t)n) { perror("write"); return 1; }
        }
        if (fsync(fd) != 0 || lseek(fd, 0, SEEK_SET) != 0) { perror("fsync"); return 1; }
        free(zeros);
    }
    char *buf = malloc(bytes);
    memset(buf, 0x5a, bytes);
    double *lat = calloc(batches, sizeof(double));
    double start = now();
    for (long i = 0; i < batches; i++) {
        double t0 = now();
        if (write(fd, buf, bytes) != (ssize_t)bytes) { perror("write"); return 1; }
        if (fdatasync(fd) != 0) { perror("fdatasync"); return 1; }
        lat[i] = now() - t0;
    }
    double elapsed = now() - start;
    qsort(lat, batches, sizeof(double), cmp);
    printf("{\"batches\":%ld,\"batch_bytes\":%zu,\"seconds\":%.6f,\"batches_per_second\":%.1f,"
           "\"p50_us\":%.0f,\"p99_us\":%.0f,\"max_us\":%.0f}\n",
           batches, bytes, elapsed, batches / elapsed, lat[batches / 2] * 1e6,
           lat[(long)(batches * 0.99)] * 1e6, lat[batches - 1] * 1e6);
    close(fd);
    unlink(argv[1]);
    return 0;
}
