#!/usr/bin/env bash
# End-to-end test against a real Matrix homeserver (Synapse, from PyPI), on 127.0.0.1 only.
#
#   scripts/e2e-synapse.sh                      # the default scenario (Element's engine, Node)
#   scripts/e2e-synapse.sh CMD [ARGS...]        # any scenario command instead
#   E2E_SCENARIO='CMD ARGS' scripts/e2e-synapse.sh
#   E2E_KEEP_RUN=1 scripts/e2e-synapse.sh       # keep the run directory (config, database, logs)
#   E2E_TIMEOUT=900 scripts/e2e-synapse.sh      # the scenario's time limit in seconds (default 600)
#
# Steps: a virtual environment with the pinned Synapse and the Element client's npm packages
# (npm ci), each reused while the file pinning it is unchanged; the leak check's unit tests; a fresh run
# directory with a generated config (SQLite, 127.0.0.1 on a free port picked now, registration
# by a throwaway shared secret, no federation, raised rate limits, logs in the run directory),
# Synapse in the background, users registered by shared secret, planted strings for the leak
# check's self-check, the scenario, then the server stopped and the leak check: Synapse's
# database files and logs must hold none of the plaintexts and keys the scenario recorded, and
# every planted string. The server is always stopped and the run directory removed, also when
# the scenario fails or the script is interrupted; the exit status is the scenario's (or the
# leak check's, or the harness's own when it fails first).
#
# The scenario command runs from the repository root with these variables:
#   E2E_HOMESERVER    http://127.0.0.1:PORT (the client-server API base)
#   E2E_SERVER_NAME   the server name (user ids are @NAME:E2E_SERVER_NAME)
#   E2E_USERS_FILE    JSON: {"users": {NAME: {"user_id", "password", "admin"}}, "admin": NAME}
#                     the users are E2E_USER_NAMES (default: alice bob carol dave) and "e2e-admin",
#                     a server admin for the admin API
#   E2E_SECRETS_DIR   write *.jsonl here: every plaintext and key the scenario used, one JSON
#                     object a line, {"label": ..., "text": ...} or {"label": ..., "bytes_b64": ...}
#                     (see tests/synapse/leak_check.py); the leak check fails if it finds one
#   E2E_WORK_DIR      an empty scratch directory for the scenario
# It must exit 0 on success; any other status fails the run (124: it ran out of time).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

SYNAPSE_VERSION=1.163.2           # keep in step with tests/synapse/requirements.txt
state="$root/.e2e-synapse"        # gitignored: the virtual environment and the run directories
venv="$state/venv-synapse-$SYNAPSE_VERSION"
suite="$root/tests/synapse"          # the harness helpers, the leak check, the Element client
harness=(python3 "$suite/harness.py")
SECONDS=0

say() { echo "== e2e-synapse: $*"; }
fail() { echo "e2e-synapse: $*" >&2; exit 1; }
elapsed() { echo $((SECONDS - $1)); }

for tool in python3 node npm setsid timeout sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is required"
done
if [ $# -gt 0 ]; then
  scenario=("$@")
elif [ -n "${E2E_SCENARIO:-}" ]; then
  scenario=(bash -c "$E2E_SCENARIO")
else
  scenario=(node "$suite/element_scenario.mjs")
fi

# --- Install (outside any run: nothing here is started or needs cleaning up) ----------------
# Each install is reused while the file that pins it and the interpreter are unchanged: a stamp
# holding both is written only once the install has succeeded, so a half-finished one is redone.
pins_of() { echo "$(sha256sum "$1" | cut -d' ' -f1) $("$2" --version 2>&1)"; }
is_current() { [ "$(cat "$1/.e2e-stamp" 2>/dev/null)" = "$(pins_of "$2" "$3")" ]; }
t=$SECONDS
if is_current "$venv" "$suite/requirements.txt" python3; then
  say "reusing $venv"
else
  say "installing Synapse $SYNAPSE_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # Wheels only (no compiler needed, fails fast otherwise); no byte-compiling (Python does it on import).
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
    -r "$suite/requirements.txt"
  installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("matrix-synapse"))')"
  [ "$installed" = "$SYNAPSE_VERSION" ] ||
    fail "tests/synapse/requirements.txt pins matrix-synapse $installed, this script expects $SYNAPSE_VERSION"
  pins_of "$suite/requirements.txt" python3 > "$venv/.e2e-stamp"
fi
if is_current "$suite/node_modules" "$suite/package-lock.json" node; then
  say "reusing tests/synapse/node_modules"
else
  say "installing the Element client's packages (npm ci)"
  (cd "$suite" && npm ci --no-audit --no-fund --loglevel=error)
  pins_of "$suite/package-lock.json" node > "$suite/node_modules/.e2e-stamp"
fi
t_install=$(elapsed "$t")

if ! unit="$(python3 "$suite/test_leak_check.py" 2>&1)"; then
  echo "$unit" >&2
  fail "the leak check's unit tests failed (python3 tests/synapse/test_leak_check.py)"
fi
say "leak check unit tests: $(grep '^Ran ' <<< "$unit"), OK"

# --- One run: its own directory, server, and cleanup ------------------------------------------
mkdir -p "$state/runs"
run="$(mktemp -d "$state/runs/$(date +%Y%m%d-%H%M%S)-XXXX")"
server="$run/server"      # everything Synapse writes: config, database, logs (the leak check reads it)
mkdir -p "$server" "$run/secrets" "$run/work"
pid=""
port=""
scenario_pid=""
status=0

stop_server() {
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "e2e-synapse: Synapse (pid $pid) ignored SIGTERM for 10 s: killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  if kill -0 "$pid" 2>/dev/null; then
    echo "e2e-synapse: Synapse (pid $pid) is still running" >&2; return 1
  fi
  if [ -n "$port" ] && ! "${harness[@]}" port-free "$port"; then
    echo "e2e-synapse: port $port is still in use after Synapse stopped" >&2; return 1
  fi
  pid=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$scenario_pid" ] && kill -0 "$scenario_pid" 2>/dev/null; then
    echo "e2e-synapse: stopping the scenario (process group $scenario_pid)" >&2
    kill -TERM -- "-$scenario_pid" 2>/dev/null || true
    wait "$scenario_pid" 2>/dev/null || true
  fi
  stop_server || rc=1
  if [ "$rc" -ne 0 ] && [ -f "$server/homeserver.log" ]; then
    echo "--- last lines of the Synapse log ($server/homeserver.log) ---" >&2
    grep -v '\[SQL' "$server/homeserver.log" | tail -n 30 >&2 || true
  fi
  if [ "${E2E_KEEP_RUN:-0}" = 1 ]; then
    echo "e2e-synapse: kept the run directory $run"
  else
    rm -rf "$run"
  fi
  echo "e2e-synapse: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in ${SECONDS}s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

write_config() {
  local py=python3
  local shared_secret macaroon form
  shared_secret="$($py -c 'import secrets; print(secrets.token_hex(32))')"
  macaroon="$($py -c 'import secrets; print(secrets.token_hex(32))')"
  form="$($py -c 'import secrets; print(secrets.token_hex(32))')"
  echo "$shared_secret" > "$run/shared_secret"
  cat > "$server/log.yaml" <<YAML
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
filters:
  context:
    (): synapse.logging.context.LoggingContextFilter
    request: ""
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filters: [context]
    filename: $server/homeserver.log
    encoding: utf8
root:
  level: INFO
  handlers: [file]
loggers:
  # Every SQL statement with its values: whatever the server stores, even rows it deletes
  # later (delivered to-device messages), passes through this log, so the leak check sees it.
  synapse.storage.SQL:
    level: DEBUG
disable_existing_loggers: false
YAML
  # Every limit the test could hit, raised (1000 a second, bursts of 10000).
  local limit="{per_second: 1000, burst_count: 10000}"
  cat > "$server/homeserver.yaml" <<YAML
server_name: localhost
pid_file: $server/homeserver.pid
public_baseurl: http://127.0.0.1:$port/
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: $server/homeserver.db
log_config: $server/log.yaml
media_store_path: $server/media_store
signing_key_path: $server/localhost.signing.key
registration_shared_secret: $shared_secret
macaroon_secret_key: $macaroon
form_secret: $form
enable_registration: false
bcrypt_rounds: 4            # throwaway passwords: hash them fast
report_stats: false
enable_metrics: false
url_preview_enabled: false
presence:
  enabled: false
# No federation: no federation listener, no outbound federation, no key servers.
federation_domain_whitelist: []
federation_sender_instances: []
trusted_key_servers: []
suppress_key_server_warning: true
rc_message: $limit
rc_registration: $limit
rc_login: {address: $limit, account: $limit, failed_attempts: $limit}
rc_joins: {local: $limit, remote: $limit}
rc_joins_per_room: $limit
rc_invites: {per_room: $limit, per_user: $limit, per_issuer: $limit}
rc_key_requests: $limit
rc_room_creation: $limit
rc_admin_redaction: $limit
rc_3pid_validation: $limit
rc_presence: {per_user: $limit}
rc_delayed_event_mgmt: $limit
rc_profile: $limit
rc_user_directory: $limit
rc_reports: $limit
rc_media_create: $limit
YAML
}

# --- Start, on a port picked now (retried if another process takes it first) ----------------
t=$SECONDS
for attempt in 1 2 3; do
  port="$("${harness[@]}" free-port)"
  write_config
  # The server's signing key, in Synapse's format ("ed25519 <key id> <unpadded base64 seed>"):
  # 32 random bytes, written here rather than by a second Synapse start (--generate-keys).
  [ -f "$server/localhost.signing.key" ] || python3 -c '
import base64, secrets, sys
seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
open(sys.argv[1], "w").write(f"ed25519 a_{secrets.token_hex(2)} {seed}\n")' "$server/localhost.signing.key"
  say "starting Synapse on 127.0.0.1:$port (attempt $attempt)"
  "$venv/bin/python" -m synapse.app.homeserver --config-path "$server/homeserver.yaml" \
    >"$server/stdout.log" 2>&1 &
  pid=$!
  # Generous: the first start after an install compiles Synapse's modules, slow on a busy machine.
  if "${harness[@]}" wait-up "http://127.0.0.1:$port" "$pid" 180; then
    break
  fi
  stop_server || true
  if ! grep -q "Address already in use" "$server/homeserver.log" "$server/stdout.log" 2>/dev/null ||
     [ "$attempt" -eq 3 ]; then
    tail -n 20 "$server/stdout.log" >&2 || true
    fail "Synapse did not start"
  fi
done
t_start=$(elapsed "$t")
homeserver="http://127.0.0.1:$port"

t=$SECONDS
read -r -a user_names <<< "${E2E_USER_NAMES:-alice bob carol dave}"
"${harness[@]}" register "$homeserver" "$(cat "$run/shared_secret")" "$run/users.json" "${user_names[@]}"
"${harness[@]}" plant "$homeserver" "$run/users.json" "$run/secrets"
say "registered ${user_names[*]} and e2e-admin; planted the self-check strings"
t_users=$(elapsed "$t")

# --- The scenario ------------------------------------------------------------------------------
say "scenario: ${scenario[*]}"
t=$SECONDS
# In its own process group, in the background: the shell's `wait` returns at once on INT/TERM
# (a foreground child would delay the trap until it ended), and cleanup stops the whole group.
E2E_HOMESERVER="$homeserver" E2E_SERVER_NAME=localhost E2E_USERS_FILE="$run/users.json" \
  E2E_SECRETS_DIR="$run/secrets" E2E_WORK_DIR="$run/work" \
  setsid timeout --kill-after=10 "${E2E_TIMEOUT:-600}" "${scenario[@]}" &
scenario_pid=$!
wait "$scenario_pid" || status=$?
scenario_pid=""
t_scenario=$(elapsed "$t")
if [ "$status" -eq 124 ]; then
  echo "e2e-synapse: the scenario ran out of time (E2E_TIMEOUT=${E2E_TIMEOUT:-600} s)" >&2
fi
[ "$status" -eq 0 ] || { echo "e2e-synapse: the scenario failed (exit $status)" >&2; exit "$status"; }

# --- Stop, then search what the server kept -----------------------------------------------------
stop_server
t=$SECONDS
python3 "$suite/leak_check.py" "$server" "$run/secrets"
t_leak=$(elapsed "$t")
say "timings: install ${t_install}s, Synapse start ${t_start}s, users and plants ${t_users}s, scenario ${t_scenario}s, leak check ${t_leak}s"
