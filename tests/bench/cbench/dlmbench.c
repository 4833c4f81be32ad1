/* dlmbench: lock+unlock pairs per second through the C libdlm, the
 * reference for godlm's Go binding. Built on the host against Debian's
 * libdlm-dev and run in the lab's guests.
 *
 * usage: dlmbench LOCKSPACE RESOURCE COUNT
 * prints: pairs=<n> seconds=<s> rate=<pairs/s>
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libdlm.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: dlmbench LOCKSPACE RESOURCE COUNT\n");
		return 2;
	}
	const char *res = argv[2];
	long count = atol(argv[3]);
	dlm_lshandle_t ls = dlm_new_lockspace(argv[1], 0600, 0);
	if (!ls) {
		fprintf(stderr, "dlmbench: lockspace %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < count; i++) {
		struct dlm_lksb lksb;
		memset(&lksb, 0, sizeof(lksb));
		if (dlm_ls_lock_wait(ls, LKM_EXMODE, &lksb, 0, res, strlen(res), 0, NULL, NULL, NULL) || lksb.sb_status) {
			fprintf(stderr, "dlmbench: lock: %s (status %d)\n", strerror(errno), lksb.sb_status);
			return 1;
		}
		if (dlm_ls_unlock_wait(ls, lksb.sb_lkid, 0, &lksb) || lksb.sb_status != EUNLOCK) {
			fprintf(stderr, "dlmbench: unlock: %s (status %d)\n", strerror(errno), lksb.sb_status);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("pairs=%ld seconds=%.3f rate=%.1f\n", count, s, count / s);
	dlm_close_lockspace(ls);
	return 0;
}
