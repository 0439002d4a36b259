#!/usr/bin/env bash
# A one-node Slurm on this machine for datamill's cluster tests: Debian's slurmctld, slurmd and
# munge, no cgroups, state under $SLURM_LOCAL_DIR. Commands: install | start | stop | status |
# configure (write the config only).
#
# `start` writes $SLURM_CONF (default /etc/slurm/slurm.conf); a config there that this script did
# not write is first moved to $SLURM_CONF.datamill-backup, and `stop` puts it back. `start` records
# every daemon it starts itself (PID in $SLURM_LOCAL_DIR/started/<daemon>); `stop` stops only
# those, and only if the PID still runs that daemon: a munge or Slurm that was already running
# (the system's, or another user's) is left alone.
set -euo pipefail

STATE=${SLURM_LOCAL_DIR:-/tmp/datamill-slurm}
CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
export SLURM_CONF=$CONF
BACKUP=$CONF.datamill-backup
MARKER="# Written by datamill scripts/slurm-local.sh (stop restores any previous file)"
OWNED=$STATE/started
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

# Moves a config this script did not write out of the way (once), then writes ours atomically.
configure() {
  local mem_mb
  mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) - 1024 }' /proc/meminfo)
  mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log" "$(dirname "$CONF")"
  if [ -e "$CONF" ] && ! grep -qxF "$MARKER" "$CONF"; then
    if [ -e "$BACKUP" ]; then
      say "$CONF was not written by this script and $BACKUP exists already: not touching either"
      exit 1
    fi
    cp -p "$CONF" "$BACKUP"
    say "backed up $CONF to $BACKUP (stop restores it)"
  fi
  cat > "$CONF.tmp.$$" <<CONF
$MARKER
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
  mv -f "$CONF.tmp.$$" "$CONF"
}

# Puts back the config `configure` moved aside; a config of ours with nothing before it stays.
restore_conf() {
  if [ -e "$BACKUP" ]; then
    mv -f "$BACKUP" "$CONF"
    say "restored $CONF"
  fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# True while PID $1 runs (a zombie waiting for its parent counts as gone).
running() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

# Records that this script started daemon $1, once its own PID file $2 shows it running.
own() {
  for _ in $(seq 100); do alive "$2" && break; sleep 0.1; done
  if alive "$2"; then
    cat "$2" > "$OWNED/$1"
  else
    say "$1 did not write $2; logs in $STATE/log"
  fi
}

# Stops daemon $1 if this script started it and its recorded PID still runs that program.
stop_owned() {
  local record=$OWNED/$1 pid
  [ -f "$record" ] || return 0
  pid=$(cat "$record")
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$record"
}

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
  mkdir -p "$OWNED"
  if ! alive "$MUNGE_PID" && ! munge_works; then
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID"
    own munged "$MUNGE_PID"
  fi
  for _ in $(seq 100); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
  munge_works || { say "munge does not work"; exit 1; }
  if ! alive "$STATE/slurmctld.pid"; then
    slurmctld -f "$CONF"
    own slurmctld "$STATE/slurmctld.pid"
  fi
  if ! alive "$STATE/slurmd.pid"; then
    slurmd -f "$CONF"
    own slurmd "$STATE/slurmd.pid"
  fi
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
  for daemon in slurmd slurmctld munged; do stop_owned "$daemon"; done
  restore_conf
}

status() {
  for pidfile in "$MUNGE_PID" "$STATE/slurmctld.pid" "$STATE/slurmd.pid"; do
    if alive "$pidfile"; then echo "$(basename "$pidfile"): running"; else echo "$(basename "$pidfile"): stopped"; fi
  done
  for record in "$OWNED"/*; do
    if [ -f "$record" ]; then
      echo "started by this script: $(basename "$record") (pid $(cat "$record"))"
    fi
  done
  sinfo -N 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  configure) configure ;;
  *) echo "usage: $0 install|start|stop|status|configure" >&2; exit 2 ;;
esac
