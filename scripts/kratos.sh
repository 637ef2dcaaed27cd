# shellcheck shell=bash
# Start a throwaway Ory Kratos v1.3.1 for Warden's integration tests.
#
# SOURCE this file from the repository root (it is what .ci/run does):
#
#   source scripts/kratos.sh || exit 1
#   trap kratos_stop EXIT
#   go test ./sessions/kratos/...
#
# It builds the binary if it is not cached yet (keyed on tools/kratos/go.sum),
# starts `kratos serve` on loopback (public 44330, admin 44340) with an
# in-memory database, waits until the admin API is ready, and exports
# KRATOS_ADMIN_URL, KRATOS_PUBLIC_URL, KRATOS_BIN and KRATOS_PID.
# kratos_stop ends the server by its PID; the caller sets the trap.
#
# On failure it prints why (and the log tail) and returns non-zero. It never
# changes the caller's shell options.

KRATOS_PUBLIC_PORT=44330
KRATOS_ADMIN_PORT=44340
KRATOS_LOG="${KRATOS_LOG:-$PWD/.cache/kratos/kratos.log}"

# kratos_build makes sure $KRATOS_BIN exists, building it when go.sum changed.
kratos_build() {
	if [ ! -f tools/kratos/go.sum ] || [ ! -f tools/kratos/kratos.yml ]; then
		echo "kratos.sh: run from the repository root (tools/kratos/ not found in $PWD)" >&2
		return 1
	fi
	local key
	key="$(sha256sum tools/kratos/go.sum | cut -c1-16)" || return 1
	KRATOS_BIN="$PWD/.cache/kratos/$key/kratos"
	export KRATOS_BIN
	if [ -x "$KRATOS_BIN" ]; then
		return 0
	fi
	echo "kratos.sh: building Kratos v1.3.1 into $KRATOS_BIN (about 2 minutes on 2 cores)" >&2
	mkdir -p "$(dirname "$KRATOS_BIN")" || return 1
	# Build to a temporary name and rename, so an interrupted build never
	# leaves a half-written binary that looks cached.
	if ! (cd tools/kratos && CGO_ENABLED=1 go build -mod=readonly -tags sqlite \
		-ldflags "-X github.com/ory/kratos/driver/config.Version=v1.3.1" \
		-o "$KRATOS_BIN.tmp" github.com/ory/kratos); then
		rm -f "$KRATOS_BIN.tmp"
		echo "kratos.sh: building Kratos failed" >&2
		return 1
	fi
	mv -f "$KRATOS_BIN.tmp" "$KRATOS_BIN"
}

# kratos_start starts the server and waits (about 20 s at most) until ready.
kratos_start() {
	local admin="http://127.0.0.1:$KRATOS_ADMIN_PORT"
	local public="http://127.0.0.1:$KRATOS_PUBLIC_PORT"

	# A server already answering is a leftover from another run; testing
	# against it would silently use someone else's state and config.
	if curl -s -o /dev/null --max-time 2 "$admin/admin/health/alive" ||
		curl -s -o /dev/null --max-time 2 "$public/health/alive"; then
		echo "kratos.sh: something already answers on 127.0.0.1:$KRATOS_ADMIN_PORT or :$KRATOS_PUBLIC_PORT" \
			"(a leftover Kratos?). Stop it by its PID and try again; refusing to test against it." >&2
		return 1
	fi

	mkdir -p "$(dirname "$KRATOS_LOG")" || return 1
	"$KRATOS_BIN" serve --dev --sqa-opt-out -c tools/kratos/kratos.yml >"$KRATOS_LOG" 2>&1 &
	KRATOS_PID=$!
	export KRATOS_PID

	local i
	for i in $(seq 1 100); do
		if curl -fsS --max-time 1 -o /dev/null "$admin/admin/health/ready" 2>/dev/null; then
			KRATOS_ADMIN_URL="$admin"
			KRATOS_PUBLIC_URL="$public"
			export KRATOS_ADMIN_URL KRATOS_PUBLIC_URL
			echo "kratos.sh: Kratos ready at $admin (pid $KRATOS_PID, log $KRATOS_LOG)" >&2
			return 0
		fi
		if ! kill -0 "$KRATOS_PID" 2>/dev/null; then
			echo "kratos.sh: Kratos exited during start-up; last log lines:" >&2
			tail -n 30 "$KRATOS_LOG" >&2
			unset KRATOS_PID
			return 1
		fi
		sleep 0.2
	done
	echo "kratos.sh: Kratos not ready after ~20 s; last log lines:" >&2
	tail -n 30 "$KRATOS_LOG" >&2
	kratos_stop
	return 1
}

# kratos_stop ends the server started by kratos_start, by its PID only.
kratos_stop() {
	if [ -z "${KRATOS_PID:-}" ]; then
		return 0
	fi
	kill "$KRATOS_PID" 2>/dev/null || true
	local i
	for i in $(seq 1 50); do
		kill -0 "$KRATOS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$KRATOS_PID" 2>/dev/null; then
		kill -9 "$KRATOS_PID" 2>/dev/null || true
	fi
	wait "$KRATOS_PID" 2>/dev/null || true
	unset KRATOS_PID KRATOS_ADMIN_URL KRATOS_PUBLIC_URL
}

if ! (return 0 2>/dev/null); then
	echo "kratos.sh: source this file (source scripts/kratos.sh), do not execute it" >&2
	exit 2
fi

kratos_build && kratos_start
