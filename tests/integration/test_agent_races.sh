#!/usr/bin/env bash
# Time of check against time of use: an assignment verified while another one for the same
# tenant runs is checked again when it starts. Here the older release's assignment passes its
# checks while the newer one is still applying (the tenant's sequence floor is 0 then), waits
# for the tenant, and must then be refused: the newer release is applied by that time.
#
# And work for one tenant runs in the order it came: an APPLY held back by its order's limit
# (per_agent_parallel 1, the order's other tenant still applying) is not overtaken by a CHECK
# of the same tenant that came after it, though nothing holds the CHECK back itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

M1=20250101000000_gated
ag_keys
# the migration waits until the test opens the gate (a row in ctl.gate, a schema of the
# tenant's database that is not the tenant's),
# so the test decides when it commits
ag_migration $M1 "DO \$\$ BEGIN WHILE NOT EXISTS (SELECT 1 FROM ctl.gate) LOOP PERFORM pg_sleep(0.05); END LOOP; END \$\$;
CREATE TABLE gated (id int);" "DROP TABLE gated;"
ag_release "$AG/new.release" acme-app 2
NEW=$AG_HASH
# the same migration, another down.sql: another release, older
printf '%s\n' "DROP TABLE gated; -- the old way" >"$AG/migrations/$M1/down.sql"
ag_release "$AG/old.release" acme-app 1
OLD=$AG_HASH
[ "$NEW" != "$OLD" ] || fl_fail "the two releases have one hash"
ag_policy simple 'name: simple
waves:
  - {name: all, select: {percent: 100}}'
ag_order "$AG/new.bin" "$AG/new.release" simple $M1 --all
ag_policy single 'name: single
waves:
  - {name: all, select: {percent: 100}}
per_agent_parallel: 1'
ag_order "$AG/single.bin" "$AG/new.release" single $M1 --all
ag_policy checked 'name: checked
waves:
  - {name: all, select: {percent: 100}}
health:
  checks:
    - {name: alive, sql: "SELECT true", timeout: 5s}'
ag_order "$AG/checked.bin" "$AG/new.release" checked $M1 --all
ag_order "$AG/old.bin" "$AG/old.release" simple $M1 --all

T1=$(ag_tenant_db t1)
fl_psql "$T1" "CREATE SCHEMA ctl; CREATE TABLE ctl.gate (go int)" >/dev/null
T2=$(ag_tenant_db t2)
fl_psql "$T2" "CREATE SCHEMA ctl; CREATE TABLE ctl.gate (go int)" >/dev/null
T3=$(ag_tenant_db t3)
fl_psql "$T3" "CREATE SCHEMA ctl; CREATE TABLE ctl.gate (go int)" >/dev/null
at_gate() { # sessions of database $1 held at the gate now
	fl_psql "$DATABASE_URL" "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'
		AND query LIKE '%FROM ctl.gate%' AND state = 'active' AND pid <> pg_backend_pid()"
}

ag_rogue_start
ag_config 'tenants:
  - {id: t1, server: main, database: t1}
  - {id: t2, server: main, database: t2}
  - {id: t3, server: main, database: t3}'
ag_start
ag_cmd "release $AG/new.release"
ag_cmd "release $AG/old.release"

fl_log "the newer release applies, held at the gate"
ag_cmd "assign 1 apply t1 0 order $M1 $AG/new.bin r-new"
wait_for 60 "[ \"\$(fl_psql '$T1' \"SELECT count(*) FROM pg_stat_activity WHERE datname = 't1' AND query LIKE '%FROM ctl.gate%' AND state = 'active' AND pid <> pg_backend_pid()\")\" = 1 ]" ||
	fl_fail "the migration does not run: $(tail -n 20 "$AG_LOG")"

fl_log "the older release's assignment passes its checks meanwhile (floor 0) and waits"
ag_cmd "assign 2 apply t1 0 order $M1 $AG/old.bin r-old"
wait_for 60 grep -q "assignment 2: checks passed" "$AG_LOG" ||
	fl_fail "assignment 2 was not verified: $(tail -n 20 "$AG_LOG")"

fl_log "the gate opens: the newer release commits; the older one is refused when it starts"
fl_psql "$T1" "INSERT INTO ctl.gate VALUES (1)" >/dev/null
r=$(ag_report 1)
assert_eq "$(ag_field "$r" outcome)" applied "assignment 1 ($r)"
r=$(ag_report 2)
assert_eq "$(ag_field "$r" outcome)" refused "assignment 2 ($r)"
assert_contains "$(ag_field "$r" message)" "sequence 1 is older than sequence 2"
assert_eq "$(ag_applied "$T1")" $M1 "t1 history"

fl_log "an APPLY waiting for its order's slot is not overtaken by a later CHECK of its tenant"
ag_cmd "assign 11 apply t2 0 order $M1 $AG/single.bin r-one"
wait_for 60 "[ \"\$(at_gate t2)\" = 1 ]" ||
	fl_fail "assignment 11 does not run: $(tail -n 20 "$AG_LOG")"
ag_cmd "assign 12 apply t3 0 order $M1 $AG/single.bin r-one"
wait_for 60 grep -q "assignment 12: checks passed" "$AG_LOG" ||
	fl_fail "assignment 12 was not verified: $(tail -n 20 "$AG_LOG")"
ag_cmd "assign 13 check t3 0 order - $AG/checked.bin r-two"
wait_for 60 grep -q "assignment 13: checks passed" "$AG_LOG" ||
	fl_fail "assignment 13 was not verified: $(tail -n 20 "$AG_LOG")"
assert_eq "$(at_gate t3)" 0 "sessions of t3 at the gate while t2 holds r-one's slot"
fl_psql "$T2" "INSERT INTO ctl.gate VALUES (1)" >/dev/null
fl_psql "$T3" "INSERT INTO ctl.gate VALUES (1)" >/dev/null
assert_eq "$(ag_field "$(ag_report 11)" outcome)" applied "assignment 11"
assert_eq "$(ag_field "$(ag_report 12)" outcome)" applied "assignment 12"
assert_eq "$(ag_field "$(ag_report 13)" outcome)" healthy "assignment 13"
line_of() { grep -n -m 1 -F "$1" "$AG_LOG" | cut -d: -f1; }
applied12=$(line_of "assignment 12 (apply, rollout 'r-one'): applied")
started13=$(line_of "assignment 13: check ")
[ -n "$applied12" ] && [ -n "$started13" ] || fl_fail "no start of 13 or end of 12 in the log"
[ "$started13" -gt "$applied12" ] ||
	fl_fail "the CHECK (13) started at log line $started13, before the APPLY it came after (12) ended at line $applied12"
assert_eq "$(ag_applied "$T3")" $M1 "t3 history"

ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
