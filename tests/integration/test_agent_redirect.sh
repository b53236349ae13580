#!/usr/bin/env bash
# Enrollment and redirects: with enrollment_token set, Hellos carry the token until one is
# accepted, and never after (state_dir/enrolled); a Redirect to a key the agent does not pin
# is not followed; one to a pinned key is: the agent says Hello there and polls there.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

ag_keys
"$FLOTILLA" keygen --kind coordinator --out "$AG/coord2.key" >/dev/null
"$FLOTILLA" keygen --kind coordinator --out "$AG/coord3.key" >/dev/null
ag_tenant_db acme >/dev/null
TOKEN=fle1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA

# other_rogue N KEY: a second coordinator in $AG/rogueN, listening on its own port.
other_rogue() {
	mkdir -p "$AG/rogue$1"
	"$FL_ROGUE" serve --listen tcp://127.0.0.1:0 --key "$AG/$2" \
		--agent "$(ag_pub "$AG/agent.key")" --dir "$AG/rogue$1" 2>>"$AG/rogue$1.log" &
	wait_for 10 test -s "$AG/rogue$1/url"
}

ag_rogue_start
other_rogue 2 coord2.key
other_rogue 3 coord3.key
AG_PINNED="$(ag_pub "$AG/coord.key"), $(ag_pub "$AG/coord2.key")"
ag_config "tenants:
  - {id: acme, server: main, database: acme}
enrollment_token: $TOKEN"

fl_log "enrollment: the first Hello carries the token"
ag_start
assert_contains "$(grep '^hello ' "$AG_ROGUE_DIR/hellos.log" | tail -n 1)" "token=$TOKEN"
wait_for 10 test -e "$AG_STATE/enrolled"
ag_stop TERM
fl_log "...and once accepted, never again"
ag_start
assert_contains "$(grep '^hello ' "$AG_ROGUE_DIR/hellos.log" | tail -n 1)" "token=-"

fl_log "a redirect to a key the agent does not pin: not followed"
ag_cmd "redirect $(cat "$AG/rogue3/url") $(ag_pub "$AG/coord3.key")"
wait_for 30 grep -q "not following a redirect" "$AG_LOG"
polls=$(wc -l <"$AG_ROGUE_DIR/polls.log")
wait_for 30 "[ \$(wc -l <'$AG_ROGUE_DIR/polls.log') -gt $((polls + 3)) ]"
[ ! -s "$AG/rogue3/hellos.log" ] || fl_fail "the agent said Hello to an unpinned coordinator"
[ ! -s "$AG/rogue3/polls.log" ] || fl_fail "the agent polled an unpinned coordinator"

fl_log "a redirect to a pinned key: Hello and polls go there"
ag_cmd "redirect $(cat "$AG/rogue2/url") $(ag_pub "$AG/coord2.key")"
wait_for 30 test -s "$AG/rogue2/hellos.log"
assert_contains "$(head -n 1 "$AG/rogue2/hellos.log")" "agent=test-agent"
wait_for 30 grep -q "^poll " "$AG/rogue2/polls.log"
assert_contains "$(cat "$AG_LOG")" "redirected to"
ag_stop TERM
assert_eq "$AG_RC" 0 "exit status"
fl_pass
