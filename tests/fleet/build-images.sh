#!/usr/bin/env bash
# Build the test-fleet host images with debootstrap and import them into
# podman. No registry is involved: the root filesystem comes from the Debian
# mirror the machine's apt already uses.
#
#   tests/fleet/build-images.sh [--force] [debian12|debian13|all ...]
#
# Images:   localhost/fleet-mtls-host:debian12   (bookworm)
#           localhost/fleet-mtls-host:debian13   (trixie)
#
# Cache: each image carries the label fleet-mtls.recipe, a SHA-256 of this
# script, tests/fleet/image-packages.txt and the Debian suite. An image whose
# label matches is kept; a missing image or a changed recipe is (re)built.
# --force (or FLEET_REBUILD=1) rebuilds anyway.
#
# Environment:
#   MTLS_DEBIAN_MIRROR   mirror to bootstrap from (default: the first URIs:
#                        of /etc/apt/sources.list.d/debian.sources, else the
#                        first "deb" line of /etc/apt/sources.list)
#   FLEET_BUILD_DIR      scratch directory (default /var/tmp); needs ~600 MB
#   FLEET_DEB_CACHE      where downloaded .debs are kept between builds
#                        (default .build/debootstrap-cache/<suite>)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export CONTAINERS_CONF="$here/containers.conf"

repository=localhost/fleet-mtls-host
packages_file="$here/image-packages.txt"
label=fleet-mtls.recipe

die() { echo "build-images: ERROR: $*" >&2; exit 1; }
say() { echo "build-images: $*"; }

suite_for() {
  case "$1" in
    debian12) echo bookworm ;;
    debian13) echo trixie ;;
    *) return 1 ;;
  esac
}

force=${FLEET_REBUILD:-0}
targets=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    all) targets+=(debian12 debian13) ;;
    debian12 | debian13) targets+=("$arg") ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (expected debian12, debian13, all or --force)" ;;
  esac
done
((${#targets[@]})) || targets=(debian12 debian13)

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap and rootful podman)"
for tool in debootstrap podman tar sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' not found; run: bash scripts/bootstrap.sh"
done
[[ -r $packages_file ]] || die "missing package list $packages_file"

mirror() {
  local m=${MTLS_DEBIAN_MIRROR:-}
  if [[ -z $m && -r /etc/apt/sources.list.d/debian.sources ]]; then
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $m && -r /etc/apt/sources.list ]]; then
    m=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" {print $3; exit}' /etc/apt/sources.list)
  fi
  [[ -n $m ]] || die "no Debian mirror found in apt sources; set MTLS_DEBIAN_MIRROR"
  echo "$m"
}

packages() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' "$packages_file" | grep -v '^$' | paste -sd, -
}

recipe_hash() { # suite
  { cat "${BASH_SOURCE[0]}" "$packages_file"; echo "suite=$1"; } | sha256sum | cut -d' ' -f1
}

# Units that cannot work in a container (no udev, no consoles, no kernel
# module loading, read-only /sys) are masked so that a booted host reports
# "running" instead of "degraded".
masked_units=(
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-udev-trigger.service systemd-udev-settle.service
  getty.target console-getty.service getty@tty1.service serial-getty@.service
  systemd-modules-load.service kmod-static-nodes.service
  systemd-remount-fs.service systemd-firstboot.service
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
  sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount
  systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount
  e2scrub_all.timer e2scrub_reap.service fstrim.timer apt-daily.timer
  apt-daily-upgrade.timer
)

scratch_dirs=()
cleanup() {
  set +e # clean up as much as possible, whatever fails
  local dir mnt
  for dir in "${scratch_dirs[@]}"; do
    [[ -d $dir ]] || continue
    # debootstrap leaves /proc, /sys... mounted in the target when it fails
    for mnt in $(findmnt -rn -o TARGET | grep "^$dir/" | sort -r); do
      umount -l "$mnt"
    done
    rm -rf --one-file-system "$dir"
  done
}
trap cleanup EXIT

build() { # name
  local name=$1 suite image want have scratch rootfs log start old_id new_id
  suite=$(suite_for "$name")
  image="$repository:$name"
  want=$(recipe_hash "$suite")
  have=$(podman image inspect --format "{{index .Labels \"$label\"}}" "$image" 2>/dev/null || true)
  if [[ $force != 1 && $have == "$want" ]]; then
    say "$image is up to date (recipe ${want:0:12})"
    return 0
  fi
  if [[ -z $have ]]; then
    say "$image is missing: building from $suite"
  else
    say "$image: recipe changed or rebuild forced: building from $suite"
  fi

  start=$SECONDS
  scratch=$(mktemp -d "${FLEET_BUILD_DIR:-/var/tmp}/fleet-mtls-$name.XXXXXX")
  scratch_dirs+=("$scratch")
  rootfs="$scratch/rootfs"
  log="$scratch/debootstrap.log"
  local mirror_url
  mirror_url=$(mirror)

  # Downloaded packages are kept (and checked again) for the next build.
  local cache=${FLEET_DEB_CACHE:-$repo/.build/debootstrap-cache}/$suite
  mkdir -p "$cache"
  say "debootstrap $suite from $mirror_url (log: $log)"
  if ! debootstrap --variant=minbase --components=main --include="$(packages)" \
    --cache-dir="$cache" "$suite" "$rootfs" "$mirror_url" >"$log" 2>&1; then
    echo "----- last lines of $log" >&2
    tail -n 25 "$log" >&2
    [[ -f $rootfs/debootstrap/debootstrap.log ]] && {
      echo "----- last lines of debootstrap's own log" >&2
      tail -n 25 "$rootfs/debootstrap/debootstrap.log" >&2
    }
    # the scratch directory goes away; keep the log for inspection
    cp "$log" "/var/tmp/fleet-mtls-$name-debootstrap.log" 2>/dev/null || true
    die "debootstrap of $suite from $mirror_url failed (full log: /var/tmp/fleet-mtls-$name-debootstrap.log)"
  fi

  say "configuring the root filesystem for systemd in a container"
  # Empty machine-id: systemd makes a fresh one at each boot, so every host
  # gets its own.
  : >"$rootfs/etc/machine-id"
  rm -f "$rootfs/var/lib/dbus/machine-id"
  mkdir -p "$rootfs/var/lib/dbus"
  ln -s /etc/machine-id "$rootfs/var/lib/dbus/machine-id"
  local unit
  for unit in "${masked_units[@]}"; do
    ln -sfn /dev/null "$rootfs/etc/systemd/system/$unit"
  done
  # The stock haproxy.cfg has no proxies, so the unit fails to start. The
  # roles write a real configuration, then enable and start it.
  systemctl --root="$rootfs" --quiet disable haproxy.service
  # SSH, as on a real fleet: no host key in the image (every host makes its
  # own at first boot, before sshd starts), keys only, no PAM (no login
  # sessions to set up in a container, no pam_loginuid to fail). The client's
  # public key is mounted by whoever starts the container.
  rm -f "$rootfs"/etc/ssh/ssh_host_*
  mkdir -p "$rootfs/etc/ssh/sshd_config.d"
  printf '%s\n' 'PermitRootLogin prohibit-password' 'PasswordAuthentication no' \
    'KbdInteractiveAuthentication no' 'UsePAM no' 'UseDNS no' \
    >"$rootfs/etc/ssh/sshd_config.d/fleet-mtls.conf"
  cat >"$rootfs/etc/systemd/system/fleet-mtls-ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Make this host's own SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
  systemctl --root="$rootfs" --quiet enable fleet-mtls-ssh-host-keys.service ssh.service
  # Journal in memory only: nothing to keep across test runs.
  mkdir -p "$rootfs/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' \
    >"$rootfs/etc/systemd/journald.conf.d/fleet-mtls.conf"
  # Keep later package installs lean too, and the image small.
  printf 'path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\npath-exclude=/usr/share/locale/*\npath-include=/usr/share/locale/locale.alias\n' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/fleet-mtls-nodoc"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/debootstrap
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
    -exec rm -rf {} +
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  printf 'fleet-mtls test host (%s, %s)\n' "$name" "$suite" >"$rootfs/etc/fleet-mtls-image"

  old_id=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  say "importing $image"
  tar -C "$rootfs" --numeric-owner --xattrs --xattrs-include='security.capability' -c . |
    podman import --quiet \
      --change 'CMD ["/sbin/init"]' \
      --change 'STOPSIGNAL SIGRTMIN+3' \
      --change "LABEL $label=$want" \
      --change "LABEL fleet-mtls.suite=$suite" \
      --message "fleet-mtls test host $name ($suite), recipe $want" \
      - "$image" >/dev/null || die "podman import of $image failed"
  new_id=$(podman image inspect --format '{{.Id}}' "$image")
  have=$(podman image inspect --format "{{index .Labels \"$label\"}}" "$image")
  [[ $have == "$want" ]] || die "$image was imported without its recipe label"
  if [[ -n $old_id && $old_id != "$new_id" ]]; then
    podman rmi "$old_id" >/dev/null 2>&1 || say "note: old image ${old_id:0:12} still in use, left in place"
  fi
  # earlier builds that were in use when they were replaced
  local stale
  for stale in $(podman images --filter "label=$label" --filter dangling=true --format '{{.ID}}'); do
    podman rmi "$stale" >/dev/null 2>&1 || true
  done

  rm -rf --one-file-system "$scratch"
  say "built $image ($(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1000000}')) in $((SECONDS - start))s"
}

for name in "${targets[@]}"; do
  build "$name"
done
