/* pipebench: the syscall baseline for the libdlm rows of `make bench`.
 * Each pair is a write(2) of 8 bytes to a non-blocking pipe and a
 * read(2) of them back: the same two syscalls per operation that a
 * synchronous DLM request makes on its lockspace device (write the
 * request, read the completion already queued), with no DLM behind them.
 * tests/bench/pipebench does the same in Go, the way godlm's binding
 * makes those calls. Run side by side in a guest and on the host, the
 * two show how much of the libdlm gap the machine itself makes.
 *
 * usage: pipebench COUNT
 * prints pairs=<n> seconds=<s> rate=<pairs/s>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: pipebench COUNT\n");
		return 2;
	}
	long count = atol(argv[1]);
	int p[2];
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC)) {
		perror("pipebench: pipe");
		return 1;
	}
	uint64_t v = 1;
	double t0 = now();
	for (long i = 0; i < count; i++) {
		if (write(p[1], &v, sizeof(v)) != sizeof(v) || read(p[0], &v, sizeof(v)) != sizeof(v)) {
			perror("pipebench");
			return 1;
		}
	}
	double t = now() - t0;
	printf("pairs=%ld seconds=%.3f rate=%.1f\n", count, t, count / t);
	return 0;
}
