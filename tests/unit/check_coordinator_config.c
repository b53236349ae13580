/*
 * flotilla-coordinator's config table (coordinator/coordinator_config.h):
 * defaults, operators and agents as lists of mappings, the rules across
 * them, errors naming file:line, and what a reload may change. The docs
 * and example checks live in check_config.c with every other table.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator_config.h"
#include "log.h"
#include "testutil.h"

#define K1 "gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q="
#define K2 "2kYrXZm0jjhE8ue+BO23TV+Mkq4iyHvEFCb6O2zGVlc="
#define K3 "mlbX5VGpP8Ozp1iZ8kePdCmbwQay5gt3RzFvBYixHO4="

static char err[FL_ERRBUF_SIZE];

static enum fl_err load(const char *text, struct fl_coordinator_config *c)
{
	err[0] = '\0';
	return fl_config_load_buffer(text, strlen(text), "c.yaml", fl_coordinator_config_table, c,
	                             err);
}

START_TEST(defaults)
{
	struct fl_coordinator_config c;

	ck_assert_msg(load("key_file: c.key\nproject_id: acme\n", &c) == FL_OK, "%s", err);
	ck_assert_str_eq(c.project_id, "acme");
	ck_assert_str_eq(c.agent_listen, FL_COORDINATOR_DEFAULT_AGENT_LISTEN);
	ck_assert_str_eq(c.admin_listen, FL_COORDINATOR_DEFAULT_ADMIN_LISTEN);
	ck_assert_str_eq(c.store, "coordinator.db");
	ck_assert_int_eq(c.poll_hold_ms, 25000);
	ck_assert_int_eq(c.agent_offline_after_ms, 90000);
	ck_assert_int_eq(c.enrollment_token_ttl_ms, 24 * 3600 * 1000);
	ck_assert_int_eq(c.max_held_polls, 20000);
	ck_assert_int_eq(c.enroll_rate, 5);
	ck_assert_int_eq(c.list_limit, 500);
	ck_assert_uint_eq(c.operators.n, 0);
	ck_assert_uint_eq(c.agents.n, 0);
	fl_coordinator_config_fini(&c);
	/* project_id is required */
	ck_assert_int_eq(load("key_file: c.key\n", &c), FL_EPARSE);
	ck_assert_msg(strstr(err, "project_id") != NULL, "%s", err);
}
END_TEST

START_TEST(operators_and_agents)
{
	struct fl_coordinator_config c;
	const struct fl_coordinator_operator *ops;
	const struct fl_coordinator_agent *ags;
	uint8_t pk[32];

	ck_assert_msg(load("key_file: c.key\n"
	                   "project_id: acme\n"
	                   "operators:\n"
	                   "  - {name: alice, public_key: \"" K1 "\", role: admin}\n"
	                   "  - name: ci\n"
	                   "    public_key: \"" K2 "\"\n"
	                   "    role: release-manager\n"
	                   "agents:\n"
	                   "  - {name: db-eu-1, public_key: \"" K3 "\", labels: {region: eu}}\n"
	                   "poll_hold: 10s\n",
	                   &c) == FL_OK,
	              "%s", err);
	ops = c.operators.items;
	ags = c.agents.items;
	ck_assert_uint_eq(c.operators.n, 2);
	ck_assert_str_eq(ops[0].name, "alice");
	ck_assert_int_eq(ops[0].role, FL_COORDINATOR_ADMIN);
	ck_assert_int_eq(fl_coordinator_role_to_peer(ops[1].role), FL_PEER_RELEASE_MANAGER);
	ck_assert_uint_eq(c.agents.n, 1);
	ck_assert_str_eq(fl_labels_get(&ags[0].labels, "region"), "eu");
	ck_assert_int_eq(c.poll_hold_ms, 10000);
	memcpy(pk, ops[1].public_key.key, 32);
	ck_assert_ptr_eq(fl_coordinator_config_operator(&c, pk), &ops[1]);
	memcpy(pk, ags[0].public_key.key, 32);
	ck_assert_ptr_null(fl_coordinator_config_operator(&c, pk));
	fl_coordinator_config_fini(&c);
}
END_TEST

START_TEST(listen_from_coordinator_url)
{
	struct fl_coordinator_config c;

	ck_assert_msg(
	    load("key_file: c.key\nproject_id: acme\ncoordinator_url: tcp://10.0.0.1:9000\n", &c) ==
	        FL_OK,
	    "%s", err);
	ck_assert_str_eq(c.agent_listen, "tcp://10.0.0.1:9000");
	fl_coordinator_config_fini(&c);
	ck_assert_msg(load("key_file: c.key\nproject_id: acme\ncoordinator_url: tcp://a:1\n"
	                   "agent_listen: tcp://0.0.0.0:7400\n",
	                   &c) == FL_OK,
	              "%s", err);
	ck_assert_str_eq(c.agent_listen, "tcp://0.0.0.0:7400");
	fl_coordinator_config_fini(&c);
	ck_assert_int_eq(load("key_file: c.key\nproject_id: acme\nagent_listen: tcp://127.0.0.1:1\n"
	                      "admin_listen: tcp://127.0.0.1:1\n",
	                      &c),
	                 FL_EPARSE);
	ck_assert_msg(strstr(err, "'c.yaml':4:") && strstr(err, "admin_listen"), "%s", err);
}
END_TEST

/* Every refusal names the file, the line and the key. */
static const struct {
	const char *text, *want;
} bad[] = {
    {"key_file: k\nproject_id: acme\noperators:\n  - {name: a, public_key: \"" K1
     "\", role: root}\n",
     "'c.yaml':4:"},
    {"key_file: k\nproject_id: acme\noperators:\n  - {name: a b, public_key: \"" K1
     "\", role: admin}\n",
     "'c.yaml':4:"},
    {"key_file: k\nproject_id: acme\noperators:\n  - {name: a, public_key: \"" K1
     "\", role: admin}\n  - {name: b, public_key: \"" K1 "\", role: viewer}\n",
     "has the key of operators[0]"},
    {"key_file: k\nproject_id: acme\noperators:\n  - {name: a, public_key: \"" K1
     "\", role: admin}\nagents:\n  - {name: x, public_key: \"" K1 "\"}\n",
     "agents[0] has the key of operators[0]"},
    {"key_file: k\nproject_id: acme\nagents:\n  - {name: x, public_key: \"" K1
     "\"}\n  - {name: x, public_key: \"" K2 "\"}\n",
     "has the name of agents[0]"},
    {"key_file: k\nproject_id: acme\npoll_hold: 10m\n", "'c.yaml':3:"},
    {"key_file: k\nproject_id: \"a b\"\n", "'c.yaml':2:"},
    {"key_file: k\nproject_id: acme\nagent_listen: localhost\n", "'c.yaml':3:"},
    {"key_file: k\nproject_id: acme\npoll_hold_ms: 5s\n", "unknown key 'poll_hold_ms'"},
    {"key_file: k\nproject_id: acme\nwebhooks:\n  - {url: \"https://h/x\", secret_file: s}\n",
     "'c.yaml':4:"},
    {"key_file: k\nproject_id: acme\nwebhooks:\n  - {url: \"http://h/x'\", secret_file: s}\n",
     "no spaces, quotes or control characters"},
    {"key_file: k\nproject_id: acme\nwebhooks:\n  - {url: \"http://h/x\", secret_file: s,\n"
     "     events: [started, halt]}\n",
     "unknown event 'halt'"},
    {"key_file: k\nproject_id: acme\nwebhooks:\n  - {url: \"http://h/x\"}\n", "secret_file"},
};

START_TEST(refusals_name_the_line)
{
	struct fl_coordinator_config c;

	ck_assert_int_eq(load(bad[_i].text, &c), FL_EPARSE);
	ck_assert_msg(strstr(err, bad[_i].want) != NULL, "case %d: '%s' lacks '%s'", _i, err,
	              bad[_i].want);
}
END_TEST

/* webhooks: defaults, and every event when none are listed */
START_TEST(webhooks)
{
	struct fl_coordinator_config c;
	const struct fl_coordinator_webhook *w;

	ck_assert_msg(load("key_file: c.key\nproject_id: acme\nwebhooks:\n"
	                   "  - {url: \"http://127.0.0.1:8080/h\", secret_file: /s}\n"
	                   "  - {url: \"http://[::1]/h\", secret_file: /s, events: [halted],\n"
	                   "     attempts: 3, timeout: 2s}\n",
	                   &c) == FL_OK,
	              "%s", err);
	ck_assert_uint_eq(c.webhooks.n, 2);
	w = c.webhooks.items;
	ck_assert_str_eq(w[0].url, "http://127.0.0.1:8080/h");
	ck_assert_int_eq(w[0].attempts, 8);
	ck_assert_int_eq(w[0].timeout_ms, 10000);
	ck_assert_uint_eq(w[0].events.n, 0);
	ck_assert_uint_eq(w[1].events.n, 1);
	ck_assert_int_eq(w[1].attempts, 3);
	ck_assert_int_eq(w[1].timeout_ms, 2000);
	fl_coordinator_config_fini(&c);
}
END_TEST

START_TEST(reload_rules)
{
	struct fl_coordinator_config a, b;
	static const char base[] = "key_file: c.key\nproject_id: acme\nstore: /var/lib/c.db\n";

	ck_assert(load(base, &a) == FL_OK);
	/* operators, agents, timeouts may change */
	ck_assert_msg(load("key_file: c.key\nproject_id: acme\nstore: /var/lib/c.db\n"
	                   "operators:\n  - {name: a, public_key: \"" K1 "\", role: viewer}\n"
	                   "agents:\n  - {name: x, public_key: \"" K2 "\"}\n"
	                   "poll_hold: 5s\nagent_offline_after: 30s\n"
	                   "trusted_release_keys: [\"" K3 "\"]\n",
	                   &b) == FL_OK,
	              "%s", err);
	ck_assert_msg(fl_config_check_reload(fl_coordinator_config_table, &a, &b, err) == FL_OK,
	              "%s", err);
	fl_coordinator_config_fini(&b);
	/* the store, the project and the addresses may not */
	ck_assert(load("key_file: c.key\nproject_id: acme\nstore: /tmp/other.db\n", &b) == FL_OK);
	ck_assert_int_eq(fl_config_check_reload(fl_coordinator_config_table, &a, &b, err),
	                 FL_ESTATE);
	ck_assert_msg(strstr(err, "'store'") != NULL, "%s", err);
	fl_coordinator_config_fini(&b);
	ck_assert(load("key_file: c.key\nproject_id: other\nstore: /var/lib/c.db\n", &b) == FL_OK);
	ck_assert_int_eq(fl_config_check_reload(fl_coordinator_config_table, &a, &b, err),
	                 FL_ESTATE);
	ck_assert_msg(strstr(err, "'project_id'") != NULL, "%s", err);
	fl_coordinator_config_fini(&b);
	ck_assert(load("key_file: c.key\nproject_id: acme\nstore: /var/lib/c.db\n"
	               "admin_listen: tcp://127.0.0.1:9\n",
	               &b) == FL_OK);
	ck_assert_int_eq(fl_config_check_reload(fl_coordinator_config_table, &a, &b, err),
	                 FL_ESTATE);
	fl_coordinator_config_fini(&b);
	fl_coordinator_config_fini(&a);
}
END_TEST

START_TEST(example_loads)
{
	struct fl_coordinator_config c;
	const char *src = getenv("FL_SOURCE_DIR");
	char path[1024];

	fl_test_fmt(path, sizeof(path), "%s/deploy/examples/coordinator.yaml", src ? src : ".");
	ck_assert_msg(fl_coordinator_config_load(path, &c, err) == FL_OK, "%s", err);
	ck_assert_uint_gt(c.operators.n, 0);
	fl_coordinator_config_fini(&c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("coordinator_config");
	TCase *tc = tcase_create("coordinator_config");

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, operators_and_agents);
	tcase_add_test(tc, listen_from_coordinator_url);
	tcase_add_loop_test(tc, refusals_name_the_line, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, reload_rules);
	tcase_add_test(tc, webhooks);
	tcase_add_test(tc, example_loads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	fl_log_set_level(FL_LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
