#!/bin/bash
# Build, without any container registry, the base and infrastructure images that
# docker-compose.yml and the service Dockerfiles otherwise pull:
#
#   shop-offline/debian:bookworm    debootstrap --variant=minbase bookworm + docker import
#   shop-offline/python:3.11        for python:3.11-slim-bookworm   (PYTHON_IMAGE)
#   shop-offline/uv:0.9             for ghcr.io/astral-sh/uv:0.9      (UV_IMAGE; uv from PyPI)
#   shop-offline/postgres:15        for postgres:16-alpine            (POSTGRES_IMAGE)
#   shop-offline/redis:7.0          for redis:7-alpine                (REDIS_IMAGE)
#   shop-offline/rabbitmq:3.10      for rabbitmq:3.13-management-alpine (RABBITMQ_IMAGE)
#   shop-offline/prometheus:2.42    for prom/prometheus:v3.5.0        (PROMETHEUS_IMAGE)
#
# Everything comes from Debian's archive and PyPI. Consul has no Debian or PyPI package: there
# is no offline Consul image, and deploy/offline/compose.offline.yml runs the stack with static
# discovery instead. Idempotent: an image whose inputs (this directory) have not changed is
# skipped; --force rebuilds. Prints each step with its duration, then the version differences.
#
#   deploy/offline/build-images.sh [--force] [--env]    (--env: only print the variables)
# Environment: CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt, passed to builds as a
# secret for HTTPS to PyPI), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${OFFLINE_PREFIX:-shop-offline}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
UV_VERSION="${UV_VERSION:-0.9.*}"
FORCE=0
root=""

BASE="$PREFIX/debian:bookworm"
PYTHON="$PREFIX/python:3.11"
UV="$PREFIX/uv:0.9"
POSTGRES="$PREFIX/postgres:15"
REDIS="$PREFIX/redis:7.0"
RABBITMQ="$PREFIX/rabbitmq:3.10"
PROMETHEUS="$PREFIX/prometheus:2.42"

print_env() {
  cat <<EOF
PYTHON_IMAGE=$PYTHON
UV_IMAGE=$UV
POSTGRES_IMAGE=$POSTGRES
REDIS_IMAGE=$REDIS
RABBITMQ_IMAGE=$RABBITMQ
PROMETHEUS_IMAGE=$PROMETHEUS
EOF
}

for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --env) print_env; exit 0 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-images.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
say() { printf '%s\n' "$*"; }

# A BuildKit-capable `docker build` (RUN --mount=type=secret): buildx when installed, else a
# Docker CLI older than 23 (its own BuildKit client, e.g. Debian's docker.io 20.10).
build_cmd=()
pick_builder() {
  if docker buildx version >/dev/null 2>&1; then
    build_cmd=(docker buildx build --load)
    return
  fi
  local candidate version
  for candidate in $(type -ap docker) /usr/bin/docker; do
    [ -x "$candidate" ] || continue
    version="$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null || true)"
    if [ -n "$version" ] && [ "${version%%.*}" -lt 23 ] 2>/dev/null; then
      build_cmd=(env DOCKER_BUILDKIT=1 "$candidate" build)
      return
    fi
  done
  echo "✗ no BuildKit builder: install docker buildx, or Debian's docker.io (apt-get install docker.io)" >&2
  exit 1
}

# The inputs of an image: its directory plus the recipe of the base (this script's mirror and
# suite). The hash is stored as a label; an image with the same label is up to date.
inputs_hash() {
  local dir="$1"
  {
    echo "$MIRROR bookworm minbase $UV_VERSION"
    if [ -n "$dir" ]; then tar -C "$HERE" -cf - --sort=name --mtime=@0 --owner=0 --group=0 "$dir"; fi
  } \
    | sha256sum | cut -c1-16
}

up_to_date() {  # image hash
  [ "$FORCE" = 0 ] || return 1
  [ "$(docker image inspect -f '{{ index .Config.Labels "shop.offline.inputs" }}' "$1" 2>/dev/null)" = "$2" ]
}

step() {  # name image hash command...
  local name="$1" image="$2" hash="$3"
  shift 3
  if up_to_date "$image" "$hash"; then
    say "✓ $name: $image is up to date (skipped; --force rebuilds)"
    return
  fi
  say "==> $name: building $image"
  local start
  start="$(now)"
  "$@"
  say "✓ $name: $image built in $(since "$start")"
}

build_base() {
  local hash="$1"
  if ! command -v debootstrap >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "==> base: installing Debian's debootstrap (apt-get install debootstrap)"
    apt-get install -y -q debootstrap >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q debootstrap >/dev/null 2>&1; } || true
  fi
  if ! command -v debootstrap >/dev/null; then
    echo "✗ debootstrap is not installed (apt-get install -y debootstrap)" >&2
    exit 1
  fi
  root="$(mktemp -d /tmp/shop-offline-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/tmp/shop-offline-debootstrap.log 2>&1 \
    || { echo "✗ debootstrap failed; see /tmp/shop-offline-debootstrap.log" >&2; tail -5 /tmp/shop-offline-debootstrap.log >&2; exit 1; }
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
  # As in Docker's Debian images: no daemon starts during a package install, no caches or docs.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Install-Recommends "false";
Acquire::GzipIndexes "true";
EOF
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/doc/*/copyright\n' \
    >"$root/etc/dpkg/dpkg.cfg.d/docker-excludes"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c "LABEL shop.offline.inputs=$hash" \
    -c 'CMD ["bash"]' - "$BASE" >/dev/null
  rm -rf "$root"
}

build_dir() {  # dir image hash [build args...]
  local dir="$1" image="$2" hash="$3"
  shift 3
  local secret=()
  if [ -s "$CA_BUNDLE" ]; then secret=(--secret "id=ca-bundle,src=$CA_BUNDLE"); fi
  "${build_cmd[@]}" --quiet --label "shop.offline.inputs=$hash" "${secret[@]}" \
    --build-arg "BASE_IMAGE=$BASE" --build-arg "PYTHON_IMAGE=$PYTHON" "$@" \
    -t "$image" "$HERE/$dir" >/dev/null
}

version_of() {  # image command...
  local image="$1"
  shift
  docker run --rm --entrypoint "$1" "$image" "${@:2}" 2>/dev/null | head -1 | tr -d '\r' || true
}

main() {
  local total
  total="$(now)"
  if ! docker info >/dev/null 2>&1; then
    echo "✗ no Docker engine answers (start dockerd, or make compose-up starts it)" >&2
    exit 1
  fi
  pick_builder
  say "==> offline images from Debian bookworm ($MIRROR) and PyPI; builder: ${build_cmd[*]}"
  local base_hash
  base_hash="$(inputs_hash "")"
  step "base" "$BASE" "$base_hash" build_base "$base_hash"
  # Every other image is FROM the base: its hash includes the base's image id.
  local base_id
  base_id="$(docker image inspect -f '{{.Id}}' "$BASE")"
  h() { printf '%s %s' "$base_id" "$(inputs_hash "$1")" | sha256sum | cut -c1-16; }
  step "python" "$PYTHON" "$(h python)" build_dir python "$PYTHON" "$(h python)"
  local python_id
  python_id="$(docker image inspect -f '{{.Id}}' "$PYTHON")"
  local uv_hash
  uv_hash="$(printf '%s %s' "$python_id" "$(inputs_hash uv)" | sha256sum | cut -c1-16)"
  step "uv" "$UV" "$uv_hash" build_dir uv "$UV" "$uv_hash" --build-arg "UV_VERSION=$UV_VERSION"
  step "postgres" "$POSTGRES" "$(h postgres)" build_dir postgres "$POSTGRES" "$(h postgres)"
  step "redis" "$REDIS" "$(h redis)" build_dir redis "$REDIS" "$(h redis)"
  step "rabbitmq" "$RABBITMQ" "$(h rabbitmq)" build_dir rabbitmq "$RABBITMQ" "$(h rabbitmq)"
  step "prometheus" "$PROMETHEUS" "$(h prometheus)" build_dir prometheus "$PROMETHEUS" "$(h prometheus)"

  say "==> versions: local image (official image it stands in for)"
  local py pg rd rq pr uvv
  py="$(version_of "$PYTHON" python3 --version)"
  uvv="$(docker run --rm --entrypoint /uv "$UV" --version 2>/dev/null || true)"
  pg="$(version_of "$POSTGRES" postgres --version | awk '{ print "PostgreSQL " $3 }')"
  rd="$(version_of "$REDIS" redis-server --version | awk '{ print "Redis " substr($3, 3) }')"
  rq="$(docker run --rm --entrypoint dpkg-query "$RABBITMQ" -W -f '${Version}' rabbitmq-server 2>/dev/null || true)"
  pr="$(version_of "$PROMETHEUS" /usr/bin/prometheus --version | awk '{ print "Prometheus " $3 }')"
  printf '  %-28s %-34s %s\n' \
    "$PYTHON" "${py:-?}" "python:3.11-slim-bookworm: same minor (3.11); Debian's patch level, at /usr/bin" \
    "$UV" "${uvv:-?}" "ghcr.io/astral-sh/uv:0.9: same minor, from PyPI" \
    "$POSTGRES" "${pg:-?}" "postgres:16-alpine: DIFFERENT major (15 vs 16); glibc, C.UTF-8" \
    "$REDIS" "${rd:-?}" "redis:7-alpine: 7.0 vs the latest 7.x" \
    "$RABBITMQ" "RabbitMQ ${rq:-?}" "rabbitmq:3.13-management-alpine: DIFFERENT minor (3.10 vs 3.13)" \
    "$PROMETHEUS" "${pr:-?}" "prom/prometheus:v3.5.0: DIFFERENT major (2.42 vs 3.5); rules/config are 2.x-compatible" \
    "(none)" "-" "hashicorp/consul:1.20: no offline image; static discovery (compose.offline.yml)"
  say "==> sizes"
  docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep "^$PREFIX/" | sort \
    | awk -F'\t' '{ printf "  %-30s %s\n", $1, $2 }'
  say "✓ offline images ready in $(since "$total")"
}

main
