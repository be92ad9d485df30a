#!/usr/bin/env bash
# `make demo`: a temp home, a few short clips from ffmpeg's lavfi sources, ingest, verify,
# a chain of custody and a signed checkpoint, the audit, a court export, and the daemon taking
# a docked camera with its dock receipt. Offline; leaves nothing behind but the temp dir.
set -euo pipefail
BWC="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/bwc"
work="$(mktemp -d -t bwc-demo.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export BWC_HOME="$work/home" BWC_ACTOR="demo-clerk"
# The demo key is protected like a real one: the passphrase comes from the environment.
export BWC_KEY_PASSPHRASE="${BWC_KEY_PASSPHRASE:-demo-passphrase}"
cam="$work/dock/DSJ0042"
mkdir -p "$cam/DCIM"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Generating sample footage (ffmpeg lavfi, 3 short clips + a GPS log)"
for i in 1 2 3; do
  ffmpeg -nostdin -loglevel error -y \
    -f lavfi -i "testsrc2=size=320x240:rate=15:duration=3" \
    -f lavfi -i "sine=frequency=$((300 + i * 110)):duration=3" -shortest \
    -metadata creation_time="2026-10-15T01:3${i}:00Z" \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac \
    "$cam/DCIM/DSJ0042_110023_2026101509${i}000_000${i}.MP4"
done
printf 'time,lat,lon\n2026-10-15T01:31:00Z,31.2304,121.4737\n' > "$cam/GPS0001.csv"
mkdir -p "$cam/System Volume Information" && : > "$cam/System Volume Information/IndexerVolumeGuid"
ls -l "$cam/DCIM" "$cam"

step "bwc init"
"$BWC" init --station-id demo-station

step "bwc ingest (officer 110023, device DSJ0042)"
"$BWC" ingest "$cam" --officer 110023 --device DSJ0042

step "bwc ingest again (same bytes: seen-again, no new items)"
"$BWC" ingest "$cam" --officer 110023 --device DSJ0042

step "bwc list"
"$BWC" list

step "bwc verify --all"
"$BWC" verify --all

first="$("$BWC" list --json | "$(dirname "$BWC")/python" -c 'import json,sys; print(json.load(sys.stdin)[0]["sha256"])')"
step "bwc show ${first:0:16} (chain of custody)"
"$BWC" show "${first:0:16}"

step "bwc log checkpoint (signed C2SP checkpoint)"
"$BWC" log checkpoint

step "bwc log verify"
"$BWC" log verify

step "Monthly coverage audit (officers, cases from the platform, the footage above)"
cat > "$work/officers.csv" <<'CSV'
officer_id,name,unit,county,frontline
110023,Zhang Wei,Team 1,Huangpu,是
110024,Li Na,Team 1,Huangpu,是
CSV
cat > "$work/cases.csv" <<'CSV'
case_id,category,unit,officers,start,end,location
C-001,street vending,Team 1,110023,2026-10-15 09:10:00,2026-10-15 09:10:03,Nanjing Road
C-002,illegal parking,Team 1,110023;110024,2026-10-15 09:20:00,2026-10-15 09:20:10,Fuzhou Road
C-003,noise,Team 1,110024,2026-10-15 10:00:00,2026-10-15 10:05:00,Jiujiang Road
CSV
"$BWC" audit import officers "$work/officers.csv"
"$BWC" audit import cases "$work/cases.csv"
"$BWC" audit report --month 2026-10
# C-002 lasts 10 s and has 3 s of footage: partial (each grace is at most 25 % of the case)
"$BWC" audit case C-002
# the problem list (问题清单): pairs not fully recorded and without an approved explanation
"$BWC" audit issues --month 2026-10 --lang en
# an explanation counts once a named supervisor approves it (both steps are custody events)
"$BWC" audit explain C-003 110024 --reason "camera battery ran out"
"$BWC" audit approve C-003 110024 --by "Supervisor Wang"
# the month's cases, and an officer who left: not staff from November, October's cases kept
"$BWC" audit cases list --month 2026-10
"$BWC" audit officers deactivate 110024 --reason "transferred" --from 2026-11-01
"$BWC" audit officers list

step "Court export: link the footage to case C-002, export a bundle, check it with stock tools"
# the clip recorded at 09:20, during case C-002 (illegal parking)
clip="$("$BWC" list --json | "$(dirname "$BWC")/python" -c 'import json,sys; print(next(i["sha256"] for i in json.load(sys.stdin) if "_20261015092000_" in i["path"]))')"
"$BWC" case link C-002 "$clip" --reason "footage of the illegal-parking case"
"$BWC" case show C-002
pdf=()
command -v chromium >/dev/null 2>&1 || pdf=(--no-pdf)  # the PDF needs headless Chromium
"$BWC" export --case C-002 --out "$work/bundle" --for "Huangpu circuit court" --lang en "${pdf[@]}"
ls "$work/bundle"
(cd "$work/bundle" && sha256sum -c --quiet SHA256SUMS && echo "sha256sum -c: all files OK")
key="$("$(dirname "$BWC")/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["sums_key"])' "$work/bundle/bundle.json")"
(cd "$work/bundle" && openssl pkeyutl -verify -pubin -inkey "keys/$key.pem" -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig)
# the bundle's own verifier, as a clerk runs it: no environment, no bwc
(cd "$work/bundle" && env -i "$(command -v python3)" -I verify.py --quiet)
"$BWC" verify-bundle "$work/bundle" | tail -n 1
"$BWC" access --case C-002

step "The docking station: bwc daemon takes a camera, logs a dock receipt (交接单)"
# a second camera, DSJ0043: two clips and a zero-byte file (its name carries no device id:
# it gets the device of its dock session); written during the shift, an hour ago
cam2="$work/staging/DSJ0043"
mkdir -p "$cam2/DCIM" "$work/docks"
for i in 1 2; do
  ffmpeg -nostdin -loglevel error -y \
    -f lavfi -i "testsrc2=size=320x240:rate=15:duration=2" \
    -f lavfi -i "sine=frequency=$((900 + i * 110)):duration=2" -shortest \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac \
    "$cam2/DCIM/DSJ0043_110024_2026101511${i}000_000${i}.MP4"
done
: > "$cam2/DCIM/EMPTY.MP4"
find "$cam2" -exec touch -d '1 hour ago' {} +
"$BWC" daemon --dock "$work/docks" --no-live 2> "$work/daemon.log" &
daemon=$!
wait_log() {  # wait_log PATTERN: until the daemon's log has it (60 s at most)
  for _ in $(seq 120); do grep -q "$1" "$work/daemon.log" && return 0; sleep 0.5; done
  echo "the daemon did not log '$1':" >&2; cat "$work/daemon.log" >&2; kill "$daemon"; exit 1
}
mv "$cam2" "$work/docks/"            # the camera docks (as a USB mount appears)
wait_log "receipt (all files in)"
mv "$work/docks/DSJ0043" "$work/staging/"   # ... and is undocked
wait_log "receipt (undocked)"
kill -TERM "$daemon" && wait "$daemon"
grep -E "docked|receipt" "$work/daemon.log"
"$BWC" receipt --list
session="$("$BWC" receipt --list --json | "$(dirname "$BWC")/python" -c 'import json,sys; print(json.load(sys.stdin)[0]["session"])')"
"$BWC" receipt "$session"

step "Tamper test: flip one byte of a stored object, then verify"
obj="$BWC_HOME/store/objects/${first:0:2}/$first"
chmod u+w "$obj"
printf '\x00' | dd of="$obj" bs=1 seek=100 count=1 conv=notrunc status=none
if "$BWC" verify "${first:0:16}" --no-record; then
  echo "tampering NOT detected: this is a bug" >&2; exit 1
else
  echo "(tampering detected, exit code $?)"
fi
step "Demo finished"
