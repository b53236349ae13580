/*
 * proto/roles.c: the one table of who may send what, proved exhaustively.
 *
 * The expected table is written out here again, independently, as the
 * security properties it must have (an agent key runs no admin command, a
 * viewer changes nothing, a release manager manages no agents, the
 * coordinator's key sends no agent body...), and every (role, body) and
 * (role, command) pair is checked against it three ways: the table's
 * functions, fl_roles_may_send on a decoded message, and fl_wire_unpack_from
 * on the bytes a peer would send, which must refuse with FL_EAUTH before
 * decoding exactly what the table refuses.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roles.h"
#include "wire.h"

/* Every value an envelope can report for a sender, and a few it cannot. */
static const int all_roles[] = {
    FL_PEER_NONE,
    FL_PEER_COORDINATOR,
    FL_PEER_AGENT,
    FL_PEER_VIEWER,
    FL_PEER_RELEASE_MANAGER,
    FL_PEER_ADMIN,
    6,
    -1,
};
#define N_ROLES (sizeof(all_roles) / sizeof(all_roles[0]))

static bool is_operator(int role)
{
	return role == FL_PEER_VIEWER || role == FL_PEER_RELEASE_MANAGER || role == FL_PEER_ADMIN;
}

/* Who may send a body: the blueprint's direction of each message. */
static bool expect_body(int role, int body)
{
	switch (body) {
	case FLOTILLA__V1__MESSAGE__BODY_HELLO:
	case FLOTILLA__V1__MESSAGE__BODY_POLL:
	case FLOTILLA__V1__MESSAGE__BODY_REPORT:
	case FLOTILLA__V1__MESSAGE__BODY_FETCH_RELEASE:
		return role == FL_PEER_AGENT;
	case FLOTILLA__V1__MESSAGE__BODY_HELLO_REPLY:
	case FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY:
	case FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK:
	case FLOTILLA__V1__MESSAGE__BODY_RELEASE_BUNDLE_REPLY:
	case FLOTILLA__V1__MESSAGE__BODY_ERROR:
	case FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE:
		return role == FL_PEER_COORDINATOR;
	case FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST:
		return is_operator(role);
	}
	ck_abort_msg("body %d has no expectation here: add it", body);
	return false;
}

/* Commands that change nothing. */
static bool read_only(int command)
{
	switch (command) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_LIST:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PLAN:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_DRIFT:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_TENANT_SHOW:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AUDIT_QUERY:
		return true;
	}
	return false;
}

/* Commands about who may talk to the coordinator at all. */
static bool agent_management(int command)
{
	return command == FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_APPROVE ||
	       command == FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_REVOKE ||
	       command == FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ENROLLMENT_TOKEN_CREATE;
}

static bool expect_command(int role, int command)
{
	if (role == FL_PEER_VIEWER)
		return read_only(command);
	if (role == FL_PEER_RELEASE_MANAGER)
		return !agent_management(command);
	return role == FL_PEER_ADMIN; /* everything; nobody else anything */
}

/* The raw bytes of Message{body: <empty>} (reply_to_seq as given), and of
 * Message{admin_request: AdminRequest{command: <empty>}}. */
static size_t body_bytes(uint8_t *out, int body, uint64_t reply_to)
{
	size_t n = 0;

	ck_assert_int_lt(body, 16 * 8);
	if (body < 16) {
		out[n++] = (uint8_t)(body << 3 | 2);
	} else {
		out[n++] = (uint8_t)((body << 3 | 2) | 0x80);
		out[n++] = (uint8_t)(body >> 4);
	}
	out[n++] = 0;
	if (reply_to) {
		out[n++] = (uint8_t)(32 << 3 | 0) | 0x80; /* field 32: two-byte tag */
		out[n++] = 0x02;
		out[n++] = (uint8_t)reply_to; /* < 128 */
	}
	return n;
}

static size_t command_bytes(uint8_t *out, int command)
{
	size_t n = 0;

	out[n++] = (uint8_t)((FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST << 3 | 2) | 0x80);
	out[n++] = (uint8_t)(FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST >> 4);
	if (command < 16) {
		out[n++] = 2; /* the command's tag (1 byte) and length 0 */
		out[n++] = (uint8_t)(command << 3 | 2);
	} else {
		out[n++] = 3; /* the command's tag (2 bytes) and length 0 */
		out[n++] = (uint8_t)((command << 3 | 2) | 0x80);
		out[n++] = (uint8_t)(command >> 4);
	}
	out[n++] = 0;
	return n;
}

static void each_field(const ProtobufCMessageDescriptor *d, void (*fn)(int id))
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			fn((int)d->fields[i].id);
}

static size_t n_checked;

static void check_body(int body)
{
	for (size_t r = 0; r < N_ROLES; r++) {
		int role = all_roles[r];
		bool want = expect_body(role, body);
		Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back = NULL;
		char errbuf[FL_ERRBUF_SIZE] = "";
		uint8_t bytes[16];
		size_t n = body_bytes(bytes, body, fl_roles_is_reply(body) ? 7 : 0);
		enum fl_err rv;

		ck_assert_msg(fl_roles_may_send_body((enum fl_peer_role)role, body) == want,
		              "role %d, body %s: table says %d", role, fl_wire_body_name(body),
		              !want);
		m.body_case = (Flotilla__V1__Message__BodyCase)body;
		if (body != FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST)
			ck_assert(fl_roles_may_send((enum fl_peer_role)role, &m) == want);
		ck_assert_uint_eq(fl_roles_max_size((enum fl_peer_role)role, body, 0) > 0,
		                  want && body != FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST);
		rv = fl_wire_unpack_from((enum fl_peer_role)role, bytes, n, &back, errbuf);
		if (!want) {
			ck_assert_msg(rv == FL_EAUTH, "role %d sent %s: %s (%s)", role,
			              fl_wire_body_name(body), fl_strerror(rv), errbuf);
			ck_assert_ptr_null(back);
		} else {
			/* Allowed: refused for its contents maybe, never for who sent it. */
			ck_assert_msg(rv != FL_EAUTH, "role %d, body %s: %s", role,
			              fl_wire_body_name(body), errbuf);
		}
		fl_wire_free(back);
		n_checked++;
	}
}

static void check_command(int command)
{
	for (size_t r = 0; r < N_ROLES; r++) {
		int role = all_roles[r];
		bool want = expect_command(role, command);
		Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back = NULL;
		Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
		char errbuf[FL_ERRBUF_SIZE] = "";
		uint8_t bytes[16];
		size_t n = command_bytes(bytes, command);
		enum fl_err rv;

		ck_assert_msg(fl_roles_may_run((enum fl_peer_role)role, command) == want,
		              "role %d, command %s: table says %d", role,
		              fl_wire_admin_command_name(command), !want);
		m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
		m.admin_request = &req;
		req.command_case = (Flotilla__V1__AdminRequest__CommandCase)command;
		ck_assert(fl_roles_may_send((enum fl_peer_role)role, &m) == want);
		ck_assert((fl_roles_max_size((enum fl_peer_role)role,
		                             FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST,
		                             command) > 0) == want);
		rv = fl_wire_unpack_from((enum fl_peer_role)role, bytes, n, &back, errbuf);
		if (!want) {
			ck_assert_msg(rv == FL_EAUTH, "role %d ran %s: %s (%s)", role,
			              fl_wire_admin_command_name(command), fl_strerror(rv), errbuf);
			ck_assert_ptr_null(back);
		} else {
			/* Refused for its contents maybe (an empty release_push),
			 * never for who sent it. */
			ck_assert_msg(rv != FL_EAUTH, "role %d, %s: %s", role,
			              fl_wire_admin_command_name(command), errbuf);
			if (rv == FL_OK)
				ck_assert_int_eq(back->admin_request->command_case, command);
		}
		fl_wire_free(back);
		n_checked++;
	}
}

START_TEST(every_body_for_every_role)
{
	n_checked = 0;
	each_field(&flotilla__v1__message__descriptor, check_body);
	ck_assert_uint_eq(n_checked, 11 * N_ROLES);
	/* A body this build does not know, and none: nobody. */
	for (size_t r = 0; r < N_ROLES; r++) {
		ck_assert(!fl_roles_may_send_body((enum fl_peer_role)all_roles[r], 0));
		ck_assert(!fl_roles_may_send_body((enum fl_peer_role)all_roles[r], 15));
		ck_assert(!fl_roles_may_send((enum fl_peer_role)all_roles[r], NULL));
	}
}
END_TEST

START_TEST(every_command_for_every_role)
{
	n_checked = 0;
	each_field(&flotilla__v1__admin_request__descriptor, check_command);
	ck_assert_uint_eq(n_checked, 19 * N_ROLES);
	for (size_t r = 0; r < N_ROLES; r++) {
		ck_assert(!fl_roles_may_run((enum fl_peer_role)all_roles[r], 0));
		ck_assert(!fl_roles_may_run((enum fl_peer_role)all_roles[r], 99));
	}
}
END_TEST

/* The properties the trust model rests on, spelled out (each is also a
 * consequence of the exhaustive tests). */
START_TEST(what_compromised_keys_cannot_do)
{
	const ProtobufCMessageDescriptor *d = &flotilla__v1__admin_request__descriptor;
	size_t writes = 0;

	for (unsigned i = 0; i < d->n_fields; i++) {
		int c = (int)d->fields[i].id;

		if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		/* An agent key runs no admin command; neither does the coordinator's. */
		ck_assert(!fl_roles_may_run(FL_PEER_AGENT, c));
		ck_assert(!fl_roles_may_run(FL_PEER_COORDINATOR, c));
		/* A viewer changes nothing. */
		if (!read_only(c)) {
			ck_assert_msg(!fl_roles_may_run(FL_PEER_VIEWER, c), "viewer runs %s",
			              d->fields[i].name);
			writes++;
		}
	}
	ck_assert_uint_eq(writes, 11);
	/* A release manager approves, revokes and enrolls no agent. */
	ck_assert(!fl_roles_may_run(FL_PEER_RELEASE_MANAGER,
	                            FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_APPROVE));
	ck_assert(!fl_roles_may_run(FL_PEER_RELEASE_MANAGER,
	                            FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_REVOKE));
	ck_assert(!fl_roles_may_run(FL_PEER_RELEASE_MANAGER,
	                            FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ENROLLMENT_TOKEN_CREATE));
	/* The coordinator's key sends no agent body; an agent's no coordinator body. */
	ck_assert(!fl_roles_may_send_body(FL_PEER_COORDINATOR, FLOTILLA__V1__MESSAGE__BODY_HELLO));
	ck_assert(!fl_roles_may_send_body(FL_PEER_COORDINATOR, FLOTILLA__V1__MESSAGE__BODY_REPORT));
	ck_assert(!fl_roles_may_send_body(FL_PEER_AGENT, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY));
	ck_assert(
	    !fl_roles_may_send_body(FL_PEER_AGENT, FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE));
	/* Operators speak only admin_request. */
	ck_assert(!fl_roles_may_send_body(FL_PEER_ADMIN, FLOTILLA__V1__MESSAGE__BODY_HELLO));
	ck_assert(!fl_roles_may_send_body(FL_PEER_ADMIN, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY));
}
END_TEST

/* The bug this table replaced: proto Role numbered release-manager 2, the
 * peer registry numbers agent 2, and `role >= required` let an agent key run
 * release-manager commands. Now the numbers are one, and no order exists. */
START_TEST(roles_are_not_ordered)
{
	ck_assert_int_eq(fl_roles_to_proto(FL_PEER_AGENT), FLOTILLA__V1__ROLE__ROLE_AGENT);
	ck_assert_int_eq(fl_roles_to_proto(FL_PEER_RELEASE_MANAGER),
	                 FLOTILLA__V1__ROLE__ROLE_RELEASE_MANAGER);
	ck_assert_int_eq(fl_roles_to_proto(FL_PEER_ADMIN), FLOTILLA__V1__ROLE__ROLE_ADMIN);
	ck_assert_int_eq(fl_roles_to_proto(FL_PEER_NONE), FLOTILLA__V1__ROLE__ROLE_UNSPECIFIED);
	ck_assert_int_eq(fl_roles_to_proto((enum fl_peer_role)42),
	                 FLOTILLA__V1__ROLE__ROLE_UNSPECIFIED);
	/* Numerically above a viewer, yet runs none of a viewer's commands. */
	ck_assert_int_gt(FL_PEER_RELEASE_MANAGER, FL_PEER_AGENT);
	ck_assert(
	    fl_roles_may_run(FL_PEER_VIEWER, FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST));
	ck_assert(!fl_roles_may_run((enum fl_peer_role)6,
	                            FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST));
	ck_assert(
	    !fl_roles_may_run(FL_PEER_AGENT, FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START));
}
END_TEST

/* The comment above each AdminRequest command lists the roles that may run
 * it: "    // release-manager, admin.\n    RolloutStartRequest rollout_start = 21;" */
START_TEST(proto_comments_agree)
{
	const char *src = getenv("FL_SOURCE_DIR");
	char path[4096], line[512], roles[256] = "";
	bool in_request = false;
	size_t checked = 0;
	FILE *f;

	ck_assert_msg(src != NULL, "FL_SOURCE_DIR is not set (run through ctest)");
	snprintf(path, sizeof path, "%s/proto/flotilla.proto", src);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open '%s'", path);
	while (fgets(line, sizeof line, f)) {
		char type[128], name[128];
		unsigned id;

		if (strncmp(line, "message AdminRequest {", 22) == 0)
			in_request = true;
		else if (in_request && line[0] == '}')
			in_request = false;
		if (!in_request)
			continue;
		if (sscanf(line, " // %255[a-z, -].", roles) == 1)
			continue;
		if (sscanf(line, " %127s %127s = %u;", type, name, &id) == 3 &&
		    strstr(type, "Request") != NULL) {
			static const struct {
				const char *name;
				enum fl_peer_role role;
			} names[] = {{"viewer", FL_PEER_VIEWER},
			             {"release-manager", FL_PEER_RELEASE_MANAGER},
			             {"admin", FL_PEER_ADMIN}};
			char listed[256];
			size_t len = 0;

			listed[0] = '\0';
			for (size_t i = 0; i < 3; i++)
				if (fl_roles_may_run(names[i].role, (int)id))
					len += (size_t)snprintf(listed + len, sizeof listed - len,
					                        "%s%s", len ? ", " : "",
					                        names[i].name);
			ck_assert_msg(strcmp(roles, listed) == 0,
			              "%s: flotilla.proto says '%s', the table '%s'", name, roles,
			              listed);
			roles[0] = '\0';
			checked++;
		}
	}
	fclose(f);
	ck_assert_uint_eq(checked, 19);
}
END_TEST

/* Each sender's largest message, and a body over its own cap. */
START_TEST(size_caps_by_role_and_body)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back = NULL;
	Flotilla__V1__Poll poll = FLOTILLA__V1__POLL__INIT;
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_buf b = FL_BUF_INIT;
	size_t n = 20000;

	ck_assert_uint_eq(fl_roles_max_message(FL_PEER_AGENT), FL_WIRE_MAX_HELLO);
	ck_assert_uint_eq(fl_roles_max_message(FL_PEER_VIEWER), FL_WIRE_MAX_ORDER_MESSAGE);
	ck_assert_uint_eq(fl_roles_max_message(FL_PEER_RELEASE_MANAGER),
	                  FL_WIRE_MAX_RELEASE_MESSAGE);
	ck_assert_uint_eq(fl_roles_max_message(FL_PEER_ADMIN), FL_WIRE_MAX_RELEASE_MESSAGE);
	ck_assert_uint_eq(fl_roles_max_message(FL_PEER_COORDINATOR), FL_WIRE_MAX_RELEASE_MESSAGE);
	ck_assert_uint_eq(fl_roles_max_message(FL_PEER_NONE), 0);
	ck_assert_uint_eq(fl_roles_max_size(FL_PEER_AGENT, FLOTILLA__V1__MESSAGE__BODY_POLL, 0),
	                  FL_WIRE_MAX_SMALL);
	ck_assert_uint_eq(fl_roles_max_size(FL_PEER_RELEASE_MANAGER,
	                                    FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST,
	                                    FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_PUSH),
	                  FL_WIRE_MAX_RELEASE_MESSAGE);
	ck_assert_uint_eq(fl_roles_max_size(FL_PEER_VIEWER,
	                                    FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST,
	                                    FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_PUSH),
	                  0);

	/* A Poll of 20000 running ids (over 64 KiB) is refused from an agent
	 * before decoding; a smaller one passes. */
	poll.agent_id = "db-1";
	poll.running_assignment_ids = calloc(n, sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		poll.running_assignment_ids[i] = UINT64_C(1) << 40 | i;
	poll.n_running_assignment_ids = n;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	m.poll = &poll;
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_OK);
	ck_assert_uint_gt(b.len, FL_WIRE_MAX_SMALL);
	ck_assert_int_eq(
	    fl_wire_unpack_from(FL_PEER_AGENT, (uint8_t *)b.data, b.len, &back, errbuf), FL_EINVAL);
	ck_assert_msg(strstr(errbuf, "poll of") &&
	                  strstr(errbuf, "bytes exceeds the limit of 65536 for an agent"),
	              "%s", errbuf);
	poll.n_running_assignment_ids = 100;
	fl_buf_reset(&b);
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_OK);
	ck_assert_int_eq(
	    fl_wire_unpack_from(FL_PEER_AGENT, (uint8_t *)b.data, b.len, &back, errbuf), FL_OK);
	ck_assert_uint_eq(back->poll->n_running_assignment_ids, 100);
	fl_wire_free(back);

	/* Past the role's largest message: refused unread. */
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_AGENT, (uint8_t *)b.data,
	                                     FL_WIRE_MAX_HELLO + 1, &back, errbuf),
	                 FL_EINVAL);
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_NONE, (uint8_t *)b.data, b.len, &back, errbuf),
	                 FL_EAUTH);
	ck_assert_ptr_null(back);
	free(poll.running_assignment_ids);
	fl_buf_fini(&b);
}
END_TEST

/* A varint into out, returning its length. */
static size_t put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

/* An admin_request whose command this build does not know (a newer CLI's, or
 * a forged one) is refused before protobuf-c decodes it, like an unknown
 * body: it has no row in the table, so no size cap of its own applies, and
 * decoding it would copy up to the sender's largest message for nothing. */
START_TEST(unknown_command_refused_unread)
{
	static const int senders[] = {FL_PEER_VIEWER, FL_PEER_RELEASE_MANAGER, FL_PEER_ADMIN};
	Flotilla__V1__Message *back = NULL;
	struct fl_wire_stats st;
	char errbuf[FL_ERRBUF_SIZE] = "";
	size_t payload = 500000, inner_len, n = 0;
	uint8_t *bytes = calloc(1, payload + 32), hdr[16];

	/* AdminRequest{request_id: 7, field 99: <payload>} */
	inner_len = 2 + put_varint(hdr, 99 << 3 | 2) + put_varint(hdr, payload) + payload;
	n += put_varint(bytes + n, FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST << 3 | 2);
	n += put_varint(bytes + n, inner_len);
	bytes[n++] = 1 << 3 | 0;
	bytes[n++] = 7;
	n += put_varint(bytes + n, 99 << 3 | 2);
	n += put_varint(bytes + n, payload);
	memset(bytes + n, 'x', payload);
	n += payload;
	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		ck_assert_int_eq(
		    fl_wire_unpack_from((enum fl_peer_role)senders[i], bytes, n, &back, errbuf),
		    FL_EPARSE);
		ck_assert_ptr_null(back);
		ck_assert_msg(strstr(errbuf, "admin_request: no command this build knows") != NULL,
		              "%s", errbuf);
		fl_wire_last_stats(&st);
		ck_assert_uint_eq(st.allocated, 0);
	}
	free(bytes);
}
END_TEST

/* Requests carry reply_to_seq 0, replies the request's sequence number. */
START_TEST(requests_and_replies_numbered)
{
	Flotilla__V1__Message *back = NULL;
	char errbuf[FL_ERRBUF_SIZE] = "";
	uint8_t bytes[16];
	size_t n;

	n = body_bytes(bytes, FLOTILLA__V1__MESSAGE__BODY_POLL, 0);
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_AGENT, bytes, n, &back, errbuf), FL_OK);
	fl_wire_free(back);
	n = body_bytes(bytes, FLOTILLA__V1__MESSAGE__BODY_POLL, 9);
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_AGENT, bytes, n, &back, errbuf), FL_EPARSE);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.Message: reply_to_seq set in a poll");
	ck_assert_ptr_null(back);
	n = body_bytes(bytes, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY, 0);
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_COORDINATOR, bytes, n, &back, errbuf),
	                 FL_EPARSE);
	ck_assert_str_eq(errbuf,
	                 "invalid flotilla.v1.Message: reply_to_seq missing in a poll_reply");
	n = body_bytes(bytes, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY, 9);
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_COORDINATOR, bytes, n, &back, errbuf), FL_OK);
	ck_assert_uint_eq(back->reply_to_seq, 9);
	fl_wire_free(back);
	for (int body = 1; body <= 17; body++)
		ck_assert(fl_roles_is_reply(body) ==
		          (fl_roles_may_send_body(FL_PEER_COORDINATOR, body)));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("roles");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, every_body_for_every_role);
	tcase_add_test(tc, every_command_for_every_role);
	tcase_add_test(tc, what_compromised_keys_cannot_do);
	tcase_add_test(tc, roles_are_not_ordered);
	tcase_add_test(tc, proto_comments_agree);
	tcase_add_test(tc, size_caps_by_role_and_body);
	tcase_add_test(tc, requests_and_replies_numbered);
	tcase_add_test(tc, unknown_command_refused_unread);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
