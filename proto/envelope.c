/*
 * The envelope (docs/WIRE.md). Sign-then-encrypt: the Ed25519 signature
 * covers a domain string, the outer header (so the sender field cannot be
 * swapped) and the inner fields (so the recipient cannot be changed), and the
 * signature travels inside the box.
 *
 * No allocation per message once the caller's buffers are warm. seal builds
 * "domain || outer header || inner || signature" in the caller's output
 * buffer, signs it where it lies, encrypts in place, then slides the header
 * and ciphertext down over the domain string. open copies the domain string,
 * the outer header and the ciphertext into the caller's `plain` buffer and
 * decrypts in place, so the signed bytes end up contiguous and are verified
 * without another copy.
 *
 * Shared keys are copied out of the registry onto the stack for one call and
 * wiped before returning; the registry lock is never held across crypto.
 */
#include "envelope.h"

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "clock.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "roles.h"
#include "wire.h"

#define CTX_LEN     21 /* "flotilla envelope v1" and its NUL */
#define OUTER_LEN   61 /* magic 4, version 1, sender 32, nonce 24 */
#define OFF_VERSION 4
#define OFF_SENDER  5
#define OFF_NONCE   37
#define MAC_LEN     16
#define INNER_FIXED 53 /* version 1, recipient 32, seq 8, timestamp 8, body_len 4 */
#define IN_RECIP    1
#define IN_SEQ      33
#define IN_TS       41
#define IN_BODYLEN  49
#define SIG_LEN     64
#define SIGNED_PRE  (CTX_LEN + OUTER_LEN) /* where the inner part starts in plain */

static const char ctx[CTX_LEN] = "flotilla envelope v1";
static const uint8_t magic[4] = {'F', 'L', 'T', 0x01};
static const uint8_t refusal[5] = {'F', 'L', 'T', 0x01, 0x00};

_Static_assert(OUTER_LEN + MAC_LEN + INNER_FIXED + SIG_LEN == FL_ENVELOPE_OVERHEAD,
               "envelope overhead");
_Static_assert(FL_ENVELOPE_MAX_SIZE_BUNDLE == FL_WIRE_MAX_RELEASE_MESSAGE + FL_ENVELOPE_OVERHEAD,
               "an envelope holds the largest message with a release");
_Static_assert(crypto_box_MACBYTES == MAC_LEN && crypto_box_NONCEBYTES == 24 &&
                   crypto_box_BEFORENMBYTES == 32 && crypto_sign_BYTES == SIG_LEN,
               "libsodium sizes");

struct fl_envelope {
	const struct fl_identity *self;
	struct fl_peers *peers;
	int64_t skew_ms;
	size_t max_size;
	fl_wallclock_fn clock;
	void *clock_arg;
	atomic_uint_least64_t counts[FL_ENVELOPE_REASON_COUNT];
	/* Refusal log lines, rate-limited: anyone who can reach the port can
	 * cause refusals, and must not be able to flood the log with them. */
	atomic_int_least64_t log_window_ms;
	atomic_uint_least64_t log_in_window;
	atomic_uint_least64_t log_suppressed;
	/* Enrollment: a token bucket in millionths of a token. */
	pthread_mutex_t enroll_lock;
	unsigned enroll_rate, enroll_burst; /* rate 0: enrollment off */
	uint64_t enroll_tokens_u;
	int64_t enroll_refill_us;
};

#define REFUSALS_LOGGED_PER_SECOND 10

/* Whether this refusal may be logged; *suppressed gets how many were not
 * since the last one that was. Counters are exact either way. */
static bool refusal_log_allowed(struct fl_envelope *ep, uint64_t *suppressed)
{
	int64_t now = fl_now_ms(), start = atomic_load(&ep->log_window_ms);

	if (now - start >= 1000 && atomic_compare_exchange_strong(&ep->log_window_ms, &start, now))
		atomic_store(&ep->log_in_window, 0);
	if (atomic_fetch_add(&ep->log_in_window, 1) < REFUSALS_LOGGED_PER_SECOND) {
		*suppressed = atomic_exchange(&ep->log_suppressed, 0);
		return true;
	}
	atomic_fetch_add(&ep->log_suppressed, 1);
	return false;
}

static const char *const reason_names[FL_ENVELOPE_REASON_COUNT] = {
    "ok",      "truncated", "oversize",     "bad-magic",      "version",   "unknown-sender",
    "revoked", "decrypt",   "malformed",    "recipient",      "signature", "replay",
    "skew",    "store",     "rate-limited", "not-enrollment",
};

const char *fl_envelope_reason_name(enum fl_envelope_reason reason)
{
	if ((unsigned)reason < FL_ENVELOPE_REASON_COUNT)
		return reason_names[reason];
	return "unknown";
}

struct fl_envelope *fl_envelope_new(const struct fl_identity *self, struct fl_peers *peers)
{
	struct fl_envelope *ep;

	assert(self && peers && fl_peers_identity(peers) == self);
	ep = fl_calloc(1, sizeof(*ep));
	ep->self = self;
	ep->peers = peers;
	ep->skew_ms = FL_ENVELOPE_SKEW_MS;
	ep->max_size = FL_ENVELOPE_MAX_SIZE;
	ep->clock = fl_wallclock_us;
	for (int i = 0; i < FL_ENVELOPE_REASON_COUNT; i++)
		atomic_init(&ep->counts[i], 0);
	atomic_init(&ep->log_window_ms, fl_now_ms());
	atomic_init(&ep->log_in_window, 0);
	atomic_init(&ep->log_suppressed, 0);
	pthread_mutex_init(&ep->enroll_lock, NULL);
	return ep;
}

void fl_envelope_free(struct fl_envelope *ep)
{
	if (ep == NULL)
		return;
	pthread_mutex_destroy(&ep->enroll_lock);
	free(ep);
}

void fl_envelope_set_skew_ms(struct fl_envelope *ep, int64_t skew_ms)
{
	assert(skew_ms > 0);
	ep->skew_ms = skew_ms;
}

void fl_envelope_set_max_size(struct fl_envelope *ep, size_t max_size)
{
	assert(max_size >= FL_ENVELOPE_OVERHEAD);
	ep->max_size = max_size;
}

void fl_envelope_set_clock(struct fl_envelope *ep, fl_wallclock_fn fn, void *arg)
{
	ep->clock = fn ? fn : fl_wallclock_us;
	ep->clock_arg = fn ? arg : NULL;
}

void fl_envelope_set_enroll_rate(struct fl_envelope *ep, unsigned per_second, unsigned burst)
{
	assert(per_second <= 1000000 && burst <= 1000000 && (per_second == 0 || burst > 0));
	pthread_mutex_lock(&ep->enroll_lock);
	ep->enroll_rate = per_second;
	ep->enroll_burst = burst;
	ep->enroll_tokens_u = (uint64_t)burst * 1000000; /* starts full */
	ep->enroll_refill_us = ep->clock(ep->clock_arg);
	pthread_mutex_unlock(&ep->enroll_lock);
}

/* Take one token from the enrollment bucket, if there is one. */
static bool enroll_take(struct fl_envelope *ep)
{
	int64_t now = ep->clock(ep->clock_arg), elapsed;
	uint64_t full;
	bool ok = false;

	pthread_mutex_lock(&ep->enroll_lock);
	if (ep->enroll_rate == 0)
		goto out;
	full = (uint64_t)ep->enroll_burst * 1000000;
	elapsed = now - ep->enroll_refill_us;
	if (elapsed > 0) {
		/* elapsed * rate would overflow long after the bucket is full. */
		if ((uint64_t)elapsed >= full / ep->enroll_rate + 1)
			ep->enroll_tokens_u = full;
		else
			ep->enroll_tokens_u += (uint64_t)elapsed * ep->enroll_rate;
		if (ep->enroll_tokens_u > full)
			ep->enroll_tokens_u = full;
	}
	ep->enroll_refill_us = now; /* a clock stepped back refills nothing */
	if (ep->enroll_tokens_u >= 1000000) {
		ep->enroll_tokens_u -= 1000000;
		ok = true;
	}
out:
	pthread_mutex_unlock(&ep->enroll_lock);
	return ok;
}

uint64_t fl_envelope_count(const struct fl_envelope *ep, enum fl_envelope_reason reason)
{
	if ((unsigned)reason >= FL_ENVELOPE_REASON_COUNT)
		return 0;
	return atomic_load_explicit(&((struct fl_envelope *)ep)->counts[reason],
	                            memory_order_relaxed);
}

enum fl_err fl_envelope_refusal(struct fl_buf *out)
{
	fl_buf_reset(out);
	return fl_buf_append(out, refusal, sizeof(refusal));
}

bool fl_envelope_is_refusal(const void *data, size_t len)
{
	return len == sizeof(refusal) && memcmp(data, refusal, sizeof(refusal)) == 0;
}

/* ---- seal ---- */

enum fl_err fl_envelope_seal(struct fl_envelope *ep, const uint8_t recipient[FL_PEER_KEY_LEN],
                             const void *body, size_t len, struct fl_buf *out, char *errbuf)
{
	uint64_t seq;

	return fl_envelope_seal_seq(ep, recipient, body, len, out, &seq, errbuf);
}

enum fl_err fl_envelope_seal_seq(struct fl_envelope *ep, const uint8_t recipient[FL_PEER_KEY_LEN],
                                 const void *body, size_t len, struct fl_buf *out,
                                 uint64_t *seq_out, char *errbuf)
{
	uint8_t key[crypto_box_BEFORENMBYTES], mac[MAC_LEN], hdr[OUTER_LEN], inner[INNER_FIXED];
	static const uint8_t nosig[SIG_LEN];
	int64_t now_us = ep->clock(ep->clock_arg);
	size_t n = INNER_FIXED + len; /* inner without the signature */
	uint64_t seq;
	uint8_t *d;
	enum fl_err rv;

	fl_buf_reset(out);
	if (len > FL_ENVELOPE_MAX_SIZE_BUNDLE - FL_ENVELOPE_OVERHEAD || (len > 0 && body == NULL))
		return fl_errf(errbuf, FL_EINVAL, "message body of %zu bytes is too large", len);
	if ((rv = fl_peers_send_begin(ep->peers, recipient, now_us, key, &seq, errbuf)) != FL_OK)
		return rv;

	memcpy(hdr, magic, sizeof(magic));
	hdr[OFF_VERSION] = FL_PROTOCOL_VERSION;
	memcpy(hdr + OFF_SENDER, fl_identity_public_key(ep->self), FL_PEER_KEY_LEN);
	randombytes_buf(hdr + OFF_NONCE, crypto_box_NONCEBYTES);
	inner[0] = FL_PROTOCOL_VERSION;
	memcpy(inner + IN_RECIP, recipient, FL_PEER_KEY_LEN);
	fl_store_be64(inner + IN_SEQ, seq);
	fl_store_be64(inner + IN_TS, (uint64_t)(now_us / 1000));
	fl_store_be32(inner + IN_BODYLEN, (uint32_t)len);

	if (fl_buf_append(out, ctx, CTX_LEN) != FL_OK ||
	    fl_buf_append(out, hdr, OUTER_LEN) != FL_OK ||
	    fl_buf_append(out, inner, INNER_FIXED) != FL_OK ||
	    fl_buf_append(out, body, len) != FL_OK || fl_buf_append(out, nosig, SIG_LEN) != FL_OK) {
		rv = fl_errf(errbuf, FL_EINVAL,
		             "envelope of %zu bytes does not fit the output buffer",
		             FL_ENVELOPE_OVERHEAD + len);
		fl_buf_reset(out);
		goto out;
	}
	d = (uint8_t *)out->data;
	fl_identity_sign(ep->self, d + SIGNED_PRE + n, d, SIGNED_PRE + n);
	crypto_box_detached_afternm(d + SIGNED_PRE, mac, d + SIGNED_PRE, n + SIG_LEN,
	                            hdr + OFF_NONCE, key);
	memmove(d, d + CTX_LEN, OUTER_LEN);
	memcpy(d + OUTER_LEN, mac, MAC_LEN);
	memmove(d + OUTER_LEN + MAC_LEN, d + SIGNED_PRE, n + SIG_LEN);
	out->len = OUTER_LEN + MAC_LEN + n + SIG_LEN;
	out->data[out->len] = '\0';
	*seq_out = seq;
out:
	sodium_memzero(key, sizeof(key));
	return rv;
}

/* ---- open ---- */

void fl_envelope_opened_init(struct fl_envelope_opened *o)
{
	memset(o, 0, sizeof(*o));
	fl_buf_init(&o->plain, 0);
}

void fl_envelope_opened_fini(struct fl_envelope_opened *o)
{
	if (o->plain.data)
		sodium_memzero(o->plain.data, o->plain.cap);
	fl_buf_fini(&o->plain);
	memset(o, 0, sizeof(*o));
}

/* What one open knows about the sender so far, for the refusal line. */
struct attempt {
	struct fl_envelope *ep;
	struct fl_envelope_opened *o;
	const uint8_t *sender; /* the claimed key, NULL if the bytes do not reach it */
	bool known;            /* o->sender filled from the registry */
	bool verified;         /* the signature checked out */
	enum fl_envelope_reason *reason;
	char *errbuf;
};

static enum fl_err refuse(struct attempt *a, enum fl_envelope_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum fl_err refuse(struct attempt *a, enum fl_envelope_reason r, const char *fmt, ...)
{
	char about[FL_PEER_NAME_MAX + FL_PEER_ID_LEN + 64], detail[256];
	uint64_t suppressed;
	const char *mark = a->verified ? "" : ", unverified";
	struct fl_envelope_opened *o = a->o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (a->known && o->sender.role != FL_PEER_NONE) {
		snprintf(about, sizeof(about), "%s '%s' (%s%s)", fl_peer_role_name(o->sender.role),
		         o->sender.name, o->sender.id, mark);
	} else if (a->sender) {
		char id[FL_PEER_ID_LEN + 1];

		fl_key_id(a->sender, id);
		snprintf(about, sizeof(about), "sender %s (%s)", id,
		         a->verified ? "verified" : "unverified");
	} else {
		snprintf(about, sizeof(about), "unidentified sender");
	}
	atomic_fetch_add_explicit(&a->ep->counts[r], 1, memory_order_relaxed);
	if (r == FL_ENVELOPE_UNKNOWN_SENDER && a->ep->enroll_rate > 0) {
		/* fl_envelope_open_enroll comes next and logs either way. */
	} else if (refusal_log_allowed(a->ep, &suppressed)) {
		if (suppressed > 0)
			fl_log_warn(NULL, "%llu more envelope refusals were not logged",
			            (unsigned long long)suppressed);
		fl_log_warn(about, "envelope refused: %s: %s", reason_names[r], detail);
	}
	fl_errf(a->errbuf, r == FL_ENVELOPE_STORE ? FL_EIO : FL_EAUTH,
	        "%s: envelope refused: %s: %s", about, reason_names[r], detail);
	if (a->reason)
		*a->reason = r;
	/* Nothing of a refused message stays readable. */
	if (o->plain.data)
		sodium_memzero(o->plain.data, o->plain.len);
	fl_buf_reset(&o->plain);
	memset(&o->sender, 0, sizeof(o->sender));
	o->seq = 0;
	o->timestamp_ms = 0;
	o->body = NULL;
	o->body_len = 0;
	return r == FL_ENVELOPE_STORE ? FL_EIO : FL_EAUTH;
}

/* The checks of the outer header every open starts with. */
static enum fl_err check_outer(struct attempt *a, const uint8_t *d, size_t len, size_t cap)
{
	if (d != NULL && len >= OFF_SENDER + FL_PEER_KEY_LEN)
		a->sender = d + OFF_SENDER;
	if (d == NULL || len < FL_ENVELOPE_OVERHEAD)
		return refuse(a, FL_ENVELOPE_TRUNCATED,
		              "%zu bytes, fewer than the %d of any envelope", len,
		              FL_ENVELOPE_OVERHEAD);
	if (len > cap)
		return refuse(a, FL_ENVELOPE_OVERSIZE, "%zu bytes, over the limit of %zu", len,
		              cap);
	if (memcmp(d, magic, sizeof(magic)) != 0)
		return refuse(a, FL_ENVELOPE_BAD_MAGIC, "not a flotilla envelope");
	if (d[OFF_VERSION] != FL_PROTOCOL_VERSION)
		return refuse(a, FL_ENVELOPE_VERSION, "protocol version %u, we speak %d",
		              d[OFF_VERSION], FL_PROTOCOL_VERSION);
	return FL_OK;
}

/* Decrypt with key (wiped here) into o->plain and check the inner part and
 * the signature by the sender field's key. *p: the inner part in plain. */
static enum fl_err decrypt_and_verify(struct attempt *a, const uint8_t *d, size_t len,
                                      uint8_t key[crypto_box_BEFORENMBYTES], uint8_t **inner)
{
	struct fl_envelope_opened *o = a->o;
	size_t ilen = len - OUTER_LEN - MAC_LEN;
	uint32_t body_len;
	uint8_t *p;
	int failed;

	/* plain = domain string || outer header || ciphertext, decrypted in place. */
	fl_buf_reset(&o->plain);
	if (fl_buf_append(&o->plain, ctx, CTX_LEN) != FL_OK ||
	    fl_buf_append(&o->plain, d, OUTER_LEN) != FL_OK ||
	    fl_buf_append(&o->plain, d + OUTER_LEN + MAC_LEN, ilen) != FL_OK) {
		sodium_memzero(key, crypto_box_BEFORENMBYTES);
		return refuse(a, FL_ENVELOPE_OVERSIZE, "%zu bytes do not fit the caller's buffer",
		              len);
	}
	p = (uint8_t *)o->plain.data + SIGNED_PRE;
	failed = crypto_box_open_detached_afternm(p, p, d + OUTER_LEN, ilen, d + OFF_NONCE, key);
	sodium_memzero(key, crypto_box_BEFORENMBYTES);
	if (failed)
		return refuse(a, FL_ENVELOPE_DECRYPT, "authentication tag does not match");

	body_len = fl_load_be32(p + IN_BODYLEN);
	if (p[0] != d[OFF_VERSION])
		return refuse(a, FL_ENVELOPE_MALFORMED, "inner version %u differs from outer %u",
		              p[0], d[OFF_VERSION]);
	if (body_len != ilen - INNER_FIXED - SIG_LEN)
		return refuse(a, FL_ENVELOPE_MALFORMED, "body length %u, but %zu bytes hold it",
		              (unsigned)body_len, ilen - INNER_FIXED - SIG_LEN);
	if (memcmp(p + IN_RECIP, fl_identity_public_key(a->ep->self), FL_PEER_KEY_LEN) != 0) {
		char id[FL_PEER_ID_LEN + 1];

		fl_key_id(p + IN_RECIP, id);
		return refuse(a, FL_ENVELOPE_RECIPIENT, "addressed to %s, we are %s", id,
		              fl_identity_key_id(a->ep->self));
	}
	if (crypto_sign_ed25519_verify_detached(p + ilen - SIG_LEN, (uint8_t *)o->plain.data,
	                                        SIGNED_PRE + ilen - SIG_LEN, d + OFF_SENDER) != 0)
		return refuse(a, FL_ENVELOPE_SIGNATURE, "signature does not verify");
	a->verified = true;
	*inner = p;
	return FL_OK;
}

/* |ts - now| in ms, without overflow: the unsigned difference is exact. */
static uint64_t distance(int64_t ts, int64_t now_ms)
{
	return ts >= now_ms ? (uint64_t)ts - (uint64_t)now_ms : (uint64_t)now_ms - (uint64_t)ts;
}

static void accepted(struct attempt *a, const uint8_t *p, uint64_t seq, int64_t ts)
{
	struct fl_envelope_opened *o = a->o;

	o->seq = seq;
	o->timestamp_ms = ts;
	o->body = p + INNER_FIXED;
	o->body_len = fl_load_be32(p + IN_BODYLEN);
	if (a->reason)
		*a->reason = FL_ENVELOPE_OK;
	atomic_fetch_add_explicit(&a->ep->counts[FL_ENVELOPE_OK], 1, memory_order_relaxed);
}

enum fl_err fl_envelope_open(struct fl_envelope *ep, const void *data, size_t len, size_t max_size,
                             struct fl_envelope_opened *o, enum fl_envelope_reason *reason,
                             char *errbuf)
{
	struct attempt a = {.ep = ep, .o = o, .reason = reason, .errbuf = errbuf};
	const uint8_t *d = data;
	size_t cap = max_size ? max_size : ep->max_size, role_cap;
	uint8_t key[crypto_box_BEFORENMBYTES], *p;
	uint64_t seq, last = 0, floor = 0, dist;
	int64_t ts, now_ms;
	enum fl_err rv;

	o->body = NULL;
	o->body_len = 0;
	if ((rv = check_outer(&a, d, len, cap)) != FL_OK)
		return rv;

	switch (fl_peers_recv_begin(ep->peers, d + OFF_SENDER, key, &o->sender)) {
	case FL_PEER_OK:
		break;
	case FL_PEER_REVOKED:
		a.known = true;
		return refuse(&a, FL_ENVELOPE_REVOKED, "key revoked");
	default:
		return refuse(&a, FL_ENVELOPE_UNKNOWN_SENDER, "key not approved");
	}
	a.known = true;
	/* What this sender's role may send at most (proto/roles.c), before a
	 * byte of it is decrypted. */
	role_cap = fl_roles_max_message(o->sender.role) + FL_ENVELOPE_OVERHEAD;
	if (len > role_cap) {
		sodium_memzero(key, sizeof(key));
		return refuse(&a, FL_ENVELOPE_OVERSIZE,
		              "%zu bytes, over the limit of %zu for role %s", len, role_cap,
		              fl_peer_role_name(o->sender.role));
	}
	if ((rv = decrypt_and_verify(&a, d, len, key, &p)) != FL_OK)
		return rv;

	seq = fl_load_be64(p + IN_SEQ);
	ts = (int64_t)fl_load_be64(p + IN_TS);
	now_ms = ep->clock(ep->clock_arg) / 1000;
	dist = distance(ts, now_ms);
	switch (fl_peers_recv_commit(ep->peers, d + OFF_SENDER, seq, dist <= (uint64_t)ep->skew_ms,
	                             &last, &floor)) {
	case FL_PEER_OK:
		break;
	case FL_PEER_REVOKED:
	case FL_PEER_UNKNOWN:
		return refuse(&a, FL_ENVELOPE_REVOKED, "key revoked while the message was checked");
	case FL_PEER_REPLAY:
		if (seq <= floor)
			return refuse(&a, FL_ENVELOPE_REPLAY,
			              "seq %llu older than the replay window (refused up to "
			              "%llu, highest accepted %llu)",
			              (unsigned long long)seq, (unsigned long long)floor,
			              (unsigned long long)last);
		return refuse(&a, FL_ENVELOPE_REPLAY,
		              "seq %llu accepted already (highest accepted %llu)",
		              (unsigned long long)seq, (unsigned long long)last);
	case FL_PEER_SKEW:
		return refuse(&a, FL_ENVELOPE_SKEW,
		              "timestamp %lld is %llu ms %s our clock (window %lld ms)",
		              (long long)ts, (unsigned long long)dist,
		              ts > now_ms ? "ahead of" : "behind", (long long)ep->skew_ms);
	case FL_PEER_STORE:
		return refuse(&a, FL_ENVELOPE_STORE, "cannot record seq %llu in the sequence file",
		              (unsigned long long)seq);
	}
	accepted(&a, p, seq, ts);
	return FL_OK;
}

enum fl_err fl_envelope_open_enroll(struct fl_envelope *ep, const void *data, size_t len,
                                    struct fl_envelope_opened *o, Flotilla__V1__Message **hello,
                                    enum fl_envelope_reason *reason, char *errbuf)
{
	struct attempt a = {.ep = ep, .o = o, .reason = reason, .errbuf = errbuf};
	const uint8_t *d = data;
	uint8_t key[crypto_box_BEFORENMBYTES], *p;
	struct fl_peer_info known;
	Flotilla__V1__Message *m = NULL;
	char eb[FL_ERRBUF_SIZE] = "";
	uint64_t seq, dist;
	int64_t ts, now_ms;
	uint32_t body_len;
	enum fl_err rv;

	*hello = NULL;
	o->body = NULL;
	o->body_len = 0;
	if (d != NULL && len >= OFF_SENDER + FL_PEER_KEY_LEN)
		a.sender = d + OFF_SENDER;
	/* Before anything costs a key exchange. */
	if (!enroll_take(ep))
		return refuse(&a, FL_ENVELOPE_RATE_LIMITED,
		              ep->enroll_rate ? "more than %u enrollment attempts a second"
		                              : "enrollment is off here (%u a second)",
		              ep->enroll_rate);
	if ((rv = check_outer(&a, d, len, FL_ENVELOPE_ENROLL_MAX)) != FL_OK)
		return rv;
	if (fl_peers_find(ep->peers, d + OFF_SENDER, &known) == FL_OK) {
		if (known.revoked)
			return refuse(&a, FL_ENVELOPE_REVOKED, "key revoked");
		return refuse(&a, FL_ENVELOPE_NOT_ENROLLMENT, "key enrolled already");
	}
	memset(&o->sender, 0, sizeof(o->sender));
	memcpy(o->sender.pk, d + OFF_SENDER, FL_PEER_KEY_LEN);
	fl_key_id(o->sender.pk, o->sender.id);
	/* Computed for this message only, never added to the registry. */
	if (fl_identity_shared_key(ep->self, d + OFF_SENDER, key) != FL_OK) {
		sodium_memzero(key, sizeof(key));
		return refuse(&a, FL_ENVELOPE_UNKNOWN_SENDER, "not a usable public key");
	}
	if ((rv = decrypt_and_verify(&a, d, len, key, &p)) != FL_OK)
		return rv;
	seq = fl_load_be64(p + IN_SEQ);
	ts = (int64_t)fl_load_be64(p + IN_TS);
	now_ms = ep->clock(ep->clock_arg) / 1000;
	dist = distance(ts, now_ms);
	if (seq == 0)
		return refuse(&a, FL_ENVELOPE_REPLAY, "seq 0 is never accepted");
	if (dist > (uint64_t)ep->skew_ms)
		return refuse(&a, FL_ENVELOPE_SKEW,
		              "timestamp %lld is %llu ms %s our clock (window %lld ms)",
		              (long long)ts, (unsigned long long)dist,
		              ts > now_ms ? "ahead of" : "behind", (long long)ep->skew_ms);
	body_len = fl_load_be32(p + IN_BODYLEN);
	if (fl_wire_unpack_from(FL_PEER_AGENT, p + INNER_FIXED, body_len, &m, eb) != FL_OK)
		return refuse(&a, FL_ENVELOPE_NOT_ENROLLMENT, "%s", eb);
	if (m->body_case != FLOTILLA__V1__MESSAGE__BODY_HELLO ||
	    m->hello->enrollment_token[0] == '\0') {
		rv = refuse(&a, FL_ENVELOPE_NOT_ENROLLMENT, "a %s%s, not a hello with a token",
		            fl_wire_body_name((int)m->body_case),
		            m->body_case == FLOTILLA__V1__MESSAGE__BODY_HELLO ? " without a token"
		                                                              : "");
		fl_wire_free(m);
		return rv;
	}
	accepted(&a, p, seq, ts);
	*hello = m;
	return FL_OK;
}
