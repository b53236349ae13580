/*
 * bench_apply: the lower bound of tests/bench/run.sh's fleet apply. It
 * applies a folder of Prisma migrations to many tenants directly with libpq,
 * P threads at once, with no coordination at all: per tenant one connection,
 * Prisma's _prisma_migrations table created if missing, then per migration
 * one round trip holding BEGIN, the history row's INSERT, the script, the
 * row's UPDATE (finished) and COMMIT. That is the bookkeeping flotilla's
 * agent does per migration (drivers/postgres/pg_apply.c, tx_batch), less
 * everything else: no lock, no session cleaning, no fingerprint, no report.
 *
 *   bench_apply [--reset] --targets FILE --parallel P [--dir MIGRATIONS]
 *
 * FILE holds one tenant a line: "DBNAME" (a database tenant) or
 * "DBNAME SCHEMA" (a schema tenant). The server is libpq's defaults (PGHOST,
 * PGPORT, PGUSER). --reset instead drops what any run left in each tenant
 * (the schema public, or the tenant's schema, made anew) so the next method
 * starts from empty tenants. Prints "ms=T tenants=N migrations=M cpu_ms=C" on
 * stdout (C: this process's own CPU time, user and system);
 * exits 1 at the first error, naming the tenant.
 */
#include <dirent.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "checksum.h"
#include "migration.h"

#define MAX_MIGRATIONS 1000

struct migration {
	char name[256];
	char checksum[FL_CHECKSUM_HEX_LEN + 1];
	char *sql;
};

struct target {
	char *db;
	char *schema; /* NULL: a database tenant */
};

static struct migration migs[MAX_MIGRATIONS];
static size_t n_migs;
static struct target *targets;
static size_t n_targets;
static atomic_size_t next_target;
static atomic_int failed;
static int reset;

static const char ddl[] = "CREATE TABLE IF NOT EXISTS _prisma_migrations (\n"
                          "    id                      VARCHAR(36) PRIMARY KEY NOT NULL,\n"
                          "    checksum                VARCHAR(64) NOT NULL,\n"
                          "    finished_at             TIMESTAMPTZ,\n"
                          "    migration_name          VARCHAR(255) NOT NULL,\n"
                          "    logs                    TEXT,\n"
                          "    rolled_back_at          TIMESTAMPTZ,\n"
                          "    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
                          "    applied_steps_count     INTEGER NOT NULL DEFAULT 0\n"
                          ")";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_apply: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text;
	long len;

	if (f == NULL)
		die("cannot open '%s'", path);
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		die("cannot read '%s'", path);
	text = malloc((size_t)len + 1);
	if (text == NULL || fread(text, 1, (size_t)len, f) != (size_t)len)
		die("cannot read '%s'", path);
	text[len] = '\0';
	fclose(f);
	return text;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct migration *)a)->name, ((const struct migration *)b)->name);
}

static void load_migrations(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4096];

	if (d == NULL)
		die("cannot open '%s'", dir);
	while ((de = readdir(d)) != NULL) {
		FILE *probe;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(migs[0].name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/migration.sql", dir, de->d_name);
		if ((probe = fopen(path, "rb")) == NULL)
			continue;
		fclose(probe);
		if (n_migs == MAX_MIGRATIONS)
			die("'%s': more than 1000 migrations", dir);
		snprintf(migs[n_migs].name, sizeof(migs[0].name), "%s", de->d_name);
		migs[n_migs].sql = read_file(path);
		fl_checksum_compute(migs[n_migs].sql, strlen(migs[n_migs].sql),
		                    migs[n_migs].checksum);
		n_migs++;
	}
	closedir(d);
	qsort(migs, n_migs, sizeof(migs[0]), by_name);
}

static void load_targets(const char *path)
{
	char *text = read_file(path), *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');

		if (*line == '\0')
			continue;
		targets = realloc(targets, (n_targets + 1) * sizeof(*targets));
		if (targets == NULL)
			die("out of memory");
		if (sp)
			*sp++ = '\0';
		targets[n_targets].db = line;
		targets[n_targets].schema = sp && *sp ? sp : NULL;
		n_targets++;
	}
}

static int run(PGconn *c, const char *sql, const struct target *t)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok) {
		fprintf(stderr, "bench_apply: tenant '%s%s%s': %s", t->db, t->schema ? "." : "",
		        t->schema ? t->schema : "", PQerrorMessage(c));
		atomic_store(&failed, 1);
	}
	PQclear(r);
	return ok;
}

static void apply_one(PGconn *c, const struct target *t, unsigned *seed)
{
	char *q = NULL;
	size_t cap = 0;

	if (!run(c, ddl, t))
		return;
	for (size_t i = 0; i < n_migs; i++) {
		char id[37];
		size_t need = strlen(migs[i].sql) + 1024;

		for (int k = 0; k < 36; k++)
			id[k] = "0123456789abcdef"[rand_r(seed) & 15];
		id[8] = id[13] = id[18] = id[23] = '-';
		id[36] = '\0';
		if (need > cap) {
			cap = need;
			q = realloc(q, cap);
			if (q == NULL)
				die("out of memory");
		}
		snprintf(
		    q, cap,
		    "BEGIN; INSERT INTO _prisma_migrations (id, checksum, migration_name, "
		    "started_at, applied_steps_count) VALUES ('%s', '%s', '%s', now(), 0);\n%s\n;\n"
		    "UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 "
		    "WHERE id = '%s'; COMMIT",
		    id, migs[i].checksum, migs[i].name, migs[i].sql, id);
		if (!run(c, q, t))
			break;
	}
	free(q);
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg ^ (unsigned)time(NULL);
	size_t i;

	while (!atomic_load(&failed) && (i = atomic_fetch_add(&next_target, 1)) < n_targets) {
		const struct target *t = &targets[i];
		const char *keys[] = {"dbname", "application_name", NULL};
		const char *vals[] = {t->db, "bench_apply", NULL};
		PGconn *c = PQconnectdbParams(keys, vals, 1);
		char sql[1024];

		if (PQstatus(c) != CONNECTION_OK) {
			fprintf(stderr, "bench_apply: cannot connect to '%s': %s", t->db,
			        PQerrorMessage(c));
			atomic_store(&failed, 1);
			PQfinish(c);
			break;
		}
		if (t->schema) {
			char *ident = PQescapeIdentifier(c, t->schema, strlen(t->schema));

			if (reset)
				snprintf(sql, sizeof(sql),
				         "SET client_min_messages = warning; DROP SCHEMA IF EXISTS "
				         "%s CASCADE; CREATE SCHEMA %s",
				         ident, ident);
			else
				snprintf(sql, sizeof(sql), "SET search_path TO %s", ident);
			PQfreemem(ident);
			if (run(c, sql, t) && !reset)
				apply_one(c, t, &seed);
		} else if (reset) {
			run(c,
			    "SET client_min_messages = warning; DROP SCHEMA IF EXISTS public "
			    "CASCADE; DROP SCHEMA IF EXISTS _flotilla "
			    "CASCADE; "
			    "CREATE SCHEMA public",
			    t);
		} else {
			apply_one(c, t, &seed);
		}
		PQfinish(c);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option o[] = {{"reset", 0, 0, 'r'},
	                                  {"targets", 1, 0, 't'},
	                                  {"parallel", 1, 0, 'p'},
	                                  {"dir", 1, 0, 'd'},
	                                  {0, 0, 0, 0}};
	const char *targets_file = NULL, *dir = NULL;
	long parallel = 0;
	pthread_t th[256];
	struct timespec t0, t1;
	struct rusage ru;
	int c;

	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'r':
			reset = 1;
			break;
		case 't':
			targets_file = optarg;
			break;
		case 'p':
			parallel = strtol(optarg, NULL, 10);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			die("usage: bench_apply [--reset] --targets FILE --parallel P [--dir "
			    "DIR]%s%s",
			    "", "");
		}
	}
	if (targets_file == NULL || parallel < 1 || parallel > 256 || (!reset && dir == NULL))
		die("usage: bench_apply [--reset] --targets FILE --parallel P(1-256) [--dir "
		    "DIR]%s%s",
		    "", "");
	if (!reset) {
		load_migrations(dir);
		if (n_migs == 0)
			die("no migration folders in '%s'", dir);
	}
	load_targets(targets_file);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < parallel; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (long i = 0; i < parallel; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("ms=%.1f tenants=%zu migrations=%zu cpu_ms=%.0f\n",
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	       n_targets, n_migs,
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
	return atomic_load(&failed) ? 1 : 0;
}
