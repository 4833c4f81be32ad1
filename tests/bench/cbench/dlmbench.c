/* dlmbench: lock+unlock pairs per second through the C libdlm, the
 * reference for godlm's Go binding (tests/bench/gobench does the same
 * through ours). Built on the host against Debian's libdlm-dev and run
 * in the lab's guests; twice: linked with libdlm_lt (single-threaded,
 * the caller reads its own completions) and, with -DTHREADED, with the
 * threaded libdlm (a dispatch thread reads them, as ours does when it
 * has to).
 *
 * usage: dlmbench LOCKSPACE RESOURCE COUNT
 *          COUNT EX lock+unlock pairs, uncontended
 *        dlmbench LOCKSPACE RESOURCE SECONDS lead|follow
 *          pairs for SECONDS, started together with a program on another
 *          node: "lead" holds a gate lock, prints "ready" and starts when
 *          the blocking callback tells it "follow" has asked for the gate;
 *          "follow" starts when it gets the gate.
 * prints: pairs=<n> seconds=<s> rate=<pairs/s>
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libdlm.h>

static dlm_lshandle_t ls;
static volatile int blocked;

static void bast(void *arg)
{
	(void)arg;
	blocked = 1;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int lock(int mode, struct dlm_lksb *lksb, const char *res, void (*b)(void *))
{
	memset(lksb, 0, sizeof(*lksb));
	if (dlm_ls_lock_wait(ls, mode, lksb, 0, res, strlen(res), 0, NULL, b, NULL) || lksb->sb_status) {
		fprintf(stderr, "dlmbench: lock %s: %s (status %d)\n", res, strerror(errno), lksb->sb_status);
		return -1;
	}
	return 0;
}

static int unlock(struct dlm_lksb *lksb)
{
	if (dlm_ls_unlock_wait(ls, lksb->sb_lkid, 0, lksb) || lksb->sb_status != EUNLOCK) {
		fprintf(stderr, "dlmbench: unlock: %s (status %d)\n", strerror(errno), lksb->sb_status);
		return -1;
	}
	return 0;
}

/* gate starts lead and follow together (see the usage above). */
static int gate(const char *role)
{
	struct dlm_lksb lksb;
	if (strcmp(role, "lead") == 0) {
		if (lock(LKM_EXMODE, &lksb, "gate", bast))
			return -1;
		printf("ready\n");
		fflush(stdout);
		while (!blocked) {
#ifdef THREADED
			usleep(1000);
#else
			struct pollfd p = { .fd = dlm_ls_get_fd(ls), .events = POLLIN };
			if (poll(&p, 1, 1000) > 0)
				dlm_dispatch(p.fd);
#endif
		}
		return unlock(&lksb);
	}
	if (strcmp(role, "follow") == 0)
		return lock(LKM_PRMODE, &lksb, "gate", NULL) || unlock(&lksb);
	fprintf(stderr, "dlmbench: role %s: want lead or follow\n", role);
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: dlmbench LOCKSPACE RESOURCE COUNT\n"
			"       dlmbench LOCKSPACE RESOURCE SECONDS lead|follow\n");
		return 2;
	}
	const char *res = argv[2];
	long count = atol(argv[3]);
	double seconds = atof(argv[3]);
	ls = dlm_new_lockspace(argv[1], 0600, 0);
	if (!ls) {
		fprintf(stderr, "dlmbench: lockspace %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
#ifdef THREADED
	if (dlm_ls_pthread_init(ls)) {
		fprintf(stderr, "dlmbench: dispatch thread: %s\n", strerror(errno));
		return 1;
	}
#endif
	if (argc == 5 && gate(argv[4]))
		return 1;
	double t0 = now(), t = t0;
	long n = 0;
	for (;;) {
		if (argc == 4 ? n == count : (n % 16 == 0 && (t = now()) - t0 >= seconds))
			break;
		struct dlm_lksb lksb;
		if (lock(LKM_EXMODE, &lksb, res, NULL) || unlock(&lksb))
			return 1;
		n++;
	}
	t = now();
	printf("pairs=%ld seconds=%.3f rate=%.1f\n", n, t - t0, n / (t - t0));
	dlm_close_lockspace(ls);
	return 0;
}
