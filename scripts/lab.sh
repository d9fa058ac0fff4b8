#!/usr/bin/env bash
# The lab for the demo: the hosts of inventories/lab/hosts.yml as podman
# containers running systemd, on a podman network of their own.
#
#   scripts/lab.sh up [debian12|debian13]   create/start the lab (idempotent)
#   scripts/lab.sh status                   what runs, systemd state, addresses
#   scripts/lab.sh down                     remove the containers and network
#
# The inventory is the source of truth: every host it lists becomes a
# container mtls-lab-NAME with the inventory name as hostname and as its name
# on the network mtls-lab, at the address the inventory gives it
# (ansible_host), with sshd accepting the key of scripts/bootstrap.sh. Once
# the hosts are up, their SSH host keys are pinned (.build/ssh/known_hosts/)
# and every host is checked to resolve every other by name. `up` keeps running containers that
# already use the right image, recreates the others, and removes lab
# containers the inventory no longer lists.
#
# Image: debian12 unless given (or MTLS_LAB_IMAGE=debian13); it is built by
# tests/fleet/build-images.sh when missing. Traffic stays on the lab network.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
inventory="$repo/inventories/lab/hosts.yml"
network=mtls-lab
fleet_label="fleet-mtls.fleet=$network"
# How the containers are run; bump when the `podman run` options change so
# that `up` recreates containers made the old way.
run_spec=v3-ssh
export CONTAINERS_CONF="$repo/tests/fleet/containers.conf"
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$repo/ansible.cfg"

say() { echo "lab: $*"; }
die() { echo "lab: ERROR: $*" >&2; exit 1; }

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

[[ $(id -u) -eq 0 ]] || die "must run as root (rootful podman)"

ssh_key="$repo/.build/ssh/id_ed25519"
known_hosts="$repo/.build/ssh/known_hosts/$network"

# "inventory_name address" for each host of the inventory; every address in
# one /24, the lab network's subnet.
lab_hosts() {
  ansible-inventory -i "$inventory" --list 2>/dev/null | python3 -c '
import ipaddress, json, sys
hostvars = json.load(sys.stdin)["_meta"]["hostvars"]
nets = set()
for name in sorted(hostvars):
    address = ipaddress.IPv4Address(hostvars[name]["ansible_host"])
    nets.add(ipaddress.IPv4Network(f"{address}/24", strict=False))
    print(name, address)
if len(nets) != 1:
    sys.exit(f"the lab hosts must share one /24, got {sorted(map(str, nets))}")
' || die "cannot read the hosts' addresses (ansible_host, one /24) from $inventory"
}

lab_containers() {
  podman ps -a --filter "label=$fleet_label" --format '{{.Names}}'
}

container_ip() {
  podman container inspect --format "{{with index .NetworkSettings.Networks \"$network\"}}{{.IPAddress}}{{end}}" "$1" 2>/dev/null
}

container_networks() {
  podman container inspect --format '{{range $net, $_ := .NetworkSettings.Networks}}{{$net}} {{end}}' "$1"
}

wait_booted() { # container
  local state
  state=$(podman exec "$1" timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in
    running) return 0 ;;
    degraded)
      say "warning: $1 is degraded; failed units:"
      podman exec "$1" systemctl list-units --failed --plain --no-legend | sed 's/^/    /'
      return 0 ;;
    *) die "$1 did not finish booting (systemd state: ${state:-unknown}); see: podman logs $1" ;;
  esac
}

cmd_up() {
  local tag=${1:-${MTLS_LAB_IMAGE:-debian12}}
  case "$tag" in debian12 | debian13) ;; *) die "unknown image '$tag' (debian12 or debian13)" ;; esac
  local image="localhost/fleet-mtls-host:$tag"
  local start=$SECONDS

  bash "$repo/scripts/bootstrap.sh"
  "$repo/tests/fleet/build-images.sh" "$tag"
  local image_id
  image_id=$(podman image inspect --format '{{.Id}}' "$image")

  local hosts name container address subnet wanted=() settle=() current
  podman_log=$(mktemp)
  trap 'rm -f "$podman_log"' EXIT
  hosts=$(lab_hosts)
  [[ -n $hosts ]] || die "no hosts in $inventory"
  subnet="$(head -n1 <<<"$hosts" | cut -d' ' -f2 | cut -d. -f1-3).0/24"
  if podman network exists "$network" &&
    [[ $(podman network inspect --format '{{range .Subnets}}{{.Subnet}}{{end}}' "$network") != "$subnet" ]]; then
    say "network $network is not on $subnet any more, recreating the lab"
    cmd_down
  fi
  if ! podman network exists "$network"; then
    say "creating network $network ($subnet)"
    podman network create --label "$fleet_label" --subnet "$subnet" "$network" >/dev/null
  fi

  while read -r name address; do
    container="$network-$name"
    wanted+=("$container")
    settle+=("$name=$container=$address")
    if podman container exists "$container"; then
      current=$(podman container inspect --format '{{.Image}}' "$container")
      if [[ $current == "$image_id" && " $(container_networks "$container") " == *" $network "* &&
        $(container_ip "$container") == "$address" &&
        $(podman container inspect --format '{{index .Config.Labels "fleet-mtls.run-spec"}}' "$container") == "$run_spec" ]]; then
        if [[ $(podman container inspect --format '{{.State.Running}}' "$container") == true ]]; then
          say "$name: $container already running"
        else
          say "$name: starting $container"
          podman start "$container" >"$podman_log" 2>&1 </dev/null || {
            cat "$podman_log" >&2
            die "could not start $container"
          }
        fi
        continue
      fi
      say "$name: $container was made from another image or with other options, recreating it"
      podman rm -f "$container" >/dev/null
    fi
    say "$name: creating $container ($image)"
    # Output goes to a file, not to a pipe: conmon and aardvark-dns may keep
    # the descriptors they inherit from `podman run` open long after it ends.
    if ! podman run -d --name "$container" --hostname "$name" \
      --network "$network" --network-alias "$name" --ip "$address" \
      --volume "$ssh_key.pub:/root/.ssh/authorized_keys:ro" \
      --systemd=always --cap-add SYS_ADMIN \
      --label "$fleet_label" --label "fleet-mtls.host=$name" \
      --label "fleet-mtls.run-spec=$run_spec" \
      "$image" /sbin/init >"$podman_log" 2>&1 </dev/null; then
      cat "$podman_log" >&2
      die "could not start $container"
    fi
  done <<<"$hosts"

  # containers left from hosts the inventory no longer lists
  for container in $(lab_containers); do
    if [[ " ${wanted[*]} " != *" $container "* ]]; then
      say "removing $container (not in the inventory any more)"
      podman rm -f "$container" >/dev/null
    fi
  done

  for container in "${wanted[@]}"; do
    wait_booted "$container"
  done
  "$repo/tests/fleet/settle.sh" "$known_hosts" "${settle[@]}" || die "the lab is up but not usable (above)"

  say "checking that Ansible reaches every host through the inventory"
  local out
  if ! out=$(cd "$repo" && ansible -i "$inventory" all -m ansible.builtin.ping 2>&1); then
    echo "$out" >&2
    die "ansible could not reach every lab host"
  fi
  say "up in $((SECONDS - start))s"
  cmd_status
  cat <<EOF

Use it:  export ANSIBLE_CONFIG=$ANSIBLE_CONFIG PATH=$repo/.venv/bin:\$PATH
         ansible -i inventories/lab/hosts.yml all -m ansible.builtin.ping
Shell:   ssh -i .build/ssh/id_ed25519 -o UserKnownHostsFile=${known_hosts#"$repo"/} root@$(head -n1 <<<"$hosts" | cut -d' ' -f2)
Stop:    scripts/lab.sh down
EOF
}

cmd_status() {
  local containers container name state booted ip image
  containers=$(lab_containers)
  if [[ -z $containers ]]; then
    say "down (no lab containers)"
    if podman network exists "$network"; then
      say "network $network exists (scripts/lab.sh down removes it)"
    fi
    return 0
  fi
  printf '%-10s %-20s %-9s %-10s %-15s %s\n' HOST CONTAINER STATE SYSTEMD ADDRESS IMAGE
  for container in $containers; do
    name=$(podman container inspect --format '{{index .Config.Labels "fleet-mtls.host"}}' "$container")
    state=$(podman container inspect --format '{{.State.Status}}' "$container")
    image=$(podman container inspect --format '{{.ImageName}}' "$container")
    booted=-
    [[ $state == running ]] && booted=$(podman exec "$container" systemctl is-system-running 2>/dev/null || true)
    ip=$(container_ip "$container")
    printf '%-10s %-20s %-9s %-10s %-15s %s\n' "$name" "$container" "$state" "${booted:--}" "${ip:--}" "$image"
  done
  if podman network exists "$network"; then
    say "network $network: $(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{end}}' "$network")"
  fi
}

cmd_down() {
  local containers
  containers=$(lab_containers)
  if [[ -n $containers ]]; then
    say "removing ${containers//$'\n'/ }"
    # shellcheck disable=SC2086
    podman rm -f $containers >/dev/null
  fi
  if podman network exists "$network"; then
    say "removing network $network"
    podman network rm "$network" >/dev/null
  fi
  rm -f "$known_hosts"
  say "down"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  status) cmd_status ;;
  down) cmd_down ;;
  -h | --help | help) usage 0 ;;
  *) usage 2 >&2 ;;
esac
