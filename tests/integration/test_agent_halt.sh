#!/usr/bin/env bash
# Halts and time limits: a halt with on_halt cancel stops a running migration (rolled back) and
# starts nothing queued for the rollout; with on_halt finish the running one completes and
# nothing queued starts; other rollouts go on; the policy's max_duration cancels a tenant's
# work past it (FAILED, saying so); a per-order limit (per_agent_parallel) holds. Health
# checks stopped by a halt or by the agent's shutdown are CANCELED, not INCONCLUSIVE (which
# would pause the wave for a human), after an APPLY as in a CHECK.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

M1=20250101000000_slow
ag_keys
ag_migration $M1 "CREATE TABLE slow (id int); SELECT pg_sleep(4);" "DROP TABLE slow;"
ag_release "$AG/rel.release" acme-app 1
ag_policy cancel 'name: cancel
waves:
  - {name: all, select: {percent: 100}}
per_agent_parallel: 1
on_halt: cancel'
ag_policy finish 'name: finish
waves:
  - {name: all, select: {percent: 100}}
per_agent_parallel: 1
on_halt: finish'
ag_policy short 'name: short
waves:
  - {name: all, select: {percent: 100}}
health:
  max_duration: 1s'
ag_order "$AG/cancel.bin" "$AG/rel.release" cancel $M1 --all
ag_order "$AG/finish.bin" "$AG/rel.release" finish $M1 --all
ag_order "$AG/short.bin" "$AG/rel.release" short $M1 --all
ag_policy wide 'name: wide
waves:
  - {name: all, select: {percent: 100}}
per_agent_parallel: 4'
ag_order "$AG/wide.bin" "$AG/rel.release" wide $M1 --all
# a check that runs until canceled (its timeout far off)
ag_policy waits 'name: waits
waves:
  - {name: all, select: {percent: 100}}
on_halt: cancel
health:
  checks:
    - {name: waits, sql: "SELECT pg_sleep(600) IS NOT NULL -- check waits", timeout: 10m}'
ag_order "$AG/waits.bin" "$AG/rel.release" waits $M1 --all

tenants='tenants:'
for t in h1 h2 h3 h4 h5 h6 h7 h8 h9; do
	ag_tenant_db "$t" >/dev/null
	tenants+="
  - {id: $t, server: main, database: $t}"
done
url() { fl_url_db "$DATABASE_URL" "$1"; }

ag_rogue_start
ag_config "    max_parallel: 8
$tenants"
ag_start
ag_cmd "release $AG/rel.release"

fl_log "on_halt cancel: the running migration rolls back, the queued one never starts"
# which runs first is the pool's business; per_agent_parallel 1 runs one at a time
busy() {
	fl_psql "$DATABASE_URL" "SELECT coalesce(string_agg(datname, ','), '') FROM pg_stat_activity
		WHERE datname IN ($1) AND query LIKE '%pg_sleep%' AND state = 'active'"
}
ag_cmd "assign 1 apply h1 0 order $M1 $AG/cancel.bin r-cancel"
ag_cmd "assign 2 apply h2 0 order $M1 $AG/cancel.bin r-cancel"
wait_for 30 "[ -n \"\$(busy \"'h1','h2'\")\" ]"
first=$(busy "'h1','h2'")
case $first in
h1) second=h2 ;;
h2) second=h1 ;;
*) fl_fail "both ran at once: $first" ;;
esac
ag_cmd "halt r-cancel budget exhausted"
r1=$(ag_report "${first#h}")
r2=$(ag_report "${second#h}")
assert_eq "$(ag_field "$r1" outcome)" canceled "$first, running ($r1)"
assert_contains "$(ag_field "$r1" message)" "halted: budget exhausted"
assert_eq "$(ag_field "$r2" outcome)" canceled "$second, queued ($r2)"
assert_contains "$(ag_field "$r2" message)" "not started"
assert_eq "$(ag_has_table "$(url "$first")" slow)" f "$first rolled back"
assert_eq "$(ag_has_table "$(url "$second")" slow)" f "$second never touched"
assert_eq "$(ag_has_table "$(url "$second")" _prisma_migrations)" f "$second has no history"

fl_log "on_halt finish: the running migration completes, the queued one never starts"
ag_cmd "assign 3 apply h3 0 order $M1 $AG/finish.bin r-finish"
ag_cmd "assign 4 apply h4 0 order $M1 $AG/finish.bin r-finish"
ag_cmd "assign 5 apply h5 0 order $M1 $AG/cancel.bin r-other"
wait_for 30 "[ -n \"\$(busy \"'h3','h4'\")\" ]"
first=$(busy "'h3','h4'")
case $first in
h3) second=h4 ;;
h4) second=h3 ;;
*) fl_fail "both ran at once: $first" ;;
esac
ag_cmd "halt r-finish operator said so"
r1=$(ag_report "${first#h}")
r2=$(ag_report "${second#h}")
assert_eq "$(ag_field "$r1" outcome)" applied "$first finished ($r1)"
assert_eq "$(ag_field "$r2" outcome)" canceled "$second ($r2)"
assert_eq "$(ag_has_table "$(url "$first")" slow)" t "$first applied"
assert_eq "$(ag_has_table "$(url "$second")" slow)" f "$second never touched"
fl_log "another rollout is not halted"
assert_eq "$(ag_field "$(ag_report 5)" outcome)" applied "h5"

fl_log "max_duration: canceled past it, FAILED, saying why"
ag_cmd "assign 6 apply h6 0 order $M1 $AG/short.bin r-short"
r=$(ag_report 6)
assert_eq "$(ag_field "$r" outcome)" failed "h6 ($r)"
assert_contains "$(ag_field "$r" message)" "max_duration"
assert_eq "$(ag_has_table "$(url h6)" slow)" f "h6 rolled back"
fl_log "two assignments for one tenant: one after the other, in the order they came"
ag_cmd "assign 7 apply h7 0 order $M1 $AG/wide.bin r-wide"
ag_cmd "assign 8 apply h7 0 order $M1 $AG/wide.bin r-wide"
assert_eq "$(ag_field "$(ag_report 7)" outcome)" applied "h7, the first to come"
assert_eq "$(ag_field "$(ag_report 8)" outcome)" skipped "h7, the second (at the target by then)"

checking() { # sessions of database $1 in the health check now
	fl_psql "$DATABASE_URL" "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'
		AND query LIKE '%check waits%' AND state = 'active' AND pid <> pg_backend_pid()"
}
fl_log "a halt during an APPLY's health checks: CANCELED, the migration applied"
ag_cmd "assign 9 apply h8 0 order $M1 $AG/waits.bin r-waits"
wait_for 60 "[ \"\$(checking h8)\" = 1 ]" || fl_fail "no health check on h8: $(tail -n 20 "$AG_LOG")"
ag_cmd "halt r-waits operator said so"
r=$(ag_report 9)
assert_eq "$(ag_field "$r" outcome)" canceled "h8 ($r)"
assert_contains "$(ag_field "$r" message)" "halted: operator said so"
assert_contains "$(ag_field "$r" migrations)" "$M1:applied" "h8's migration"
assert_eq "$(ag_has_table "$(url h8)" slow)" t "h8 applied"

fl_log "a halt during a CHECK: CANCELED"
ag_cmd "assign 10 check h8 0 order - $AG/waits.bin r-waits2"
wait_for 60 "[ \"\$(checking h8)\" = 1 ]" || fl_fail "no health check on h8: $(tail -n 20 "$AG_LOG")"
ag_cmd "halt r-waits2 operator said so again"
r=$(ag_report 10)
assert_eq "$(ag_field "$r" outcome)" canceled "h8 check ($r)"
assert_contains "$(ag_field "$r" message)" "halted: operator said so again"

fl_log "the agent shutting down during an APPLY's health checks: CANCELED"
ag_cmd "assign 11 apply h9 0 order $M1 $AG/waits.bin r-waits3"
wait_for 60 "[ \"\$(checking h9)\" = 1 ]" || fl_fail "no health check on h9: $(tail -n 20 "$AG_LOG")"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
ag_start # sends what is left in the journal
r=$(ag_report 11)
assert_eq "$(ag_field "$r" outcome)" canceled "h9 ($r)"
assert_contains "$(ag_field "$r" message)" "shutting down"
assert_eq "$(ag_has_table "$(url h9)" slow)" t "h9 applied"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
