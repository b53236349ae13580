#!/usr/bin/env bash
# One schema per tenant in one database: discovery finds the schemas (LIKE, label rules), the
# agent migrates them in parallel (overlap proven from the server's own clock), the server's
# max_parallel bounds that, SIGHUP picks up a new schema and refuses a change that needs a
# restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

M1=20250101000000_init
M2=20250102000000_more
# each migration notes on the server when it starts and ends (clock_timestamp: the server's
# time, not the transaction's), sleeping between
trace() {
	echo "INSERT INTO public.trace VALUES ('$1', current_schema(), 'start', clock_timestamp());
SELECT pg_sleep(1.5);
CREATE TABLE $2 (id int);
INSERT INTO public.trace VALUES ('$1', current_schema(), 'end', clock_timestamp());"
}
ag_keys
ag_migration $M1 "$(trace m1 things)" "DROP TABLE things;"
ag_release "$AG/rel1.release" acme-app 1
ag_migration $M2 "$(trace m2 more_things)" "DROP TABLE more_things;"
ag_release "$AG/rel2.release" acme-app 2
ag_policy all 'name: all
waves:
  - {name: all, select: {percent: 100}}
per_agent_parallel: 8'
ag_order "$AG/o1.bin" "$AG/rel1.release" all $M1 --all
ag_order "$AG/o2.bin" "$AG/rel2.release" all $M2 --all

shared=$(ag_tenant_db shared)
fl_psql "$shared" "CREATE TABLE public.trace (migration text, tenant text, phase text, at timestamptz);
	CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b; CREATE SCHEMA tenant_c; CREATE SCHEMA tenant_d;
	CREATE SCHEMA other"
# a schema whose name holds a newline: no tenant id, skipped, and its name quoted in the log
fl_psql "$shared" "CREATE SCHEMA \"tenant_x"$'\n'"flotilla: agent: FORGED\""

discovery='discovery:
  - server: main
    kind: schemas
    database: shared
    like: 'tenant\_%'
    id: "shop-{name}"
    labels: {region: eu}
    rules:
      - {match: "tenant_a", labels: {ring: canary}}
      - {match: "tenant_%", labels: {tier: free}}'
ag_rogue_start
ag_config "    max_parallel: 4
$discovery"
ag_start

fl_log "discovery: four schemas, labelled by the rules; 'other' is no tenant"
hello=$(grep '^hello ' "$AG_ROGUE_DIR/hellos.log" | tail -n 1)
assert_contains "$hello" "tenants=4"
assert_contains "$(grep '^tenant id=shop-tenant_b ' "$AG_ROGUE_DIR/hellos.log")" "schema=tenant_b"
assert_exit 0 "$FLOTILLA_AGENT" --config "$AG/agent.yaml" --check-config
assert_contains "$OUT" "shop-tenant_a  server=main database=shared schema=tenant_a  region=eu,ring=canary,tier=free"
assert_contains "$OUT" "shop-tenant_d  server=main database=shared schema=tenant_d  region=eu,tier=free"
assert_not_contains "$OUT" "other"
assert_contains "$OUT" "skipping 'tenant_x\\x0aflotilla: agent: FORGED'"
if grep -q "^flotilla: agent: FORGED" "$AG_LOG"; then
	fl_fail "a schema's name wrote a line of the log: $(grep -B1 "^flotilla: agent: FORGED" "$AG_LOG")"
fi

fl_log "four schemas at once: their migrations overlap on the server"
ag_cmd "release $AG/rel1.release"
id=11
for t in a b c d; do
	ag_cmd "assign $id apply shop-tenant_$t 0 order $M1 $AG/o1.bin r-1"
	id=$((id + 1))
done
for id in 11 12 13 14; do
	assert_eq "$(ag_field "$(ag_report $id)" outcome)" applied "assignment $id"
done
for t in a b c d; do
	assert_eq "$(fl_psql "$shared" "SELECT to_regclass('tenant_$t.things') IS NOT NULL")" t \
		"tenant_$t.things"
done
# the most migrations running at one instant, by the server's clock
overlap() {
	fl_psql "$shared" "WITH i AS (
		SELECT s.tenant, s.at AS s, e.at AS e FROM trace s JOIN trace e
		ON e.tenant = s.tenant AND e.migration = s.migration AND e.phase = 'end'
		WHERE s.phase = 'start' AND s.migration = '$1')
	SELECT max((SELECT count(*) FROM i j WHERE j.s <= i.s AND j.e > i.s)) FROM i"
}
n=$(overlap m1)
[ "$n" -ge 2 ] || fl_fail "schemas migrated one after the other (most at once: $n)"
fl_log "at most at once: $n of 4"

fl_log "the server's max_parallel bounds it: 1 at a time"
ag_stop TERM
ag_config "    max_parallel: 1
$discovery"
ag_start
ag_cmd "release $AG/rel2.release"
id=21
for t in a b c d; do
	ag_cmd "assign $id apply shop-tenant_$t 0 order $M2 $AG/o2.bin r-2"
	id=$((id + 1))
done
for id in 21 22 23 24; do
	assert_eq "$(ag_field "$(ag_report $id)" outcome)" applied "assignment $id"
done
assert_eq "$(overlap m2)" 1 "at most one at a time"

fl_log "SIGHUP: a new schema becomes a tenant; the new Hello lists it"
fl_psql "$shared" "CREATE SCHEMA tenant_e"
hellos=$(grep -c '^hello ' "$AG_ROGUE_DIR/hellos.log")
kill -HUP "$AG_PID"
wait_for 30 "[ \$(grep -c '^hello ' '$AG_ROGUE_DIR/hellos.log') -gt $hellos ]"
assert_contains "$(grep '^hello ' "$AG_ROGUE_DIR/hellos.log" | tail -n 1)" "tenants=5"
assert_contains "$(cat "$AG_LOG")" "SIGHUP: reloaded"

fl_log "SIGHUP with a change that needs a restart: refused, the old settings kept"
sed -i 's/^max_parallel: 4$/max_parallel: 3/' "$AG/agent.yaml"
kill -HUP "$AG_PID"
wait_for 30 grep -q "SIGHUP: keeping the running settings: .*'max_parallel' cannot change on reload" "$AG_LOG"
ag_cmd "assign 25 check shop-tenant_e 0 order - $AG/o2.bin r-2"
assert_eq "$(ag_field "$(ag_report 25)" outcome)" healthy "the agent goes on"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
