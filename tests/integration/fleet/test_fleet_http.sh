#!/usr/bin/env bash
# The coordinator's HTTP endpoint (coordinator/http.h) on a live fleet (1 agent, 6 tenants):
#  1. read-only with security headers: GET and HEAD only (405 otherwise, with Allow), the
#     five security headers on every response, 404 and 401 included;
#  2. /metrics passes `promtool check metrics` and counts what happened: a completed
#     rollout, migration durations from reports, store commits, the connected agent, an
#     envelope the admin endpoint refused;
#  3. /api/v1 documents are the CLI's --json ones byte for byte (rollout, tenant, drift,
#     agents' fields), and tenants and audit page with after/limit;
#  4. on a non-loopback address, /metrics and /api need a token an operator key signed
#     (`flotilla http-token`): none, a bad one, an unknown signer's and an expired one are
#     refused 401; the dashboard's files are served without one;
#  5. the dashboard in headless Chromium (tests/tools/dashboard_check.mjs) shows a running
#     rollout's numbers as the API gives them, with no console error; its screenshot is
#     kept in the build folder (dashboard.png).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fl_fail "curl is needed"
FLEET_COORDINATOR_EXTRA='http_listen: http://127.0.0.1:0'
fleet_test_init
fleet_add_agent a1 6 2
fleet_start_coordinator
fleet_start_agent a1
fleet_wait_tenants 6

# http_port: the port the coordinator logged last (it restarts below).
http_port() {
	sed -n 's/.*http on .* (port \([0-9][0-9]*\)).*/\1/p' "$FLEET_DIR/logs/coordinator.log" | tail -n 1
}
BASE=http://127.0.0.1:$(http_port)
H=$(fl_tmpdir)

# req METHOD PATH [CURL ARGS...]: CODE, HDR (headers), BODY.
req() {
	local m=$1 p=$2
	shift 2
	if [ "$m" = HEAD ]; then
		CODE=$(curl -sS -I -o "$H/hdr" -w '%{http_code}' "$@" "$BASE$p") || fl_fail "curl -I $p failed"
		: >"$H/body"
	else
		CODE=$(curl -sS -X "$m" -o "$H/body" -D "$H/hdr" -w '%{http_code}' "$@" "$BASE$p") ||
			fl_fail "curl $m $p failed"
	fi
	HDR=$(tr -d '\r' <"$H/hdr")
	BODY=$(cat "$H/body")
}

# secure: the last response carries every security header.
secure() {
	assert_contains "$HDR" "Content-Security-Policy: default-src 'self'" "headers of $1"
	assert_contains "$HDR" "X-Content-Type-Options: nosniff" "headers of $1"
	assert_contains "$HDR" "X-Frame-Options: DENY" "headers of $1"
	assert_contains "$HDR" "Referrer-Policy: no-referrer" "headers of $1"
	assert_contains "$HDR" "Cache-Control: no-store" "headers of $1"
}

# metric NAME{LABELS}: its value in $BODY (a /metrics page).
metric() {
	printf '%s\n' "$BODY" | awk -v k="$1" 'index($0, k " ") == 1 { print $2 }'
}

fl_log "1. read-only, security headers everywhere"
req GET /metrics
assert_eq "$CODE" 200 "GET /metrics"
secure /metrics
assert_contains "$HDR" "Content-Type: text/plain; version=0.0.4" "/metrics content type"
for m in POST PUT DELETE PATCH; do
	for p in /metrics /api/v1/rollouts /; do
		req "$m" "$p"
		assert_eq "$CODE" 405 "$m $p"
		assert_contains "$HDR" "Allow: GET, HEAD" "$m $p"
		secure "$m $p"
	done
done
req HEAD /metrics
assert_eq "$CODE" 200 "HEAD /metrics"
assert_eq "$BODY" "" "body of HEAD /metrics"
assert_contains "$HDR" "Content-Length: " "HEAD /metrics says the length"
assert_not_contains "$HDR" "Content-Length: 0" "HEAD /metrics's length"
secure "HEAD /metrics"
for p in /nope /api/v1/nope /api/v1/rollouts/r-none /api/v1/tenants/nobody; do
	req GET "$p"
	assert_eq "$CODE" 404 "GET $p"
	secure "$p"
done
req GET '/api/v1/tenants?limit=x'
assert_eq "$CODE" 400 "a bad limit"
req GET '/api/v1/tenants?state=sleepy'
assert_eq "$CODE" 400 "an unknown state"

fl_log "a rollout to count"
fleet_policy simple <<'EOF2'
name: simple
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 2}
  - {name: rest, select: {percent: 100}, max_parallel: 4}
per_agent_parallel: 4
health:
  checks:
    - {name: users-readable, sql: "SELECT count(*) >= 0 FROM users", timeout: 2s}
EOF2
fleet_migrations 2
fleet_release "$FLEET_MIGS" 1 v1
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all --reason "test http"
fleet_wait_rollout completed
done1=$FLEET_ROLLOUT

fl_log "2. /metrics: promtool, and the numbers"
# an envelope the admin endpoint refuses: sealed for another key than the coordinator's
assert_exit nonzero env FLOTILLA_COORDINATOR=$FLEET_ADMIN_URL \
	FLOTILLA_COORDINATOR_KEY="$(_fleet_pub "$FLEET_VIEWER_KEY")" FLOTILLA_KEY=$FLEET_OPERATOR_KEY \
	"$FLOTILLA" agents list --timeout 3s
req GET /metrics
assert_eq "$CODE" 200 "GET /metrics"
printf '%s\n' "$BODY" >"$H/metrics.txt"
if ! promtool check metrics <"$H/metrics.txt" >"$H/promtool.out" 2>&1; then
	fl_fail "promtool check metrics: $(cat "$H/promtool.out")"
fi
assert_eq "$(metric 'flotilla_rollouts{state="completed"}')" 1 "completed rollouts"
assert_eq "$(metric 'flotilla_rollouts{state="running"}')" 0 "running rollouts"
assert_eq "$(metric 'flotilla_tenants{state="idle"}')" 6 "idle tenants"
assert_eq "$(metric flotilla_agents_connected)" 1 "connected agents"
assert_eq "$(printf '%s\n' "$BODY" | awk '/^flotilla_agent_up\{agent="a1"/ { print $2 }')" 1 "a1 up"
n=$(metric flotilla_migration_duration_seconds_count)
[ "${n:-0}" -ge 12 ] || fl_fail "migration durations observed: ${n:-none}, expected >= 12 (6 tenants x 2)"
n=$(metric flotilla_health_check_duration_seconds_count)
[ "${n:-0}" -ge 6 ] || fl_fail "health check durations observed: ${n:-none}, expected >= 6"
n=$(metric flotilla_store_commit_duration_seconds_count)
[ "${n:-0}" -ge 1 ] || fl_fail "store commits observed: ${n:-none}"
n=$(metric flotilla_reports_total)
[ "${n:-0}" -ge 6 ] || fl_fail "reports counted: ${n:-none}"
n=$(printf '%s\n' "$BODY" | awk '/^flotilla_envelope_refusals_total\{endpoint="admin"/ { s += $2 } END { print s + 0 }')
[ "$n" -ge 1 ] || fl_fail "no refusal counted on the admin endpoint: $(grep refusals "$H/metrics.txt")"
last_seen=$(printf '%s\n' "$BODY" | awk '/^flotilla_agent_last_seen_timestamp_seconds\{agent="a1"/ { print int($2) }')
[ "${last_seen:-0}" -gt 1700000000 ] || fl_fail "a1's last seen: ${last_seen:-none}"

fl_log "3. /api/v1: the CLI's documents"
req GET "/api/v1/rollouts/$done1"
assert_eq "$CODE" 200 "GET /api/v1/rollouts/$done1"
assert_contains "$HDR" "Content-Type: application/json" "API content type"
secure /api/v1/rollouts/ID
assert_exit 0 fleet_cli rollout status "$done1" --json
assert_eq "$BODY" "$OUT" "/api/v1/rollouts/ID and rollout status --json"
assert_contains "$BODY" '"waves":[{"index":0,"name":"canary"' "the rollout's waves"
req GET "/api/v1/rollouts?all=1"
assert_exit 0 fleet_cli rollout list --all --json
assert_eq "$BODY" "$OUT" "/api/v1/rollouts?all=1 and rollout list --all --json"
req GET /api/v1/tenants/a1_t003
assert_exit 0 fleet_cli tenant show a1_t003 --json
assert_eq "$BODY" "$OUT" "/api/v1/tenants/ID and tenant show --json"
req GET /api/v1/drift
assert_exit 0 fleet_cli fleet drift --json
assert_eq "$BODY" "$OUT" "/api/v1/drift and fleet drift --json"
req GET /api/v1/agents
assert_exit 0 fleet_cli agents list --json
# last_seen_at_ms moves with every poll: compare the rest
strip_seen() { sed 's/"last_seen_at_ms":[0-9]*/"last_seen_at_ms":N/g'; }
assert_eq "$(printf '%s' "$BODY" | strip_seen)" "$(printf '%s' "$OUT" | strip_seen)" \
	"/api/v1/agents and agents list --json"
req GET /api/v1/tenants
assert_exit 0 fleet_cli fleet status --json
assert_eq "$(printf '%s' "$BODY" | sed 's/,"next_after_tenant_id":""}$/}/')" "$OUT" \
	"/api/v1/tenants (one page) and fleet status --json"

fl_log "pages: tenants by id, audit by entry"
req GET '/api/v1/tenants?limit=4'
assert_eq "$(printf '%s' "$BODY" | grep -o '"tenant_id":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')" \
	"a1_t001 a1_t002 a1_t003 a1_t004 " "first page"
assert_contains "$BODY" '"next_after_tenant_id":"a1_t004"' "first page's next"
assert_contains "$BODY" '"total_count":6' "total over pages"
req GET '/api/v1/tenants?after=a1_t004&limit=4'
assert_eq "$(printf '%s' "$BODY" | grep -o '"tenant_id":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')" \
	"a1_t005 a1_t006 " "second page"
assert_contains "$BODY" '"next_after_tenant_id":""' "last page's next"
req GET '/api/v1/tenants?state=idle&select=ring=canary'
assert_eq "$(printf '%s' "$BODY" | grep -o '"tenant_id":"[^"]*"' | wc -l)" 2 "idle canaries"
req GET '/api/v1/audit?limit=2'
assert_eq "$CODE" 200 "GET /api/v1/audit"
assert_eq "$(printf '%s' "$BODY" | grep -o '"id":[0-9]*' | wc -l)" 2 "audit page of 2"
next=$(printf '%s' "$BODY" | grep -o '"next_after_id":[0-9]*' | cut -d: -f2)
last=$(printf '%s' "$BODY" | grep -o '"id":[0-9]*' | tail -n 1 | cut -d: -f2)
assert_eq "$next" "$last" "audit next_after_id"
req GET "/api/v1/audit?after=$next&limit=1000"
first=$(printf '%s' "$BODY" | grep -o '"id":[0-9]*' | head -n 1 | cut -d: -f2)
[ "$first" -gt "$next" ] || fl_fail "audit page after $next starts at $first"
assert_contains "$BODY" '"command":"rollout_start"' "the rollout's start in the audit log"

fl_log "4. a non-loopback address needs a token"
fleet_stop coordinator
sed -i 's#^http_listen: .*#http_listen: http://0.0.0.0:0#' "$FLEET_DIR/coordinator/coordinator.yaml"
_fleet_spawn coordinator "$FL_COORDINATOR_BIN" --config "$FLEET_DIR/coordinator/coordinator.yaml"
wait_for 30 "[ \"\$(grep -c 'tokens required' '$FLEET_DIR/logs/coordinator.log')\" -ge 1 ]"
BASE=http://127.0.0.1:$(http_port)
wait_for 30 "curl -sS -o /dev/null '$BASE/'"
req GET /metrics
assert_eq "$CODE" 401 "/metrics without a token"
assert_contains "$HDR" 'WWW-Authenticate: Bearer' "401's challenge"
secure "401"
req GET /api/v1/rollouts -H 'Authorization: Bearer nonsense.nonsense'
assert_eq "$CODE" 401 "a bad token"
assert_exit 0 "$FLOTILLA" http-token --key "$FLEET_VIEWER_KEY" --ttl 1h
token=$OUT
req GET /api/v1/rollouts -H "Authorization: Bearer $token"
assert_eq "$CODE" 200 "the viewer's token"
req GET /metrics -H "Authorization: Bearer $token"
assert_eq "$CODE" 200 "/metrics with the viewer's token"
# a signature character changed (not the last one: it carries only 2 bits of the signature)
k=$((${#token} - 10))
c=${token:k:1}
[ "$c" = A ] && c=B || c=A
req GET /metrics -H "Authorization: Bearer ${token:0:k}$c${token:k+1}"
assert_eq "$CODE" 401 "a token with its signature changed"
assert_exit 0 "$FLOTILLA" keygen --kind operator --out "$H/stranger.key"
assert_exit 0 "$FLOTILLA" http-token --key "$H/stranger.key"
req GET /metrics -H "Authorization: Bearer $OUT"
assert_eq "$CODE" 401 "an unknown operator's token"
assert_contains "$BODY" "not an operator of this coordinator" "why"
assert_exit 0 "$FLOTILLA" http-token --key "$FLEET_OPERATOR_KEY" --ttl 1s
short=$OUT
wait_for 10 "[ \"\$(curl -sS -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $short' '$BASE/metrics')\" = 401 ]"
assert_exit 2 "$FLOTILLA" http-token --key "$FLEET_VIEWER_KEY" --ttl 91d
req GET /
assert_eq "$CODE" 200 "the dashboard without a token"
secure "/"
req GET /dashboard.js
assert_eq "$CODE" 200 "the dashboard's script without a token"
assert_contains "$HDR" "Content-Type: text/javascript" "the script's type"

fl_log "5. the dashboard in headless Chromium, on a running rollout with a failure"
# Release 2: the migration fails on one canary (SQLSTATE P0001); the canary wave tolerates
# one failure and waits at its manual gate, so the rollout stays running, its numbers still.
fleet_policy gated <<'EOF2'
name: gated
waves:
  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 2, max_failures: 1, gate: manual}
  - {name: rest, select: {percent: 100}, max_parallel: 4}
per_agent_parallel: 4
EOF2
fleet_migrations 2
fleet_migration "$FLEET_MIGS" 20250401000000_picky "DO \$\$ BEGIN
  IF current_database() = 'a1_t001' THEN RAISE EXCEPTION 'picky: not on %', current_database(); END IF;
END \$\$;"
fleet_release "$FLEET_MIGS" 2 v2
fleet_start --release "$FLEET_RELEASE_FILE" --policy "$FLEET_POLICY" --all --reason "test dashboard"
wait_for 60 "[ \"\$(fleet_wave_field 0 state)\" = awaiting-promote ]"
assert_eq "$(fleet_rollout_state)" running "the gated rollout"
assert_eq "$(fleet_wave_field 0 tenants_failed)" 1 "failed canaries"
ART=${FL_ARTIFACT_DIR:-$PWD}/test_fleet_http
mkdir -p "$ART"
req GET /metrics -H "Authorization: Bearer $token"
printf '%s\n' "$BODY" >"$ART/metrics.txt"
assert_contains "$BODY" "flotilla_rollout_wave_tenants{rollout=\"$FLEET_ROLLOUT\",wave=\"0\",wave_name=\"canary\",state=\"failed\"} 1" \
	"the failed canary in /metrics"
if ! command -v chromium >/dev/null; then
	echo "SKIP: dashboard in chromium: chromium is not installed (deploy/install-deps.sh installs it)"
elif ! command -v node >/dev/null; then
	echo "SKIP: dashboard in chromium: node is not installed (deploy/install-deps.sh installs it)"
else
	assert_exit 0 node "$FL_SOURCE_DIR/tests/tools/dashboard_check.mjs" --base "$BASE" \
		--rollout "$FLEET_ROLLOUT" --token "$token" --sqlstate P0001 \
		--screenshot "$ART/dashboard.png" --dom "$ART/dashboard.html"
	fl_log "$OUT"
	fl_log "screenshot: $ART/dashboard.png"
	[ -s "$ART/dashboard.png" ] || fl_fail "no screenshot"
	dom=$(cat "$ART/dashboard.html")
	assert_contains "$dom" 'data-sqlstate="P0001"' "the failure's SQLSTATE on the page"
	assert_contains "$dom" "picky: not on a1_t001" "the failure's message on the page"
	assert_contains "$dom" 'data-tenant="a1_t006"' "the fleet grid"
	assert_contains "$dom" "waiting for promote" "the ETA names the gate"
fi

fleet_pass
