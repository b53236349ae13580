/*
 * Signed release bundles: build, sign, verify, inspect (docs/WIRE.md).
 *
 * Decoding runs in the order that exposes the least code to an attacker:
 * size cap, the SignedRelease wrapper (small: bytes and signatures), the
 * signatures over the bundle's hash, and only then the bundle itself. Every
 * rule the folder loader applies is applied again to what comes out, so a
 * decoded release is interchangeable with a loaded folder; and the bundle
 * must be canonical (re-packing gives its bytes), so that equal content has
 * one hash. All packing and unpacking goes through wire.c.
 */
#include "release.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "checksum.h"
#include "file.h"
#include "graph.h"
#include "mem.h"
#include "utf8.h"
#include "wire.h"

#define HASH_BYTES  crypto_hash_sha256_BYTES
#define CONTEXT_LEN (sizeof(FL_RELEASE_SIGNING_CONTEXT)) /* with its NUL */
#define SHOW_MAX    96

typedef Flotilla__V1__SignedRelease SignedRelease;
typedef Flotilla__V1__ReleaseSignature ReleaseSignature;
typedef Flotilla__V1__ReleaseBundle ReleaseBundle;
typedef Flotilla__V1__ReleaseMigration ReleaseMigration;

/* ---- small helpers ---- */

static void ensure_sodium(void)
{
	if (sodium_init() < 0)
		abort();
}

static void signing_message(const uint8_t hash[HASH_BYTES], uint8_t msg[CONTEXT_LEN + HASH_BYTES])
{
	memcpy(msg, FL_RELEASE_SIGNING_CONTEXT, CONTEXT_LEN);
	memcpy(msg + CONTEXT_LEN, hash, HASH_BYTES);
}

/* Append ", id" (or "id" first) for the key pk. */
static void add_key_id(struct fl_buf *b, const uint8_t pk[FL_KEY_PUBLIC_BYTES], bool first)
{
	char id[FL_KEY_ID_LEN + 1];

	fl_key_id(pk, id);
	fl_buf_printf(b, "%s%s", first ? "" : ", ", id);
}

/* ---- decoding ---- */

static void release_init(struct fl_release *r)
{
	memset(r, 0, sizeof(*r));
}

void fl_release_free(struct fl_release *r)
{
	if (r == NULL)
		return;
	fl_migration_set_fini(&r->set);
	free(r->signers);
	free(r->project_id);
	free(r);
}

const char *fl_release_project_problem(const char *id)
{
	size_t n;

	if (id == NULL || id[0] == '\0')
		return "empty";
	for (n = 0; id[n] != '\0'; n++) {
		char c = id[n];

		if (n >= FL_RELEASE_PROJECT_MAX)
			return "longer than 64 characters";
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return "use A-Z a-z 0-9 . _ -";
	}
	return NULL;
}

/* A text field of a migration: no NUL byte, valid UTF-8, as the loader wants. */
static enum fl_err take_text(const char *id, const char *what, const ProtobufCBinaryData *b,
                             char **out, size_t *len, char *errbuf)
{
	const char *p = b->len ? (const char *)b->data : "";
	size_t bad;

	if (b->len && memchr(p, '\0', b->len) != NULL)
		return fl_errf(errbuf, FL_EPARSE, "migration '%s': %s contains a NUL byte", id,
		               what);
	if (!fl_utf8_valid(p, b->len, &bad))
		return fl_errf(errbuf, FL_EPARSE,
		               "migration '%s': %s is not valid UTF-8 (byte %zu)", id, what, bad);
	*out = fl_strndup(p, b->len);
	*len = b->len;
	return FL_OK;
}

static bool is_lower_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* The bundle's directive fields must say what the SQL's comment block says. */
static const char *directives_differ(const struct fl_migration *m, const ReleaseMigration *pm)
{
	size_t i;

	if (m->no_transaction != (pm->no_transaction != 0))
		return "no_transaction";
	if (m->lock_timeout_ms != pm->lock_timeout_ms)
		return "lock_timeout_ms";
	if (m->statement_timeout_ms != pm->statement_timeout_ms)
		return "statement_timeout_ms";
	if ((int)m->phase != (int)pm->phase)
		return "phase";
	if (m->n_requires != pm->n_requires)
		return "requires";
	for (i = 0; i < m->n_requires; i++)
		if (pm->requires[i] == NULL || strcmp(m->requires[i], pm -> requires[i]) != 0)
			return "requires";
	return NULL;
}

static enum fl_err take_migration(struct fl_migration *m, const ReleaseMigration *pm,
                                  const char *dir, char *errbuf)
{
	char shown[SHOW_MAX], eb[FL_ERRBUF_SIZE];
	const char *id = pm->id ? pm->id : "", *why;
	size_t idlen = strlen(id), dlen = strlen(dir);
	enum fl_err rv;

	m->lock_timeout_ms = -1;
	m->statement_timeout_ms = -1;
	if ((why = fl_migration_id_problem(id, idlen)) != NULL)
		return fl_errf(errbuf, FL_EPARSE, "invalid migration id '%s': %s",
		               fl_err_quote(shown, sizeof(shown), id, idlen), why);
	m->id = fl_strdup(id);
	m->path = fl_malloc(dlen + 1 + idlen + 1);
	memcpy(m->path, dir, dlen);
	m->path[dlen] = '/';
	memcpy(m->path + dlen + 1, id, idlen + 1);

	if ((rv = take_text(id, "migration.sql", &pm->sql, &m->sql, &m->sql_len, errbuf)) != FL_OK)
		return rv;
	if (!pm->has_down && pm->down_sql.len)
		return fl_errf(errbuf, FL_EPARSE,
		               "migration '%s': down.sql bytes but has_down unset", id);
	if (pm->has_down && (rv = take_text(id, "down.sql", &pm->down_sql, &m->down_sql,
	                                    &m->down_len, errbuf)) != FL_OK)
		return rv;
	if (!pm->has_verify && pm->verify_sql.len)
		return fl_errf(errbuf, FL_EPARSE,
		               "migration '%s': verify.sql bytes but has_verify unset", id);
	if (pm->has_verify && (rv = take_text(id, "verify.sql", &pm->verify_sql, &m->verify_sql,
	                                      &m->verify_len, errbuf)) != FL_OK)
		return rv;

	if (pm->checksum == NULL || strlen(pm->checksum) != FL_CHECKSUM_HEX_LEN ||
	    !is_lower_hex(pm->checksum, FL_CHECKSUM_HEX_LEN))
		return fl_errf(errbuf, FL_EPARSE,
		               "migration '%s': checksum is not 64 lowercase hex digits", id);
	fl_checksum_compute(m->sql, m->sql_len, m->checksum);
	if (strcmp(m->checksum, pm->checksum) != 0)
		return fl_errf(errbuf, FL_ECHECKSUM,
		               "migration '%s': checksum does not match its SQL", id);

	if (pm->n_requires > FL_RELEASE_REQUIRES_MAX)
		return fl_errf(errbuf, FL_EPARSE, "migration '%s': more than %u requires", id,
		               FL_RELEASE_REQUIRES_MAX);
	if (fl_migration_parse_directives(m, m->path, eb) != FL_OK)
		return fl_errf(errbuf, FL_EPARSE, "migration '%s': %s", id, eb);
	if ((why = directives_differ(m, pm)) != NULL)
		return fl_errf(errbuf, FL_EPARSE,
		               "migration '%s': %s does not match the directives in its SQL", id,
		               why);
	return FL_OK;
}

static int cmp_prisma(const void *a, const void *b)
{
	return fl_migration_id_cmp(((const struct fl_migration *)a)->id,
	                           ((const struct fl_migration *)b)->id);
}

/* Fill r->set from the bundle bytes (already authenticated, or inspected). */
static enum fl_err take_bundle(struct fl_release *r, const ProtobufCBinaryData *bytes, char *errbuf)
{
	struct fl_buf again = FL_BUF_INIT;
	struct fl_migration_set *set = &r->set;
	char eb[FL_ERRBUF_SIZE] = "";
	ReleaseBundle *b = NULL;
	enum fl_err rv = FL_OK;
	const char *why;
	size_t i;

	if (fl_wire_unpack_release_bundle(bytes->data, bytes->len, FL_RELEASE_FILE_MAX, &b, eb) !=
	    FL_OK)
		return fl_errf(errbuf, FL_EPARSE, "malformed bundle: %s", eb);
	if (b->format_version != FL_RELEASE_FORMAT_VERSION) {
		rv = fl_errf(errbuf, FL_EPARSE,
		             "bundle format version %u is not supported (this flotilla reads %d)",
		             b->format_version, FL_RELEASE_FORMAT_VERSION);
		goto out;
	}
	/*
	 * Unlike envelope messages, a bundle's unknown fields are not ignored:
	 * what an agent applies must be all that was signed, and a field that
	 * changes how a migration runs comes with a new format version.
	 */
	for (i = 0; i < b->n_migrations && b->base.n_unknown_fields == 0; i++)
		if (b->migrations[i]->base.n_unknown_fields != 0)
			break;
	if (b->base.n_unknown_fields != 0 || i < b->n_migrations) {
		rv = fl_errf(errbuf, FL_EPARSE,
		             "bundle has fields format version %d does not define",
		             FL_RELEASE_FORMAT_VERSION);
		goto out;
	}
	/* One content, one encoding: repeated or reordered fields, overlong
	 * varints, default values written out all change the bytes but not the
	 * content. protobuf-c packs canonically, so re-packing tells. */
	fl_buf_init(&again, FL_RELEASE_FILE_MAX);
	if (fl_wire_pack_release_bundle(b, &again, FL_RELEASE_FILE_MAX, eb) != FL_OK ||
	    again.len != bytes->len || memcmp(again.data, bytes->data, bytes->len) != 0) {
		rv = fl_errf(errbuf, FL_EPARSE,
		             "bundle is not in canonical form (re-packing it gives other bytes)");
		goto out;
	}
	if ((why = fl_release_project_problem(b->project_id)) != NULL) {
		char shown[SHOW_MAX];

		rv = fl_errf(
		    errbuf, FL_EPARSE, "invalid project id '%s': %s",
		    fl_err_quote(shown, sizeof(shown), b->project_id, strlen(b->project_id)), why);
		goto out;
	}
	if (b->sequence == 0) {
		rv = fl_errf(errbuf, FL_EPARSE, "sequence number 0: releases are numbered from 1");
		goto out;
	}
	r->project_id = fl_strdup(b->project_id);
	r->sequence = b->sequence;
	if (b->n_migrations > FL_RELEASE_MIGRATIONS_MAX) {
		rv = fl_errf(errbuf, FL_EPARSE,
		             "bundle has %zu migrations, more than the limit of %u",
		             b->n_migrations, FL_RELEASE_MIGRATIONS_MAX);
		goto out;
	}
	set->dir = fl_malloc(sizeof("release:") + FL_KEY_ID_LEN);
	snprintf(set->dir, sizeof("release:") + FL_KEY_ID_LEN, "release:%.*s", FL_KEY_ID_LEN,
	         r->hash);
	if (b->provider && b->provider[0]) {
		char shown[SHOW_MAX];

		if (strcmp(b->provider, "postgresql") != 0 &&
		    strcmp(b->provider, "postgres") != 0) {
			rv = fl_errf(
			    errbuf, FL_EPARSE, "provider '%s' is not supported, only postgresql",
			    fl_err_quote(shown, sizeof(shown), b->provider, strlen(b->provider)));
			goto out;
		}
		set->provider = fl_strdup(b->provider);
	}
	set->items = fl_calloc(b->n_migrations, sizeof(*set->items));
	for (i = 0; i < b->n_migrations; i++) {
		set->count++;
		if ((rv = take_migration(&set->items[i], b->migrations[i], set->dir, errbuf)) !=
		    FL_OK)
			goto out;
	}
	/* fl_graph_sort takes Prisma's folder order; the bundle must be in the
	 * order it gives back, which is the one the engine applies. */
	if (set->count > 1)
		qsort(set->items, set->count, sizeof(*set->items), cmp_prisma);
	if ((rv = fl_graph_sort(set, errbuf)) != FL_OK)
		goto out;
	for (i = 0; i < set->count; i++) {
		if (strcmp(set->items[i].id, b->migrations[i]->id) != 0) {
			rv = fl_errf(errbuf, FL_EGRAPH,
			             "migrations are not in apply order: '%s' comes where '%s' "
			             "belongs",
			             b->migrations[i]->id, set->items[i].id);
			goto out;
		}
	}
out:
	fl_buf_fini(&again);
	fl_wire_free_release_bundle(b);
	return rv;
}

/*
 * Decode data[0..len). With trusted (n_trusted > 0), require a verifying
 * signature by a trusted key. With signer (the key about to sign), require
 * every signature to verify, none by signer, and room for one more. Both
 * before the bundle is unpacked. On success *out is the release and, if
 * sr_out is not NULL, *sr_out the unpacked SignedRelease (the caller frees
 * it).
 */
static enum fl_err decode(const void *data, size_t len,
                          const uint8_t (*trusted)[FL_KEY_PUBLIC_BYTES], size_t n_trusted,
                          const uint8_t *expected_hash, const char *expected_project,
                          const uint8_t *signer, struct fl_release **out, SignedRelease **sr_out,
                          char *errbuf)
{
	uint8_t hash[HASH_BYTES], msg[CONTEXT_LEN + HASH_BYTES];
	char eb[FL_ERRBUF_SIZE] = "";
	struct fl_release *r = NULL;
	SignedRelease *sr = NULL;
	enum fl_err rv = FL_OK;
	size_t i, j;

	*out = NULL;
	if (sr_out)
		*sr_out = NULL;
	ensure_sodium();
	if (len > FL_RELEASE_FILE_MAX)
		return fl_errf(errbuf, FL_EPARSE, "larger than the limit of %u MiB",
		               FL_RELEASE_FILE_MAX / (1024 * 1024));
	if (len == 0)
		return fl_errf(errbuf, FL_EPARSE, "empty: not a release file");
	if (fl_wire_unpack_signed_release(data, len, FL_RELEASE_FILE_MAX, &sr, eb) != FL_OK)
		return fl_errf(errbuf, FL_EPARSE, "malformed: %s", eb);
	if (sr->bundle.len == 0) {
		rv = fl_errf(errbuf, FL_EPARSE, "no bundle");
		goto out;
	}
	if (sr->n_signatures > FL_RELEASE_SIGNATURES_MAX) {
		rv = fl_errf(errbuf, FL_EPARSE, "%zu signatures, more than the limit of %u",
		             sr->n_signatures, FL_RELEASE_SIGNATURES_MAX);
		goto out;
	}

	r = fl_malloc(sizeof(*r));
	release_init(r);
	crypto_hash_sha256(hash, sr->bundle.data, sr->bundle.len);
	sodium_bin2hex(r->hash, sizeof(r->hash), hash, HASH_BYTES);
	memcpy(r->digest, hash, HASH_BYTES);
	/* Not the release asked for: nothing more to look at. */
	if (expected_hash && sodium_memcmp(hash, expected_hash, HASH_BYTES) != 0) {
		char want[FL_RELEASE_HASH_HEX_LEN + 1];

		sodium_bin2hex(want, sizeof(want), expected_hash, HASH_BYTES);
		rv = fl_errf(errbuf, FL_EAUTH, "content hash %s, not the expected %s", r->hash,
		             want);
		goto out;
	}
	signing_message(hash, msg);
	r->signers = fl_calloc(sr->n_signatures, sizeof(*r->signers));
	for (i = 0; i < sr->n_signatures; i++) {
		const ReleaseSignature *s = sr->signatures[i];
		struct fl_release_signer *g = &r->signers[i];
		char id[FL_KEY_ID_LEN + 1];

		if (s->public_key.len != FL_KEY_PUBLIC_BYTES ||
		    s->signature.len != FL_KEY_SIGNATURE_BYTES) {
			rv = fl_errf(errbuf, FL_EPARSE,
			             "signature %zu: %zu-byte key and %zu-byte signature, expected "
			             "32 and 64",
			             i + 1, s->public_key.len, s->signature.len);
			goto out;
		}
		memcpy(g->pk, s->public_key.data, FL_KEY_PUBLIC_BYTES);
		for (j = 0; j < i; j++) {
			if (memcmp(r->signers[j].pk, g->pk, FL_KEY_PUBLIC_BYTES) == 0) {
				fl_key_id(g->pk, id);
				rv = fl_errf(errbuf, FL_EPARSE, "signed twice by %s", id);
				goto out;
			}
		}
		r->n_signers++;
		g->valid = fl_key_verify(g->pk, msg, sizeof(msg), s->signature.data);
		if (signer && !g->valid) {
			fl_key_id(g->pk, id);
			rv = fl_errf(errbuf, FL_EAUTH,
			             "signature by %s does not verify: refusing to add mine", id);
			goto out;
		}
		if (signer && memcmp(signer, g->pk, FL_KEY_PUBLIC_BYTES) == 0) {
			fl_key_id(g->pk, id);
			rv = fl_errf(errbuf, FL_ESTATE, "already signed by %s", id);
			goto out;
		}
		for (j = 0; j < n_trusted; j++)
			if (memcmp(trusted[j], g->pk, FL_KEY_PUBLIC_BYTES) == 0)
				g->trusted = true;
	}

	if (signer && r->n_signers >= FL_RELEASE_SIGNATURES_MAX) {
		rv = fl_errf(errbuf, FL_ESTATE, "already %zu signatures, the limit", r->n_signers);
		goto out;
	}
	if (n_trusted > 0) {
		struct fl_buf b = FL_BUF_INIT;

		for (i = 0; i < r->n_signers; i++) {
			if (r->signers[i].trusted && !r->signers[i].valid) {
				char id[FL_KEY_ID_LEN + 1];

				fl_key_id(r->signers[i].pk, id);
				rv = fl_errf(errbuf, FL_EAUTH,
				             "signature by trusted key %s does not verify: the "
				             "release was altered after it was signed",
				             id);
				goto out;
			}
			if (r->signers[i].trusted && !r->verified) {
				r->verified = true;
				r->verified_by = i;
			}
		}
		if (!r->verified) {
			fl_buf_puts(&b, r->n_signers ? "signed by " : "not signed");
			for (i = 0; i < r->n_signers; i++)
				add_key_id(&b, r->signers[i].pk, i == 0);
			fl_buf_puts(&b, "; trusted: ");
			for (i = 0; i < n_trusted; i++)
				add_key_id(&b, trusted[i], i == 0);
			rv = fl_errf(errbuf, FL_EAUTH, "no signature by a trusted key (%s)",
			             fl_buf_str(&b));
			fl_buf_fini(&b);
			goto out;
		}
	}

	if ((rv = take_bundle(r, &sr->bundle, errbuf)) != FL_OK)
		goto out;
	if (expected_project && strcmp(r->project_id, expected_project) != 0) {
		char a[SHOW_MAX], b[SHOW_MAX];

		rv =
		    fl_errf(errbuf, FL_EAUTH, "a release of project '%s', not of '%s'",
		            fl_err_quote(a, sizeof(a), r->project_id, strlen(r->project_id)),
		            fl_err_quote(b, sizeof(b), expected_project, strlen(expected_project)));
		goto out;
	}
	*out = r;
	r = NULL;
	if (sr_out) {
		*sr_out = sr;
		sr = NULL;
	}
out:
	fl_release_free(r);
	fl_wire_free_signed_release(sr);
	return rv;
}

enum fl_err fl_release_verify(const void *data, size_t len,
                              const uint8_t (*trusted)[FL_KEY_PUBLIC_BYTES], size_t n_trusted,
                              const uint8_t *expected_hash, const char *expected_project,
                              struct fl_release **out, char *errbuf)
{
	*out = NULL;
	if (trusted == NULL || n_trusted == 0)
		return fl_errf(errbuf, FL_EINVAL, "no trusted release keys given");
	return decode(data, len, trusted, n_trusted, expected_hash, expected_project, NULL, out,
	              NULL, errbuf);
}

enum fl_err fl_release_inspect(const void *data, size_t len, struct fl_release **out, char *errbuf)
{
	return decode(data, len, NULL, 0, NULL, NULL, NULL, out, NULL, errbuf);
}

/* ---- building and signing ---- */

static void fill_migration(ReleaseMigration *pm, const struct fl_migration *m)
{
	flotilla__v1__release_migration__init(pm);
	pm->id = m->id;
	pm->checksum = (char *)m->checksum;
	pm->sql.data = (uint8_t *)m->sql;
	pm->sql.len = m->sql_len;
	if (m->down_sql) {
		pm->has_down = 1;
		pm->down_sql.data = (uint8_t *)m->down_sql;
		pm->down_sql.len = m->down_len;
	}
	if (m->verify_sql) {
		pm->has_verify = 1;
		pm->verify_sql.data = (uint8_t *)m->verify_sql;
		pm->verify_sql.len = m->verify_len;
	}
	pm->no_transaction = m->no_transaction;
	pm->requires = m->requires;
	pm->n_requires = m->n_requires;
	pm->lock_timeout_ms = m->lock_timeout_ms;
	pm->statement_timeout_ms = m->statement_timeout_ms;
	pm->phase = (Flotilla__V1__Phase)m->phase;
}

enum fl_err fl_release_build(const struct fl_migration_set *set, const char *project_id,
                             uint64_t sequence, struct fl_buf *out,
                             char hash[FL_RELEASE_HASH_HEX_LEN + 1], char *errbuf)
{
	ReleaseMigration *pms = NULL, **ptrs = NULL;
	struct fl_buf bundle = FL_BUF_INIT;
	struct fl_release *check = NULL;
	ReleaseBundle b;
	SignedRelease sr;
	enum fl_err rv = FL_OK;
	const char *why;
	size_t i;

	fl_buf_reset(out);
	if ((why = fl_release_project_problem(project_id)) != NULL) {
		char shown[SHOW_MAX];

		return fl_errf(errbuf, FL_EINVAL, "invalid project id '%s': %s",
		               fl_err_quote(shown, sizeof(shown), project_id ? project_id : "",
		                            project_id ? strlen(project_id) : 0),
		               why);
	}
	if (sequence == 0)
		return fl_errf(errbuf, FL_EINVAL,
		               "invalid sequence number 0: releases are numbered "
		               "from 1");
	if (set->count > FL_RELEASE_MIGRATIONS_MAX)
		return fl_errf(errbuf, FL_EINVAL, "%zu migrations, more than the limit of %u",
		               set->count, FL_RELEASE_MIGRATIONS_MAX);
	pms = fl_calloc(set->count, sizeof(*pms));
	ptrs = fl_calloc(set->count, sizeof(*ptrs));
	for (i = 0; i < set->count; i++) {
		if (set->items[i].n_requires > FL_RELEASE_REQUIRES_MAX) {
			rv = fl_errf(errbuf, FL_EINVAL, "migration '%s': more than %u requires",
			             set->items[i].id, FL_RELEASE_REQUIRES_MAX);
			goto out;
		}
		fill_migration(&pms[i], &set->items[i]);
		ptrs[i] = &pms[i];
	}
	flotilla__v1__release_bundle__init(&b);
	b.format_version = FL_RELEASE_FORMAT_VERSION;
	b.migrations = ptrs;
	b.n_migrations = set->count;
	b.provider = set->provider ? set->provider : (char *)"";
	b.project_id = (char *)project_id;
	b.sequence = sequence;
	fl_buf_init(&bundle, FL_RELEASE_FILE_MAX);
	if ((rv = fl_wire_pack_release_bundle(&b, &bundle, FL_RELEASE_FILE_MAX, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "cannot pack the bundle");
		goto out;
	}
	flotilla__v1__signed_release__init(&sr);
	sr.bundle.data = (uint8_t *)bundle.data;
	sr.bundle.len = bundle.len;
	if ((rv = fl_wire_pack_signed_release(&sr, out, FL_RELEASE_FILE_MAX, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "cannot pack the release");
		goto out;
	}
	/* What we hand out must be what verify accepts. */
	if ((rv = fl_release_inspect(out->data, out->len, &check, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "the built release does not decode");
		goto out;
	}
	memcpy(hash, check->hash, sizeof(check->hash));
out:
	if (rv != FL_OK)
		fl_buf_reset(out);
	fl_release_free(check);
	fl_buf_fini(&bundle);
	free(ptrs);
	free(pms);
	return rv;
}

enum fl_err fl_release_sign(const void *data, size_t len, const struct fl_key *key,
                            struct fl_buf *out, char *errbuf)
{
	uint8_t hash[HASH_BYTES], msg[CONTEXT_LEN + HASH_BYTES], sig[FL_KEY_SIGNATURE_BYTES];
	ReleaseSignature mine, **sigs = NULL;
	struct fl_release *r = NULL;
	SignedRelease *sr = NULL, next;
	enum fl_err rv;
	size_t i, hl;

	fl_buf_reset(out);
	if (key->kind != FL_KEY_RELEASE || key->seed == NULL)
		return fl_errf(errbuf, FL_EINVAL, "not a release key: %s key%s",
		               fl_key_kind_name(key->kind), key->seed ? "" : " without its secret");
	if ((rv = decode(data, len, NULL, 0, NULL, NULL, key->pk, &r, &sr, errbuf)) != FL_OK)
		return rv;
	if (sodium_hex2bin(hash, sizeof(hash), r->hash, FL_RELEASE_HASH_HEX_LEN, NULL, &hl, NULL) !=
	        0 ||
	    hl != HASH_BYTES)
		abort(); /* a bug: we wrote that hex ourselves */
	signing_message(hash, msg);
	fl_key_sign(key, msg, sizeof(msg), sig);

	flotilla__v1__release_signature__init(&mine);
	mine.public_key.data = (uint8_t *)key->pk;
	mine.public_key.len = FL_KEY_PUBLIC_BYTES;
	mine.signature.data = sig;
	mine.signature.len = sizeof(sig);
	sigs = fl_calloc(sr->n_signatures + 1, sizeof(*sigs));
	for (i = 0; i < sr->n_signatures; i++)
		sigs[i] = sr->signatures[i];
	sigs[i] = &mine;
	flotilla__v1__signed_release__init(&next);
	next.bundle = sr->bundle;
	next.signatures = sigs;
	next.n_signatures = sr->n_signatures + 1;
	if ((rv = fl_wire_pack_signed_release(&next, out, FL_RELEASE_FILE_MAX, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "cannot pack the release");
		goto out;
	}
out:
	free(sigs);
	fl_wire_free_signed_release(sr);
	fl_release_free(r);
	return rv;
}

/* ---- files ---- */

enum fl_err fl_release_file_read(const char *path, struct fl_buf *out, char *errbuf)
{
	return fl_file_read(path, FL_RELEASE_FILE_MAX, FL_FILE_REGULAR, out, errbuf);
}

enum fl_err fl_release_file_write(const char *path, const void *data, size_t len, char *errbuf)
{
	struct fl_buf tmp = FL_BUF_INIT;
	enum fl_err rv = FL_OK;
	char eb[128];
	int fd;

	fl_buf_printf(&tmp, "%s.tmp.XXXXXX", path);
	fd = mkstemp(tmp.data);
	if (fd < 0) {
		rv = fl_errf(errbuf, FL_EIO, "cannot create a temporary file beside '%s': %s", path,
		             fl_err_errno(errno, eb, sizeof(eb)));
		fl_buf_fini(&tmp);
		return rv;
	}
	if (fchmod(fd, 0644) != 0 || fl_file_write_all(fd, data, len) != FL_OK || fsync(fd) != 0) {
		rv = fl_errf(errbuf, FL_EIO, "cannot write '%s': %s", tmp.data,
		             fl_err_errno(errno, eb, sizeof(eb)));
		close(fd);
		goto fail;
	}
	if (close(fd) != 0) {
		rv = fl_errf(errbuf, FL_EIO, "cannot write '%s': %s", tmp.data,
		             fl_err_errno(errno, eb, sizeof(eb)));
		goto fail;
	}
	if (rename(tmp.data, path) != 0) {
		rv = fl_errf(errbuf, FL_EIO, "cannot rename '%s' to '%s': %s", tmp.data, path,
		             fl_err_errno(errno, eb, sizeof(eb)));
		goto fail;
	}
	fl_file_sync_parent(path);
	fl_buf_fini(&tmp);
	return FL_OK;
fail:
	unlink(tmp.data);
	fl_buf_fini(&tmp);
	return rv;
}
