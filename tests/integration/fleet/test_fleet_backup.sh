#!/usr/bin/env bash
# Online backup of the coordinator's store (coordinator/store_backup.h): SIGUSR2 makes the
# running coordinator copy its store, a few thousand pages per tick, to STORE.backup, while it
# keeps serving. The backup restores: a coordinator started on it (with peers.seq) knows the
# rollout and its agents, and the agent carries on with it.
. "$(dirname "$0")/lib.sh"

FLEET_POLL_HOLD=1s
fleet_test_init
fleet_add_agent b1 3 1
fleet_start_coordinator
fleet_start_agent b1
fleet_wait_tenants 3
fleet_policy quick <<'EOF2'
name: quick
waves:
  - {name: all, select: {percent: 100}, max_parallel: 3}
EOF2
fleet_migrations 1
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
fleet_wait_rollout completed -t 60

store=$FLEET_DIR/coordinator/store.db
log=$FLEET_DIR/logs/coordinator.log
fl_log "SIGUSR2: a backup while it runs"
[ ! -e "$store.backup" ] || fl_fail "a backup before one was asked for"
kill -USR2 "${FLEET_PID[coordinator]}"
wait_for 60 "grep -q \"backup into '$store.backup' done\" '$log'"
[ -s "$store.backup" ] || fl_fail "no backup file"
[ ! -e "$store.backup.tmp" ] || fl_fail "the temporary file is left"
assert_eq "$(stat -c %a "$store.backup")" 600 "the backup's mode"
assert_exit 0 fleet_cli agents list # still serving

fl_log "a second rollout after the backup: not in it"
fleet_migrations 2
fleet_release "$FLEET_MIGS" 2 v2
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all
fleet_wait_rollout completed -t 60

fl_log "restore: the coordinator on the backup knows what it held then"
fleet_stop b1
fleet_stop coordinator
assert_eq "${FLEET_EXIT[coordinator]}" 0 "the coordinator's exit status"
cp "$store.backup" "$FLEET_DIR/restored.db"
rm -f -- "$store" "$store-wal" "$store-shm"
mv "$FLEET_DIR/restored.db" "$store"
fleet_start_coordinator
assert_exit 0 fleet_cli rollout list --all
assert_contains "$OUT" "r-1"
assert_not_contains "$OUT" "r-2"
assert_exit 0 fleet_cli agents list
assert_contains "$OUT" "b1"
fleet_start_agent b1
# the restored store knows the tenants already: wait for the agent's own Hello
wait_for 60 "[ \"\$(grep -c 'b1: reconciled' '$log')\" = 2 ]"
fleet_pass
