/*
 * The agent's backup runner (agent/backup.c), with real commands and no
 * database: where backups go (names that never collide or overwrite), what
 * of the command's output is held (bounded, whatever it prints), and that
 * nothing the command leaves running outlives it.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "clock.h"
#include "log.h"
#include "testutil.h"

#define URL     "postgresql:///tenantdb?host=/nonexistent&port=5999&user=flotilla&password=s3cret"
#define RELEASE "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char root[256];
static char dir[400];

/* Lines the runner logged, for the assertions. */
static char lines[64][1200];
static int n_lines;
static size_t longest;

static void sink(void *arg, enum fl_log_level level, const char *context, const char *about,
                 const char *msg)
{
	(void)arg;
	(void)level;
	(void)context;
	(void)about;
	if (strlen(msg) > longest)
		longest = strlen(msg);
	if (n_lines < 64)
		snprintf(lines[n_lines++], sizeof(lines[0]), "%s", msg);
}

static const struct fl_logger logger = {FL_LOG_DEBUG, sink, NULL, NULL};

static void setup(void)
{
	fl_log_set_level(FL_LOG_ERROR);
	fl_test_tmp_root(root, sizeof(root), "check_agent_backup");
	fl_test_fmt(dir, sizeof(dir), "%s/backups", root);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	n_lines = 0;
	longest = 0;
}

static void teardown(void)
{
	fl_test_rm_rf(root);
}

static enum fl_err run(const char *command, const char *tenant, int64_t timeout_ms, char *path,
                       char *err)
{
	struct fl_backup_spec spec = {command, dir, timeout_ms, URL, tenant, NULL, RELEASE};
	struct fl_backup *b = fl_backup_new();
	enum fl_err rv = fl_backup_run(b, &spec, &logger, path, err);

	fl_backup_free(b);
	return rv;
}

/* Tenant ids that differ only in characters a file name cannot hold made
 * one name, so one tenant's backup replaced another's; and the same tenant
 * backed up twice in one second overwrote its first backup. */
START_TEST(names_never_collide)
{
	static const char *const ids[] = {"acme/eu", "acme eu", "acme_eu", "acmé_eu"};
	char paths[4][4096], again[4096], err[FL_ERRBUF_SIZE] = "";
	struct stat st;

	for (int i = 0; i < 4; i++) {
		ck_assert_msg(run(": >\"$FLOTILLA_BACKUP_PATH\"", ids[i], 10000, paths[i], err) ==
		                  FL_OK,
		              "%s", err);
		ck_assert_int_eq(stat(paths[i], &st), 0);
		for (int k = 0; k < i; k++)
			ck_assert_str_ne(paths[i], paths[k]);
	}
	/* a plain id keeps the documented name */
	ck_assert_ptr_nonnull(strstr(paths[2], "/acme_eu-0123456789ab-"));
	ck_assert_ptr_nonnull(strstr(paths[0], "/acme_eu~"));
	ck_assert_ptr_null(strchr(strrchr(paths[3], '/'), '\xc3'));

	/* the names of the next few seconds taken already: never overwritten */
	for (int k = 0; k < 6; k++) {
		char stamp[32], taken[4096];
		time_t t = time(NULL) + k;
		struct tm tm;
		FILE *f;

		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
		fl_test_fmt(taken, sizeof(taken), "%s/acme_eu-0123456789ab-%s.dump", dir, stamp);
		f = fopen(taken, "a");
		ck_assert_ptr_nonnull(f);
		fclose(f);
	}
	ck_assert_msg(run("test ! -e \"$FLOTILLA_BACKUP_PATH\"", "acme_eu", 10000, again, err) ==
	                  FL_OK,
	              "the backup path exists already: %s (%s)", again, err);
	ck_assert_ptr_nonnull(strstr(again, "-2.dump"));
}
END_TEST

/* A command printing a dump to its output by mistake (no newline in
 * hundreds of megabytes): the runner held all of it, one line, in memory. */
START_TEST(output_held_is_bounded)
{
	char path[4096], err[FL_ERRBUF_SIZE] = "";
	struct rusage before, after;

	ck_assert_int_eq(getrusage(RUSAGE_SELF, &before), 0);
	ck_assert_msg(run("head -c 300000000 /dev/zero | tr '\\0' x; echo; echo done", "acme",
	                  120000, path, err) == FL_OK,
	              "%s", err);
	ck_assert_int_eq(getrusage(RUSAGE_SELF, &after), 0);
	/* ru_maxrss in KiB: far less than the 300 MB printed */
	ck_assert_msg(after.ru_maxrss - before.ru_maxrss < 100 * 1024, "max RSS grew by %ld KiB",
	              after.ru_maxrss - before.ru_maxrss);
	ck_assert_uint_le(longest, 1200);
	ck_assert_int_ge(n_lines, 2);
	ck_assert_ptr_nonnull(strstr(lines[n_lines - 2], "(line cut)"));
	ck_assert_str_eq(lines[n_lines - 1], "backup: done");
}
END_TEST

/* The command exits, leaving a process in its group that holds its output
 * open: the backup waited for that process (up to backup.timeout) and then
 * failed as timed out. Now the command's exit ends the backup, and what it
 * left running is ended. */
START_TEST(leftovers_ended_with_the_command)
{
	char path[4096], err[FL_ERRBUF_SIZE] = "";
	int64_t t0 = fl_now_ms();
	long pid = 0;

	ck_assert_msg(run("sleep 300 & echo \"left $!\"", "acme", 200000, path, err) == FL_OK, "%s",
	              err);
	ck_assert_msg(fl_now_ms() - t0 < 60000, "took %lld ms", (long long)(fl_now_ms() - t0));
	for (int i = 0; i < n_lines; i++)
		if (sscanf(lines[i], "backup: left %ld", &pid) == 1)
			break;
	ck_assert_int_gt(pid, 0);
	for (int i = 0; i < 500 && kill((pid_t)pid, 0) == 0; i++) {
		struct timespec ts = {0, 10 * 1000000L};

		nanosleep(&ts, NULL);
	}
	ck_assert_msg(kill((pid_t)pid, 0) != 0 && errno == ESRCH, "the leftover %ld still runs",
	              pid);
	/* a failing command still fails, with its last line */
	ck_assert_int_eq(run("echo nope; exit 3", "acme", 10000, path, err), FL_EFAILED);
	ck_assert_msg(strstr(err, "status 3: nope") != NULL, "%s", err);
}
END_TEST

static Suite *backup_suite(void)
{
	Suite *s = suite_create("agent_backup");
	TCase *tc = tcase_create("backup");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 110);
	tcase_add_test(tc, names_never_collide);
	tcase_add_test(tc, output_held_is_bounded);
	tcase_add_test(tc, leftovers_ended_with_the_command);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(backup_suite());
	int failed;

	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
