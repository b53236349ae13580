/*
 * Signed release bundles (docs/WIRE.md, "Release bundle").
 *
 * A release file is a packed SignedRelease: the packed ReleaseBundle bytes
 * (the migration graph in apply order: ids, checksums, SQL, directives) and
 * Ed25519 signatures over "flotilla release v1\0" || SHA-256(bundle bytes).
 * The content hash is that SHA-256, in lowercase hex.
 *
 * Decoding trusts nothing in the file: sizes and counts are capped, the
 * signatures are checked before the bundle is unpacked, the bundle must be
 * in canonical form (re-packing it gives the same bytes, so one content has
 * one hash), and every migration is re-checked as the folder loader checks
 * it: id rules, UTF-8 text without NUL bytes, its checksum recomputed from
 * its SQL, its directives re-parsed from its SQL, and the graph re-sorted
 * with fl_graph_sort into exactly the bundle's order.
 *
 * Ownership: a struct fl_release is the caller's after a successful call,
 * freed with fl_release_free; on error nothing is returned. All functions
 * are thread-compatible (no shared state).
 */
#ifndef FL_RELEASE_H
#define FL_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "keys.h"
#include "migration.h"

#define FL_RELEASE_FORMAT_VERSION 1
#define FL_RELEASE_HASH_HEX_LEN   64
#define FL_RELEASE_FILE_MAX       (64u * 1024 * 1024) /* a whole release file */
#define FL_RELEASE_MIGRATIONS_MAX 100000u
#define FL_RELEASE_REQUIRES_MAX   1024u /* per migration */
#define FL_RELEASE_SIGNATURES_MAX 16u
/* What a signature signs: this context string, its NUL, then the 32 hash bytes. */
#define FL_RELEASE_SIGNING_CONTEXT "flotilla release v1"
#define FL_RELEASE_PROJECT_MAX     64 /* project ids: [A-Za-z0-9._-], 1 to 64 */

struct fl_release_signer {
	uint8_t pk[FL_KEY_PUBLIC_BYTES];
	bool valid;   /* its signature verifies */
	bool trusted; /* pk is one of the keys fl_release_verify was given */
};

struct fl_release {
	char hash[FL_RELEASE_HASH_HEX_LEN + 1]; /* content hash, lowercase hex */
	uint8_t digest[32];                     /* the same, raw */
	char *project_id;                       /* the project it belongs to */
	uint64_t sequence;                      /* grows with every release of the project, >= 1 */
	/*
	 * The migrations, in apply order, deps filled by fl_graph_sort, as
	 * fl_migration_set_load gives them, so the engine can apply them. There
	 * are no files: dir is "release:<first 16 hex digits of hash>" and each
	 * path is "<dir>/<id>", for messages.
	 */
	struct fl_migration_set set;
	struct fl_release_signer *signers; /* one per signature, in file order */
	size_t n_signers;
	/* Set by fl_release_verify only: a trusted key's signature verified,
	 * and signers[verified_by] is the first such. Apply nothing else. */
	bool verified;
	size_t verified_by;
};

/* NULL when id is a valid project id, else why not ("empty", ...). */
const char *fl_release_project_problem(const char *id);

/*
 * Pack set (as fl_migration_set_load gives it: apply order, checked) with its
 * project id and sequence number (>= 1) into a release file with no
 * signatures, replacing out's contents, and write its content hash to hash.
 * Deterministic: the same migrations, project and sequence give the same
 * bytes; no paths, no times. The result is decoded again before it is
 * returned, so a build never yields a bundle that verify would refuse.
 * Errors: FL_EINVAL (bad project id or sequence, over a cap, or out's max),
 * FL_EPARSE/FL_EGRAPH (the set would not survive decoding; a bug or a set not
 * from the loader).
 */
enum fl_err fl_release_build(const struct fl_migration_set *set, const char *project_id,
                             uint64_t sequence, struct fl_buf *out,
                             char hash[FL_RELEASE_HASH_HEX_LEN + 1], char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Add key's signature to the release file data[0..len), writing the whole
 * new file to out (replaced). key must be a release key holding its seed.
 * The release is decoded and checked first (everything but trust): nothing
 * invalid is ever signed, nor a file carrying a signature that does not
 * verify. Errors: FL_EINVAL (not a release key), FL_ESTATE (already signed
 * by this key, or the signature cap reached), FL_EAUTH (a signature in the
 * file does not verify), FL_EPARSE/FL_EGRAPH/FL_ECHECKSUM (as verify).
 */
enum fl_err fl_release_sign(const void *data, size_t len, const struct fl_key *key,
                            struct fl_buf *out, char *errbuf) __attribute__((warn_unused_result));

/*
 * Decode the release file data[0..len) and accept it only if its content
 * hash is expected_hash (32 raw bytes; NULL: any), it carries a signature by
 * one of the n_trusted keys that verifies and no signature by a trusted key
 * that does not (signatures by other keys are listed, not relied on), and
 * its project is expected_project (NULL: any). The sequence number is
 * exposed (r->sequence) for the agent to compare with its ledger. On success
 * *out is a checked, verified release.
 * Errors: FL_EAUTH (another content hash than expected; no verifying
 * signature by a trusted key: errbuf names the signers and the trusted keys
 * by key id; another project's release), FL_EPARSE (over a cap, malformed,
 * not canonical, unknown format version, bad id, text, project or sequence),
 * FL_ECHECKSUM (a checksum does not match its SQL), FL_EGRAPH (duplicate id,
 * unknown requires, cycle, not in apply order).
 */
enum fl_err fl_release_verify(const void *data, size_t len,
                              const uint8_t (*trusted)[FL_KEY_PUBLIC_BYTES], size_t n_trusted,
                              const uint8_t *expected_hash, const char *expected_project,
                              struct fl_release **out, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Decode and check the release file data[0..len) as fl_release_verify does,
 * but trusting no key: for showing a release, never for applying it
 * (verified stays false). Each signer's valid flag says whether its
 * signature verifies. Errors as fl_release_verify, without FL_EAUTH.
 */
enum fl_err fl_release_inspect(const void *data, size_t len, struct fl_release **out, char *errbuf)
    __attribute__((warn_unused_result));

/* Free a release and everything in it; NULL is a no-op. */
void fl_release_free(struct fl_release *r);

/*
 * Read a release file into out (replaced), refusing one over
 * FL_RELEASE_FILE_MAX. Errors: FL_ENOENT, FL_EIO, FL_EPARSE (too large).
 */
enum fl_err fl_release_file_read(const char *path, struct fl_buf *out, char *errbuf)
    __attribute__((warn_unused_result));
/*
 * Replace path with data[0..len) atomically: a temporary file in the same
 * folder, fsync'd, renamed over path, then the folder fsync'd. Readers see
 * the old file or the new one, never a mix. Mode 0644: releases are public.
 * Errors: FL_EIO.
 */
enum fl_err fl_release_file_write(const char *path, const void *data, size_t len, char *errbuf)
    __attribute__((warn_unused_result));

#endif
