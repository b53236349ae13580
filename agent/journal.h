/*
 * The journal: reports the agent made and the coordinator has not yet
 * acknowledged, on disk (state_dir/journal), so that none is lost while the
 * coordinator is down or the agent restarts, and none is sent as two
 * different reports.
 *
 * A report has a journal id, unique for the agent's whole life and never
 * reused: ids only grow, and a compacted journal starts with a BASE record
 * holding the highest id ever given, so ids survive the records. The
 * coordinator counts (agent, journal id) once, so a report sent twice (a
 * resend after a restart or a lost ReportAck) is harmless; a journal id
 * always stands for the same bytes.
 *
 * Records (agent/recfile.h), magic "flotilla jnl v1\n":
 *   1 REPORT  id: journal id; payload: the packed Report (journal_id set)
 *   2 ACK     id: journal id the coordinator acknowledged; no payload
 *   3 BASE    id: the highest journal id given before this file was compacted;
 *             payload: the low mark (below it every id was journaled)
 *   4 ACKED   id: a journal id above the low mark journaled and acknowledged
 *             (written by compaction)
 *
 * A report counts as made once fl_journal_put returns: its record is
 * fdatasync'd. Acknowledgements are written without a sync (losing one only
 * sends the report again). When enough acknowledged records pile up, the
 * file is compacted: BASE, then the reports still pending.
 *
 * Ids are reserved first (fl_journal_reserve) so the caller can put the id
 * inside the report, and record it elsewhere (the ledger) before the report
 * is journaled; fl_journal_put then takes that id, or an older one again
 * (a report re-sent from the ledger). Reports are not journaled in the
 * order their ids were reserved (two workers), so a crash (or a failed put)
 * can lose one whose id is below others journaled: the journal keeps a low
 * mark, below every id reserved and not journaled, and knows each id above
 * it that was journaled; fl_journal_lost says which of the ledger's reports
 * the journal never had.
 *
 * Threads: every function may be called from any thread (one mutex).
 * fl_journal_put blocks on fdatasync: call it from workers, not callbacks.
 */
#ifndef FL_JOURNAL_H
#define FL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define FL_JOURNAL_COMPACT_AFTER 128 /* acknowledged records in the file before compacting */

struct fl_journal;

/* Open (or create) the journal at path and load the pending reports. A torn
 * tail is cut with a warning. Errors: FL_EIO, FL_EPARSE (not a journal, or
 * a record that cannot be one). */
enum fl_err fl_journal_open(const char *path, struct fl_journal **out, char *errbuf)
    __attribute__((warn_unused_result));
/* Sync and close; NULL is a no-op. */
void fl_journal_close(struct fl_journal *j);

/* A new journal id, above every id given before (also before a restart). */
uint64_t fl_journal_reserve(struct fl_journal *j);
/* The highest journal id given so far (0: none). */
uint64_t fl_journal_max_id(struct fl_journal *j);
/* An id reserved whose report will never be journaled (nothing else holds
 * it): it no longer holds the low mark down. */
void fl_journal_unreserve(struct fl_journal *j, uint64_t id);
/* Every id at or below this one was journaled (pending, or acknowledged). */
uint64_t fl_journal_low(struct fl_journal *j);
/* Whether id (given by this journal) was never journaled: above the low
 * mark, with no record of it. */
bool fl_journal_lost(struct fl_journal *j, uint64_t id);

/*
 * Journal the packed report (whose journal_id is id) and fsync it; from now
 * on it is pending until acknowledged. A report already pending under id is
 * not written again (FL_OK). Errors: FL_EIO (nothing is pending then),
 * FL_EINVAL (id 0, or a payload over the cap).
 */
enum fl_err fl_journal_put(struct fl_journal *j, uint64_t id, const void *report, size_t len,
                           char *errbuf) __attribute__((warn_unused_result));

/* The coordinator stored report id: drop it (no-op for an id not pending).
 * Compacts when FL_JOURNAL_COMPACT_AFTER acknowledgements have piled up. */
enum fl_err fl_journal_ack(struct fl_journal *j, uint64_t id, char *errbuf)
    __attribute__((warn_unused_result));

/* The oldest pending report with an id above `after`: its id and a copy of
 * its bytes in out (replaced). False when there is none. */
bool fl_journal_next(struct fl_journal *j, uint64_t after, uint64_t *id, struct fl_buf *out);
/* Whether id is pending. */
bool fl_journal_pending(struct fl_journal *j, uint64_t id);
/* How many reports are pending. */
size_t fl_journal_count(struct fl_journal *j);
/* Bytes of the pending reports. */
size_t fl_journal_bytes(struct fl_journal *j);

/* Rewrite the file with only BASE and the pending reports. */
enum fl_err fl_journal_compact(struct fl_journal *j, char *errbuf)
    __attribute__((warn_unused_result));

#endif
