/*
 * Keys and secret key files (docs/WIRE.md, "Keys").
 *
 * Invariants:
 * - a seed, an expanded secret key or the text of a secret key file exists
 *   only in sodium_malloc memory, and is wiped and freed on every path;
 * - a loaded seed is checked against the file's public key, so a file whose
 *   public line was edited cannot make us sign as someone else;
 * - a secret key file is only ever created (O_EXCL), never rewritten, and
 *   read only through an fd whose fstat says nobody but its owner may touch
 *   it (no window between the check and the read).
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "file.h"

#define HEADER "# flotilla secret key: keep it private\n"

static const char *const kind_names[] = {
    [FL_KEY_COORDINATOR] = "coordinator",
    [FL_KEY_AGENT] = "agent",
    [FL_KEY_OPERATOR] = "operator",
    [FL_KEY_RELEASE] = "release",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

static void ensure_sodium(void)
{
	if (sodium_init() < 0)
		abort();
}

/* sodium_malloc that aborts on out-of-memory, as fl_malloc does. */
static void *secure_alloc(size_t size)
{
	void *p;

	ensure_sodium();
	p = sodium_malloc(size);
	if (p == NULL) {
		fprintf(stderr, "flotilla: out of secure memory allocating %zu bytes\n", size);
		abort();
	}
	return p;
}

/* ---- kinds ---- */

const char *fl_key_kind_name(enum fl_key_kind kind)
{
	if ((unsigned)kind >= N_KINDS)
		return "?";
	return kind_names[kind];
}

static bool kind_lookup(const char *s, size_t len, enum fl_key_kind *kind)
{
	size_t i;

	for (i = 0; i < N_KINDS; i++) {
		if (strlen(kind_names[i]) == len && memcmp(kind_names[i], s, len) == 0) {
			*kind = (enum fl_key_kind)i;
			return true;
		}
	}
	return false;
}

/* s[0..len) if it is short printable ASCII, else a placeholder. */
static const char *printable(char out[64], const char *s, size_t len)
{
	size_t i;

	if (len >= 64)
		return "(long text)";
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return "(unprintable text)";
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

enum fl_err fl_key_kind_parse(const char *name, enum fl_key_kind *kind, char *errbuf)
{
	char shown[64];

	if (name != NULL && kind_lookup(name, strlen(name), kind))
		return FL_OK;
	return fl_errf(errbuf, FL_EINVAL,
	               "unknown key kind '%s': expected coordinator, agent, operator or release",
	               name ? printable(shown, name, strlen(name)) : "");
}

/* ---- base64 ---- */

size_t fl_base64_encoded_size(size_t len)
{
	return sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
}

void fl_base64_encode(const void *bin, size_t len, char *out)
{
	ensure_sodium();
	sodium_bin2base64(out, fl_base64_encoded_size(len), bin, len,
	                  sodium_base64_VARIANT_ORIGINAL);
}

enum fl_err fl_base64_decode(const char *text, size_t len, void *out, size_t max, size_t *out_len)
{
	const char *end = NULL;
	size_t n = 0;

	ensure_sodium();
	*out_len = 0;
	/* With b64_end given, libsodium stops at the first byte that is not
	 * base64 and succeeds: we insist on every byte being consumed. It
	 * refuses missing padding and non-zero trailing bits itself. */
	if (sodium_base642bin(out, max, text, len, NULL, &n, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != text + len)
		return FL_EPARSE;
	*out_len = n;
	return FL_OK;
}

/* ---- public keys ---- */

void fl_key_id(const uint8_t pk[FL_KEY_PUBLIC_BYTES], char out[FL_KEY_ID_LEN + 1])
{
	uint8_t d[crypto_hash_sha256_BYTES];

	ensure_sodium();
	crypto_hash_sha256(d, pk, FL_KEY_PUBLIC_BYTES);
	sodium_bin2hex(out, FL_KEY_ID_LEN + 1, d, FL_KEY_ID_LEN / 2);
}

void fl_key_public_text(const uint8_t pk[FL_KEY_PUBLIC_BYTES], char out[FL_KEY_PUBLIC_TEXT_LEN + 1])
{
	fl_base64_encode(pk, FL_KEY_PUBLIC_BYTES, out);
}

enum fl_err fl_key_public_parse(const char *text, uint8_t pk[FL_KEY_PUBLIC_BYTES], char *errbuf)
{
	uint8_t tmp[FL_KEY_PUBLIC_BYTES + 3];
	size_t len = text ? strlen(text) : 0, n;
	char shown[64];

	if (len != FL_KEY_PUBLIC_TEXT_LEN)
		return fl_errf(errbuf, FL_EPARSE,
		               "public key '%s' is %zu characters long, expected 44 characters of "
		               "base64",
		               printable(shown, text ? text : "", len), len);
	if (fl_base64_decode(text, len, tmp, sizeof(tmp), &n) != FL_OK || n != FL_KEY_PUBLIC_BYTES)
		return fl_errf(errbuf, FL_EPARSE, "public key '%s' is not valid base64 of 32 bytes",
		               printable(shown, text, len));
	memcpy(pk, tmp, FL_KEY_PUBLIC_BYTES);
	return FL_OK;
}

/* ---- key pairs ---- */

void fl_key_generate(enum fl_key_kind kind, const uint8_t *seed, struct fl_key *key)
{
	uint8_t *sk = secure_alloc(crypto_sign_SECRETKEYBYTES);

	key->kind = kind;
	key->seed = secure_alloc(FL_KEY_SEED_BYTES);
	if (seed)
		crypto_sign_seed_keypair(key->pk, sk, seed);
	else
		crypto_sign_keypair(key->pk, sk);
	/* libsodium's secret key is seed || public key. */
	crypto_sign_ed25519_sk_to_seed(key->seed, sk);
	sodium_free(sk);
	sodium_mprotect_readonly(key->seed);
}

void fl_key_fini(struct fl_key *key)
{
	if (key == NULL)
		return;
	if (key->seed) {
		sodium_mprotect_readwrite(key->seed);
		sodium_memzero(key->seed, FL_KEY_SEED_BYTES);
		sodium_free(key->seed);
	}
	key->seed = NULL;
}

void fl_key_sign(const struct fl_key *key, const void *msg, size_t len,
                 uint8_t sig[FL_KEY_SIGNATURE_BYTES])
{
	uint8_t pk[FL_KEY_PUBLIC_BYTES], *sk;

	if (key->seed == NULL)
		abort(); /* a bug: signing with a public key */
	sk = secure_alloc(crypto_sign_SECRETKEYBYTES);
	crypto_sign_seed_keypair(pk, sk, key->seed);
	crypto_sign_detached(sig, NULL, msg, len, sk);
	sodium_free(sk);
}

bool fl_key_verify(const uint8_t pk[FL_KEY_PUBLIC_BYTES], const void *msg, size_t len,
                   const uint8_t sig[FL_KEY_SIGNATURE_BYTES])
{
	ensure_sodium();
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}

/* ---- secret key files ---- */

enum fl_err fl_key_file_write(const char *path, const struct fl_key *key, char *errbuf)
{
	enum { TEXT_MAX = 512 };
	char pub[FL_KEY_PUBLIC_TEXT_LEN + 1], eb[128], *text = NULL, *secret = NULL;
	enum fl_err rv = FL_OK;
	int fd, n;

	if (key->seed == NULL)
		return fl_errf(errbuf, FL_EINVAL, "cannot write '%s': no secret key", path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fl_errf(errbuf, FL_EIO, "cannot create '%s': %s", path,
		               errno == EEXIST
		                   ? "it already exists (a key file is never overwritten)"
		                   : fl_err_errno(errno, eb, sizeof(eb)));
	/* The umask can only take bits away from 0600; set it anyway, in case
	 * a default ACL added some. */
	if (fchmod(fd, 0600) != 0) {
		rv = fl_errf(errbuf, FL_EIO, "cannot chmod '%s': %s", path,
		             fl_err_errno(errno, eb, sizeof(eb)));
		goto out;
	}
	fl_key_public_text(key->pk, pub);
	secret = secure_alloc(fl_base64_encoded_size(FL_KEY_SEED_BYTES));
	fl_base64_encode(key->seed, FL_KEY_SEED_BYTES, secret);
	text = secure_alloc(TEXT_MAX);
	n = snprintf(text, TEXT_MAX, HEADER "kind: %s\npublic: %s\nsecret: %s\n",
	             fl_key_kind_name(key->kind), pub, secret);
	if (n < 0 || n >= TEXT_MAX)
		abort(); /* a bug: the format is fixed and short */
	if (fl_file_write_all(fd, text, (size_t)n) != FL_OK || fsync(fd) != 0) {
		rv = fl_errf(errbuf, FL_EIO, "cannot write '%s': %s", path,
		             fl_err_errno(errno, eb, sizeof(eb)));
		goto out;
	}
out:
	if (secret)
		sodium_free(secret);
	if (text)
		sodium_free(text);
	if (close(fd) != 0 && rv == FL_OK)
		rv = fl_errf(errbuf, FL_EIO, "cannot write '%s': %s", path,
		             fl_err_errno(errno, eb, sizeof(eb)));
	if (rv != FL_OK)
		unlink(path);
	else
		fl_file_sync_parent(path);
	return rv;
}

/* Read the whole of fd (at most max bytes) into sodium_malloc memory. */
static enum fl_err read_secret(int fd, const char *path, size_t max, char **out, size_t *len,
                               char *errbuf)
{
	char *buf = secure_alloc(max + 1);
	enum fl_err rv;
	size_t n;

	/* One byte over max tells a file that grew apart from one that fits. */
	if ((rv = fl_file_read_fd(fd, path, buf, max + 1, &n, errbuf)) != FL_OK) {
		sodium_free(buf);
		return rv;
	}
	if (n > max) {
		sodium_free(buf);
		return fl_errf(errbuf, FL_EPARSE,
		               "'%s' is larger than a key file can be (%zu bytes)", path, max);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return FL_OK;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

enum line_key { KEY_KIND, KEY_PUBLIC, KEY_SECRET, N_KEYS };

static const char *const line_keys[N_KEYS] = {"kind", "public", "secret"};

/* What the lines of a file say; seed is sodium_malloc memory once set. */
struct parsed {
	size_t line[N_KEYS]; /* where each key was given, 0 if not */
	enum fl_key_kind kind;
	uint8_t pk[FL_KEY_PUBLIC_BYTES];
	uint8_t *seed;
};

static enum fl_err parse_line(struct parsed *p, const char *path, size_t line, const char *s,
                              const char *e, char *errbuf)
{
	char shown[64], eb[FL_ERRBUF_SIZE], pub[FL_KEY_PUBLIC_TEXT_LEN + 1];
	const char *colon = memchr(s, ':', (size_t)(e - s)), *v;
	size_t k, n;

	if (colon == NULL)
		return fl_errf(errbuf, FL_EPARSE,
		               "'%s':%zu: malformed line: expected 'kind:', 'public:' or 'secret:'",
		               path, line);
	for (k = 0; k < N_KEYS; k++)
		if (strlen(line_keys[k]) == (size_t)(colon - s) &&
		    memcmp(line_keys[k], s, (size_t)(colon - s)) == 0)
			break;
	if (k == N_KEYS)
		return fl_errf(
		    errbuf, FL_EPARSE,
		    "'%s':%zu: unknown key '%s': expected 'kind:', 'public:' or 'secret:'", path,
		    line, printable(shown, s, (size_t)(colon - s)));
	if (p->line[k])
		return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: '%s' is already given on line %zu",
		               path, line, line_keys[k], p->line[k]);
	p->line[k] = line;
	for (v = colon + 1; v < e && is_blank(*v); v++)
		;
	while (e > v && is_blank(e[-1]))
		e--;
	switch ((enum line_key)k) {
	case KEY_KIND:
		if (!kind_lookup(v, (size_t)(e - v), &p->kind))
			return fl_errf(errbuf, FL_EPARSE,
			               "'%s':%zu: unknown key kind '%s': expected coordinator, "
			               "agent, operator or release",
			               path, line, printable(shown, v, (size_t)(e - v)));
		return FL_OK;
	case KEY_PUBLIC:
		if ((size_t)(e - v) != FL_KEY_PUBLIC_TEXT_LEN) {
			return fl_errf(errbuf, FL_EPARSE,
			               "'%s':%zu: public key is %zu characters long, expected 44 "
			               "characters of base64",
			               path, line, (size_t)(e - v));
		}
		memcpy(pub, v, FL_KEY_PUBLIC_TEXT_LEN);
		pub[FL_KEY_PUBLIC_TEXT_LEN] = '\0';
		if (fl_key_public_parse(pub, p->pk, eb) != FL_OK)
			return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: %s", path, line, eb);
		return FL_OK;
	case KEY_SECRET:
		/* Never quote this line: it is the secret. */
		p->seed = secure_alloc(FL_KEY_SEED_BYTES);
		if ((size_t)(e - v) != FL_KEY_PUBLIC_TEXT_LEN ||
		    fl_base64_decode(v, (size_t)(e - v), p->seed, FL_KEY_SEED_BYTES, &n) != FL_OK ||
		    n != FL_KEY_SEED_BYTES)
			return fl_errf(errbuf, FL_EPARSE,
			               "'%s':%zu: secret is not 44 characters of base64 of a "
			               "32-byte seed",
			               path, line);
		return FL_OK;
	case N_KEYS:
		break;
	}
	abort();
}

static enum fl_err parse_file(struct parsed *p, const char *path, const char *data, size_t len,
                              char *errbuf)
{
	const char *s = data, *end = data + len;
	size_t line = 0, k;
	enum fl_err rv;

	if (memchr(data, '\0', len) != NULL)
		return fl_errf(errbuf, FL_EPARSE, "'%s': contains a NUL byte", path);
	while (s < end) {
		const char *le = memchr(s, '\n', (size_t)(end - s)), *t;

		if (le == NULL)
			le = end;
		line++;
		for (t = s; t < le && is_blank(*t); t++)
			;
		if (t < le && *t != '#' && (rv = parse_line(p, path, line, t, le, errbuf)) != FL_OK)
			return rv;
		s = le < end ? le + 1 : end;
	}
	for (k = 0; k < N_KEYS; k++)
		if (p->line[k] == 0)
			return fl_errf(errbuf, FL_EPARSE, "'%s': no '%s:' line", path,
			               line_keys[k]);
	return FL_OK;
}

enum fl_err fl_key_file_load(const char *path, enum fl_key_kind want, struct fl_key *key,
                             char *errbuf)
{
	uint8_t pk[FL_KEY_PUBLIC_BYTES], *sk = NULL;
	char *data = NULL;
	struct parsed p;
	struct stat st;
	enum fl_err rv;
	size_t len = 0;
	int fd;

	memset(&p, 0, sizeof(p));
	key->seed = NULL;
	if ((rv = fl_file_open(path, FL_FILE_REGULAR, &fd, &st, errbuf)) != FL_OK)
		return rv;
	if (!S_ISREG(st.st_mode)) {
		rv = fl_errf(errbuf, FL_EIO, "refusing '%s': not a regular file", path);
		goto out;
	}
	/* As ssh does with identity files: a secret others can read is no
	 * longer a secret, and one others can write is not ours. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rv = fl_errf(errbuf, FL_EIO,
		             "refusing '%s': %s by others (mode %04o); chmod 600 it", path,
		             st.st_mode & (S_IRGRP | S_IROTH)   ? "readable"
		             : st.st_mode & (S_IWGRP | S_IWOTH) ? "writable"
		                                                : "accessible",
		             (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((unsigned long long)st.st_size > FL_KEY_FILE_MAX) {
		rv = fl_errf(errbuf, FL_EPARSE, "'%s' is larger than a key file can be (%d bytes)",
		             path, FL_KEY_FILE_MAX);
		goto out;
	}
	if ((rv = read_secret(fd, path, FL_KEY_FILE_MAX, &data, &len, errbuf)) != FL_OK)
		goto out;
	if ((rv = parse_file(&p, path, data, len, errbuf)) != FL_OK)
		goto out;
	if (p.kind != want) {
		rv = fl_errf(errbuf, FL_EPARSE, "'%s' holds %s %s key, expected %s %s key", path,
		             p.kind == FL_KEY_AGENT || p.kind == FL_KEY_OPERATOR ? "an" : "a",
		             fl_key_kind_name(p.kind),
		             want == FL_KEY_AGENT || want == FL_KEY_OPERATOR ? "an" : "a",
		             fl_key_kind_name(want));
		goto out;
	}
	sk = secure_alloc(crypto_sign_SECRETKEYBYTES);
	crypto_sign_seed_keypair(pk, sk, p.seed);
	if (sodium_memcmp(pk, p.pk, FL_KEY_PUBLIC_BYTES) != 0) {
		rv = fl_errf(errbuf, FL_EPARSE,
		             "'%s':%zu: the public key does not belong to the secret on line %zu",
		             path, p.line[KEY_PUBLIC], p.line[KEY_SECRET]);
		goto out;
	}
	key->kind = p.kind;
	memcpy(key->pk, p.pk, FL_KEY_PUBLIC_BYTES);
	key->seed = p.seed;
	sodium_mprotect_readonly(key->seed);
	p.seed = NULL;
out:
	if (sk)
		sodium_free(sk);
	if (p.seed)
		sodium_free(p.seed);
	if (data)
		sodium_free(data);
	close(fd);
	return rv;
}
