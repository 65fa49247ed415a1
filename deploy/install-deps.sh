#!/usr/bin/env bash
# Installs the Debian (bookworm) packages streamrec builds, tests and runs
# with.  Idempotent: apt-get skips what is already installed.  Run as root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config git \
  librdkafka-dev libhiredis-dev libopenblas-dev \
  libprotobuf-c-dev protobuf-c-compiler \
  libcriterion-dev libmicrohttpd-dev libjansson-dev \
  redis-server redis-tools wrk procps >/dev/null
echo "install-deps: ok"
