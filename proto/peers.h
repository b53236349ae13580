/*
 * Whom we talk to.
 *
 * struct fl_peers is the registry of senders we accept: public key, role,
 * name, revoked flag, the crypto_box shared key (beforenm, computed once when
 * the peer is added, kept in sodium_malloc memory that is read-only between
 * changes), the sequence numbers accepted from the peer (its replay window,
 * below) and the last one sent to it. Optionally it is backed by `peers.seq`
 * (docs/WIRE.md), a file of fixed-size records that keeps the highest
 * sequence number accepted from each sender, and each revocation, across
 * restarts:
 *
 *   header  64  "flotilla seq v1\n", record size (u32 BE, 64), zeros,
 *               BLAKE2b-128 of bytes 0..47
 *   record  64  public key 32, last seq (u64 BE), flags (u32 BE: bit 0 in
 *               use, bit 1 revoked), 4 zero bytes, BLAKE2b-128 of bytes 0..47
 *
 * A record is rewritten in place with one pwrite of 64 aligned bytes (never
 * straddling a disk sector) on each message that raises the sender's highest
 * number; fsync happens only in fl_peers_sync() and fl_peers_free(). The
 * file is locked (fcntl) so that two processes never accept from one
 * sequence store.
 *
 * The replay window. One sender may have several messages in flight at once
 * (an agent's long poll on one socket and its reports on another; replies to
 * both; several threads of a CLI), and the receiver opens them on parallel
 * threads, so they may be opened out of the order they were sealed in. Our
 * numbers are sparse (max(last sent + 1, now in microseconds)), so the
 * IPsec/DTLS bitmap, which needs consecutive numbers, does not fit; instead
 * each sender has, in memory:
 *
 *   - seen: the FL_PEERS_REPLAY_WINDOW (32) highest numbers accepted from it
 *     since the floor, sorted;
 *   - floor: the highest number forgotten (the lowest of seen, pushed out by
 *     a higher one), or, when the registry was opened, the highest number in
 *     peers.seq (so the window starts empty after a restart).
 *
 * A number is accepted if it is above the floor and not in seen. No number
 * accepted before is (each is in seen or at or below the floor); a message
 * overtaken by at most 32 later ones from the same sender is. One overtaken
 * by more is refused as a replay (the sender seals it again).
 * peers.seq keeps only the highest number, so after a restart nothing at or
 * below it opens again, whether it was accepted or only overtaken.
 *
 * Why 32: a message is overtaken only by others of its sender that were in
 * flight at the same time, and 32 is twice what the coordinator can be
 * opening at once (its 16 receiving contexts, coordinator/rep.h), far more
 * than an agent (two sockets, a call each) or an operator's CLI has out; yet
 * small enough that scanning it costs nothing next to the signature check
 * (and an in-order number, above all seen, needs no scan at all).
 * Memory: 32 numbers of 8 bytes and the floor, 256 bytes more per peer (the
 * floor fits in what was padding: an entry is 408 bytes instead of 152); a
 * registry of 10000 peers, 2.6 MB more; at the 65536 cap, 16 MiB.
 *
 * Invariants: a key is in the registry at most once; revocation is permanent
 * for a key (recorded in peers.seq, so a stale config re-adding the key
 * later is refused); a sender's highest accepted number and its floor never
 * decrease; no number is accepted twice from one sender, even across
 * restarts (as long as peers.seq is kept).
 *
 * Threads: every function may be called from any thread; one mutex guards the
 * registry and is never held across signature or decryption work.
 */
#ifndef FL_PEERS_H
#define FL_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "identity.h"

#define FL_PEER_NAME_MAX     64    /* [A-Za-z0-9._@:+-], 1 to 64 characters */
#define FL_PEERS_MAX_DEFAULT 65536 /* peers (and peers.seq records) per registry */
/* Sequence numbers remembered per sender above its floor (see above). */
#define FL_PEERS_REPLAY_WINDOW 32

/* fl_peers_new flags. */
#define FL_PEERS_MUST_EXIST 1u /* seq_path must exist (see fl_peers_new) */

/* Wall-clock time in microseconds since the Unix epoch; tests inject one
 * (fl_envelope_set_clock). */
typedef int64_t (*fl_wallclock_fn)(void *arg);
int64_t fl_wallclock_us(void *unused); /* CLOCK_REALTIME, the default */

/* ---- the registry ---- */

/* Stable values: stored by the coordinator and shown by the CLI. */
enum fl_peer_role {
	FL_PEER_NONE = 0, /* not a peer: a peers.seq record whose key was never added */
	FL_PEER_COORDINATOR = 1,
	FL_PEER_AGENT = 2,
	FL_PEER_VIEWER = 3,
	FL_PEER_RELEASE_MANAGER = 4,
	FL_PEER_ADMIN = 5,
};

/* "coordinator", "agent", "viewer", "release-manager", "admin"; "none". */
const char *fl_peer_role_name(enum fl_peer_role role);
/* The reverse; FL_EINVAL (with the accepted names in errbuf) for anything else. */
enum fl_err fl_peer_role_parse(const char *name, enum fl_peer_role *role, char *errbuf)
    __attribute__((warn_unused_result));

/* Whether name is a valid peer name ([A-Za-z0-9._@:+-], 1 to 64). */
bool fl_peer_name_valid(const char *name);

/* A copy of a peer's public facts; never its shared key. */
struct fl_peer_info {
	uint8_t pk[FL_PEER_KEY_LEN];
	char id[FL_PEER_ID_LEN + 1];
	char name[FL_PEER_NAME_MAX + 1];
	enum fl_peer_role role;
	bool revoked;
	uint64_t last_seq; /* highest sequence number accepted from this peer, 0 if none */
};

struct fl_peers;

/*
 * A registry for identity `self` (which must outlive it), holding at most
 * max_peers keys (0: FL_PEERS_MAX_DEFAULT; records loaded from peers.seq
 * count too). seq_path NULL keeps sequence numbers in memory only; otherwise
 * the file is opened or created (0600), locked, then validated and loaded.
 * With FL_PEERS_MUST_EXIST, set by a daemon whose state shows it ran before,
 * the file is never created: a missing (or empty) peers.seq is refused
 * rather than silently started over, which would accept replays of every
 * message still inside the skew window.
 * Errors: FL_ENOENT (missing with FL_PEERS_MUST_EXIST), FL_EIO (cannot open,
 * read, create or lock the file; it is writable by group or others, or not
 * ours), FL_EPARSE (wrong size, header or record checksum, duplicate key,
 * too many records), each naming the file in errbuf; FL_EINVAL for bad
 * arguments.
 */
enum fl_err fl_peers_new(const struct fl_identity *self, const char *seq_path, size_t max_peers,
                         unsigned flags, struct fl_peers **out, char *errbuf)
    __attribute__((warn_unused_result));
/* fsync peers.seq, close it, wipe every shared key, free; NULL is a no-op.
 * An fsync failure is logged. */
void fl_peers_free(struct fl_peers *p);
const struct fl_identity *fl_peers_identity(const struct fl_peers *p);

/*
 * Approve a key with a role and a name, or change the role and name of a
 * key already approved; its replay window is kept. Computes the shared
 * key. Errors: FL_EINVAL (not a usable Ed25519 public key, our own key, bad
 * role or name), FL_ESTATE (the key was revoked), FL_ENOTSUP (registry full),
 * FL_EIO (peers.seq write failed).
 */
enum fl_err fl_peers_add(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                         enum fl_peer_role role, const char *name, char *errbuf)
    __attribute__((warn_unused_result));
/*
 * Revoke a key, known or not: from now on its messages are refused whatever
 * their signature, sealing to it fails, and its shared key is wiped. Permanent
 * for the key (recorded in peers.seq). Errors: FL_ENOTSUP (registry full),
 * FL_EIO (peers.seq write failed; the key is still revoked in memory).
 */
enum fl_err fl_peers_revoke(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN], char *errbuf)
    __attribute__((warn_unused_result));
/* FL_OK with a copy of the peer's facts (approved or revoked), or FL_ENOENT
 * for a key neither approved nor revoked. */
enum fl_err fl_peers_find(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                          struct fl_peer_info *info);
/* Keys in the registry (added, revoked or only loaded from peers.seq), and
 * the i-th of them in insertion order, for listings. */
size_t fl_peers_count(struct fl_peers *p);
enum fl_err fl_peers_get(struct fl_peers *p, size_t i, struct fl_peer_info *info);

/* fsync peers.seq (a no-op without it). Blocks: call from a timer on a worker
 * thread, never from the network thread. Errors: FL_EIO. */
enum fl_err fl_peers_sync(struct fl_peers *p, char *errbuf) __attribute__((warn_unused_result));

/*
 * Approve agent_pk as a new agent named `name` after an enrollment (proto/
 * enroll.h: the caller verified and consumed its token), accepting seq, the
 * sequence number of the enrollment envelope, as its last: the same envelope,
 * and any number below it, is a replay from now on. Errors: FL_ESTATE (the
 * key is approved already, or revoked), then as fl_peers_add.
 */
enum fl_err fl_peers_enroll(struct fl_peers *p, const uint8_t agent_pk[FL_PEER_KEY_LEN],
                            const char *name, uint64_t seq, char *errbuf)
    __attribute__((warn_unused_result));

/* For tests only: fn(arg) runs inside every later fl_peers_new between
 * opening peers.seq and locking it (NULL: none). */
void fl_peers_test_hook_before_lock(void (*fn)(void *), void *arg);

/* ---- for envelope.c: the per-message steps, each under the registry lock ---- */

enum fl_peer_check {
	FL_PEER_OK = 0,
	FL_PEER_UNKNOWN, /* never added (or only loaded from peers.seq) */
	FL_PEER_REVOKED,
	FL_PEER_REPLAY, /* seq at or below the floor, or accepted already */
	FL_PEER_SKEW,   /* the caller's timestamp check failed */
	FL_PEER_STORE,  /* peers.seq could not be written: refuse, fail closed */
};

/* Before decrypting: is pk a live peer? If so copy its shared key (the caller
 * wipes it) and its facts. */
enum fl_peer_check fl_peers_recv_begin(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                                       uint8_t key[32], struct fl_peer_info *info)
    __attribute__((warn_unused_result));
/* After the signature verified: in this order, revoked since begin? seq
 * at or below the sender's floor, or accepted already (the replay window)?
 * in_skew (the caller's timestamp check) false? Otherwise remember seq (in
 * memory; then, if it is the sender's highest, in peers.seq) and accept.
 * *last and *floor get the sender's highest accepted number and its floor
 * as they were before this call, for the refusal's message. */
enum fl_peer_check fl_peers_recv_commit(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                                        uint64_t seq, bool in_skew, uint64_t *last, uint64_t *floor)
    __attribute__((warn_unused_result));
/* Sealing: copy the shared key of live peer pk and take the next sequence
 * number, max(last sent + 1, now_us). Errors: FL_ENOENT (not a peer),
 * FL_ESTATE (revoked), FL_EINVAL (sequence numbers exhausted). */
enum fl_err fl_peers_send_begin(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                                int64_t now_us, uint8_t key[32], uint64_t *seq, char *errbuf)
    __attribute__((warn_unused_result));

#endif
