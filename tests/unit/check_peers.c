/* Our identity, the peer registry, enrollment of a key and peers.seq. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keys.h"
#include "log.h"
#include "peers.h"

static char dir[256];
static char seqpath[300];
static struct fl_identity *self;

/* The folder is made and removed by the parent (an unchecked fixture), so it
 * goes away even when a test fails; each test starts from an empty one. */
static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_peers.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(seqpath, sizeof(seqpath), "%s/peers.seq", dir);
}

static void empty_dir(void)
{
	char p[400];

	unlink(seqpath);
	snprintf(p, sizeof(p), "%s/link", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/subdir", dir);
	rmdir(p);
}

static void remove_dir(void)
{
	empty_dir();
	rmdir(dir);
}

static void setup(void)
{
	uint8_t seed[32];

	fl_log_set_level(FL_LOG_ERROR);
	empty_dir();
	memset(seed, 0x5e, sizeof(seed));
	self = fl_identity_new_from_seed(seed);
	ck_assert_ptr_nonnull(self);
}

static void teardown(void)
{
	fl_identity_free(self);
	self = NULL;
	empty_dir();
}

/* The public key of a test peer numbered n. */
static void peer_pk(int n, uint8_t pk[32])
{
	uint8_t seed[32], sk[64];

	memset(seed, 0, sizeof(seed));
	seed[0] = (uint8_t)n;
	seed[1] = (uint8_t)(n >> 8);
	seed[31] = 0xa7;
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(sk, sizeof(sk));
}

static struct fl_peers *open_peers(const char *path, size_t max)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_peers *p = NULL;

	ck_assert_msg(fl_peers_new(self, path, max, 0, &p, err) == FL_OK, "%s", err);
	return p;
}

static enum fl_err try_open(const char *path, size_t max, char *err)
{
	struct fl_peers *p = NULL;
	enum fl_err rv = fl_peers_new(self, path, max, 0, &p, err);

	ck_assert(rv == FL_OK ? p != NULL : p == NULL);
	fl_peers_free(p);
	return rv;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static size_t read_file(const char *path, uint8_t *data, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, data, cap);
	close(fd);
	ck_assert_int_ge(n, 0);
	return (size_t)n;
}

START_TEST(identity_from_seed_matches_rfc8032)
{
	static const char seed_hex[] =
	    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
	static const char pk_hex[] =
	    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
	uint8_t seed[32], pk[32], sig[64];
	struct fl_identity *id;

	ck_assert_int_eq(sodium_hex2bin(seed, 32, seed_hex, 64, NULL, NULL, NULL), 0);
	ck_assert_int_eq(sodium_hex2bin(pk, 32, pk_hex, 64, NULL, NULL, NULL), 0);
	id = fl_identity_new_from_seed(seed);
	ck_assert_mem_eq(fl_identity_public_key(id), pk, 32);
	ck_assert_str_eq(fl_identity_key_id(id), "21fe31dfa154a261");
	/* RFC 8032 test 1: the empty message. */
	fl_identity_sign(id, sig, (const uint8_t *)"", 0);
	ck_assert_int_eq(crypto_sign_verify_detached(sig, (const uint8_t *)"", 0, pk), 0);
	fl_identity_free(id);
	fl_identity_free(NULL);
}
END_TEST

START_TEST(roles_have_stable_names)
{
	static const char *const names[] = {"none",   "coordinator",     "agent",
	                                    "viewer", "release-manager", "admin"};
	enum fl_peer_role r;
	char err[FL_ERRBUF_SIZE] = "";

	for (int i = 0; i <= FL_PEER_ADMIN; i++)
		ck_assert_str_eq(fl_peer_role_name((enum fl_peer_role)i), names[i]);
	ck_assert_str_eq(fl_peer_role_name((enum fl_peer_role)99), "unknown");
	ck_assert_int_eq(FL_PEER_COORDINATOR, 1);
	ck_assert_int_eq(FL_PEER_ADMIN, 5);
	for (int i = 1; i <= FL_PEER_ADMIN; i++) {
		ck_assert_int_eq(fl_peer_role_parse(names[i], &r, err), FL_OK);
		ck_assert_int_eq(r, i);
	}
	ck_assert_int_eq(fl_peer_role_parse("none", &r, err), FL_EINVAL);
	ck_assert_int_eq(fl_peer_role_parse("Admin", &r, err), FL_EINVAL);
	ck_assert_str_eq(err, "unknown role 'Admin' (use coordinator, agent, viewer, "
	                      "release-manager or admin)");
	ck_assert_int_eq(fl_peer_role_parse(NULL, &r, NULL), FL_EINVAL);
}
END_TEST

START_TEST(add_find_get)
{
	struct fl_peers *p = open_peers(NULL, 0);
	struct fl_peer_info info;
	uint8_t a[32], b[32];
	char id[17], err[FL_ERRBUF_SIZE] = "";

	peer_pk(1, a);
	peer_pk(2, b);
	ck_assert_ptr_eq(fl_peers_identity(p), self);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "db-eu-1.example.com", err), FL_OK);
	ck_assert_int_eq(fl_peers_add(p, b, FL_PEER_ADMIN, "alice@example.com", err), FL_OK);
	ck_assert_uint_eq(fl_peers_count(p), 2);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	fl_key_id(a, id);
	ck_assert_str_eq(info.id, id);
	ck_assert_str_eq(info.name, "db-eu-1.example.com");
	ck_assert_int_eq(info.role, FL_PEER_AGENT);
	ck_assert(!info.revoked);
	ck_assert_uint_eq(info.last_seq, 0);
	ck_assert_mem_eq(info.pk, a, 32);
	ck_assert_int_eq(fl_peers_get(p, 1, &info), FL_OK);
	ck_assert_str_eq(info.name, "alice@example.com");
	ck_assert_int_eq(fl_peers_get(p, 2, &info), FL_ENOENT);
	peer_pk(3, a);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_ENOENT);
	/* Re-adding changes role and name. */
	ck_assert_int_eq(fl_peers_add(p, b, FL_PEER_VIEWER, "alice", err), FL_OK);
	ck_assert_int_eq(fl_peers_find(p, b, &info), FL_OK);
	ck_assert_int_eq(info.role, FL_PEER_VIEWER);
	ck_assert_str_eq(info.name, "alice");
	ck_assert_uint_eq(fl_peers_count(p), 2);
	fl_peers_free(p);
	fl_peers_free(NULL);
}
END_TEST

START_TEST(add_refuses_bad_input)
{
	struct fl_peers *p = open_peers(NULL, 0);
	uint8_t pk[32], bad[32];
	char err[FL_ERRBUF_SIZE] = "", longname[80];
	static const char *const names[] = {"", "has space", "quote'd", "new\nline", "é", "a/b"};

	peer_pk(1, pk);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_AGENT, names[i], err), FL_EINVAL);
	ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_AGENT, NULL, err), FL_EINVAL);
	memset(longname, 'x', sizeof(longname));
	longname[FL_PEER_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_AGENT, longname, err), FL_EINVAL);
	longname[FL_PEER_NAME_MAX] = '\0';
	ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_AGENT, longname, err), FL_OK);
	ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_NONE, "x", err), FL_EINVAL);
	ck_assert_int_eq(fl_peers_add(p, pk, (enum fl_peer_role)6, "x", err), FL_EINVAL);
	ck_assert_str_eq(err, "invalid peer role 6");
	/* Our own key. */
	ck_assert_int_eq(fl_peers_add(p, fl_identity_public_key(self), FL_PEER_AGENT, "me", err),
	                 FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "our own key"));
	/* Small-order points and non-points. */
	memset(bad, 0, sizeof(bad));
	bad[0] = 1; /* the neutral element */
	ck_assert_int_eq(fl_peers_add(p, bad, FL_PEER_AGENT, "x", err), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not a usable Ed25519 public key"));
	memset(bad, 0, sizeof(bad));
	ck_assert_int_eq(fl_peers_add(p, bad, FL_PEER_AGENT, "x", err), FL_EINVAL);
	memset(bad, 0xff, sizeof(bad));
	ck_assert_int_eq(fl_peers_add(p, bad, FL_PEER_AGENT, "x", err), FL_EINVAL);
	ck_assert_uint_eq(fl_peers_count(p), 1);
	fl_peers_free(p);
}
END_TEST

START_TEST(revocation_is_permanent)
{
	struct fl_peers *p = open_peers(seqpath, 0);
	struct fl_peer_info info;
	uint8_t a[32], b[32], key[32];
	char err[FL_ERRBUF_SIZE] = "", id[17], want[64];
	uint64_t seq;

	peer_pk(1, a);
	peer_pk(2, b);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(fl_peers_recv_begin(p, a, key, &info), FL_PEER_OK);
	ck_assert_int_eq(fl_peers_revoke(p, a, err), FL_OK);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	ck_assert(info.revoked);
	ck_assert_int_eq(fl_peers_recv_begin(p, a, key, &info), FL_PEER_REVOKED);
	ck_assert_int_eq(fl_peers_send_begin(p, a, 1, key, &seq, err), FL_ESTATE);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_ESTATE);
	fl_key_id(a, id);
	snprintf(want, sizeof(want), "key %s was revoked", id);
	ck_assert_str_eq(err, want);
	/* A key never added can be revoked ahead of time. */
	ck_assert_int_eq(fl_peers_revoke(p, b, err), FL_OK);
	ck_assert_int_eq(fl_peers_find(p, b, &info), FL_OK);
	ck_assert(info.revoked);
	ck_assert_int_eq(info.role, FL_PEER_NONE);
	ck_assert_int_eq(fl_peers_recv_begin(p, b, key, &info), FL_PEER_REVOKED);
	fl_peers_free(p);

	/* And it stays revoked across a restart, whatever the config says. */
	p = open_peers(seqpath, 0);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_ESTATE);
	ck_assert_int_eq(fl_peers_add(p, b, FL_PEER_AGENT, "b", err), FL_ESTATE);
	ck_assert_int_eq(fl_peers_recv_begin(p, a, key, &info), FL_PEER_REVOKED);
	fl_peers_free(p);
}
END_TEST

START_TEST(send_seq_follows_the_clock)
{
	struct fl_peers *p = open_peers(NULL, 0);
	uint8_t a[32], key[32];
	char err[FL_ERRBUF_SIZE] = "";
	uint64_t seq;

	peer_pk(1, a);
	ck_assert_int_eq(fl_peers_send_begin(p, a, 1000, key, &seq, err), FL_ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "unknown recipient"));
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_COORDINATOR, "coord", err), FL_OK);
	ck_assert_int_eq(fl_peers_send_begin(p, a, 1000, key, &seq, err), FL_OK);
	ck_assert_uint_eq(seq, 1000);
	ck_assert_int_eq(fl_peers_send_begin(p, a, 1000, key, &seq, err), FL_OK);
	ck_assert_uint_eq(seq, 1001);
	ck_assert_int_eq(fl_peers_send_begin(p, a, 10, key, &seq, err), FL_OK); /* clock back */
	ck_assert_uint_eq(seq, 1002);
	ck_assert_int_eq(fl_peers_send_begin(p, a, -5, key, &seq, err), FL_OK);
	ck_assert_uint_eq(seq, 1003);
	ck_assert_int_eq(fl_peers_send_begin(p, a, 5000, key, &seq, err), FL_OK);
	ck_assert_uint_eq(seq, 5000);
	sodium_memzero(key, sizeof(key));
	fl_peers_free(p);
}
END_TEST

START_TEST(recv_commit_checks_in_order)
{
	struct fl_peers *p = open_peers(NULL, 0);
	struct fl_peer_info info;
	uint8_t a[32], b[32], key[32];
	char err[FL_ERRBUF_SIZE] = "";
	uint64_t last = 99, floor = 99;

	peer_pk(1, a);
	peer_pk(2, b);
	ck_assert_int_eq(fl_peers_recv_begin(p, a, key, &info), FL_PEER_UNKNOWN);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(fl_peers_recv_begin(p, a, key, &info), FL_PEER_OK);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 0, true, &last, &floor), FL_PEER_REPLAY);
	ck_assert_uint_eq(last, 0);
	ck_assert_uint_eq(floor, 0);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 10, true, &last, &floor), FL_PEER_OK);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 10, true, &last, &floor), FL_PEER_REPLAY);
	ck_assert_uint_eq(last, 10);
	/* Replay is reported before skew, and a skewed message does not count:
	 * 9, refused for its timestamp, is still accepted later. */
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 10, false, &last, &floor), FL_PEER_REPLAY);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 9, false, &last, &floor), FL_PEER_SKEW);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 20, false, &last, &floor), FL_PEER_SKEW);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	ck_assert_uint_eq(info.last_seq, 10);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 9, true, &last, &floor), FL_PEER_OK);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 11, true, &last, &floor), FL_PEER_OK);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, UINT64_MAX, true, &last, &floor), FL_PEER_OK);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, UINT64_MAX, true, &last, &floor),
	                 FL_PEER_REPLAY);
	ck_assert_uint_eq(last, UINT64_MAX);
	/* Revoked is reported first. */
	ck_assert_int_eq(fl_peers_revoke(p, a, err), FL_OK);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 5, false, &last, &floor), FL_PEER_REVOKED);
	sodium_memzero(key, sizeof(key));
	fl_peers_free(p);
}
END_TEST

/* fl_peers_recv_commit for a message whose timestamp checked out. */
static enum fl_peer_check commit(struct fl_peers *p, const uint8_t pk[32], uint64_t seq)
{
	uint64_t last, floor;

	return fl_peers_recv_commit(p, pk, seq, true, &last, &floor);
}

/* The floor of pk's window, as commit reports it (with a number that is
 * refused whatever the window holds, so nothing changes). */
static uint64_t floor_of(struct fl_peers *p, const uint8_t pk[32])
{
	uint64_t last, floor;

	ck_assert_int_eq(fl_peers_recv_commit(p, pk, 0, true, &last, &floor), FL_PEER_REPLAY);
	return floor;
}

/*
 * One sender, several messages in flight: sealed 100..105, opened in another
 * order. Each is accepted once, in whatever order it comes, and refused ever
 * after. Before the window, 103 after 105 was refused as a replay.
 */
START_TEST(window_accepts_out_of_order_once)
{
	static const uint64_t order[] = {100, 105, 103, 101, 104, 102};
	struct fl_peers *p = open_peers(NULL, 0);
	struct fl_peer_info info;
	uint8_t a[32], b[32];
	char err[FL_ERRBUF_SIZE] = "";

	peer_pk(1, a);
	peer_pk(2, b);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(fl_peers_add(p, b, FL_PEER_AGENT, "b", err), FL_OK);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		ck_assert_msg(commit(p, a, order[i]) == FL_PEER_OK, "seq %llu",
		              (unsigned long long)order[i]);
		/* A duplicate of anything accepted so far, within the window. */
		for (size_t j = 0; j <= i; j++)
			ck_assert_int_eq(commit(p, a, order[j]), FL_PEER_REPLAY);
	}
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	ck_assert_uint_eq(info.last_seq, 105);
	ck_assert_uint_eq(floor_of(p, a), 0); /* nothing forgotten yet */
	/* Another sender's window is its own. */
	ck_assert_int_eq(commit(p, b, 103), FL_PEER_OK);
	ck_assert_int_eq(commit(p, b, 101), FL_PEER_OK);
	ck_assert_int_eq(commit(p, b, 101), FL_PEER_REPLAY);
	ck_assert_int_eq(commit(p, a, 99), FL_PEER_OK); /* never accepted: fine */
	ck_assert_int_eq(commit(p, a, 99), FL_PEER_REPLAY);
	fl_peers_free(p);
}
END_TEST

/*
 * The window holds the FL_PEERS_REPLAY_WINDOW highest numbers; the lowest is
 * forgotten when a higher one comes, and the floor rises to it: anything at
 * or below it is refused, accepted before or not. A message overtaken by up
 * to W others is accepted; by W + 1, refused.
 */
START_TEST(window_forgets_the_lowest)
{
	const uint64_t W = FL_PEERS_REPLAY_WINDOW;
	struct fl_peers *p = open_peers(NULL, 0);
	uint8_t a[32], b[32];
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_uint_eq(W, 32);
	peer_pk(1, a);
	peer_pk(2, b);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(fl_peers_add(p, b, FL_PEER_AGENT, "b", err), FL_OK);
	/* 1000, 1010, ..., 1000 + 10 W: W + 1 numbers, the first forgotten. */
	for (uint64_t k = 0; k <= W; k++)
		ck_assert_int_eq(commit(p, a, 1000 + 10 * k), FL_PEER_OK);
	ck_assert_uint_eq(floor_of(p, a), 1000);
	ck_assert_int_eq(commit(p, a, 1000), FL_PEER_REPLAY); /* forgotten, still refused */
	ck_assert_int_eq(commit(p, a, 995), FL_PEER_REPLAY);  /* older than the window */
	ck_assert_int_eq(commit(p, a, 1), FL_PEER_REPLAY);
	for (uint64_t k = 1; k <= W; k++)
		ck_assert_int_eq(commit(p, a, 1000 + 10 * k), FL_PEER_REPLAY);
	/* Between the floor and the lowest remembered: never accepted (it would
	 * be remembered), so accepted, and then it is the one forgotten. */
	ck_assert_int_eq(commit(p, a, 1005), FL_PEER_OK);
	ck_assert_uint_eq(floor_of(p, a), 1005);
	ck_assert_int_eq(commit(p, a, 1005), FL_PEER_REPLAY);
	ck_assert_int_eq(commit(p, a, 1001), FL_PEER_REPLAY);
	/* Inside the window: 1010 goes. */
	ck_assert_int_eq(commit(p, a, 1015), FL_PEER_OK);
	ck_assert_uint_eq(floor_of(p, a), 1010);
	ck_assert_int_eq(commit(p, a, 1010), FL_PEER_REPLAY);
	ck_assert_int_eq(commit(p, a, 1015), FL_PEER_REPLAY);
	ck_assert_int_eq(commit(p, a, 1016), FL_PEER_OK);
	ck_assert_uint_eq(floor_of(p, a), 1015);

	/* Sealed 1 .. W + 1; W + 1 arrives last, overtaken by W: accepted. */
	for (uint64_t s = 1; s <= W; s++)
		ck_assert_int_eq(commit(p, b, s + 1 == W + 1 ? 1 : s + 1), FL_PEER_OK);
	ck_assert_int_eq(commit(p, b, W + 1), FL_PEER_OK);
	ck_assert_uint_eq(floor_of(p, b), 1);
	/* Sealed W + 2 .. 2 W + 3; the first arrives after the W + 1 others. */
	for (uint64_t s = W + 3; s <= 2 * W + 3; s++)
		ck_assert_int_eq(commit(p, b, s), FL_PEER_OK);
	ck_assert_int_eq(commit(p, b, W + 2), FL_PEER_REPLAY);
	fl_peers_free(p);
}
END_TEST

/*
 * peers.seq keeps only the highest number: after a restart the window is
 * empty and its floor is that number, so nothing at or below it is accepted,
 * whether it was accepted before or only overtaken. Numbers above it are
 * accepted in any order again.
 */
START_TEST(window_after_restart)
{
	struct fl_peers *p = open_peers(seqpath, 0);
	struct fl_peer_info info;
	uint8_t a[32], buf[256];
	char err[FL_ERRBUF_SIZE] = "";
	uint64_t last;
	pid_t pid;
	int status;

	peer_pk(1, a);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(commit(p, a, 100), FL_PEER_OK);
	ck_assert_int_eq(commit(p, a, 300), FL_PEER_OK);
	ck_assert_int_eq(commit(p, a, 200), FL_PEER_OK); /* 250 never comes */
	/* The record holds the highest: an overtaken number is not written. */
	ck_assert_uint_eq(read_file(seqpath, buf, sizeof(buf)), 128);
	ck_assert_mem_eq(buf + 96, "\0\0\0\0\0\0\x01\x2c", 8); /* 300 */
	fl_peers_free(p);

	p = open_peers(seqpath, 0);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_uint_eq(floor_of(p, a), 300);
	for (uint64_t s = 1; s <= 300; s++)
		ck_assert_msg(commit(p, a, s) == FL_PEER_REPLAY, "seq %llu accepted after restart",
		              (unsigned long long)s);
	ck_assert_int_eq(commit(p, a, 400), FL_PEER_OK);
	ck_assert_int_eq(commit(p, a, 350), FL_PEER_OK);
	ck_assert_int_eq(commit(p, a, 301), FL_PEER_OK);
	ck_assert_int_eq(commit(p, a, 350), FL_PEER_REPLAY);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	ck_assert_uint_eq(info.last_seq, 400);
	fl_peers_free(p);

	/* A crash (no sync, no close) right after an out-of-order accept. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint64_t floor;

		p = NULL;
		if (fl_peers_new(self, seqpath, 0, 0, &p, err) != FL_OK ||
		    fl_peers_add(p, a, FL_PEER_AGENT, "a", err) != FL_OK ||
		    fl_peers_recv_commit(p, a, 500, true, &last, &floor) != FL_PEER_OK ||
		    fl_peers_recv_commit(p, a, 450, true, &last, &floor) != FL_PEER_OK)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	p = open_peers(seqpath, 0);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(commit(p, a, 450), FL_PEER_REPLAY);
	ck_assert_int_eq(commit(p, a, 500), FL_PEER_REPLAY);
	ck_assert_int_eq(commit(p, a, 475), FL_PEER_REPLAY);
	ck_assert_int_eq(commit(p, a, 501), FL_PEER_OK);
	fl_peers_free(p);
}
END_TEST

/* A deterministic generator for the randomized test (xorshift64*). */
static uint64_t rnd(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * UINT64_C(2685821657736338717);
}

/*
 * The reference model of the window, as plainly as it can be said: a number
 * is accepted if it is above what peers.seq held at the start, was not
 * accepted since, and at most W numbers above it were.
 */
struct model {
	uint64_t start; /* the highest number on disk when the registry opened */
	uint64_t *acc;  /* accepted since */
	size_t n, cap;
	uint64_t top; /* the highest number generated for this sender */
};

static bool model_accepts(const struct model *m, uint64_t seq)
{
	size_t above = 0;

	if (seq <= m->start)
		return false;
	for (size_t i = 0; i < m->n; i++) {
		if (m->acc[i] == seq)
			return false;
		above += m->acc[i] > seq;
	}
	return above <= FL_PEERS_REPLAY_WINDOW;
}

static void model_accept(struct model *m, uint64_t seq)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->acc = realloc(m->acc, m->cap * sizeof(m->acc[0]));
		ck_assert_ptr_nonnull(m->acc);
	}
	m->acc[m->n++] = seq;
}

static uint64_t model_highest(const struct model *m)
{
	uint64_t h = m->start;

	for (size_t i = 0; i < m->n; i++)
		if (m->acc[i] > h)
			h = m->acc[i];
	return h;
}

/* A restart: the model keeps only the highest, as peers.seq does. */
static void model_restart(struct model *m)
{
	m->start = model_highest(m);
	m->n = 0;
}

#define MODEL_SENDERS 3

static void reopen_all(struct fl_peers **p)
{
	uint8_t pk[32];
	char err[FL_ERRBUF_SIZE] = "";

	fl_peers_free(*p);
	*p = open_peers(seqpath, 0);
	for (int k = 0; k < MODEL_SENDERS; k++) {
		peer_pk(k + 1, pk);
		ck_assert_msg(fl_peers_add(*p, pk, FL_PEER_AGENT, "s", err) == FL_OK, "%s", err);
	}
}

/*
 * Random traffic from a few senders (fresh numbers, numbers in and around the
 * window, duplicates, very old ones, skewed ones, restarts), each answer
 * compared with the model's. The seed is printed with any failure.
 */
START_TEST(window_matches_a_model)
{
	uint64_t seeds[4] = {1, 0x9e3779b97f4a7c15, 0xdeadbeefcafe, 0};
	struct model m[MODEL_SENDERS];
	struct fl_peers *p = NULL;
	struct fl_peer_info info;
	uint8_t pk[MODEL_SENDERS][32];
	long accepted = 0, refused = 0;

	randombytes_buf(&seeds[3], sizeof(seeds[3]));
	seeds[3] |= 1;
	for (int k = 0; k < MODEL_SENDERS; k++)
		peer_pk(k + 1, pk[k]);
	for (size_t si = 0; si < sizeof(seeds) / sizeof(seeds[0]); si++) {
		uint64_t st = seeds[si];

		unlink(seqpath);
		memset(m, 0, sizeof(m));
		reopen_all(&p);
		for (int op = 0; op < 6000; op++) {
			int k = (int)(rnd(&st) % MODEL_SENDERS);
			struct model *mk = &m[k];
			uint64_t r = rnd(&st) % 100, seq, last, floor;
			bool in_skew = rnd(&st) % 16 != 0, want;
			enum fl_peer_check got;

			if (rnd(&st) % 400 == 0) {
				for (int j = 0; j < MODEL_SENDERS; j++)
					model_restart(&m[j]);
				reopen_all(&p);
				continue;
			}
			if (r < 45) { /* a new number, in order */
				seq = mk->top + 1 + rnd(&st) % 20;
				mk->top = seq;
			} else if (r < 85) { /* around the window: overtaken, or a duplicate */
				seq = mk->top - rnd(&st) % (10 * FL_PEERS_REPLAY_WINDOW);
			} else if (r < 95 && mk->n > 0) { /* exactly one accepted */
				seq = mk->acc[rnd(&st) % mk->n];
			} else { /* anything below */
				seq = mk->top ? rnd(&st) % (mk->top + 1) : 0;
			}
			if (seq > mk->top) /* wrapped below zero */
				seq = 0;
			want = model_accepts(mk, seq);
			got = fl_peers_recv_commit(p, pk[k], seq, in_skew, &last, &floor);
			ck_assert_msg(
			    got == (want ? (in_skew ? FL_PEER_OK : FL_PEER_SKEW) : FL_PEER_REPLAY),
			    "seed %llu, op %d, sender %d, seq %llu: got %d, model %s",
			    (unsigned long long)seeds[si], op, k, (unsigned long long)seq, (int)got,
			    want ? "accepts" : "refuses");
			ck_assert_uint_eq(last, model_highest(mk));
			if (got == FL_PEER_OK) {
				model_accept(mk, seq);
				accepted++;
			} else {
				refused++;
			}
			ck_assert_int_eq(fl_peers_find(p, pk[k], &info), FL_OK);
			ck_assert_uint_eq(info.last_seq, model_highest(mk));
		}
		for (int k = 0; k < MODEL_SENDERS; k++)
			free(m[k].acc);
	}
	/* The mix exercised both answers. */
	ck_assert_int_gt(accepted, 2000);
	ck_assert_int_gt(refused, 2000);
	fl_peers_free(p);
}
END_TEST

START_TEST(grows_and_finds_many)
{
	struct fl_peers *p = open_peers(seqpath, 0);
	struct fl_peer_info info;
	uint8_t pk[32];
	char err[FL_ERRBUF_SIZE] = "", name[32];
	uint64_t last, floor;

	for (int i = 0; i < 300; i++) {
		peer_pk(i, pk);
		snprintf(name, sizeof(name), "agent-%d", i);
		ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_AGENT, name, err), FL_OK);
		ck_assert_int_eq(fl_peers_recv_commit(p, pk, (uint64_t)i + 1, true, &last, &floor),
		                 FL_PEER_OK);
	}
	ck_assert_uint_eq(fl_peers_count(p), 300);
	fl_peers_free(p);
	p = open_peers(seqpath, 0);
	ck_assert_uint_eq(fl_peers_count(p), 300);
	for (int i = 0; i < 300; i++) {
		peer_pk(i, pk);
		ck_assert_int_eq(fl_peers_find(p, pk, &info), FL_ENOENT); /* loaded, not added */
		ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_AGENT, "again", err), FL_OK);
		ck_assert_int_eq(fl_peers_find(p, pk, &info), FL_OK);
		ck_assert_uint_eq(info.last_seq, (uint64_t)i + 1);
	}
	ck_assert_uint_eq(fl_peers_count(p), 300);
	fl_peers_free(p);
}
END_TEST

START_TEST(registry_is_capped)
{
	struct fl_peers *p = open_peers(seqpath, 3);
	uint8_t pk[32];
	char err[FL_ERRBUF_SIZE] = "";

	for (int i = 0; i < 3; i++) {
		peer_pk(i, pk);
		ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_AGENT, "a", err), FL_OK);
	}
	peer_pk(3, pk);
	ck_assert_int_eq(fl_peers_add(p, pk, FL_PEER_AGENT, "a", err), FL_ENOTSUP);
	ck_assert_str_eq(err, "too many peers (limit 3)");
	ck_assert_int_eq(fl_peers_revoke(p, pk, err), FL_ENOTSUP);
	peer_pk(0, pk);
	ck_assert_int_eq(fl_peers_revoke(p, pk, err), FL_OK); /* known keys always can be */
	fl_peers_free(p);
	/* The file holds 3 records: more than a registry of 2 accepts. */
	ck_assert_int_eq(try_open(seqpath, 2, err), FL_EPARSE);
	ck_assert_str_eq(err + strlen(err) - strlen("3 records, more than the limit of 2 peers"),
	                 "3 records, more than the limit of 2 peers");
	ck_assert_ptr_nonnull(strstr(err, seqpath));
	ck_assert_int_eq(try_open(seqpath, 3, err), FL_OK);
}
END_TEST

/* Approving an enrolled key records the enrollment envelope's number. */
START_TEST(enroll_approves_a_new_key_once)
{
	struct fl_peers *p = open_peers(seqpath, 0);
	struct fl_peer_info info;
	uint8_t a[32], b[32], bad[32] = {1};
	char err[FL_ERRBUF_SIZE] = "";
	uint64_t last, floor;

	peer_pk(1, a);
	peer_pk(2, b);
	ck_assert_int_eq(fl_peers_enroll(p, bad, "a", 5, err), FL_EINVAL);
	ck_assert_int_eq(fl_peers_enroll(p, a, "bad name", 5, err), FL_EINVAL);
	ck_assert_int_eq(fl_peers_enroll(p, a, "db-1", 500, err), FL_OK);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	ck_assert_int_eq(info.role, FL_PEER_AGENT);
	ck_assert_str_eq(info.name, "db-1");
	ck_assert_uint_eq(info.last_seq, 500);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 500, true, &last, &floor), FL_PEER_REPLAY);
	/* Nothing was accepted from the key before: nothing below it either. */
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 499, true, &last, &floor), FL_PEER_REPLAY);
	ck_assert_uint_eq(floor, 500);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 502, true, &last, &floor), FL_PEER_OK);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 501, true, &last, &floor), FL_PEER_OK);
	/* Once: a key approved already (by a token or by hand) is refused. */
	ck_assert_int_eq(fl_peers_enroll(p, a, "db-1", 600, err), FL_ESTATE);
	ck_assert_int_eq(fl_peers_add(p, b, FL_PEER_AGENT, "db-2", err), FL_OK);
	ck_assert_int_eq(fl_peers_enroll(p, b, "db-2", 1, err), FL_ESTATE);
	/* A revoked key cannot come back this way. */
	ck_assert_int_eq(fl_peers_revoke(p, a, err), FL_OK);
	ck_assert_int_eq(fl_peers_enroll(p, a, "db-1", 700, err), FL_ESTATE);
	fl_peers_free(p);
	/* The number is on disk. */
	p = open_peers(seqpath, 0);
	peer_pk(3, a);
	ck_assert_int_eq(fl_peers_enroll(p, a, "db-3", 900, err), FL_OK);
	fl_peers_free(p);
	p = open_peers(seqpath, 0);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "db-3", err), FL_OK);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	ck_assert_uint_eq(info.last_seq, 900);
	fl_peers_free(p);
}
END_TEST

/* A daemon that ran before must find its sequence file: starting empty
 * would accept a replay of every message still inside the skew window. */
START_TEST(seq_file_must_exist_when_expected)
{
	struct fl_peers *p = NULL;
	struct stat st;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_peers_new(self, seqpath, 0, FL_PEERS_MUST_EXIST, &p, err), FL_ENOENT);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(strstr(err, "is missing, yet this process ran before"));
	ck_assert_int_eq(stat(seqpath, &st), -1); /* and not created */
	ck_assert_int_eq(fl_peers_new(self, NULL, 0, FL_PEERS_MUST_EXIST, &p, err), FL_EINVAL);
	ck_assert_int_eq(fl_peers_new(self, seqpath, 0, 4, &p, err), FL_EINVAL);
	/* An empty one is no better. */
	write_file(seqpath, (const uint8_t *)"", 0);
	ck_assert_int_eq(fl_peers_new(self, seqpath, 0, FL_PEERS_MUST_EXIST, &p, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "is empty"));
	unlink(seqpath);
	/* Made on the first run, required on the next. */
	fl_peers_free(open_peers(seqpath, 0));
	ck_assert_int_eq(fl_peers_new(self, seqpath, 0, FL_PEERS_MUST_EXIST, &p, err), FL_OK);
	fl_peers_free(p);
}
END_TEST

/* The race that lost a revocation: a registry opening peers.seq read its
 * size before taking the lock, while the previous holder was still
 * appending a revocation. It then loaded the file without that record, and
 * its next new record overwrote it. The size is now read under the lock. */
struct race {
	struct fl_peers *holder;
	uint8_t revoked[32];
};

static void revoke_then_release(void *arg)
{
	struct race *r = arg;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_peers_revoke(r->holder, r->revoked, err), FL_OK);
	fl_peers_free(r->holder); /* releases the lock */
	r->holder = NULL;
}

START_TEST(seq_file_read_under_the_lock)
{
	struct race r;
	struct fl_peers *p;
	struct fl_peer_info info;
	uint8_t a[32], c[32];
	char err[FL_ERRBUF_SIZE] = "";

	peer_pk(1, a);
	peer_pk(2, r.revoked);
	peer_pk(3, c);
	r.holder = open_peers(seqpath, 0);
	ck_assert_int_eq(fl_peers_add(r.holder, a, FL_PEER_AGENT, "a", err), FL_OK);
	fl_peers_test_hook_before_lock(revoke_then_release, &r);
	p = open_peers(seqpath, 0);
	fl_peers_test_hook_before_lock(NULL, NULL);
	ck_assert_ptr_null(r.holder);
	ck_assert_int_eq(fl_peers_find(p, r.revoked, &info), FL_OK);
	ck_assert(info.revoked);
	/* And a new record goes after it, not over it. */
	ck_assert_int_eq(fl_peers_add(p, c, FL_PEER_AGENT, "c", err), FL_OK);
	fl_peers_free(p);
	p = open_peers(seqpath, 0);
	ck_assert_int_eq(fl_peers_find(p, r.revoked, &info), FL_OK);
	ck_assert(info.revoked);
	ck_assert_uint_eq(fl_peers_count(p), 3);
	fl_peers_free(p);
}
END_TEST

START_TEST(seq_file_created_private_and_reloaded)
{
	struct fl_peers *p = open_peers(seqpath, 0);
	struct fl_peer_info info;
	struct stat st;
	uint8_t a[32], buf[512];
	char err[FL_ERRBUF_SIZE] = "";
	uint64_t last, floor;

	ck_assert_int_eq(stat(seqpath, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(st.st_size, 64);
	ck_assert_uint_eq(read_file(seqpath, buf, sizeof(buf)), 64);
	ck_assert_mem_eq(buf, "flotilla seq v1\n\0\0\0\x40", 20);
	peer_pk(1, a);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(stat(seqpath, &st), 0);
	ck_assert_int_eq(st.st_size, 128);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 0x0102030405060708, true, &last, &floor),
	                 FL_PEER_OK);
	ck_assert_int_eq(fl_peers_sync(p, err), FL_OK);
	/* The record, as docs say: key, seq big-endian, flags. */
	ck_assert_uint_eq(read_file(seqpath, buf, sizeof(buf)), 128);
	ck_assert_mem_eq(buf + 64, a, 32);
	ck_assert_mem_eq(buf + 96, "\x01\x02\x03\x04\x05\x06\x07\x08\0\0\0\x01\0\0\0\0", 16);
	fl_peers_free(p);

	p = open_peers(seqpath, 0);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	ck_assert_uint_eq(info.last_seq, 0x0102030405060708);
	ck_assert_int_eq(fl_peers_recv_commit(p, a, 0x0102030405060708, true, &last, &floor),
	                 FL_PEER_REPLAY);
	fl_peers_free(p);
	/* No file, no sync needed. */
	p = open_peers(NULL, 0);
	ck_assert_int_eq(fl_peers_sync(p, err), FL_OK);
	fl_peers_free(p);
}
END_TEST

/* Accepted numbers reach the page cache at once: a crash loses none. */
START_TEST(seq_survives_a_crash)
{
	struct fl_peers *p;
	struct fl_peer_info info;
	uint8_t a[32];
	char err[FL_ERRBUF_SIZE] = "";
	uint64_t last, floor;
	pid_t pid;
	int status;

	peer_pk(1, a);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		p = NULL;
		if (fl_peers_new(self, seqpath, 0, 0, &p, err) != FL_OK ||
		    fl_peers_add(p, a, FL_PEER_AGENT, "a", err) != FL_OK ||
		    fl_peers_recv_commit(p, a, 77, true, &last, &floor) != FL_PEER_OK)
			_exit(1);
		_exit(0); /* no sync, no close */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	p = open_peers(seqpath, 0);
	ck_assert_int_eq(fl_peers_add(p, a, FL_PEER_AGENT, "a", err), FL_OK);
	ck_assert_int_eq(fl_peers_find(p, a, &info), FL_OK);
	ck_assert_uint_eq(info.last_seq, 77);
	fl_peers_free(p);
}
END_TEST

START_TEST(seq_file_locked_against_a_second_process)
{
	struct fl_peers *p = open_peers(seqpath, 0);
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[FL_ERRBUF_SIZE] = "";
		struct fl_peers *q = NULL;
		enum fl_err rv = fl_peers_new(self, seqpath, 0, 0, &q, err);

		_exit(rv == FL_EIO && strstr(err, "in use by another registry") ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fl_peers_free(p);
}
END_TEST

/* Process-wide fcntl locks would let a second registry in this process open
 * the file, and closing either would unlock both: the lock is per open file. */
START_TEST(seq_file_locked_within_one_process)
{
	struct fl_peers *p = open_peers(seqpath, 0), *q = NULL, *r = NULL;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_peers_new(self, seqpath, 0, 0, &q, err), FL_EIO);
	ck_assert_ptr_nonnull(strstr(err, "in use by another registry"));
	fl_peers_free(q);
	fl_peers_free(p);
	ck_assert_int_eq(fl_peers_new(self, seqpath, 0, 0, &r, err), FL_OK);
	fl_peers_free(r);
}
END_TEST

/* A file someone else owns could have been swapped in to undo revocations. */
START_TEST(seq_file_of_another_owner_refused)
{
	struct fl_peers *q = NULL;
	char err[FL_ERRBUF_SIZE] = "";
	int fd;

	if (geteuid() != 0)
		return; /* only root can make a file another user owns */
	fd = open(seqpath, O_CREAT | O_WRONLY | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchown(fd, 65534, 65534), 0);
	close(fd);
	ck_assert_int_eq(fl_peers_new(self, seqpath, 0, 0, &q, err), FL_EIO);
	ck_assert_ptr_nonnull(strstr(err, "belongs to uid 65534"));
	fl_peers_free(q);
}
END_TEST

/* Write a header and records (key n, seq, flags) with valid checksums. */
static size_t build_file(uint8_t *buf, const int *keys, const uint32_t *flags, int n)
{
	memset(buf, 0, 64 * (size_t)(n + 1));
	memcpy(buf, "flotilla seq v1\n", 16);
	buf[19] = 64;
	crypto_generichash(buf + 48, 16, buf, 48, NULL, 0);
	for (int i = 0; i < n; i++) {
		uint8_t *r = buf + 64 * (i + 1);

		peer_pk(keys[i], r);
		r[39] = (uint8_t)(i + 1); /* seq */
		r[40] = (uint8_t)(flags[i] >> 24);
		r[41] = (uint8_t)(flags[i] >> 16);
		r[42] = (uint8_t)(flags[i] >> 8);
		r[43] = (uint8_t)flags[i];
		crypto_generichash(r + 48, 16, r, 48, NULL, 0);
	}
	return 64 * (size_t)(n + 1);
}

START_TEST(seq_file_validated)
{
	uint8_t buf[64 * 4];
	char err[FL_ERRBUF_SIZE] = "", want[600], p2[400];
	int keys[3] = {1, 2, 3};
	uint32_t flags[3] = {1, 3, 1};
	size_t len = build_file(buf, keys, flags, 3);

	write_file(seqpath, buf, len);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_OK);

	write_file(seqpath, buf, 100);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EPARSE);
	snprintf(want, sizeof(want),
	         "corrupt sequence file '%s': size 100 is not a header and whole records of 64 "
	         "bytes",
	         seqpath);
	ck_assert_str_eq(err, want);
	write_file(seqpath, buf, 32);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EPARSE);

	buf[0] = 'F';
	write_file(seqpath, buf, len);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EPARSE);
	snprintf(want, sizeof(want), "corrupt sequence file '%s': bad header", seqpath);
	ck_assert_str_eq(err, want);
	buf[0] = 'f';

	buf[64 * 2 + 35] ^= 1; /* record 1's seq */
	write_file(seqpath, buf, len);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EPARSE);
	snprintf(want, sizeof(want), "corrupt sequence file '%s': record 1: checksum mismatch",
	         seqpath);
	ck_assert_str_eq(err, want);

	flags[2] = 5;
	len = build_file(buf, keys, flags, 3);
	write_file(seqpath, buf, len);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "record 2: unknown flags 0x5"));
	flags[2] = 0;
	len = build_file(buf, keys, flags, 3);
	write_file(seqpath, buf, len);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EPARSE);
	flags[2] = 1;

	keys[2] = 1;
	len = build_file(buf, keys, flags, 3);
	write_file(seqpath, buf, len);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "record 2: key "));
	ck_assert_ptr_nonnull(strstr(err, " listed twice"));
	keys[2] = 3;

	/* Reserved bytes. */
	len = build_file(buf, keys, flags, 3);
	buf[64 + 45] = 1;
	crypto_generichash(buf + 64 + 48, 16, buf + 64, 48, NULL, 0);
	write_file(seqpath, buf, len);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "record 0: reserved bytes set"));

	/* Writable by others: whoever can rewrite it could reopen replays. */
	len = build_file(buf, keys, flags, 3);
	write_file(seqpath, buf, len);
	ck_assert_int_eq(chmod(seqpath, 0620), 0);
	ck_assert_int_eq(try_open(seqpath, 0, err), FL_EIO);
	ck_assert_ptr_nonnull(strstr(err, "writable by group or others"));
	ck_assert_int_eq(chmod(seqpath, 0600), 0);

	/* Not through a symlink, not a directory. */
	snprintf(p2, sizeof(p2), "%s/link", dir);
	ck_assert_int_eq(symlink(seqpath, p2), 0);
	ck_assert_int_eq(try_open(p2, 0, err), FL_EIO);
	ck_assert_ptr_nonnull(strstr(err, "cannot open sequence file"));
	snprintf(p2, sizeof(p2), "%s/subdir", dir);
	ck_assert_int_eq(mkdir(p2, 0700), 0);
	ck_assert_int_eq(try_open(p2, 0, err), FL_EIO);
	snprintf(p2, sizeof(p2), "%s/no/such/dir/peers.seq", dir);
	ck_assert_int_eq(try_open(p2, 0, err), FL_EIO);
}
END_TEST

static Suite *peers_suite(void)
{
	Suite *s = suite_create("peers");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, make_dir, remove_dir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, identity_from_seed_matches_rfc8032);
	tcase_add_test(tc, roles_have_stable_names);
	tcase_add_test(tc, add_find_get);
	tcase_add_test(tc, add_refuses_bad_input);
	tcase_add_test(tc, revocation_is_permanent);
	tcase_add_test(tc, send_seq_follows_the_clock);
	tcase_add_test(tc, recv_commit_checks_in_order);
	tcase_add_test(tc, window_accepts_out_of_order_once);
	tcase_add_test(tc, window_forgets_the_lowest);
	tcase_add_test(tc, window_after_restart);
	tcase_add_test(tc, window_matches_a_model);
	tcase_add_test(tc, grows_and_finds_many);
	tcase_add_test(tc, registry_is_capped);
	tcase_add_test(tc, enroll_approves_a_new_key_once);
	tcase_add_test(tc, seq_file_must_exist_when_expected);
	tcase_add_test(tc, seq_file_read_under_the_lock);
	tcase_add_test(tc, seq_file_created_private_and_reloaded);
	tcase_add_test(tc, seq_survives_a_crash);
	tcase_add_test(tc, seq_file_locked_against_a_second_process);
	tcase_add_test(tc, seq_file_locked_within_one_process);
	tcase_add_test(tc, seq_file_of_another_owner_refused);
	tcase_add_test(tc, seq_file_validated);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(peers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
