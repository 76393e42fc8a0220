/*
 * kwread: N threads each open+read-to-EOF+close a file M times, check every value, and report
 * counts and latency. Used by the KeyFS integration tests and the delivery benchmark. It never
 * prints what it read: only counts, lengths and timings.
 *
 *   kwread PATH THREADS OPENS PREFIX LENGTH
 *
 * A read is good when it has exactly LENGTH bytes, starts with PREFIX and holds only
 * [A-Za-z0-9_-]. Output, one line:
 *   reads=R bad=B errors=E first_errno=X median_ns=M p99_ns=P open_estale=S mean_ns=A wall_ns=W
 * (S: opens refused ESTALE; A: the mean of all opens; W: from the first thread's start to the
 * last one's end, so THREADS*OPENS/W is the opens served per second).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *path, *prefix;
static long opens, length;
static long *lat;

struct counts { long reads, bad, errors, open_stale; int first_errno; };

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static int good(const char *b, long n) {
    if (n != length || strncmp(b, prefix, strlen(prefix)) != 0) return 0;
    for (long i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static void *run(void *arg) {
    long idx = (long) arg;
    struct counts *c = calloc(1, sizeof *c);
    char buf[4096];
    for (long i = 0; i < opens; i++) {
        long t0 = now_ns();
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (!c->first_errno) c->first_errno = errno;
            if (errno == ESTALE) c->open_stale++;
            c->errors++;
            lat[idx * opens + i] = now_ns() - t0;
            continue;
        }
        long n = 0;
        for (;;) {
            ssize_t r = read(fd, buf + n, sizeof buf - n);
            if (r < 0) { n = -1; if (!c->first_errno) c->first_errno = errno; break; }
            if (r == 0) break;
            n += r;
            if (n == (long) sizeof buf) break;
        }
        close(fd);
        lat[idx * opens + i] = now_ns() - t0;
        if (n < 0) { c->errors++; continue; }
        c->reads++;
        if (!good(buf, n)) c->bad++;
    }
    return c;
}

static int cmp(const void *a, const void *b) {
    long x = *(const long *) a, y = *(const long *) b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: kwread PATH THREADS OPENS PREFIX LENGTH\n");
        return 2;
    }
    path = argv[1];
    long threads = atol(argv[2]);
    opens = atol(argv[3]);
    prefix = argv[4];
    length = atol(argv[5]);
    lat = calloc(threads * opens, sizeof *lat);
    pthread_t *t = calloc(threads, sizeof *t);
    long start = now_ns();
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, (void *) i);
    struct counts total = {0};
    for (long i = 0; i < threads; i++) {
        struct counts *c;
        pthread_join(t[i], (void **) &c);
        total.reads += c->reads;
        total.bad += c->bad;
        total.errors += c->errors;
        total.open_stale += c->open_stale;
        if (!total.first_errno) total.first_errno = c->first_errno;
        free(c);
    }
    long wall = now_ns() - start;
    long n = threads * opens;
    long sum = 0;
    for (long i = 0; i < n; i++) sum += lat[i];
    qsort(lat, n, sizeof *lat, cmp);
    printf("reads=%ld bad=%ld errors=%ld first_errno=%d median_ns=%ld p99_ns=%ld open_estale=%ld mean_ns=%ld wall_ns=%ld\n",
           total.reads, total.bad, total.errors, total.first_errno, lat[n / 2], lat[(long) (n * 0.99)],
           total.open_stale, sum / n, wall);
    return 0;
}
