/*
 * The role table (roles.h). Two constant tables: one row per Message body,
 * one per AdminRequest command, each with the set of roles allowed (a bit
 * per role) and a size cap. Every question is a lookup; a body or command
 * missing from a table is refused for everyone, and tests walk the
 * descriptors to prove each one has a row.
 */
#include "roles.h"

#include "wire.h"

#define R(role)   (1u << (role))
#define OPERATORS (R(FL_PEER_VIEWER) | R(FL_PEER_RELEASE_MANAGER) | R(FL_PEER_ADMIN))
#define MANAGERS  (R(FL_PEER_RELEASE_MANAGER) | R(FL_PEER_ADMIN))

_Static_assert((int)FLOTILLA__V1__ROLE__ROLE_UNSPECIFIED == (int)FL_PEER_NONE &&
                   (int)FLOTILLA__V1__ROLE__ROLE_COORDINATOR == (int)FL_PEER_COORDINATOR &&
                   (int)FLOTILLA__V1__ROLE__ROLE_AGENT == (int)FL_PEER_AGENT &&
                   (int)FLOTILLA__V1__ROLE__ROLE_VIEWER == (int)FL_PEER_VIEWER &&
                   (int)FLOTILLA__V1__ROLE__ROLE_RELEASE_MANAGER == (int)FL_PEER_RELEASE_MANAGER &&
                   (int)FLOTILLA__V1__ROLE__ROLE_ADMIN == (int)FL_PEER_ADMIN,
               "proto Role and enum fl_peer_role number roles alike");

struct body_row {
	Flotilla__V1__Message__BodyCase body;
	unsigned senders;
	bool reply;
	size_t max; /* the whole packed Message; admin_request: see commands */
};

static const struct body_row bodies[] = {
    {FLOTILLA__V1__MESSAGE__BODY_HELLO, R(FL_PEER_AGENT), false, FL_WIRE_MAX_HELLO},
    {FLOTILLA__V1__MESSAGE__BODY_POLL, R(FL_PEER_AGENT), false, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__MESSAGE__BODY_REPORT, R(FL_PEER_AGENT), false, FL_WIRE_MAX_REPORT},
    {FLOTILLA__V1__MESSAGE__BODY_FETCH_RELEASE, R(FL_PEER_AGENT), false, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__MESSAGE__BODY_HELLO_REPLY, R(FL_PEER_COORDINATOR), true, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY, R(FL_PEER_COORDINATOR), true, FL_WIRE_MAX_POLL_REPLY},
    {FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK, R(FL_PEER_COORDINATOR), true, FL_WIRE_MAX_REPORT_ACK},
    {FLOTILLA__V1__MESSAGE__BODY_RELEASE_BUNDLE_REPLY, R(FL_PEER_COORDINATOR), true,
     FL_WIRE_MAX_RELEASE_MESSAGE},
    {FLOTILLA__V1__MESSAGE__BODY_ERROR, R(FL_PEER_COORDINATOR), true, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST, OPERATORS, false, 0},
    {FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE, R(FL_PEER_COORDINATOR), true,
     FL_WIRE_MAX_ADMIN_RESPONSE},
};

struct command_row {
	Flotilla__V1__AdminRequest__CommandCase command;
	unsigned roles;
	size_t max;
};

/* Viewers read; release managers also push releases and drive rollouts;
 * admins also manage agents and enrollment. */
static const struct command_row commands[] = {
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_PUSH, MANAGERS, FL_WIRE_MAX_RELEASE_MESSAGE},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_LIST, OPERATORS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PLAN, OPERATORS, FL_WIRE_MAX_ORDER_MESSAGE},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START, MANAGERS, FL_WIRE_MAX_ORDER_MESSAGE},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS, OPERATORS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PAUSE, MANAGERS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RESUME, MANAGERS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PROMOTE, MANAGERS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_HALT, MANAGERS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_ROLLBACK, MANAGERS, FL_WIRE_MAX_ORDER_MESSAGE},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RETRY, MANAGERS, FL_WIRE_MAX_MESSAGE},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS, OPERATORS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_DRIFT, OPERATORS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_TENANT_SHOW, OPERATORS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST, OPERATORS, FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_APPROVE, R(FL_PEER_ADMIN), FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_REVOKE, R(FL_PEER_ADMIN), FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ENROLLMENT_TOKEN_CREATE, R(FL_PEER_ADMIN),
     FL_WIRE_MAX_SMALL},
    {FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AUDIT_QUERY, OPERATORS, FL_WIRE_MAX_SMALL},
};

#define N_BODIES   (sizeof(bodies) / sizeof(bodies[0]))
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* A role's bit, 0 for anything that is no role (so it matches no set). */
static unsigned bit(enum fl_peer_role role)
{
	switch (role) {
	case FL_PEER_COORDINATOR:
	case FL_PEER_AGENT:
	case FL_PEER_VIEWER:
	case FL_PEER_RELEASE_MANAGER:
	case FL_PEER_ADMIN:
		return R(role);
	case FL_PEER_NONE:
		break;
	}
	return 0;
}

static const struct body_row *body_row(int body_case)
{
	for (size_t i = 0; i < N_BODIES; i++)
		if ((int)bodies[i].body == body_case)
			return &bodies[i];
	return NULL;
}

static const struct command_row *command_row(int command_case)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if ((int)commands[i].command == command_case)
			return &commands[i];
	return NULL;
}

bool fl_roles_may_send_body(enum fl_peer_role sender, int body_case)
{
	const struct body_row *b = body_row(body_case);

	return b != NULL && (b->senders & bit(sender)) != 0;
}

bool fl_roles_may_run(enum fl_peer_role role, int command_case)
{
	const struct command_row *c = command_row(command_case);

	return fl_roles_may_send_body(role, FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST) &&
	       c != NULL && (c->roles & bit(role)) != 0;
}

bool fl_roles_may_send(enum fl_peer_role sender, const Flotilla__V1__Message *m)
{
	if (m == NULL || !fl_roles_may_send_body(sender, (int)m->body_case))
		return false;
	if (m->body_case != FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST)
		return true;
	return m->admin_request != NULL &&
	       fl_roles_may_run(sender, (int)m->admin_request->command_case);
}

bool fl_roles_is_reply(int body_case)
{
	const struct body_row *b = body_row(body_case);

	return b != NULL && b->reply;
}

size_t fl_roles_max_size(enum fl_peer_role sender, int body_case, int command_case)
{
	const struct body_row *b = body_row(body_case);
	const struct command_row *c;

	if (!fl_roles_may_send_body(sender, body_case))
		return 0;
	if (b->body != FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST)
		return b->max;
	c = command_row(command_case);
	return c != NULL && (c->roles & bit(sender)) ? c->max : 0;
}

size_t fl_roles_max_message(enum fl_peer_role sender)
{
	size_t max = 0;

	for (size_t i = 0; i < N_BODIES; i++) {
		if (!(bodies[i].senders & bit(sender)))
			continue;
		if (bodies[i].body != FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST) {
			if (bodies[i].max > max)
				max = bodies[i].max;
			continue;
		}
		for (size_t j = 0; j < N_COMMANDS; j++)
			if ((commands[j].roles & bit(sender)) && commands[j].max > max)
				max = commands[j].max;
	}
	return max;
}

Flotilla__V1__Role fl_roles_to_proto(enum fl_peer_role role)
{
	return bit(role) ? (Flotilla__V1__Role)role : FLOTILLA__V1__ROLE__ROLE_UNSPECIFIED;
}
