#!/usr/bin/env bash
# Every example in deploy/examples/ loads in the program that reads it:
#   coordinator.yaml          flotilla-coordinator --check-config
#   agent.yaml, agent-schemas.yaml
#                             flotilla-agent --check-config (its databases are not there:
#                             discovery says so, the file still loads)
#   policies/*.yaml           flotilla rollout plan against a live coordinator, over tenants
#                             labelled as the policies select them, with the example
#                             migrations as the release
# Only the paths that name this host's files (key_file, state_dir, the webhook's
# secret_file) are swapped for the test's own. That every key of every table is in the examples and in docs/CONFIG.md and
# docs/POLICY.md is tests/unit/check_config.c's job (docs_list_every_key,
# examples_list_every_key).
. "$(dirname "$0")/lib.sh"

ex=$FL_SOURCE_DIR/deploy/examples
fleet_test_init
tmp=$(fl_tmpdir)

fl_log "coordinator.yaml: --check-config"
"$FLOTILLA" keygen --kind coordinator --out "$tmp/coordinator.key" >/dev/null
printf 'a webhook secret\n' >"$tmp/webhook.secret"
chmod 0644 "$tmp/webhook.secret"
sed -e "s|^key_file: .*|key_file: $tmp/coordinator.key|" \
	-e "s|secret_file: .*|secret_file: $tmp/webhook.secret|" "$ex/coordinator.yaml" >"$tmp/coordinator.yaml"
fl_log "  a webhook secret others may read is refused"
assert_exit 2 "$FL_COORDINATOR_BIN" --config "$tmp/coordinator.yaml" --check-config
assert_contains "$ERR" "'$tmp/webhook.secret': readable by others (mode 0644)"
chmod 0600 "$tmp/webhook.secret"
assert_exit 0 "$FL_COORDINATOR_BIN" --config "$tmp/coordinator.yaml" --check-config
assert_contains "$OUT" "'$tmp/coordinator.yaml': ok"

"$FLOTILLA" keygen --kind agent --out "$tmp/agent.key" >/dev/null
for f in agent agent-schemas; do
	fl_log "$f.yaml: --check-config"
	sed -e "s|^key_file: .*|key_file: $tmp/agent.key|" -e "s|^state_dir: .*|state_dir: $tmp/state-$f|" \
		"$ex/$f.yaml" >"$tmp/$f.yaml"
	chmod 0644 "$tmp/$f.yaml" # holds trust roots: writable by its owner only
	assert_exit 0 "$FL_AGENT_BIN" --config "$tmp/$f.yaml" --check-config
	assert_contains "$OUT" "config '$tmp/$f.yaml' is valid"
done

fl_log "policies: rollout plan with each, over a fleet the policies select from"
fleet_add_agent eu 8 2 "env=staging,region=eu"
fleet_add_agent us 8 2 "env=staging,region=us"
fleet_start_coordinator
fleet_start_agent eu
fleet_start_agent us
fleet_wait_tenants 16
fleet_release "$ex/migrations" 1 examples
n=0
for p in "$ex"/policies/*.yaml; do
	fl_log "  $(basename -- "$p")"
	assert_exit 0 fleet_cli rollout plan --release "$FLEET_RELEASE_FILE" --policy "$p" --all
	assert_contains "$OUT" "$(sed -n 's/^name: //p' "$p")"
	n=$((n + 1))
done
assert_eq "$n" 3 "example policies"
fleet_pass
