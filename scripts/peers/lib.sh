# Shared by the peer scripts: free ports, launching in the background, readiness by
# C-ECHO, port ownership and stopping by PID. Sourced, not run.
#
# Conventions: every peer runs in its own session (setsid), so its PID is also its
# process group and stopping it takes any child it forked (dcmqrscp forks one per
# association). Its state lives in one folder (PEER_DIR) holding peer.env, the
# rendered configuration, the log and the storage; `stop` reads peer.env.

# Debian's DCMTK leaves Nagle's algorithm on: ~90 ms per C-STORE on loopback.
export TCP_NODELAY=1

ECHOSCU=/usr/bin/echoscu
# Extra echoscu arguments of the readiness probe (a TLS peer needs +tls/+tla -ic).
PEER_ECHO_ARGS=()

peers_die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

peers_need() {
    local tool
    for tool in "$@"; do
        [ -x "$tool" ] || command -v "$tool" >/dev/null 2>&1 ||
            peers_die "$tool not found: run scripts/peers/install"
    done
}

# Prints the PIDs of the processes holding a listening TCP socket on port $1.
peers_port_pids() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# Prints a TCP port nobody listens on, avoiding the ports given as arguments.
# Racy by nature (someone may take it before the peer binds): the start scripts
# check afterwards that the port is held by the started PID, and retry otherwise.
peers_free_port() {
    local port taken tries=0
    while [ "$tries" -lt 200 ]; do
        tries=$((tries + 1))
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        for taken in "$@"; do
            [ "$port" = "$taken" ] && continue 2
        done
        if [ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
            echo "$port"
            return 0
        fi
    done
    peers_die "no free TCP port found after 200 tries"
}

# Whether PID $1 is running (a zombie counts as ended).
peers_alive() {
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Whether PID $1 holds the listening socket of port $2.
peers_owns_port() {
    peers_port_pids "$2" | grep -qx "$1"
}

# Starts "$@" in the background in a session of its own, output to $PEER_DIR/peer.log;
# sets PEER_PID.
peers_launch() {
    # In a non-interactive shell a background job is not a process group leader, so
    # setsid makes the session in place and $! is the peer's own PID.
    setsid "$@" >"$PEER_DIR/peer.log" 2>&1 </dev/null &
    PEER_PID=$!
}

# For a peer (PID $1, DICOM port $2) that exited during start-up: returns 2 when its log
# says a port was already taken (another process won the race for a port we picked, so
# the start loop tries other ports), else prints the log and returns 1. DCMTK says
# "Address already in use"; Orthanc says "...privileged or already in use".
peers_exited_on_a_taken_port() {
    if grep -qiE "already in use|cannot bind|bind failed" "$PEER_DIR/peer.log" 2>/dev/null; then
        PEER_PORT_STOLEN=$2
        return 2
    fi
    echo "peer (PID $1) exited during start-up; its log:" >&2
    tail -n 30 "$PEER_DIR/peer.log" >&2 || true
    return 1
}

# Waits until PID $1 answers an association request on port $2 for AE title $3 and
# holds the port, for at most $4 seconds. An association rejection counts as an
# answer (a peer started with --refuse is ready when it refuses). Extra ports to
# check ownership of follow as arguments 5...
peers_wait_ready() {
    local pid=$1 port=$2 aet=$3 timeout=$4 extra out deadline
    shift 4
    deadline=$(($(date +%s%N) / 1000000 + timeout * 1000))
    while :; do
        if ! peers_alive "$pid"; then
            peers_exited_on_a_taken_port "$pid" "$port"
            return $?
        fi
        if out=$("$ECHOSCU" "${PEER_ECHO_ARGS[@]}" -to 1 -ta 2 -ts 2 -aet PEERS-PROBE -aec "$aet" 127.0.0.1 "$port" 2>&1) ||
            printf '%s' "$out" | grep -q 'Association Rejected'; then
            if peers_owns_port "$pid" "$port"; then
                for extra in "$@"; do
                    peers_owns_port "$pid" "$extra" || { PEER_PORT_STOLEN=$extra; return 2; }
                done
                # Orthanc answers C-ECHO briefly before exiting when its HTTP port is
                # taken: check it is still there once ownership is established.
                if ! peers_alive "$pid"; then
                    peers_exited_on_a_taken_port "$pid" "$port"
                    return $?
                fi
                return 0
            fi
            # Someone else answers on this port: the start script picks another one.
            PEER_PORT_STOLEN=$port
            return 2
        fi
        if [ "$(($(date +%s%N) / 1000000))" -ge "$deadline" ]; then
            echo "peer (PID $pid) did not answer C-ECHO on port $port within ${timeout}s; its log:" >&2
            tail -n 30 "$PEER_DIR/peer.log" >&2 || true
            return 1
        fi
        sleep 0.05
    done
}

# Stops the process group of PID $1: TERM, then KILL after $2 seconds.
peers_stop_pid() {
    local pid=$1 grace=$2 waited=0
    peers_alive "$pid" || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    while peers_alive "$pid" && [ "$waited" -lt $((grace * 20)) ]; do
        sleep 0.05
        waited=$((waited + 1))
    done
    if peers_alive "$pid"; then
        echo "PID $pid still running ${grace}s after TERM: KILL" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        waited=0
        while peers_alive "$pid" && [ "$waited" -lt 100 ]; do
            sleep 0.05
            waited=$((waited + 1))
        done
    fi
    # Children of the group (dcmqrscp's per-association processes) go with KILL too.
    kill -KILL -- "-$pid" 2>/dev/null || true
    ! peers_alive "$pid"
}

# Makes PEER_DIR (a new temporary folder unless --dir gave one).
peers_make_dir() {
    local name=$1
    if [ -z "${PEER_DIR:-}" ]; then
        PEER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dicom-auto-$name.XXXXXX")
    else
        mkdir -p "$PEER_DIR"
    fi
    PEER_DIR=$(cd "$PEER_DIR" && pwd)
}

# Writes the peer's facts to stdout and to $PEER_DIR/peer.env (KEY=value lines).
peers_announce() {
    local line
    : >"$PEER_DIR/peer.env.tmp"
    for line in "$@"; do
        echo "$line" >>"$PEER_DIR/peer.env.tmp"
    done
    mv "$PEER_DIR/peer.env.tmp" "$PEER_DIR/peer.env"
    cat "$PEER_DIR/peer.env"
}

# Replaces @NAME@ placeholders of template $1 into file $2 with the NAME=value pairs
# that follow. Values must not contain '|' or newlines (paths and numbers here).
peers_render() {
    local template=$1 out=$2 pair script=""
    shift 2
    for pair in "$@"; do
        case "${pair#*=}" in *'|'*) peers_die "placeholder value with '|': $pair" ;; esac
        script="$script;s|@${pair%%=*}@|${pair#*=}|g"
    done
    sed -e "${script#;}" "$template" >"$out.tmp"
    if grep -q '@[A-Z_]*@' "$out.tmp"; then
        peers_die "unfilled placeholder in $out: $(grep -o '@[A-Z_]*@' "$out.tmp" | sort -u | tr '\n' ' ')"
    fi
    mv "$out.tmp" "$out"
}

# Prints, NUL-separated and sorted, the DICOM files (found by their DICM magic at
# byte 128, as the loader crate does) under the files and folders given.
peers_dicom_files() {
    find "$@" -type f -print0 | sort -z | while IFS= read -r -d '' f; do
        if [ "$(dd if="$f" bs=1 skip=128 count=4 2>/dev/null)" = DICM ]; then
            printf '%s\0' "$f"
        fi
    done
}

# The storescu option that proposes transfer syntax UID $1 (-x=: the uncompressed
# ones); fails for syntaxes storescu cannot send.
peers_storescu_ts_option() {
    case "$1" in
        1.2.840.10008.1.2 | 1.2.840.10008.1.2.1 | 1.2.840.10008.1.2.2) echo "-x=" ;;
        1.2.840.10008.1.2.1.99) echo "-xd" ;;
        1.2.840.10008.1.2.4.50) echo "-xy" ;;
        1.2.840.10008.1.2.4.51) echo "-xx" ;;
        1.2.840.10008.1.2.4.70) echo "-xs" ;;
        1.2.840.10008.1.2.4.80) echo "-xt" ;;
        1.2.840.10008.1.2.4.81) echo "-xu" ;;
        1.2.840.10008.1.2.4.90) echo "-xv" ;;
        1.2.840.10008.1.2.4.91) echo "-xw" ;;
        1.2.840.10008.1.2.5) echo "-xr" ;;
        *) return 1 ;;
    esac
}

# Stores DICOM files with DCMTK storescu, each in its own transfer syntax (one
# association per syntax). Usage: peers_store_files PORT CALLED_AE CALLING_AE LOG FILE...
# Returns non-zero when any store fails; the log has storescu's output.
peers_store_files() {
    local port=$1 called=$2 calling=$3 log=$4 f ts option
    shift 4
    declare -A groups=()
    for f in "$@"; do
        ts=$(/usr/bin/dcmdump -q -s -Un +P 0002,0010 "$f" 2>/dev/null | sed -n 's/^(0002,0010) UI \[\([0-9.]*\)\].*$/\1/p' | head -n 1)
        option=$(peers_storescu_ts_option "$ts") || {
            echo "$f: transfer syntax '$ts' cannot be sent by storescu" >>"$log"
            return 1
        }
        groups["$option"]+="$f"$'\n'
    done
    : >>"$log"
    for option in "${!groups[@]}"; do
        local files=()
        mapfile -t files < <(printf '%s' "${groups[$option]}")
        # -R: propose the SOP classes of the files, not storescu's built-in list.
        /usr/bin/storescu -aet "$calling" -aec "$called" -to 10 -ta 10 -td 30 -R "$option" \
            127.0.0.1 "$port" "${files[@]}" >>"$log" 2>&1 || return 1
    done
}
