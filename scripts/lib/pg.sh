# Shared by scripts/test and scripts/dev: prerequisites and a private PostgreSQL 15 cluster.
# Source it; functions are prefixed fc_.

FC_PGBIN=${FC_PGBIN:-/usr/lib/postgresql/15/bin}
FC_PGBOUNCER=${FC_PGBOUNCER:-/usr/sbin/pgbouncer}

fc_log() { printf '%s\n' "$*" >&2; }

# Runs a command as the postgres OS user when we are root (PostgreSQL refuses root).
fc_as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Installs what is missing: PostgreSQL 15 server binaries, libpq and OpenSSL headers, pkg-config,
# PgBouncer (the tenancy tests also run through it), pgTAP and pg_prove (the database's grant
# and policy tests, tests/sql), and aiosmtpd from PyPI (the delivery tests' SMTP relay)
# (python3, used to find a free port, is on every machine of this kind).
fc_ensure_prerequisites() {
    command -v swift >/dev/null || { fc_log "swift is not installed: install Swift 6.1 or newer first"; return 1; }
    local missing=()
    [ -x "$FC_PGBIN/initdb" ] || missing+=(postgresql-15)
    [ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
    [ -f /usr/include/openssl/evp.h ] || missing+=(libssl-dev)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    [ -x "$FC_PGBOUNCER" ] || missing+=(pgbouncer)
    [ -f /usr/share/postgresql/15/extension/pgtap.control ] || missing+=(postgresql-15-pgtap)
    command -v pg_prove >/dev/null || missing+=(libtap-parser-sourcehandler-pgtap-perl)
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
            fc_log "missing: ${missing[*]} (install them with your package manager)"
            return 1
        fi
        fc_log "installing ${missing[*]} ..."
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        # The Debian package starts a cluster of its own; we never use it.
        if command -v pg_lsclusters >/dev/null; then
            pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
                pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
            done
        fi
    fi
    # aiosmtpd: the real SMTP relay of the delivery tests (Tests/DeliveryTests/Peers).
    local missing_pip=()
    python3 -c 'import aiosmtpd' 2>/dev/null || missing_pip+=(aiosmtpd)
    if [ ${#missing_pip[@]} -gt 0 ]; then
        fc_log "installing ${missing_pip[*]} (pip) ..."
        python3 -m pip install -q --disable-pip-version-check "${missing_pip[@]}" >/dev/null 2>&1 \
            || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${missing_pip[@]}" >/dev/null \
            || { fc_log "cannot install ${missing_pip[*]} with pip"; return 1; }
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
    fc_ensure_python_packages
}

# Python packages the tests use, from PyPI, in a virtual environment of the checkout
# ($FC_PYTHON_ENV, default .build/python): jsonschema and openrpc check the OpenRPC document
# (scripts/lib/openrpc_check.py). FC_PYTHON is exported as its interpreter. Reinstalled only
# when the list changes.
FC_PIP_PACKAGES=(jsonschema==4.26.0 openrpc==11.1.1)
fc_ensure_python_packages() {
    local env=${FC_PYTHON_ENV:-$PWD/.build/python}
    local stamp="$env/forecourt-packages"
    if [ "$(cat "$stamp" 2>/dev/null)" != "${FC_PIP_PACKAGES[*]}" ]; then
        fc_log "installing Python packages ${FC_PIP_PACKAGES[*]} into $env ..."
        python3 -m venv "$env" || return 1
        "$env/bin/pip" install --quiet --disable-pip-version-check "${FC_PIP_PACKAGES[@]}" || return 1
        printf '%s' "${FC_PIP_PACKAGES[*]}" >"$stamp"
    fi
    export FC_PYTHON="$env/bin/python"
}

# A TCP port nobody listens on now.
fc_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# fc_pg_init DIR: creates a cluster in DIR/data (DIR is also the socket directory).
fc_pg_init() {
    local dir=$1
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; fi
    chmod 755 "$dir"
    fc_as_pg "$FC_PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
}

# fc_pg_start DIR PORT [extra postgres options]: starts the cluster, listening on the socket
# directory DIR and on 127.0.0.1:PORT.
fc_pg_start() {
    local dir=$1 port=$2
    shift 2
    fc_as_pg "$FC_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $*" start >/dev/null \
        || { tail -20 "$dir/server.log" >&2; return 1; }
}

# fc_pg_stop DIR: stops the cluster if it runs.
fc_pg_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    fc_as_pg "$FC_PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# fc_pgbouncer_start DIR PGDIR PGPORT PORT USER...: PgBouncer in transaction mode on
# 127.0.0.1:PORT in front of the cluster of fc_pg_start PGDIR PGPORT, admitting USERs without a
# password (trust, as the cluster does). It resets every server session after each
# transaction (DISCARD ALL), so nothing of a session survives from one transaction to the next.
fc_pgbouncer_start() {
    local dir=$1 pgdir=$2 pgport=$3 port=$4
    shift 4
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; fi
    : >"$dir/userlist.txt"
    for user in "$@"; do printf '"%s" ""\n' "$user" >>"$dir/userlist.txt"; done
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$pgdir port=$pgport
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
server_reset_query = DISCARD ALL
server_reset_query_always = 1
max_client_conn = 2000
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    fc_as_pg "$FC_PGBOUNCER" -d -q "$dir/pgbouncer.ini" || { tail -20 "$dir/pgbouncer.log" >&2; return 1; }
    local _
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    fc_log "PgBouncer did not start listening on $port"
    tail -20 "$dir/pgbouncer.log" >&2
    return 1
}

# fc_pgbouncer_stop DIR: stops PgBouncer if it runs.
fc_pgbouncer_stop() {
    local dir=$1
    [ -f "$dir/pgbouncer.pid" ] || return 0
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
}
