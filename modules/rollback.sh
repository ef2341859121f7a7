# paranoid-rollback: re-activate the previous generation when nobody confirms a switch in time
# (paranoid.rollback, modules/rollback.nix). The decisions live here, in one script that the
# tests run for real against fake generations (harness/tests/rollback_script.rs).
#
#   arm NEW               from the activation script: a switch to NEW (NIXOS_ACTION=switch|test)
#                         from the running system arms a timer; boots and the rollback's own
#                         re-activation do not
#   confirm [WHO]         paranoid-confirm: NEW stays
#   confirm-login ADMIN…  pam_exec in sshd's session stack: an admin's new SSH login confirms
#   expire                the timer: unless confirmed, point the system profile back at the
#                         previous generation and run its switch-to-configuration switch
#   status                what is armed
#
# Everything it touches is configurable for the tests; the defaults are NixOS's paths.
set -euo pipefail

state=${PARANOID_ROLLBACK_STATE:-/run/paranoid-rollback}
profile=${PARANOID_ROLLBACK_PROFILE:-/nix/var/nix/profiles/system}
current=${PARANOID_ROLLBACK_CURRENT:-/run/current-system}
gcroot=${PARANOID_ROLLBACK_GCROOT:-/nix/var/nix/gcroots/paranoid-rollback}
timeout=${PARANOID_ROLLBACK_TIMEOUT:-5}
self=${PARANOID_ROLLBACK_SELF:-$0}
unit=paranoid-rollback

# Journal priorities when systemd reads our stderr (a unit, or the switch run in one), plain text otherwise.
log() {
  local level=$1
  shift
  local prefix=""
  if [ -n "${JOURNAL_STREAM:-}" ]; then
    case $level in
      alert) prefix="<1>" ;;
      err) prefix="<3>" ;;
      notice) prefix="<5>" ;;
      *) prefix="<6>" ;;
    esac
  fi
  printf '%sparanoid-rollback: %s\n' "$prefix" "$*" >&2
}

# An alert, and an audit record where the audit tools are installed (a user message is
# accepted even when the rules are locked).
alert() {
  log alert "$*"
  if command -v auditctl >/dev/null 2>&1; then
    auditctl -m "paranoid-rollback: $*" >/dev/null 2>&1 || log err "could not write the audit record (auditctl -m)"
  fi
}

armed() { [ -L "$state/new" ]; }

disarm() {
  rm -f "$state/previous" "$state/new" "$state/armed-at" "$gcroot"
}

# Serialise confirm and expire; a login never waits long for a rollback in progress.
lock() {
  mkdir -p -m 0700 "$state"
  exec 9>"$state/lock"
  flock -w "${1:-10}" 9
}

cmd_arm() {
  local new prev
  new=$(readlink -f "$1")
  case "${NIXOS_ACTION:-}" in
    switch | test) ;;
    *)
      # At boot NIXOS_ACTION is unset: a reboot is never armed.
      log info "not arming: activation for ${NIXOS_ACTION:-boot}"
      return 0
      ;;
  esac
  if [ -n "${PARANOID_ROLLBACK_REACTIVATING:-}" ] || [ -e "$state/reactivating" ]; then
    log info "not arming: this activation is the rollback re-activating $new"
    return 0
  fi
  if [ ! -e "$current" ]; then
    log info "not arming: no running system yet (boot)"
    return 0
  fi
  prev=$(readlink -f "$current")
  if [ "$prev" = "$new" ]; then
    log info "not arming: $new is already the running system"
    return 0
  fi
  lock 60
  # A switch on top of an unconfirmed one: the generation to go back to stays the last one an
  # admin could reach (or confirmed), not the unconfirmed one in between.
  if armed && [ "$(readlink "$state/new")" = "$prev" ]; then
    prev=$(readlink "$state/previous")
  fi
  if [ ! -x "$prev/bin/switch-to-configuration" ]; then
    # Only a boot reaches such a system (the break-glass entry): no switch may lead back to it.
    log notice "not arming: $prev has no switch-to-configuration (a break-glass entry?); this switch is not protected"
    disarm
    return 0
  fi
  ln -sfn "$prev" "$state/previous"
  ln -sfn "$new" "$state/new"
  date +%s >"$state/armed-at"
  # The previous generation must survive a garbage collection until the decision; the root
  # dangles (and so protects nothing) once /run is gone.
  ln -sfn "$state/previous" "$gcroot"
  systemctl stop "$unit.timer" >/dev/null 2>&1 || true
  if ! systemd-run --unit="$unit" --description="paranoid: roll back an unconfirmed switch" --collect \
    --on-active="${timeout}min" --timer-property=AccuracySec=1s "$self" expire >/dev/null; then
    disarm
    alert "could not start the rollback timer: the switch to $new is NOT protected"
    return 1
  fi
  log notice "armed: unless an admin confirms within $timeout min (paranoid-confirm, or a new SSH login of an admin), $prev is re-activated"
}

cmd_confirm() {
  local who=${1:-${SUDO_USER:-$(id -un 2>/dev/null || echo root)}}
  if ! armed; then
    log info "nothing to confirm"
    return 0
  fi
  lock 10 || { log err "busy (a rollback is running?): not confirmed"; return 1; }
  armed || { log info "nothing to confirm"; return 0; }
  local new
  new=$(readlink "$state/new")
  systemctl stop "$unit.timer" >/dev/null 2>&1 || true
  disarm
  log notice "confirmed by $who: $new stays"
}

cmd_confirm_login() {
  # pam_exec, type=open_session: never fail the login.
  [ "${PAM_TYPE:-}" = open_session ] || return 0
  armed || return 0
  local admin
  for admin in "$@"; do
    if [ "$admin" = "${PAM_USER:-}" ]; then
      cmd_confirm "$PAM_USER logging in over SSH from ${PAM_RHOST:-?}" || true
      return 0
    fi
  done
  log notice "the login of ${PAM_USER:-?} does not confirm the switch: only $* do"
}

# The newest generation of the profile that is `target`, e.g. 41 for system-41-link.
generation_of() {
  local target=$1 dir base link n best=""
  dir=$(dirname "$profile")
  base=$(basename "$profile")
  for link in "$dir/$base"-*-link; do
    [ -L "$link" ] || continue
    n=${link#"$dir/$base"-}
    n=${n%-link}
    if [ "$(readlink -f "$link")" = "$target" ] && { [ -z "$best" ] || [ "$n" -gt "$best" ]; }; then
      best=$n
    fi
  done
  printf '%s' "$best"
}

cmd_expire() {
  armed || { log info "nothing armed"; return 0; }
  lock 60
  armed || { log info "nothing armed"; return 0; }
  local prev new running gen rc=0
  prev=$(readlink "$state/previous")
  new=$(readlink "$state/new")
  running=$(readlink -f "$current" 2>/dev/null || true)
  if [ "$running" != "$new" ]; then
    # Someone switched again without arming (to a generation without paranoid.rollback).
    log notice "not rolling back: the running system is $running, not the unconfirmed $new"
    disarm
    return 0
  fi
  if [ ! -x "$prev/bin/switch-to-configuration" ]; then
    alert "cannot roll back to $prev: it has no bin/switch-to-configuration"
    disarm
    return 1
  fi
  alert "nobody confirmed the switch to $new in time: re-activating $prev"
  touch "$state/reactivating"
  gen=$(generation_of "$prev")
  if [ -n "$gen" ]; then
    nix-env -p "$profile" --switch-generation "$gen" || rc=$?
  else
    nix-env -p "$profile" --set "$prev" || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    log err "could not point $profile back at $prev (nix-env exit $rc); re-activating it anyway"
  fi
  rc=0
  # Without our lock (fd 9): nothing the switch starts may hold it.
  PARANOID_ROLLBACK_REACTIVATING=1 "$prev/bin/switch-to-configuration" switch 9>&- || rc=$?
  rm -f "$state/reactivating"
  disarm
  if [ "$rc" -eq 0 ]; then
    alert "rolled back from $new to $prev"
  else
    alert "rolling back to $prev: switch-to-configuration exited $rc"
  fi
  return "$rc"
}

cmd_status() {
  if armed; then
    echo "armed at $(cat "$state/armed-at" 2>/dev/null || echo '?'): $(readlink "$state/new") is unconfirmed; previous: $(readlink "$state/previous")"
  else
    echo "not armed"
  fi
}

case "${1:-}" in
  arm) shift; [ $# -eq 1 ] || { log err "usage: paranoid-rollback arm NEW-SYSTEM"; exit 2; }; cmd_arm "$1" ;;
  confirm) shift; cmd_confirm "$@" ;;
  confirm-login) shift; cmd_confirm_login "$@" ;;
  expire) cmd_expire ;;
  status) cmd_status ;;
  *)
    log err "usage: paranoid-rollback arm NEW | confirm [WHO] | confirm-login ADMIN... | expire | status"
    exit 2
    ;;
esac
