#!/usr/bin/env bash
# A one-node Slurm on this machine for datamill's cluster tests: Debian's slurmctld, slurmd and
# munge, no cgroups, state under $SLURM_LOCAL_DIR. Commands: install | start | stop | status.
# Daemons are stopped by their PID files only.
set -euo pipefail

STATE=${SLURM_LOCAL_DIR:-/tmp/datamill-slurm}
CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
export SLURM_CONF=$CONF
HOST=$(hostname -s)
MUNGE_PID=/run/munge/munged.pid

say() { echo "slurm-local: $*" >&2; }

install() {
  for bin in slurmctld slurmd sbatch munged; do
    command -v "$bin" >/dev/null 2>&1 && continue
    say "installing slurmctld slurmd slurm-client munge (apt)"
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null
    return
  done
}

configure() {
  local mem_mb
  mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) - 1024 }' /proc/meminfo)
  mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log" "$(dirname "$CONF")"
  cat > "$CONF" <<CONF
ClusterName=datamill
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  install
  configure
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    head -c 1024 /dev/urandom > /etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  alive "$MUNGE_PID" || runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID"
  for _ in $(seq 100); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
  munge -n | unmunge >/dev/null || { say "munge does not work"; exit 1; }
  alive "$STATE/slurmctld.pid" || slurmctld -f "$CONF"
  alive "$STATE/slurmd.pid" || slurmd -f "$CONF"
  local state=""
  for _ in $(seq 120); do
    state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n 1 || true)
    case "$state" in idle|mix|alloc) say "node $HOST is $state"; return 0 ;; esac
    sleep 0.5
  done
  say "node did not come up (state '${state}'); logs in $STATE/log"
  exit 1
}

stop() {
  for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$MUNGE_PID"; do
    if alive "$pidfile"; then
      local pid; pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

status() {
  for pidfile in "$MUNGE_PID" "$STATE/slurmctld.pid" "$STATE/slurmd.pid"; do
    if alive "$pidfile"; then echo "$(basename "$pidfile"): running"; else echo "$(basename "$pidfile"): stopped"; fi
  done
  sinfo -N 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
