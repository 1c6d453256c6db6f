# Sourced by the service scripts: stop exactly the processes they started, by PID file.

# stop_pid PIDFILE: TERM, up to 5 s to exit, then KILL; removes the file.
stop_pid() {
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true # a paused process (SIGSTOP) gets its TERM only once it runs
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}
