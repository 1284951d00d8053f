# The start-up loop shared by the start scripts. Sourced after lib.sh; the caller
# defines peer_command (fills PEER_CMD from PEER_PORT and, for Orthanc, PEER_HTTP_PORT)
# and sets PEER_NAME, PEER_AET, PEER_READY_TIMEOUT, PEER_STOP_GRACE, PEER_EXTRA_PORTS
# ("http" to also pick and check an HTTP port).

PEER_STARTED=0
peers_cleanup_on_failure() {
    local status=$?
    if [ "$PEER_STARTED" != 1 ]; then
        if [ -n "${PEER_PID:-}" ]; then
            peers_stop_pid "$PEER_PID" 5 >/dev/null 2>&1 || true
        fi
        if [ -n "${PEER_DIR:-}" ] && [ "${PEER_DIR_OURS:-0}" = 1 ]; then
            rm -rf -- "$PEER_DIR"
        fi
    fi
    exit "$status"
}
trap peers_cleanup_on_failure EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

peers_start() {
    local attempt status
    for attempt in 1 2 3 4 5; do
        PEER_PORT=${PEER_FIXED_PORT:-$(peers_free_port)}
        PEER_HTTP_PORT=""
        if [ "${PEER_EXTRA_PORTS:-}" = http ]; then
            PEER_HTTP_PORT=${PEER_FIXED_HTTP_PORT:-$(peers_free_port "$PEER_PORT")}
        fi
        peer_command
        peers_launch "${PEER_CMD[@]}"
        status=0
        # shellcheck disable=SC2086 # the HTTP port is one word or none
        peers_wait_ready "$PEER_PID" "$PEER_PORT" "$PEER_AET" "$PEER_READY_TIMEOUT" $PEER_HTTP_PORT ||
            status=$?
        if [ "$status" = 0 ]; then
            # The caller sets PEER_STARTED=1 once everything else (loading) worked.
            return 0
        fi
        peers_stop_pid "$PEER_PID" 5 >/dev/null 2>&1 || true
        PEER_PID=""
        if [ "$status" = 2 ]; then
            echo "port ${PEER_PORT_STOLEN:-?} is held by another process (PIDs: $(peers_port_pids "${PEER_PORT_STOLEN:-0}" | tr "\n" " "))" >&2
        fi
        # Only a port taken under our feet is worth another try, on other ports.
        if [ "$status" != 2 ] || [ -n "${PEER_FIXED_PORT:-}${PEER_FIXED_HTTP_PORT:-}" ]; then
            peers_die "$PEER_NAME did not start (attempt $attempt)"
        fi
        echo "trying other ports" >&2
    done
    peers_die "$PEER_NAME did not start: ports kept being taken"
}
