/*
 * The Linux kernel doing the address-space operations vmspace benchmarks, on this machine, in the
 * same bench run: each figure is nanoseconds per operation, printed as one JSON object.
 *
 *   mmap_munmap_16k      mmap 16 KiB anonymous private RW, then munmap it
 *   mprotect_split_merge mprotect one page in the middle of a 64-page VMA to R, then back to RW
 *                        (a split into three, then a merge back into one)
 *   mremap_move          mremap a 4-page VMA to a fixed other place and back (MAYMOVE|FIXED)
 *   anon_write_fault     write one byte to each page of a fresh anonymous mapping (per page)
 *   page_fault1          will-it-scale page_fault1: map 128 MiB, write one byte per page, unmap
 *                        (per page, the map and unmap included)
 *   cow_after_fork       a write fault on a page shared copy-on-write with a child that is still
 *                        alive (16 MiB written, fork, the parent writes every page; per page)
 *   page_fault2          will-it-scale page_fault2: a 128 MiB memfd (shmem: the same kind of file
 *                        as the vmspace bench's memory file) mapped private, one byte written per
 *                        page, unmapped (per page; after one untimed round that fills the cache)
 *   page_fault3          will-it-scale page_fault3: the same memfd mapped shared (per page)
 *   page_fault3_disk     page_fault3 on a file of TMPDIR or /tmp (unlinked) instead: a disk file
 *                        system may map a whole large folio per fault (ext4 does since 6.16), so
 *                        page_fault3_disk_pages_per_fault (pages written / minor faults) says how
 *                        many pages one fault mapped
 *   mmap2                will-it-scale mmap2: mmap 128 MiB of the memfd shared, then munmap (per pair)
 *   scaling_2cpu         two threads each running page_fault1 on 32 MiB of its own (mapped at its
 *                        own hint, 4 GiB apart: disjoint VMAs), pages per second against one
 *                        thread alone (a ratio, not nanoseconds; the median of three)
 *
 * Usage: mmops ITERATIONS
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *must_map(void *addr, size_t len, int flags) {
  void *p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  return p;
}

static double mmap_munmap_16k(long n) {
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    void *p = must_map(NULL, 4 * PAGE, 0);
    if (munmap(p, 4 * PAGE) != 0) exit(2);
  }
  return (now_ns() - t0) / (double)n;
}

static double mprotect_split_merge(long n) {
  char *p = must_map(NULL, 64 * PAGE, 0);
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    if (mprotect(p + 32 * PAGE, PAGE, PROT_READ) != 0) exit(3);
    if (mprotect(p + 32 * PAGE, PAGE, PROT_READ | PROT_WRITE) != 0) exit(3);
  }
  double per = (now_ns() - t0) / (double)(2 * n);
  munmap(p, 64 * PAGE);
  return per;
}

static double mremap_move(long n) {
  char *area = must_map(NULL, 64 * PAGE, 0);
  munmap(area, 64 * PAGE);
  char *a = must_map(area, 4 * PAGE, MAP_FIXED);
  char *b = area + 32 * PAGE;
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    if (mremap(a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, b) != b) exit(4);
    if (mremap(b, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a) != a) exit(4);
  }
  double per = (now_ns() - t0) / (double)(2 * n);
  munmap(a, 4 * PAGE);
  return per;
}

static double anon_write_fault(long n) {
  const long pages = 256;
  long rounds = n / pages + 1;
  double total = 0;
  for (long r = 0; r < rounds; r++) {
    volatile char *p = must_map(NULL, pages * PAGE, 0);
    double t0 = now_ns();
    for (long i = 0; i < pages; i++) p[i * PAGE] = 1;
    total += now_ns() - t0;
    munmap((void *)p, pages * PAGE);
  }
  return total / (double)(rounds * pages);
}

static double page_fault1(long n) {
  const long pages = (128UL << 20) / PAGE;
  long rounds = n / pages + 1;
  double t0 = now_ns();
  for (long r = 0; r < rounds; r++) {
    volatile char *p = must_map(NULL, pages * PAGE, 0);
    for (long i = 0; i < pages; i++) p[i * PAGE] = 1;
    munmap((void *)p, pages * PAGE);
  }
  return (now_ns() - t0) / (double)(rounds * pages);
}

static double cow_after_fork(long n) {
  const long pages = (16UL << 20) / PAGE;
  long rounds = n / pages + 1;
  double total = 0;
  for (long r = 0; r < rounds; r++) {
    volatile char *p = must_map(NULL, pages * PAGE, 0);
    for (long i = 0; i < pages; i++) p[i * PAGE] = 1;
    int ready[2], done[2];
    if (pipe(ready) != 0 || pipe(done) != 0) exit(5);
    pid_t child = fork();
    if (child < 0) exit(5);
    if (child == 0) {
      /* Keeps the pages shared until the parent has written all of them. */
      char c = 0;
      if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 1) _exit(1);
      _exit(0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1) exit(5);
    double t0 = now_ns();
    for (long i = 0; i < pages; i++) p[i * PAGE] = 2;
    total += now_ns() - t0;
    if (write(done[1], &c, 1) != 1) exit(5);
    waitpid(child, NULL, 0);
    close(ready[0]);
    close(ready[1]);
    close(done[0]);
    close(done[1]);
    munmap((void *)p, pages * PAGE);
  }
  return total / (double)(rounds * pages);
}

/* A 128 MiB file: a memfd, or with `disk` a file of TMPDIR or /tmp unlinked at once (will-it-scale's
   tmp file). */
static int file_128m(int disk) {
  if (!disk) {
    int fd = memfd_create("vmspace-mmops", 0);
    if (fd < 0 || ftruncate(fd, 128UL << 20) != 0) {
      perror("memfd");
      exit(6);
    }
    return fd;
  }
  const char *dir = getenv("TMPDIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/vmspace-mmops-XXXXXX", dir != NULL ? dir : "/tmp");
  int fd = mkstemp(path);
  if (fd < 0 || unlink(path) != 0 || ftruncate(fd, 128UL << 20) != 0) {
    perror("file");
    exit(6);
  }
  return fd;
}

/* Minor faults of this process so far. */
static long minor_faults(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/* Pages written per minor fault in the last file_fault (1 when each fault maps one page). */
static double pages_per_fault;

/* One round of page_fault2/3: map the file, write a byte per page, unmap. */
static void file_round(int fd, long pages, int flags) {
  volatile char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (p == MAP_FAILED) exit(7);
  for (long i = 0; i < pages; i++) p[i * PAGE] = 1;
  munmap((void *)p, pages * PAGE);
}

/* page_fault2 (flags MAP_PRIVATE) and page_fault3 (MAP_SHARED): ns per page, after one untimed
   round that puts the file's pages in the page cache (as vmspace's bench warms its file up). */
static double file_fault(long n, int flags, int disk) {
  const long pages = (128UL << 20) / PAGE;
  long rounds = n / pages + 1;
  int fd = file_128m(disk);
  file_round(fd, pages, flags);
  long faults0 = minor_faults();
  double t0 = now_ns();
  for (long r = 0; r < rounds; r++) file_round(fd, pages, flags);
  double ns = (now_ns() - t0) / (double)(rounds * pages);
  pages_per_fault = (double)(rounds * pages) / (double)(minor_faults() - faults0);
  close(fd);
  return ns;
}

/* mmap2: ns per mmap + munmap of 128 MiB of the file. */
static double mmap2(long n) {
  int fd = file_128m(0);
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    void *p = mmap(NULL, 128UL << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) exit(8);
    munmap(p, 128UL << 20);
  }
  double ns = (now_ns() - t0) / (double)n;
  close(fd);
  return ns;
}

#define SCALING_PAGES ((32UL << 20) / PAGE)
#define SCALING_ROUNDS 6

/* One thread of scaling_2cpu: page_fault1 rounds at its own hint; returns its nanoseconds. */
static void *scaling_thread(void *arg) {
  long id = (long)arg;
  char *hint = (char *)((unsigned long)(id + 1) << 32);
  double t0 = now_ns();
  for (int r = 0; r < SCALING_ROUNDS; r++) {
    volatile char *p = must_map(hint, SCALING_PAGES * PAGE, 0);
    for (unsigned long i = 0; i < SCALING_PAGES; i++) p[i * PAGE] = 1;
    munmap((void *)p, SCALING_PAGES * PAGE);
  }
  double *ns = malloc(sizeof(double));
  if (ns == NULL) exit(6);
  *ns = now_ns() - t0;
  return ns;
}

/* Pages per second of `threads` threads (1 or 2), timed by the slowest. */
static double scaling_rate(int threads) {
  pthread_t t[2];
  double slowest = 0;
  for (long i = 0; i < threads; i++)
    if (pthread_create(&t[i], NULL, scaling_thread, (void *)i) != 0) exit(6);
  for (int i = 0; i < threads; i++) {
    double *ns;
    if (pthread_join(t[i], (void **)&ns) != 0) exit(6);
    if (*ns > slowest) slowest = *ns;
    free(ns);
  }
  return threads * SCALING_ROUNDS * SCALING_PAGES / (slowest / 1e9);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double scaling_2cpu(void) {
  double one[3], two[3];
  scaling_rate(2);
  for (int i = 0; i < 3; i++) {
    one[i] = scaling_rate(1);
    two[i] = scaling_rate(2);
  }
  qsort(one, 3, sizeof(double), by_value);
  qsort(two, 3, sizeof(double), by_value);
  return two[1] / one[1];
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  if (n <= 0) n = 100000;
  /* Warm up the paths once, then measure. */
  mmap_munmap_16k(n / 10 + 1);
  printf("{\"mmap_munmap_16k\":%.1f,", mmap_munmap_16k(n));
  printf("\"mprotect_split_merge\":%.1f,", mprotect_split_merge(n));
  printf("\"mremap_move\":%.1f,", mremap_move(n));
  printf("\"anon_write_fault\":%.1f,", anon_write_fault(n));
  printf("\"page_fault1\":%.1f,", page_fault1(n));
  printf("\"cow_after_fork\":%.1f,", cow_after_fork(n));
  printf("\"page_fault2\":%.1f,", file_fault(n, MAP_PRIVATE, 0));
  printf("\"page_fault3\":%.1f,", file_fault(n, MAP_SHARED, 0));
  printf("\"page_fault3_disk\":%.1f,", file_fault(n, MAP_SHARED, 1));
  printf("\"page_fault3_disk_pages_per_fault\":%.2f,", pages_per_fault);
  printf("\"mmap2\":%.1f,", mmap2(n));
  printf("\"scaling_2cpu\":%.3f}\n", scaling_2cpu());
  return 0;
}
