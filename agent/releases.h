/*
 * The release cache: release files the agent fetched, by content hash, in
 * state_dir/releases/<hex hash>.release (mode 0644, written atomically), and
 * a few decoded ones in memory.
 *
 * Nothing is trusted for having been cached: a release is verified
 * (fl_release_verify: the trusted release keys, the expected hash, the
 * agent's project) before it is stored, and again whenever it is read from
 * disk; when the trusted keys change (SIGHUP), the memory cache is dropped,
 * so a release whose only signer is no longer trusted is refused from then
 * on. A file on disk that no longer verifies is left alone and reported.
 *
 * fl_releases_get fetches a release it does not have through the caller's
 * function (the pull loop's FetchRelease); one fetch per hash at a time,
 * other callers wanting the same hash wait for it.
 *
 * Ownership: a struct fl_release_ref is shared and counted; the release it
 * holds (and its migration set, which sessions borrow) lives until the last
 * fl_releases_unref. Threads: any thread (one mutex; verification and I/O
 * happen outside it).
 */
#ifndef FL_RELEASES_H
#define FL_RELEASES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "keys.h"
#include "release.h"

#define FL_RELEASES_IN_MEMORY 8

struct fl_release_ref {
	atomic_int refs;
	struct fl_release *release; /* verified */
	uint8_t hash[32];
};

struct fl_releases;

/* Fetch the release file for hash into out (replaced); errors as the
 * caller's transport gives them (FL_ENOENT: the coordinator has none). */
typedef enum fl_err (*fl_releases_fetch_fn)(void *arg, const uint8_t hash[32], struct fl_buf *out,
                                            char *errbuf);

/* A cache over the folder dir (created 0700 if missing). Errors: FL_EIO. */
enum fl_err fl_releases_open(const char *dir, struct fl_releases **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_releases_close(struct fl_releases *rs); /* NULL is a no-op */

/* What releases must verify against; drops the decoded releases in memory.
 * keys are copied. */
void fl_releases_set_trust(struct fl_releases *rs, const uint8_t (*keys)[FL_KEY_PUBLIC_BYTES],
                           size_t n, const char *project_id, size_t max_size);

/*
 * The verified release with this hash: from memory, else from disk
 * (verified again), else fetched with fetch (may be NULL: FL_ENOENT),
 * verified, stored. Errors: FL_EAUTH (not signed by a trusted key, another
 * project's, another hash than asked for), FL_EPARSE/FL_ECHECKSUM/FL_EGRAPH
 * (as fl_release_verify), FL_ENOENT (not cached and not fetched), FL_EIO,
 * or fetch's error. On success *out holds one reference.
 */
enum fl_err fl_releases_get(struct fl_releases *rs, const uint8_t hash[32],
                            fl_releases_fetch_fn fetch, void *arg, struct fl_release_ref **out,
                            char *errbuf) __attribute__((warn_unused_result));
void fl_releases_unref(struct fl_release_ref *ref); /* NULL is a no-op */

#endif
