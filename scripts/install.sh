#!/usr/bin/env bash
# Installs auditmux (build, CLI, shipped default config and rules, systemd unit) and starts the host daemon.
# Usage: sudo scripts/install.sh [--no-start] [--root DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
start=1
root=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-start) start=0 ;;
    --root) root="$2"; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ] && [ -z "$root" ]; then echo "install.sh: run as root" >&2; exit 7; fi

if [ ! -f build/Release/auditmux_netlink.node ] || [ ! -f dist/src/cli/main.js ]; then
  npm ci --no-audit --no-fund
  npm run build
fi

refuse() { echo "install.sh: $*: refusing to install" >&2; exit 1; }
# Who the installed files belong to: root (an install into a scratch --root by another user keeps that user's).
owner=$(id -u)

# A directory the daemon writes as root in a parent others may write (Ubuntu's /var/log is root:syslog 0775): a
# symlink planted there would make `install -d -m 0700` change the mode of whatever it names, and a directory of
# someone else's is theirs to fill. mkdir(1) never follows a link at the last component; an existing directory is
# taken only when it is a directory of ours, and its mode is set from inside it, after checking that it is the
# directory that was checked (a name swapped in between is refused, nothing else changes mode).
private_dir() {
  local d="$1" id
  mkdir -p -- "$(dirname -- "$d")"
  [ -e "$d" ] || [ -L "$d" ] || mkdir -m 0700 -- "$d"
  [ ! -L "$d" ] || refuse "$d is a symbolic link"
  [ -d "$d" ] || refuse "$d is not a directory"
  [ "$(stat -c %u -- "$d")" = "$owner" ] || refuse "$d is owned by uid $(stat -c %u -- "$d"), not $owner"
  id=$(stat -c %d:%i -- "$d")
  (cd -P -- "$d" && [ "$(stat -c %d:%i:%u .)" = "$id:$owner" ] && chmod 0700 .) || refuse "$d changed while checked"
}
private_dir "$root/var/log/auditmux"
# The unit's ProtectSystem=strict leaves /var/spool read-only: the spool directory must exist before the daemon starts.
private_dir "$root/var/spool/auditmux"

lib="$root/usr/local/lib/auditmux"
install -d -m 0755 "$lib" "$root/usr/local/sbin" "$root/etc/systemd/system"
rm -rf "$lib/dist" "$lib/bin" "$lib/build" "$lib/node_modules"
# Not cp -a: the copies would keep the building user's ownership, and that user could then change code that runs as
# root (the daemon, and the OCI hook at every container create).
cp -R -P --preserve=mode,timestamps dist bin package.json package-lock.json README.md config systemd "$lib/"
install -d "$lib/build/Release"
cp build/Release/auditmux_netlink.node "$lib/build/Release/"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
# Everything under $lib (left over from an earlier install too) is root's, and only root may change it.
if [ "$owner" = 0 ]; then chown -R root:root "$lib"; fi
chmod -R go-w "$lib"
ln -sfn /usr/local/lib/auditmux/bin/auditmux "$root/usr/local/sbin/auditmux"

install -d -m 0750 "$root/etc/auditmux"
if [ ! -f "$root/etc/auditmux/auditmux.yaml" ]; then
  sed 's#^\(\s*rules:\s*\)rules\.d\s*$#\1/etc/auditmux/rules.d#' config/auditmux.yaml > "$root/etc/auditmux/auditmux.yaml"
  chmod 0640 "$root/etc/auditmux/auditmux.yaml"
fi
if [ ! -d "$root/etc/auditmux/rules.d" ]; then
  install -d -m 0750 "$root/etc/auditmux/rules.d"
  install -m 0640 config/rules.d/*.rules "$root/etc/auditmux/rules.d/"
fi
install -m 0644 systemd/auditmux.service "$root/etc/systemd/system/auditmux.service"
# podman and CRI-O read OCI hooks from here (oci-hooks(5)): every container is registered before its user code runs.
install -d -m 0755 "$root/usr/share/containers/oci/hooks.d"
install -m 0644 config/oci-hooks.d/auditmux.json "$root/usr/share/containers/oci/hooks.d/auditmux.json"
# docker reads no hooks.d: this runc wrapper adds the hook at create (register it in /etc/docker/daemon.json).
install -m 0755 scripts/runc-auditmux "$root/usr/local/sbin/runc-auditmux"

[ "$start" = 1 ] && [ -z "$root" ] || { echo "auditmux installed${root:+ under $root}"; exit 0; }
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ -n "$(systemctl list-unit-files --no-legend auditd.service 2>/dev/null)" ]; then
    # Masked, not only disabled: nothing (a unit that wants it, a package upgrade) starts it again to take the kernel
    # audit connection. auditd.service refuses a manual stop (RefuseManualStop=yes): starting auditmux stops it
    # (Conflicts=, and After= has that stop finish first).
    systemctl disable auditd.service 2>/dev/null || true
    if ! systemctl mask auditd.service; then
      echo "install.sh: could not mask auditd.service: it may start again (at boot too) and keep auditmux out" >&2
    fi
  fi
  if ! systemctl enable --now auditmux.service; then
    systemctl --no-pager status auditmux.service auditd.service || true
    echo "install.sh: auditmux.service did not start (see above)" >&2
    exit 1
  fi
  if systemctl is-active --quiet auditd.service; then
    echo "install.sh: auditd.service is still running and owns the kernel audit connection; stop it" \
      "(service auditd stop) and start auditmux (systemctl start auditmux)" >&2
    exit 1
  fi
  systemctl --no-pager status auditmux.service || true
else
  # No systemd as PID 1 (containers, CI VMs): run the host daemon in the foreground instead.
  exec /usr/local/sbin/auditmux daemon --config /etc/auditmux/auditmux.yaml
fi
