/*
 * The Linux kernel's read() of a cached file, the baseline of vmspace's fs.read_cached_1m.gbps
 * (bench/suites/fs.ts): argv[1] is a file of 1 MiB the bench made, argv[2] the rounds. The file is
 * read once to cache it, then `rounds` times lseek(0) + read() of the whole MiB into a buffer that
 * was touched first (no page faults in the loop). Prints {"read_cached_1m_gbps": bytes per ns}:
 * the median of 15 batches, as the bench takes medians.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB (1 << 20)
#define BATCHES 15

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE ROUNDS\n", argv[0]);
		return 2;
	}
	long rounds = atol(argv[2]);
	int fd = open(argv[1], O_RDONLY);
	char *buf = aligned_alloc(4096, MIB);
	if (fd < 0 || buf == NULL || rounds <= 0) {
		perror("fileread");
		return 1;
	}
	memset(buf, 1, MIB);
	if (read(fd, buf, MIB) != MIB)
		return 1;
	double per[BATCHES];
	for (int b = 0; b < BATCHES; b++) {
		double t0 = now_ns();
		for (long i = 0; i < rounds; i++) {
			if (lseek(fd, 0, SEEK_SET) != 0 || read(fd, buf, MIB) != MIB) {
				perror("read");
				return 1;
			}
		}
		per[b] = (now_ns() - t0) / rounds;
	}
	qsort(per, BATCHES, sizeof(per[0]), cmp);
	printf("{\"read_cached_1m_gbps\": %.4f}\n", MIB / per[BATCHES / 2]);
	close(fd);
	return 0;
}
