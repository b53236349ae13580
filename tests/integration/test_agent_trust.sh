#!/usr/bin/env bash
# The agent's trust rules against a hostile coordinator (tests/tools/rogue_coordinator.c): each
# assignment below breaks one rule and must be REFUSED with nothing run on any tenant
# (asserted on the tenants' _prisma_migrations and schema); the positive controls show the
# same setup does run what is signed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

M1=20250101000000_users
M2=20250102000000_projects
ag_keys
ag_migration $M1 "CREATE TABLE users (id int PRIMARY KEY);" "DROP TABLE users;"
ag_migration $M2 "CREATE TABLE projects (id int PRIMARY KEY);" "DROP TABLE projects;"
ag_release "$AG/rel5.release" acme-app 5
REL5=$AG_HASH
ag_release "$AG/old.release" acme-app 3
ag_release "$AG/evil.release" acme-app 6 "$AG/evil.key"
EVIL=$AG_HASH
ag_release "$AG/other.release" other-app 5
ag_policy halt 'name: canary-first
waves:
  - {name: canary, select: {labels: {ring: canary}}}
  - {name: rest, select: {percent: 100}}
on_failure: halt'
ag_policy rb 'name: undo
waves:
  - {name: all, select: {percent: 100}}
on_failure: rollback-all'

# orders: all of tenants in region eu unless said otherwise
ag_order "$AG/ord.bin" "$AG/rel5.release" halt $M2 --select region=eu
ag_order "$AG/ord_rb.bin" "$AG/rel5.release" rb $M2 --select region=eu
ag_order "$AG/ord_expired.bin" "$AG/rel5.release" halt $M2 --select region=eu \
	--created-ago-ms 7200000 --expires-in-ms -3600000
"$FL_ROGUE" order --release "$AG/rel5.release" --policy "$AG/halt.yaml" --target $M2 \
	--select region=eu --key "$AG/evil.key" --out "$AG/ord_untrusted.bin" >/dev/null
ag_order "$AG/ord_evilrel.bin" "$AG/evil.release" halt $M2 --select region=eu
ag_order "$AG/ord_other.bin" "$AG/other.release" halt $M2 --select region=eu --project acme-app
ag_order "$AG/ord_old.bin" "$AG/old.release" halt $M2 --select region=eu
"$FL_ROGUE" rollback --order "$AG/ord.bin" --target $M1 --all --key "$AG/release.key" \
	--out "$AG/rb_ok.bin" >/dev/null
"$FL_ROGUE" rollback --order "$AG/ord.bin" --target $M1 --all --key "$AG/evil.key" \
	--out "$AG/rb_untrusted.bin" >/dev/null

declare -A url
for t in canary main out seasoned hotfixed auto; do
	url[$t]=$(ag_tenant_db "t_$t")
done
# hotfixed: a migration applied by hand that no release of ours has
mkdir -p "$AG/hotfix/$M1" "$AG/hotfix/20250101120000_hotfix"
cp "$AG/migrations/$M1/migration.sql" "$AG/hotfix/$M1/"
echo "CREATE TABLE hotfix (id int);" >"$AG/hotfix/20250101120000_hotfix/migration.sql"
"$FLOTILLA" deploy --dir "$AG/hotfix" --database-url "${url[hotfixed]}" >/dev/null

ag_rogue_start
ag_config 'tenants:
  - {id: canary, server: main, database: t_canary, labels: {ring: canary, region: eu}}
  - {id: main, server: main, database: t_main, labels: {ring: main, region: eu}}
  - {id: out, server: main, database: t_out, labels: {ring: main, region: us}}
  - {id: seasoned, server: main, database: t_seasoned, labels: {ring: main, region: eu}}
  - {id: hotfixed, server: main, database: t_hotfixed, labels: {ring: main, region: eu}}
  - {id: auto, server: main, database: t_auto, labels: {ring: main, region: eu}}'
ag_start
for f in rel5 old evil other; do
	ag_cmd "release $AG/$f.release"
done

# refused ID REASON: the report of assignment ID is REFUSED, its message holds REASON.
refused() {
	local r
	r=$(ag_report "$1")
	assert_eq "$(ag_field "$r" outcome)" refused "assignment $1 outcome ($r)"
	assert_contains "$(ag_field "$r" message)" "$2" "assignment $1 reason"
	assert_eq "$(ag_field "$r" migrations)" "-" "assignment $1 ran no migration"
}

# untouched TENANT [HISTORY]: the tenant's history is HISTORY (default: no history table).
untouched() {
	if [ $# -lt 2 ]; then
		assert_eq "$(ag_has_table "${url[$1]}" _prisma_migrations)" f "$1 has no history"
		assert_eq "$(ag_has_table "${url[$1]}" users)" f "$1 has no users table"
	else
		assert_eq "$(ag_applied "${url[$1]}")" "$2" "$1 history"
	fi
}

fl_log "1. a tenant outside the order's selection (region us)"
ag_cmd "assign 11 apply out 1 order $M2 $AG/ord.bin r-1"
refused 11 "not selected by rollout order"
untouched out

fl_log "2. another target than the order's"
ag_cmd "assign 12 apply main 1 order $M1 $AG/ord.bin r-1"
refused 12 "is not the order's target"
untouched main

fl_log "3. an expired order"
ag_cmd "assign 13 apply main 1 order $M2 $AG/ord_expired.bin r-1"
refused 13 "expired"
untouched main

fl_log "4. an order signed by an untrusted key"
ag_cmd "assign 14 apply main 1 order $M2 $AG/ord_untrusted.bin r-1"
refused 14 "rollout order:"
untouched main

fl_log "5. a release signed by an untrusted key (in a trusted order)"
ag_cmd "assign 15 apply main 1 order $M2 $AG/ord_evilrel.bin r-1"
refused 15 "release:"
untouched main

fl_log "6. another project's release (in an order of ours)"
ag_cmd "assign 16 apply main 1 order $M2 $AG/ord_other.bin r-1"
refused 16 "release:"
untouched main

fl_log "7. the coordinator serves other bytes for the release hash"
ag_cmd "serve-as $EVIL $AG/rel5.release"
ag_order "$AG/ord_evilrel2.bin" "$AG/evil.release" halt $M2 --select region=eu
ag_cmd "assign 17 apply main 1 $EVIL $M2 $AG/ord_evilrel2.bin r-1"
refused 17 "release:"
untouched main

fl_log "8. the assignment names another release than its order"
ag_cmd "assign 18 apply main 1 $EVIL $M2 $AG/ord.bin r-1"
refused 18 "is not the release of order"
untouched main

fl_log "9. a wave that does not take the tenant (main in the canary wave)"
ag_cmd "assign 19 apply main 0 order $M2 $AG/ord.bin r-1"
refused 19 "not selected by wave 0"
untouched main

fl_log "10. a tenant that is not this agent's"
ag_cmd "assign 20 apply ghost 1 order $M2 $AG/ord.bin r-1"
refused 20 "not one of this agent's"

fl_log "11. a check for a tenant outside the selection"
ag_cmd "assign 21 check out 1 order - $AG/ord.bin r-1"
refused 21 "not selected by rollout order"

fl_log "control: the same order, as signed, applies"
ag_cmd "assign 30 apply seasoned 1 order $M2 $AG/ord.bin r-1"
r=$(ag_report 30)
assert_eq "$(ag_field "$r" outcome)" applied "control ($r)"
untouched seasoned "$M1,$M2"

fl_log "12. an older release than the tenant's ledger sequence (3 < 5)"
fl_psql "${url[seasoned]}" "DELETE FROM _prisma_migrations WHERE migration_name = '$M2'; DROP TABLE projects"
ag_cmd "assign 22 apply seasoned 1 order $M2 $AG/ord_old.bin r-1"
refused 22 "older than sequence 5"
untouched seasoned "$M1"
assert_eq "$(ag_has_table "${url[seasoned]}" projects)" f "seasoned: projects not created again"

fl_log "13. a release missing a migration the tenant has"
ag_cmd "assign 23 apply hotfixed 1 order $M2 $AG/ord.bin r-1"
refused 23 "'20250101120000_hotfix' applied, which release"
untouched hotfixed "$M1,20250101120000_hotfix"
assert_eq "$(ag_has_table "${url[hotfixed]}" projects)" f "hotfixed: nothing applied"

fl_log "14. a revert without authorisation (no rollback order, on_failure: halt)"
ag_cmd "assign 31 apply canary 0 order $M2 $AG/ord.bin r-1"
assert_eq "$(ag_field "$(ag_report 31)" outcome)" applied "canary applied"
ag_cmd "assign 24 revert canary 0 order - $AG/ord.bin r-1"
refused 24 "revert without authorisation"
untouched canary "$M1,$M2"

fl_log "15. a rollback order signed by an untrusted key"
ag_cmd "assign 25 revert canary 0 order $M1 $AG/ord.bin r-1 $AG/rb_untrusted.bin"
refused 25 "rollback order:"
untouched canary "$M1,$M2"

fl_log "15b. a revert under an expired rollout order, with a valid signed rollback order"
# docs/POLICY.md, "A rollout's order expires": agents check the rollout order on every
# assignment, reverts too; a valid rollback order does not revive it
"$FL_ROGUE" rollback --order "$AG/ord_expired.bin" --target $M1 --all --key "$AG/release.key" \
	--out "$AG/rb_expired.bin" >/dev/null
ag_cmd "assign 26 revert canary 0 order $M1 $AG/ord_expired.bin r-1 $AG/rb_expired.bin"
refused 26 "expired"
assert_contains "$(ag_field "$(ag_report 26)" message)" "rollout order" "assignment 26: the rollout order is what is refused"
untouched canary "$M1,$M2"
assert_eq "$(ag_has_table "${url[canary]}" projects)" t "canary: projects still there"

fl_log "16. a replayed assignment id, aimed at another tenant"
ag_cmd "assign 31 apply main 1 order $M2 $AG/ord.bin r-1"
wait_for 30 "[ \$(ag_reports 31) -ge 2 ]"
r=$(ag_report 31)
assert_eq "$(ag_field "$r" tenant)" canary "the recorded report, for canary"
untouched main

fl_log "control: a signed rollback order reverts to its target"
ag_cmd "assign 32 revert canary 0 order $M1 $AG/ord.bin r-1 $AG/rb_ok.bin"
r=$(ag_report 32)
assert_eq "$(ag_field "$r" outcome)" rolled_back "rollback ($r)"
assert_eq "$(ag_field "$r" migrations)" "$M2:rolled_back" "reverted"
untouched canary "$M1"
assert_eq "$(ag_has_table "${url[canary]}" projects)" f "projects dropped"

fl_log "control: on_failure rollback-all reverts only what the agent applied under the order"
"$FLOTILLA" deploy --dir "$AG/migrations" --to $M1 --database-url "${url[auto]}" >/dev/null
ag_cmd "assign 33 apply auto 0 order $M2 $AG/ord_rb.bin r-2"
assert_eq "$(ag_field "$(ag_report 33)" migrations)" "$M2:applied" "auto applied M2 only"
ag_cmd "assign 34 revert auto 0 order - $AG/ord_rb.bin r-2"
r=$(ag_report 34)
assert_eq "$(ag_field "$r" outcome)" rolled_back "auto revert ($r)"
untouched auto "$M1"
assert_eq "$(ag_has_table "${url[auto]}" users)" t "M1, applied by hand, stays"

fl_log "every refusal is in the agent's log"
for id in 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26; do
	assert_contains "$(grep "assignment $id " "$AG_LOG")" "refused" "log of assignment $id"
done
fl_log "SIGHUP drops a release key: its orders and releases are refused from then on"
sed -i "s|^trusted_release_keys: .*|trusted_release_keys: [$(ag_pub "$AG/evil.key")]|" "$AG/agent.yaml"
kill -HUP "$AG_PID"
wait_for 30 grep -q "SIGHUP: reloaded" "$AG_LOG"
ag_cmd "assign 40 apply main 1 order $M2 $AG/ord.bin r-1"
refused 40 "rollout order:"
# the order the evil key signed is trusted now, but not the release (cached before): refused
ag_cmd "assign 41 apply main 1 order $M2 $AG/ord_untrusted.bin r-1"
refused 41 "release:"
untouched main
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
