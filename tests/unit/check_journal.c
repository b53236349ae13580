/*
 * The agent's report journal (agent/journal.c) and the record file under it
 * (agent/recfile.c): ids that never repeat, acknowledgements, compaction,
 * and crashes: a torn tail cut at every byte of the last record, corruption,
 * and a child killed with SIGKILL while it writes in a loop, after which no
 * report it counted as made is missing or changed, and none it saw
 * acknowledged comes back.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "recfile.h"
#include "testutil.h"

static char root[256];
static char path[512];

static void make_root(void)
{
	fl_test_tmp_root(root, sizeof(root), "check_journal");
}

static void remove_root(void)
{
	fl_test_rm_rf(root);
}

static void setup(void)
{
	char sub[512];

	fl_log_set_level(FL_LOG_ERROR);
	fl_test_fmt(sub, sizeof(sub), "%s/t", root);
	fl_test_rm_rf(sub);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	fl_test_fmt(path, sizeof(path), "%s/journal", sub);
}

static struct fl_journal *open_journal(void)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_journal *j = NULL;

	ck_assert_msg(fl_journal_open(path, &j, err) == FL_OK, "%s", err);
	return j;
}

static uint64_t put_text(struct fl_journal *j, const char *prefix, unsigned n)
{
	char err[FL_ERRBUF_SIZE] = "", text[64];
	uint64_t id = fl_journal_reserve(j);

	snprintf(text, sizeof(text), "%s%u", prefix, n);
	ck_assert_msg(fl_journal_put(j, id, text, strlen(text), err) == FL_OK, "%s", err);
	return id;
}

static off_t file_size(void)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

static void expect_pending(struct fl_journal *j, uint64_t id, const char *text)
{
	struct fl_buf b = FL_BUF_INIT;
	uint64_t got;

	ck_assert_msg(fl_journal_pending(j, id), "report %llu is not pending",
	              (unsigned long long)id);
	ck_assert(fl_journal_next(j, id - 1, &got, &b));
	ck_assert_uint_eq(got, id);
	ck_assert_uint_eq(b.len, strlen(text));
	ck_assert_mem_eq(b.data, text, b.len);
	fl_buf_fini(&b);
}

START_TEST(reserve_put_ack_reopen)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_journal *j = open_journal();
	struct fl_buf b = FL_BUF_INIT;
	uint64_t a, c, id;

	ck_assert_uint_eq(fl_journal_max_id(j), 0);
	a = put_text(j, "report ", 1);
	put_text(j, "report ", 2);
	c = put_text(j, "report ", 3);
	ck_assert_uint_eq(a, 1);
	ck_assert_uint_eq(c, 3);
	ck_assert_uint_eq(fl_journal_count(j), 3);
	/* putting a pending id again writes nothing */
	ck_assert_int_eq(fl_journal_put(j, 2, "other", 5, err), FL_OK);
	expect_pending(j, 2, "report 2");
	ck_assert_int_eq(fl_journal_put(j, 0, "x", 1, err), FL_EINVAL);

	ck_assert_int_eq(fl_journal_ack(j, 2, err), FL_OK);
	ck_assert_int_eq(fl_journal_ack(j, 2, err), FL_OK); /* twice: no-op */
	ck_assert_int_eq(fl_journal_ack(j, 99, err), FL_OK);
	ck_assert(!fl_journal_pending(j, 2));
	/* next walks the pending ones in id order */
	ck_assert(fl_journal_next(j, 0, &id, &b));
	ck_assert_uint_eq(id, 1);
	ck_assert(fl_journal_next(j, 1, &id, &b));
	ck_assert_uint_eq(id, 3);
	ck_assert(!fl_journal_next(j, 3, &id, &b));
	fl_journal_close(j);

	j = open_journal();
	ck_assert_uint_eq(fl_journal_count(j), 2);
	expect_pending(j, 1, "report 1");
	expect_pending(j, 3, "report 3");
	ck_assert(!fl_journal_pending(j, 2));
	ck_assert_uint_eq(fl_journal_max_id(j), 3);
	ck_assert_uint_eq(fl_journal_reserve(j), 4);
	/* a reserved id never written is not given again in this process */
	ck_assert_uint_eq(fl_journal_reserve(j), 5);
	fl_journal_close(j);
	fl_buf_fini(&b);
}
END_TEST

/* Ids stay unique across compaction (every report acknowledged) and reopen. */
START_TEST(ids_survive_compaction)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_journal *j = open_journal();
	off_t before;
	unsigned i;

	for (i = 1; i <= 3 * FL_JOURNAL_COMPACT_AFTER; i++) {
		uint64_t id = put_text(j, "r", i);

		ck_assert_uint_eq(id, i);
		if (i != 7)
			ck_assert_int_eq(fl_journal_ack(j, id, err), FL_OK);
	}
	ck_assert_uint_eq(fl_journal_count(j), 1);
	before = file_size();
	ck_assert_int_eq(fl_journal_compact(j, err), FL_OK);
	ck_assert_int_lt(file_size(), before + 1);
	fl_journal_close(j);
	/* compacted: BASE and report 7, far smaller than 384 reports */
	ck_assert_int_lt(file_size(), 200);

	j = open_journal();
	ck_assert_uint_eq(fl_journal_count(j), 1);
	expect_pending(j, 7, "r7");
	ck_assert_uint_eq(fl_journal_reserve(j), 3 * FL_JOURNAL_COMPACT_AFTER + 1);
	ck_assert_int_eq(fl_journal_ack(j, 7, err), FL_OK);
	ck_assert_int_eq(fl_journal_compact(j, err), FL_OK);
	fl_journal_close(j);
	j = open_journal();
	ck_assert_uint_eq(fl_journal_count(j), 0);
	ck_assert_uint_eq(fl_journal_max_id(j), 3 * FL_JOURNAL_COMPACT_AFTER);
	fl_journal_close(j);
}
END_TEST

/* A report re-sent from the ledger after it was acknowledged comes back
 * under its own id, and stays pending across a reopen. */
START_TEST(put_old_id_again)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_journal *j = open_journal();

	put_text(j, "r", 1);
	put_text(j, "r", 2);
	ck_assert_int_eq(fl_journal_ack(j, 1, err), FL_OK);
	ck_assert_int_eq(fl_journal_put(j, 1, "r1", 2, err), FL_OK);
	fl_journal_close(j);
	j = open_journal();
	expect_pending(j, 1, "r1");
	expect_pending(j, 2, "r2");
	ck_assert_uint_eq(fl_journal_reserve(j), 3);
	fl_journal_close(j);
}
END_TEST

/* Cut the file at every byte inside its last record: each open drops that
 * record (and only it), cuts the file back, and appends work afterwards. */
START_TEST(torn_tail_every_offset)
{
	struct fl_journal *j = open_journal();
	off_t good, full, at;

	put_text(j, "first report ", 1);
	put_text(j, "second report ", 2);
	good = file_size();
	put_text(j, "third report, the one torn ", 3);
	full = file_size();
	fl_journal_close(j);

	for (at = good; at < full; at++) {
		char err[FL_ERRBUF_SIZE] = "";
		int fd;

		/* rebuild the full file, then tear it */
		ck_assert_int_eq(truncate(path, good), 0);
		j = open_journal();
		ck_assert_uint_eq(fl_journal_count(j), 2);
		ck_assert_int_eq(fl_journal_put(j, 3, "third report, the one torn 3", 28, err),
		                 FL_OK);
		fl_journal_close(j);
		ck_assert_int_eq(file_size(), full);
		fd = open(path, O_WRONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, at), 0);
		close(fd);

		j = open_journal();
		ck_assert_uint_eq(fl_journal_count(j), 2);
		expect_pending(j, 1, "first report 1");
		expect_pending(j, 2, "second report 2");
		ck_assert(!fl_journal_pending(j, 3));
		ck_assert_int_eq(file_size(), good);
		/* id 3 was never made: it may be given again */
		ck_assert_uint_eq(fl_journal_reserve(j), 3);
		fl_journal_close(j);
	}
}
END_TEST

/* A flipped bit in the last record: cut (a torn write looks so). */
START_TEST(corrupt_record_cut)
{
	struct fl_journal *j = open_journal();
	off_t one, two;
	char byte;
	int fd;

	put_text(j, "r", 1);
	one = file_size();
	put_text(j, "r", 2);
	two = file_size();
	put_text(j, "r", 3);
	fl_journal_close(j);

	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &byte, 1, two + 21), 1);
	byte ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &byte, 1, two + 21), 1);
	j = open_journal();
	ck_assert_uint_eq(fl_journal_count(j), 2);
	ck_assert_int_eq(file_size(), two);
	fl_journal_close(j);

	ck_assert_int_eq(pread(fd, &byte, 1, one + 5), 1); /* record 2's length */
	byte ^= 0x01;
	ck_assert_int_eq(pwrite(fd, &byte, 1, one + 5), 1);
	close(fd);
	j = open_journal();
	ck_assert_uint_eq(fl_journal_count(j), 1);
	expect_pending(j, 1, "r1");
	ck_assert_int_eq(file_size(), one);
	fl_journal_close(j);
}
END_TEST

static void flip(off_t at)
{
	char byte;
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &byte, 1, at), 1);
	byte ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &byte, 1, at), 1);
	close(fd);
}

/* Damage before good records is no torn write: cutting there would drop
 * reports made (synced) after it, so the open is refused and the file left
 * as it is. Damaged acknowledgements (written without a sync) followed only
 * by acknowledgements are what a crash leaves: cut. */
START_TEST(damage_before_good_records_refused)
{
	struct fl_journal *j = open_journal();
	char err[FL_ERRBUF_SIZE] = "", cmd[64];
	off_t one, two, size;
	uint64_t a, b;

	put_text(j, "r", 1);
	one = file_size();
	put_text(j, "r", 2);
	two = file_size();
	put_text(j, "r", 3);
	fl_journal_close(j);
	size = file_size();

	flip(one + 24); /* inside report 2 */
	j = NULL;
	ck_assert_int_eq(fl_journal_open(path, &j, err), FL_EPARSE);
	ck_assert_ptr_null(j);
	snprintf(cmd, sizeof(cmd), "at offset %lld is damaged", (long long)one);
	ck_assert_msg(strstr(err, cmd) != NULL, "%s", err);
	snprintf(cmd, sizeof(cmd), "truncate -s %lld ", (long long)one);
	ck_assert_msg(strstr(err, cmd) != NULL, "%s", err);
	ck_assert_int_eq(file_size(), size); /* nothing cut */
	/* cut on purpose, as the message says: the reports before it stay */
	ck_assert_int_eq(truncate(path, one), 0);
	j = open_journal();
	ck_assert_uint_eq(fl_journal_count(j), 1);
	expect_pending(j, 1, "r1");
	ck_assert_int_eq(file_size(), one);
	(void)two;

	/* acknowledgements at the end, the first one damaged: cut there */
	a = put_text(j, "r", 4);
	b = put_text(j, "r", 5);
	two = file_size();
	ck_assert_int_eq(fl_journal_ack(j, a, err), FL_OK);
	ck_assert_int_eq(fl_journal_ack(j, b, err), FL_OK);
	fl_journal_close(j);
	flip(two + 13); /* the first ACK's id */
	j = open_journal();
	ck_assert_int_eq(file_size(), two);
	ck_assert(fl_journal_pending(j, a)); /* sent again: harmless */
	ck_assert(fl_journal_pending(j, b));
	fl_journal_close(j);
}
END_TEST

START_TEST(refuses_foreign_and_unsafe_files)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_journal *j = NULL;
	FILE *f;

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a journal at all\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(fl_journal_open(path, &j, err), FL_EPARSE);
	ck_assert_ptr_null(j);
	ck_assert_msg(strstr(err, "is not a flotilla journal file") != NULL, "%s", err);

	unlink(path);
	j = open_journal();
	fl_journal_close(j);
	ck_assert_int_eq(chmod(path, 0666), 0);
	ck_assert_int_eq(fl_journal_open(path, &j, err), FL_EIO);
	ck_assert_msg(strstr(err, "writable by others") != NULL, "%s", err);

	/* shorter than the header: a crash while it was created: started again */
	unlink(path);
	f = fopen(path, "w");
	fputs("flot", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0600), 0);
	j = open_journal();
	ck_assert_uint_eq(fl_journal_count(j), 0);
	fl_journal_close(j);
	ck_assert_int_eq(file_size(), FL_RECFILE_MAGIC_LEN);
}
END_TEST

/*
 * A child appends reports in a loop, acknowledging all but every tenth once
 * it is made (so the journal compacts over and over), and tells the parent over a pipe each id it
 * made ("m <id>") and each it saw acknowledged ("a <id>"), only after the call returned. The parent
 * SIGKILLs it mid-loop, then reopens: every id made and not acknowledged is pending with its own
 * bytes; every acknowledged one is gone; nothing else is there.
 */
static void child_writer(int wfd)
{
	char err[FL_ERRBUF_SIZE], text[64], line[64];
	struct fl_journal *j = NULL;

	if (fl_journal_open(path, &j, err) != FL_OK)
		_exit(2);
	for (;;) {
		uint64_t id = fl_journal_reserve(j);
		int n = snprintf(text, sizeof(text), "report number %llu", (unsigned long long)id);

		if (fl_journal_put(j, id, text, (size_t)n, err) != FL_OK)
			_exit(3);
		n = snprintf(line, sizeof(line), "m %llu\n", (unsigned long long)id);
		if (write(wfd, line, (size_t)n) != n)
			_exit(4);
		if (id % 10 != 0) {
			if (fl_journal_ack(j, id, err) != FL_OK)
				_exit(5);
			n = snprintf(line, sizeof(line), "a %llu\n", (unsigned long long)id);
			if (write(wfd, line, (size_t)n) != n)
				_exit(6);
		}
	}
}

START_TEST(sigkill_while_writing)
{
	enum { WANT = 600 };
	static char state[100000]; /* per id: 0 unknown, 'm' made, 'a' acknowledged */
	struct fl_journal *j;
	struct fl_buf b = FL_BUF_INIT;
	unsigned long long id, max = 0, made = 0;
	uint64_t pid_id;
	int fds[2], status;
	char kind;
	FILE *in;
	pid_t pid;

	memset(state, 0, sizeof(state));
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		child_writer(fds[1]);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	ck_assert_ptr_nonnull(in);
	while (made < WANT && fscanf(in, " %c %llu", &kind, &id) == 2) {
		ck_assert_uint_lt(id, sizeof(state));
		state[id] = kind;
		made += kind == 'm';
		if (id > max)
			max = id;
	}
	kill(pid, SIGKILL);
	/* whatever the child said before it died counts too */
	while (fscanf(in, " %c %llu", &kind, &id) == 2) {
		ck_assert_uint_lt(id, sizeof(state));
		state[id] = kind;
		if (id > max)
			max = id;
	}
	fclose(in);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ck_assert_uint_ge(made, WANT);

	j = open_journal();
	for (id = 1; id <= max; id++) {
		char text[64];

		snprintf(text, sizeof(text), "report number %llu", id);
		if (state[id] == 'm' && id == max && id % 10 != 0 && !fl_journal_pending(j, id))
			continue; /* killed between its acknowledgement and telling us */
		if (state[id] == 'm')
			expect_pending(j, id, text);
		else if (state[id] == 'a')
			ck_assert_msg(!fl_journal_pending(j, id), "acknowledged %llu is back", id);
	}
	/* anything else pending is a report made but not yet told (one at most) */
	pid_id = 0;
	while (fl_journal_next(j, pid_id, &pid_id, &b)) {
		id = pid_id;
		char text[64];

		snprintf(text, sizeof(text), "report number %llu", id);
		ck_assert_uint_eq(b.len, strlen(text));
		ck_assert_mem_eq(b.data, text, b.len);
		ck_assert_msg(state[id] == 'm' || id == max + 1, "report %llu pending", id);
	}
	ck_assert_uint_gt(fl_journal_reserve(j), max);
	fl_journal_close(j);
	fl_buf_fini(&b);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");

	tcase_add_unchecked_fixture(tc, make_root, remove_root);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reserve_put_ack_reopen);
	tcase_add_test(tc, ids_survive_compaction);
	tcase_add_test(tc, put_old_id_again);
	tcase_add_test(tc, torn_tail_every_offset);
	tcase_add_test(tc, corrupt_record_cut);
	tcase_add_test(tc, damage_before_good_records_refused);
	tcase_add_test(tc, refuses_foreign_and_unsafe_files);
	tcase_add_test(tc, sigkill_while_writing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(journal_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
