#!/usr/bin/env bash
# Benchmark (not a test): paranoid-execwatch beside auditd on one exec flood, as root.
#
# A private auditd (config and log in a temp dir, as a paranoid host runs auditd) and the
# watcher both receive every record of N execs of a binary outside /nix/store, run by a
# throwaway user under a uid-scoped execve rule. Reported from one run: the exec rate the
# flood reached, the events the watcher judged per second, CPU time (user+system, from
# /proc/<pid>/stat) per 1,000 execs for the watcher and for auditd, and their ratio; plus the
# watcher's exact count (individual alerts + summaries) against N, so a figure from a run that
# lost records is never reported as sustained.
#
#   execwatch/bench/run.sh [N] [PARALLEL]      (default 20000 execs, 2 loops)
#   BENCH_USER=name: use an existing account instead of creating one.
#
# Takes /run/lock/paranoid-audit.lock for the whole run and puts the audit state back.
set -euo pipefail
N=${1:-20000}
PAR=${2:-2}
here=$(cd "$(dirname "$0")" && pwd)
bin=${PARANOID_EXECWATCH:-$here/../../harness/target/release/paranoid-execwatch}
[ "$(id -u)" = 0 ] || { echo "needs root (the kernel audit subsystem)" >&2; exit 4; }
[ -x "$bin" ] || { echo "build it first: cargo build --release --manifest-path harness/Cargo.toml -p paranoid-execwatch" >&2; exit 3; }
command -v auditd >/dev/null || { echo "apt-get install auditd" >&2; exit 3; }

mkdir -p /run/lock
exec 9>/run/lock/paranoid-audit.lock
flock -w 900 9 || { echo "the audit lock is held by another run" >&2; exit 4; }

work=$(mktemp -d /tmp/pexw-bench.XXXXXX)
chmod 755 "$work"
key="pexwbench_$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
enabled_before=$(auditctl -s | awk '/^enabled/{print $2}')
[ "$enabled_before" != 2 ] || { echo "audit rules are locked (enabled 2)" >&2; exit 4; }
user=${BENCH_USER:-}
made_user=
rule=
pids=()
cleanup() {
  set +e
  [ -n "$rule" ] && auditctl -d $rule >/dev/null 2>&1
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
  auditctl -e "$enabled_before" >/dev/null
  [ -n "$made_user" ] && userdel "$made_user"
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$user" ]; then
  user="pexwb$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  useradd -M -N -g nogroup -d /nonexistent -s /bin/sh "$user"
  made_user=$user
fi
uid=$(id -u "$user")

# The private auditd: what a NixOS host runs (ENRICHED log, incremental async flush).
mkdir -p "$work/auditd/plugins.d"
cat > "$work/auditd/auditd.conf" <<EOF
local_events = yes
write_logs = yes
log_file = $work/auditd/audit.log
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 4096
num_logs = 1
max_log_file_action = IGNORE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
name_format = NONE
q_depth = 2000
overflow_action = IGNORE
plugin_dir = $work/auditd/plugins.d
end_of_event_timeout = 2
EOF
chmod 640 "$work/auditd/auditd.conf"
[ "$(auditctl -s | awk '/^pid/{print $2}')" = 0 ] || { echo "an audit daemon already runs; this benchmark starts its own" >&2; exit 4; }
auditd -n -c "$work/auditd" 2>"$work/auditd.err" &
auditd_pid=$!
pids+=("$auditd_pid")
for _ in $(seq 100); do [ "$(auditctl -s | awk '/^pid/{print $2}')" = "$auditd_pid" ] && break; sleep 0.05; done
[ "$(auditctl -s | awk '/^pid/{print $2}')" = "$auditd_pid" ] || { cat "$work/auditd.err" >&2; exit 5; }

"$bin" --no-journal --json --key "$key" --allow /usr --allow /bin --allow /lib --allow /lib64 \
  --status-interval 5 --heartbeat 0 --rate-burst 20 --rate-window 10 >"$work/watcher.jsonl" 2>"$work/watcher.err" &
watcher_pid=$!
pids+=("$watcher_pid")
for _ in $(seq 100); do grep -q '"event":"started"' "$work/watcher.jsonl" 2>/dev/null && break; sleep 0.05; done

rule="always,exit -F arch=b64 -S execve -S execveat -F uid=$uid -k $key"
auditctl -a $rule >/dev/null
mkdir -p "$work/drop" && cp /bin/true "$work/drop/t" && chmod -R 755 "$work/drop"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
w0=$(cpu "$watcher_pid"); a0=$(cpu "$auditd_pid")
per=$((N / PAR))
t0=$(date +%s.%N)
loops=()
for _ in $(seq "$PAR"); do
  setpriv --reuid="$uid" --regid="$(id -g "$user")" --clear-groups \
    /bin/sh -c "i=0; while [ \$i -lt $per ]; do $work/drop/t; i=\$((i+1)); done" &
  loops+=("$!")
done
wait "${loops[@]}"
t1=$(date +%s.%N)
total=$((per * PAR))

# Until the watcher has accounted for every exec (its window closes within 10 s).
count() {
  python3 - "$work/watcher.jsonl" "$work/drop/t" <<'PY'
import json, sys
single = summ = lost = 0
last = 0.0
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j["kind"] == "foreign-exec" and j["exec"]["target"] == sys.argv[2]:
        single += 1; last = max(last, j["time"])
    elif j["kind"] == "summary":
        summ += sum(g["count"] for g in j["fields"]["groups"] if g["target"] == sys.argv[2])
    elif j["kind"] == "tamper" and j["fields"].get("finding") in ("records-lost", "watcher-overflow", "backlog-overflow"):
        lost += 1
print(single, summ, lost)
PY
}
for _ in $(seq 300); do
  read -r single summ lost < <(count)
  [ $((single + summ)) -ge "$total" ] && break
  sleep 0.1
done
# The last record the watcher judged: the CPU it spent is done by now.
w1=$(cpu "$watcher_pid"); a1=$(cpu "$auditd_pid")
sleep 1
a2=$(cpu "$auditd_pid")
read -r single summ lost < <(count)
log_records=$(grep -c "key=\"$key\"\|key=$key" "$work/auditd/audit.log" || true)

python3 - "$total" "$t0" "$t1" "$w0" "$w1" "$a0" "$a2" "$tck" "$single" "$summ" "$lost" "$log_records" <<'PY'
import sys
total, t0, t1, w0, w1, a0, a2, tck, single, summ, lost, logged = sys.argv[1:]
total = int(total); wall = float(t1) - float(t0); tck = int(tck)
wcpu = (int(w1) - int(w0)) / tck; acpu = (int(a2) - int(a0)) / tck
print(f"execs: {total} in {wall:.1f} s = {total / wall:.0f} execs/s (the flood, both audit consumers keeping up)")
print(f"watcher judged: {int(single)} alerted + {int(summ)} summarised = {int(single) + int(summ)} of {total}; loss alerts: {lost}")
print(f"auditd logged {logged} SYSCALL records with the key")
print(f"watcher CPU: {wcpu:.2f} s = {1000 * wcpu / total * 1000:.1f} ms per 1,000 execs; {total / wall:.0f} events/s sustained")
print(f"watcher ceiling: {total / wcpu:.0f} events per CPU-second (one core fully busy)" if wcpu > 0 else "watcher used no measurable CPU")
print(f"auditd  CPU: {acpu:.2f} s = {1000 * acpu / total * 1000:.1f} ms per 1,000 execs")
print(f"ratio watcher/auditd CPU: {wcpu / acpu:.2f}" if acpu > 0 else "auditd used no measurable CPU")
if int(single) + int(summ) != total or int(lost):
    print("NOT SUSTAINED: the watcher did not account for every exec", file=sys.stderr); sys.exit(1)
PY
