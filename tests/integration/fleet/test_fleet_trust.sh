#!/usr/bin/env bash
# Who gets nothing, and what is refused:
#  - an agent whose key was never approved is refused: its tenants never reach the
#    coordinator, and a rollout over the whole fleet leaves its databases untouched;
#  - an agent revoked by an admin is refused from then on, and gets no work either;
#  - a rollback (DOWN) signed by a release key the fleet does not trust is refused, and
#    nothing is reverted; one signed by a trusted key reverts (rollout rollback --wait
#    exits 0 once rolled back, rollout watch 16).
. "$(dirname "$0")/lib.sh"

FLEET_POLL_HOLD=1s
fleet_test_init
fleet_add_agent a1 3 0
fleet_add_agent a2 3 0
fleet_start_coordinator
fleet_start_agent a1
fleet_start_agent a2
fleet_wait_tenants 6

fl_log "an agent whose key no admin approved"
fleet_add_agent stranger 3 0 # after the coordinator's config was written: not in it
fleet_start_agent stranger
wait_for 30 grep -q "refused the request" "$FLEET_DIR/logs/stranger.log"
assert_exit 0 fleet_cli agents list --all
assert_not_contains "$OUT" stranger "agents list"
assert_eq "$(fleet_tenant_count)" 6 "tenants the coordinator knows"

fl_log "an agent revoked by an admin"
a2_pub=$(sed -n 's/^public: //p' "$FLEET_DIR/keys/a2.key")
assert_exit 0 fleet_cli agents revoke --key "$a2_pub" --reason "test: decommissioned"
assert_contains "$OUT" "revoked agent a2"
assert_exit 0 fleet_cli agents list --all --json
assert_contains "$OUT" '"name":"a2","public_key":"'"$a2_pub"'"'
assert_contains "$OUT" '"state":"revoked"'
# (a2 hears of it at its next request: the coordinator lets the poll it holds run out)

fl_log "a rollout over the whole fleet reaches only the approved agent"
fleet_policy all <<'EOF2'
name: all
waves:
  - {name: all, select: {percent: 100}, max_parallel: 9}
per_agent_parallel: 3
on_failure: halt
EOF2
fleet_migrations 1
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
wait_for 60 "[ \"\$(fleet_wave_field 0 tenants_applied)\" = 3 ]"
# The stranger keeps asking (and a2 would): give them a few seconds' time.
deadline=$((SECONDS + 3))
while [ "$SECONDS" -lt "$deadline" ]; do
	for t in $(fleet_tenants a2 3) $(fleet_tenants stranger 3); do
		assert_eq "$(fleet_rows "$t" 20250301090000_init)" 0 "history rows on $t"
	done
	sleep 0.2
done
for t in $(fleet_tenants a1 3); do
	assert_eq "$(fleet_applied "$t" 20250301090000_init)" 1 "init on $t"
done
# The revoked agent's tenants are not part of the selection: it completes without them.
fleet_wait_rollout completed -t 30
assert_contains "$(fleet_rollout_json)" '"tenants_total":3,'

fl_log "a rollback signed by an untrusted release key is refused"
"$FLOTILLA" keygen --kind release --out "$FLEET_DIR/keys/other-release.key" >/dev/null
assert_exit nonzero fleet_cli rollout rollback "$FLEET_ROLLOUT" --select agent=a1 \
	--release-key "$FLEET_DIR/keys/other-release.key" --reason "test: untrusted"
fl_log "refused with exit $RC: $ERR"
assert_eq "$(fleet_rollout_state)" completed "state after the refused rollback"
for t in $(fleet_tenants a1 3); do
	assert_eq "$(fleet_applied "$t" 20250301090000_init)" 1 "init on $t after the refusal"
done

fl_log "the same rollback signed by the trusted key"
assert_exit 0 fleet_cli rollout rollback "$FLEET_ROLLOUT" --select agent=a1 \
	--release-key "$FLEET_RELEASE_KEY" --reason "test: undo" --wait --interval 200ms
assert_exit 16 fleet_cli rollout watch "$FLEET_ROLLOUT" --interval 200ms
for t in $(fleet_tenants a1 3); do
	assert_eq "$(fleet_applied "$t" 20250301090000_init)" 0 "init on $t after the rollback"
	assert_eq "$(fleet_tenant_psql "$t" "SELECT count(*) FROM pg_tables
		WHERE tablename = 'users'")" 0 "users on $t after the rollback"
done
fleet_pass
