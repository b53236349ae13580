/*
 * Who may send what: the one table of which Message bodies each kind of
 * sender (coordinator, agent, viewer, release-manager, admin) may send, which
 * admin commands each operator role may run, and how large each may be.
 * docs/WIRE.md, "Roles", shows the same table.
 *
 * Roles are not ordered. Nothing in flotilla compares role values (`role >=
 * required` once let an agent key, whose number happened to be higher, run
 * release-manager commands): every question is answered by a lookup in the
 * table, and a role or body the table does not name is refused.
 *
 * Requests and replies: hello, poll, report, fetch_release and admin_request
 * are requests (Message.reply_to_seq 0); every body the coordinator sends is
 * a reply to one (reply_to_seq names the request's envelope sequence number).
 *
 * Pure functions over constant tables: any thread, no state.
 */
#ifndef FL_ROLES_H
#define FL_ROLES_H

#include <stdbool.h>
#include <stddef.h>

#include "flotilla.pb-c.h"
#include "peers.h"

/* Whether `sender` may send a Message whose body case is body_case. For
 * admin_request, also see fl_roles_may_run: the body alone says nothing of
 * the command. Unknown roles and bodies: false. */
bool fl_roles_may_send_body(enum fl_peer_role sender, int body_case);

/* Whether operator role `role` may run the AdminRequest command command_case.
 * Only viewer, release-manager and admin run commands; anything else: false. */
bool fl_roles_may_run(enum fl_peer_role role, int command_case);

/* Both checks for a decoded message: its body, and for admin_request its
 * command. False for NULL. */
bool fl_roles_may_send(enum fl_peer_role sender, const Flotilla__V1__Message *m);

/* Whether a body is a reply (sent by the coordinator in answer to a request,
 * reply_to_seq set) rather than a request (reply_to_seq 0). */
bool fl_roles_is_reply(int body_case);

/* The largest packed Message of this body (and, for admin_request, this
 * command; ignored otherwise) that `sender` may send; 0 when it may not send
 * it at all. */
size_t fl_roles_max_size(enum fl_peer_role sender, int body_case, int command_case);

/* The largest packed Message `sender` may send at all (the largest of its
 * bodies); 0 for a role that may send nothing. Envelopes from a sender are
 * refused as oversize past this plus FL_ENVELOPE_OVERHEAD, before they are
 * decrypted. */
size_t fl_roles_max_message(enum fl_peer_role sender);

/* The wire's Role value of a peer role: the same number (asserted). */
Flotilla__V1__Role fl_roles_to_proto(enum fl_peer_role role);

#endif
