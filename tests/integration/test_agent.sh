#!/usr/bin/env bash
# flotilla-agent against a (rogue) coordinator: Hello with the tenants' histories, an APPLY
# that runs through the engine with health checks after it, a CHECK, a replayed assignment id
# answered with the recorded report and run nowhere, nothing to do (skipped), --check-config,
# and SIGTERM exiting 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

ag_keys
ag_migration 20250101000000_init "CREATE TABLE users (id int PRIMARY KEY, email text);" \
	"DROP TABLE users;"
ag_migration 20250102000000_add_name "ALTER TABLE users ADD COLUMN name text;" \
	"ALTER TABLE users DROP COLUMN name;"
ag_migration 20250103000000_projects "CREATE TABLE projects (id int PRIMARY KEY);" \
	"DROP TABLE projects;"
ag_release "$AG/rel.release" acme-app 5
ag_policy simple 'name: simple
waves:
  - {name: all, select: {percent: 100}}
health:
  checks:
    - {name: users-readable, sql: "SELECT count(*) >= 0 FROM users", timeout: 5s}
    - {name: has-name, sql: "SELECT count(*) = 1 FROM information_schema.columns WHERE table_name = '"'"'users'"'"' AND column_name = '"'"'name'"'"'", timeout: 5s}'
ag_order "$AG/order.bin" "$AG/rel.release" simple 20250103000000_projects --all

acme=$(ag_tenant_db acme)
beta=$(ag_tenant_db beta)
fl_psql "$beta" "CREATE TABLE users (id int)" # beta is not empty, has no history

ag_rogue_start
ag_config 'tenants:
  - {id: acme, server: main, database: acme, labels: {ring: canary}}
  - {id: beta, server: main, database: beta, labels: {ring: main}}'

fl_log "--check-config lists the tenants"
assert_exit 0 "$FLOTILLA_AGENT" --config "$AG/agent.yaml" --check-config
assert_contains "$OUT" "config '$AG/agent.yaml' is valid"
assert_contains "$OUT" "acme  server=main database=acme  ring=canary"
assert_contains "$OUT" "beta  server=main database=beta  ring=main"
assert_exit 2 "$FLOTILLA_AGENT" --config "$AG/nope.yaml" --check-config
assert_contains "$ERR" "nope.yaml"
# a discovery on a server that cannot be reached: said so, the rest listed
sed '/^    user: /a\  - {name: gone, host: 127.0.0.1, port: 1, connect_timeout: 1s}' \
	"$AG/agent.yaml" >"$AG/unreachable.yaml"
printf '%s\n' "discovery:" "  - {server: gone, like: 'tenant%'}" >>"$AG/unreachable.yaml"
chmod 600 "$AG/unreachable.yaml"
assert_exit 0 "$FLOTILLA_AGENT" --config "$AG/unreachable.yaml" --check-config
assert_contains "$OUT" "1 discovery rule could not reach its database"
assert_contains "$OUT" "acme  server=main"

fl_log "hello: both tenants, nothing applied yet"
ag_start
hello=$(grep '^tenant id=acme ' "$AG_ROGUE_DIR/hellos.log" | tail -n 1)
assert_eq "$(ag_field "$hello" applied)" 0 "acme applied"
assert_eq "$(ag_field "$hello" error)" "" "acme error"
assert_contains "$(grep '^hello ' "$AG_ROGUE_DIR/hellos.log")" "agent=test-agent project=acme-app"

fl_log "a second agent on the same state_dir is refused"
assert_exit 1 "$FLOTILLA_AGENT" --config "$AG/agent.yaml"
assert_contains "$ERR" "is in use by another flotilla-agent"

fl_log "apply: three migrations, then the health checks"
ag_cmd "release $AG/rel.release"
ag_cmd "assign 1 apply acme 0 order 20250103000000_projects $AG/order.bin r-1"
r=$(ag_report 1)
assert_eq "$(ag_field "$r" outcome)" applied "outcome ($r)"
assert_eq "$(ag_field "$r" applied)" 3 "applied count"
assert_eq "$(ag_field "$r" head)" 20250103000000_projects "head"
assert_eq "$(ag_field "$r" migrations)" \
	"20250101000000_init:applied,20250102000000_add_name:applied,20250103000000_projects:applied" \
	"migrations"
assert_eq "$(ag_field "$r" health)" "users-readable:ok,has-name:ok" "health"
assert_ne "$(ag_field "$r" fingerprint)" "-" "fingerprint"
assert_eq "$(ag_applied "$acme")" \
	"20250101000000_init,20250102000000_add_name,20250103000000_projects" "acme history"
journal1=$(ag_field "$r" journal)

fl_log "check: the order's health checks only"
ag_cmd "assign 2 check acme 0 order - $AG/order.bin r-1"
r=$(ag_report 2)
assert_eq "$(ag_field "$r" outcome)" healthy "check outcome ($r)"
assert_eq "$(ag_field "$r" health)" "users-readable:ok,has-name:ok" "check health"

fl_log "a replayed assignment id: the recorded report again, nothing run"
rows=$(fl_psql "$acme" "SELECT count(*) FROM _prisma_migrations")
ag_cmd "assign 1 apply acme 0 order 20250103000000_projects $AG/order.bin r-1"
wait_for 30 "[ \$(ag_reports 1) -ge 2 ]"
r=$(ag_report 1)
assert_eq "$(ag_field "$r" journal)" "$journal1" "the same journal id"
assert_eq "$(ag_field "$r" outcome)" applied "the same report"
assert_eq "$(fl_psql "$acme" "SELECT count(*) FROM _prisma_migrations")" "$rows" "rows after replay"
assert_contains "$(cat "$AG_LOG")" "assignment 1 was run before"

fl_log "nothing left to apply: skipped"
ag_cmd "assign 3 apply acme 0 order 20250103000000_projects $AG/order.bin r-1"
r=$(ag_report 3)
assert_eq "$(ag_field "$r" outcome)" skipped "outcome ($r)"
assert_eq "$(ag_field "$r" applied)" 3 "applied count"

fl_log "a tenant with objects and no history: failed, untouched"
ag_cmd "assign 4 apply beta 0 order 20250103000000_projects $AG/order.bin r-1"
r=$(ag_report 4)
assert_eq "$(ag_field "$r" outcome)" failed "outcome ($r)"
assert_contains "$(ag_field "$r" message)" "baseline"
assert_eq "$(ag_has_table "$beta" projects)" f "beta untouched"

fl_log "the coordinator is told what ran: polls list nothing left running"
wait_for 10 "tail -n 1 '$AG_ROGUE_DIR/polls.log' | grep -q 'running=\$'"

fl_log "SIGTERM: exit 0"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
assert_contains "$(cat "$AG_LOG")" "stopped"

fl_log "restart: the ledger remembers; ids are never run twice"
ag_start
ag_cmd "assign 1 apply acme 0 order 20250103000000_projects $AG/order.bin r-1"
wait_for 30 "[ \$(ag_reports 1) -ge 3 ]"
assert_eq "$(fl_psql "$acme" "SELECT count(*) FROM _prisma_migrations")" "$rows" "rows after restart"
hello=$(grep '^tenant id=acme ' "$AG_ROGUE_DIR/hellos.log" | tail -n 1)
assert_eq "$(ag_field "$hello" applied)" 3 "acme applied in the new hello"
assert_eq "$(ag_field "$hello" sequence)" 5 "acme's release sequence"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
