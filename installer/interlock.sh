#!/usr/bin/env bash
# The installer's safety interlock: may these disks be wiped? Run before anything writes to them.
#
#   interlock.sh [--cmdline FILE] DEVICE...
#
# A disk is wiped only if it is blank (no partition table or filesystem signature that blkid or
# wipefs can find, no partitions, and its first and last MiB read as zeros), or if the kernel
# command line (FILE, default /proc/cmdline) names it: paranoid.install.wipe=DEVICE (repeatable,
# or comma-separated; the path exactly as the layout spells it, or the node it resolves to).
# A disk that is mounted, used as swap or held by another device (RAID, LVM, dm-crypt) is never
# wiped, named or not.
#
# Exit codes: 0 every disk may be wiped; 10 a disk holds data and is not named; 11 a disk is in
# use; 2 bad input (no such block device, unreadable command line). Needs bash, util-linux and
# coreutils only.
set -uo pipefail

cmdline=/proc/cmdline
if [ "${1:-}" = "--cmdline" ]; then
  cmdline=${2:?--cmdline needs a file}
  shift 2
fi
if [ $# -eq 0 ]; then
  echo "usage: interlock.sh [--cmdline FILE] DEVICE..." >&2
  exit 2
fi
if ! params=$(cat -- "$cmdline" 2>/dev/null); then
  echo "interlock: cannot read the kernel command line from $cmdline" >&2
  exit 2
fi

# Every device the command line names for wiping.
named=()
for word in $params; do
  case $word in
    paranoid.install.wipe=*)
      IFS=, read -r -a list <<<"${word#paranoid.install.wipe=}"
      named+=("${list[@]}")
      ;;
  esac
done

is_named() {
  local dev=$1 real=$2 n
  for n in "${named[@]+"${named[@]}"}"; do
    [ -n "$n" ] || continue
    if [ "$n" = "$dev" ] || [ "$(readlink -f -- "$n")" = "$real" ]; then
      return 0
    fi
  done
  return 1
}

# Whether the MiB at offset SKIP (in MiB) reads as zeros; a read error counts as data.
zeros() {
  local dev=$1 skip=$2 nonzero
  nonzero=$(dd if="$dev" bs=1M skip="$skip" count=1 iflag=fullblock status=none 2>/dev/null | tr -d '\0' | head -c 1 | wc -c) || return 1
  [ "$nonzero" -eq 0 ]
}

# Why a disk is not blank, or nothing when it is.
contents() {
  local dev=$1 size mib found
  found=$(blkid -p -o export -- "$dev" 2>/dev/null | while IFS='=' read -r key value; do
    case $key in PTTYPE | TYPE) printf '%s %s ' "$key" "$value" ;; esac
  done)
  [ -n "$found" ] && { echo "signature: ${found% }"; return; }
  found=$(wipefs --no-act --noheadings --output TYPE -- "$dev" 2>/dev/null | tr '\n' ' ')
  [ -n "$found" ] && { echo "signature: ${found% }"; return; }
  found=$(lsblk -nro NAME,TYPE -- "$dev" 2>/dev/null | while read -r name type; do [ "$type" = part ] && printf '%s ' "$name"; done)
  [ -n "$found" ] && { echo "partitions: ${found% }"; return; }
  size=$(blockdev --getsize64 "$dev" 2>/dev/null) || { echo "unreadable size"; return; }
  mib=$((size / 1048576))
  zeros "$dev" 0 || { echo "data in its first MiB"; return; }
  if [ "$mib" -gt 1 ]; then
    zeros "$dev" $((mib - 1)) || { echo "data in its last MiB"; return; }
  fi
}

# Why a disk is in use, or nothing.
in_use() {
  local dev=$1 real=$2 base mounts
  mounts=$(lsblk -nro MOUNTPOINTS -- "$dev" 2>/dev/null | while read -r m; do [ -n "$m" ] && printf '%s ' "$m"; done)
  [ -n "$mounts" ] && { echo "mounted at ${mounts% }"; return; }
  base=$(basename -- "$real")
  if [ -n "$(ls -A "/sys/class/block/$base/holders" 2>/dev/null)" ]; then
    echo "held by $(ls "/sys/class/block/$base/holders" | tr '\n' ' ')"
    return
  fi
  for part in /sys/class/block/"$base"/"$base"*; do
    [ -d "$part/holders" ] && [ -n "$(ls -A "$part/holders" 2>/dev/null)" ] && { echo "partition $(basename "$part") is held by $(ls "$part/holders" | tr '\n' ' ')"; return; }
  done
}

status=0
for dev in "$@"; do
  real=$(readlink -f -- "$dev")
  if [ ! -b "$real" ]; then
    echo "interlock: $dev is not a block device; the layout names a disk this machine does not have. Fix: boot the installer on the machine the layout was written for, or correct the layout's device." >&2
    exit 2
  fi
  busy=$(in_use "$dev" "$real")
  if [ -n "$busy" ]; then
    echo "interlock: refusing $dev: it is in use ($busy). Nothing was written. A disk in use is never wiped, even when named on the command line." >&2
    status=11
    continue
  fi
  found=$(contents "$dev")
  if [ -z "$found" ]; then
    echo "interlock: $dev is blank; it may be partitioned."
  elif is_named "$dev" "$real"; then
    echo "interlock: $dev is not blank ($found), and the kernel command line names it (paranoid.install.wipe); it will be wiped."
  else
    echo "interlock: refusing $dev: it is not blank ($found). Nothing was written. To wipe it, boot the installer with paranoid.install.wipe=$dev on the kernel command line." >&2
    [ "$status" -eq 0 ] && status=10
  fi
done
exit "$status"
