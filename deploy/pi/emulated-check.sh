#!/usr/bin/env bash
# Prove the Raspberry Pi path on an x86-64 Debian/Ubuntu machine: a Debian bookworm arm64 root
# (what Raspberry Pi OS 64-bit is built on, with the same Python 3.11) run under qemu-user,
# fer-edge installed in it the way the README's Raspberry Pi section tells a Pi owner to, then
# `fer-edge run --headless --jsonl` on a video, under aarch64.
#
#   sudo deploy/pi/emulated-check.sh VIDEO OUTDIR            # OUTDIR/<video name>.jsonl + a log
#   deploy/pi/emulated-check.sh --print-plan VIDEO OUTDIR    # every step and command; runs nothing
#
# The root is built once (a few minutes) and kept in the cache; each check installs fer-edge
# afresh into a new venv. Frames/s measured here are EMULATED: they say nothing about a Pi.
set -euo pipefail
{ # The whole script is one block, parsed before it runs: editing the file mid-run cannot derail it.

PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SUITE=bookworm
ROOT_FORMAT=1  # bump to force older cached roots to be rebuilt
# Raspberry Pi OS Lite has these out of the box; a cached root gets any added here later.
ROOT_PACKAGES=ca-certificates,sudo,python3,systemd
# From the README's Raspberry Pi section. python3-picamera2 is in the Raspberry Pi archive only,
# not in Debian, so the emulated root leaves it out (and has no camera for it anyway).
PI_APT=(python3-venv)
PI_USER=pi
VENV=/opt/fer-edge/venv
MODELS=/opt/fer-edge/models
SRC=/home/$PI_USER/fer-edge              # the checkout, as `git clone` would leave it
WORK=/home/$PI_USER/fer-edge-check       # the video and the run's outputs inside the root
DETECTOR_FILE=blaze_face_short_range.tflite

usage() {
  cat <<EOF
usage: $PROG [options] VIDEO OUTDIR

Build (or reuse) a Debian $SUITE arm64 root, install fer-edge in it as the README's Raspberry
Pi section says, run \`fer-edge run --source VIDEO --headless --jsonl OUTDIR/<name>.jsonl\` under
aarch64 (qemu-user), and report uname -m, versions, frame and face counts and EMULATED frames/s.
Needs root, except with --print-plan. Exits non-zero when any step fails.

options:
  --cache DIR            where the arm64 root is kept (default: \$FER_EDGE_PI_CACHE, else
                         /var/cache/fer-edge-pi as root, else \${XDG_CACHE_HOME:-~/.cache}/fer-edge-pi)
  --models-dir DIR       a folder holding $DETECTOR_FILE, served to \`fer-edge models pull\`
                         as a local mirror (default: \$FER_EDGE_MODEL_DIR when set)
  --model-url-base URL   pull the detector from URL/$DETECTOR_FILE instead
                         (default: \$FER_EDGE_MODEL_URL_BASE; with neither: the official URL)
  --mirror URL           Debian mirror (default: http://deb.debian.org/debian)
  --min-face-frames N    fail unless at least N frames have a face (default: 1; 0 turns it off)
  --pi 4|5               the CPU to emulate: a Pi 4's Cortex-A72 or a Pi 5's Cortex-A76 (default: 4,
                         the older instruction set: what runs there runs on a Pi 5 too)
  --rebuild              build the root again even if the cache has one
  --print-plan           print the steps and the commands, run nothing
  -h, --help             this help
EOF
}

die() { echo "$PROG: error: $*" >&2; exit "${2:-1}"; }
usage_error() { echo "$PROG: error: $*" >&2; echo "run '$PROG --help' for usage" >&2; exit 2; }

# ----------------------------------------------------------------------------------------------
# Arguments

PLAN=0 REBUILD=0 MIN_FACE_FRAMES=1 PI_MODEL=4
CACHE=${FER_EDGE_PI_CACHE:-}
MODELS_DIR_FLAG="" URL_BASE_FLAG=""
MIRROR=http://deb.debian.org/debian
POS=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --print-plan) PLAN=1 ;;
    --rebuild) REBUILD=1 ;;
    --cache|--models-dir|--model-url-base|--mirror|--min-face-frames|--pi)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case $1 in
        --cache) CACHE=$2 ;;
        --models-dir) MODELS_DIR_FLAG=$2 ;;
        --model-url-base) URL_BASE_FLAG=$2 ;;
        --mirror) MIRROR=$2 ;;
        --min-face-frames) MIN_FACE_FRAMES=$2 ;;
        --pi) PI_MODEL=$2 ;;
      esac
      shift ;;
    --) shift; POS+=("$@"); break ;;
    -*) usage_error "unknown option $1" ;;
    *) POS+=("$1") ;;
  esac
  shift
done
[ ${#POS[@]} -eq 2 ] || usage_error "expected VIDEO and OUTDIR, got ${#POS[@]} argument(s)"
VIDEO=${POS[0]} OUTDIR=${POS[1]}
[ -f "$VIDEO" ] || usage_error "video not found: $VIDEO"
[ -r "$VIDEO" ] || usage_error "video not readable: $VIDEO"
[[ $MIN_FACE_FRAMES =~ ^[0-9]+$ ]] || usage_error "--min-face-frames expects a whole number, got '$MIN_FACE_FRAMES'"
# qemu-user shows the guest the host's x86 /proc/cpuinfo, on which XNNPACK's CPU detection crashes
# (allocate_tensors segfaults). So the root sees the Pi's /proc/cpuinfo, and qemu emulates the Pi's
# core: a wheel built for a newer ARM instruction set than the Pi's would fail here too.
case $PI_MODEL in
  4) QEMU_CPU=cortex-a72 CPU_PART=0xd08 CPU_NAME=Cortex-A72 PI_NAME="Raspberry Pi 4 Model B"
     CPU_FEATURES="fp asimd evtstrm crc32 cpuid" ;;
  5) QEMU_CPU=cortex-a76 CPU_PART=0xd0b CPU_NAME=Cortex-A76 PI_NAME="Raspberry Pi 5 Model B"
     CPU_FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
  *) usage_error "--pi expects 4 or 5, got '$PI_MODEL'" ;;
esac
# Where the detector comes from: a flag wins over both environment variables.
if [ -n "$MODELS_DIR_FLAG" ] && [ -n "$URL_BASE_FLAG" ]; then
  usage_error "give --models-dir or --model-url-base, not both"
elif [ -n "$MODELS_DIR_FLAG$URL_BASE_FLAG" ]; then
  MODELS_DIR=$MODELS_DIR_FLAG URL_BASE=$URL_BASE_FLAG
else
  MODELS_DIR=${FER_EDGE_MODEL_DIR:-} URL_BASE=${FER_EDGE_MODEL_URL_BASE:-}
  [ -z "$MODELS_DIR" ] || URL_BASE=""
fi
if [ -n "$MODELS_DIR" ]; then
  [ -f "$MODELS_DIR/$DETECTOR_FILE" ] || usage_error "--models-dir $MODELS_DIR has no $DETECTOR_FILE"
fi
if [ -z "$CACHE" ]; then
  if [ "$(id -u)" = 0 ]; then CACHE=/var/cache/fer-edge-pi
  else CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/fer-edge-pi; fi
fi
case $CACHE in /*) ;; *) CACHE=$PWD/$CACHE ;; esac
case $CACHE/ in "$REPO"/*) usage_error "--cache must be outside the repository ($REPO)" ;; esac

VIDEO_NAME=$(basename -- "$VIDEO")
NAME=${VIDEO_NAME%.*}
ROOT=$CACHE/$SUITE-arm64
JSONL_IN_ROOT=$WORK/out/$NAME.jsonl
VIDEO_OUT_IN_ROOT=$WORK/out/$NAME.annotated.mp4   # --save-video: H.264 through PyAV, as on a Pi
if [ -n "$MODELS_DIR" ]; then
  PULL_URL_BASE=file://$WORK/mirror    # a local mirror: the same download path, sha256 checked
else
  PULL_URL_BASE=$URL_BASE
fi

# The commands a Pi owner types (README, "Raspberry Pi"); the tests check that the README has them.
README_APT="sudo apt install -y ${PI_APT[*]}"
README_MKDIR="sudo mkdir -p /opt/fer-edge && sudo chown \"\$USER\": /opt/fer-edge"
README_VENV="python3 -m venv --system-site-packages $VENV"
README_INSTALL="cd ~/fer-edge && $VENV/bin/pip install ."
README_PULL="$VENV/bin/fer-edge models pull --dest $MODELS"
README_CHMOD="chmod -R a+rX $MODELS"
PULL_CMD=$README_PULL${PULL_URL_BASE:+ --url-base $PULL_URL_BASE}
RUN_CMD="FER_EDGE_MODEL_DIR=$MODELS $VENV/bin/fer-edge run --source $(printf %q "$WORK/$VIDEO_NAME") --headless --jsonl $(printf %q "$JSONL_IN_ROOT") --save-video $(printf %q "$VIDEO_OUT_IN_ROOT")"

APT_OPTS=()
if command -v apt-config >/dev/null && apt-config dump 2>/dev/null | grep -q '^Acquire::Check-Valid-Until "false"'; then
  # This host's mirror serves a dated snapshot; the root uses the same mirror, so the same setting.
  APT_OPTS+=('Acquire::Check-Valid-Until "false"')
fi

plan() {
  cat <<EOF
plan: $PROG, emulated Raspberry Pi check (Debian $SUITE arm64 under qemu-user)
video: $VIDEO -> $OUTDIR/$NAME.jsonl
root: $ROOT (built once with mmdebstrap or debootstrap from $MIRROR, packages $ROOT_PACKAGES, user $PI_USER in group video)
step 1 host: qemu-user-static binfmt-support mmdebstrap arch-test debian-archive-keyring (apt-get install when missing); binfmt_misc mounted; qemu-aarch64 enabled
cpu: $CPU_NAME as on a $PI_NAME (QEMU_CPU=$QEMU_CPU, and that Pi's /proc/cpuinfo)
step 2 root: $( [ -d "$ROOT" ] && [ $REBUILD = 0 ] && echo "reuse $ROOT" || echo "build $ROOT" )${APT_OPTS:+ (apt option: ${APT_OPTS[*]})}
step 3 copy: the checkout $REPO -> $SRC; the video -> $WORK/$VIDEO_NAME${MODELS_DIR:+; $MODELS_DIR/$DETECTOR_FILE -> $WORK/mirror/}
step 4 as root in the root: apt-get install -y ${PI_APT[*]}   [README: $README_APT]
step 5 as $PI_USER: $README_MKDIR
step 5 as $PI_USER: $README_VENV
step 5 as $PI_USER: $README_INSTALL
step 5 as $PI_USER: $PULL_CMD
step 5 as $PI_USER: $README_CHMOD
step 6 as $PI_USER: uname -m; versions; check that neither tensorflow nor mediapipe is installed
step 7 as $PI_USER: $RUN_CMD
step 8 host: counts from $NAME.jsonl, and the saved video's codec (H.264) and frames; copy them and the logs to $OUTDIR
step 9 host: systemd-analyze verify --root=<the root> deploy/fer-edge.service, copied to /etc/systemd/system/ as the README says
EOF
}

if [ $PLAN = 1 ]; then
  plan
  exit 0
fi

# ----------------------------------------------------------------------------------------------
# The real run

[ "$(id -u)" = 0 ] || die "must run as root (it builds a chroot and mounts binfmt_misc); --print-plan needs no root" 2
HOST_ARCH=$(uname -m)
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG=$OUTDIR/$NAME.emulated-check.log
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
STEP=""
trap 'rc=$?; [ $rc = 0 ] || echo "FAILED (exit $rc) at: $STEP. Full log: $LOG"' EXIT
step() { STEP=$*; echo; echo "== $*"; }

plan

step "1/9 host tools and binfmt (host: $HOST_ARCH)"
need=()
command -v unshare >/dev/null || need+=(util-linux)
if ! command -v mmdebstrap >/dev/null && ! command -v debootstrap >/dev/null; then need+=(mmdebstrap); fi
# mmdebstrap builds a foreign-architecture root only with arch-test, which it merely recommends
# (and --no-install-recommends leaves out): without it, step 2 stops at "install arch-test".
if command -v mmdebstrap >/dev/null || [[ " ${need[*]} " == *" mmdebstrap "* ]]; then
  command -v arch-test >/dev/null || need+=(arch-test)
fi
# Ubuntu hosts lack Debian's signing keys, which the root's packages are checked against.
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ "$HOST_ARCH" != aarch64 ]; then
  [ -e /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
  command -v update-binfmts >/dev/null || need+=(binfmt-support)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"; }
fi
if [ "$HOST_ARCH" != aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 \
    || update-binfmts --import qemu-aarch64
  grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "binfmt qemu-aarch64 is not enabled"
  # F (fix binary): the kernel holds the interpreter open, so it works inside the chroot too.
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || die "binfmt qemu-aarch64 lacks the F flag: reinstall qemu-user-static (Debian's registers it with F)"
  echo "binfmt: $(tr '\n' ' ' </proc/sys/fs/binfmt_misc/qemu-aarch64 | cut -c1-120)"
fi

# Run a command inside the root, in a private mount namespace so /proc, /dev and /sys vanish with
# it. (/sys: XNNPACK's cpuinfo reads the CPU list there, as it does on a Pi.)
CPUINFO=""
if [ "$HOST_ARCH" != aarch64 ]; then
  mkdir -p "$CACHE"
  CPUINFO=$CACHE/cpuinfo-pi$PI_MODEL
  for ((i = 0; i < $(getconf _NPROCESSORS_CONF); i++)); do   # as many as /sys shows
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 3\n\n' \
      "$i" "$CPU_FEATURES" "$CPU_PART"
  done >"$CPUINFO"
  printf 'Model\t\t: %s\n' "$PI_NAME" >>"$CPUINFO"
fi
#   in_root USER CMD...   (USER: root or $PI_USER)
in_root() {
  local who=$1; shift
  local spec=()
  if [ "$who" != root ]; then
    local uid gid groups
    uid=$(awk -F: -v u="$who" '$1==u{print $3}' "$ROOT/etc/passwd")
    gid=$(awk -F: -v u="$who" '$1==u{print $4}' "$ROOT/etc/passwd")
    groups=$(awk -F: -v u="$who" '{n=split($4,m,","); for(i=1;i<=n;i++) if(m[i]==u) printf "%s%s", (s++?",":""), $3}' "$ROOT/etc/group")
    spec=(--userspec="$uid:$gid" ${groups:+--groups="$groups"})
  fi
  local home=/root; [ "$who" = root ] || home=/home/$who
  local emu=()
  [ "$HOST_ARCH" = aarch64 ] || emu=(QEMU_CPU="$QEMU_CPU")
  unshare --mount --propagation private -- /bin/sh -c '
    r=$1 cpuinfo=$2; shift 2
    mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" && mount --rbind /sys "$r/sys" \
      && { [ -z "$cpuinfo" ] || mount --bind "$cpuinfo" "$r/proc/cpuinfo"; } && exec chroot "$@"' \
    sh "$ROOT" "$CPUINFO" "${spec[@]}" "$ROOT" /usr/bin/env -i "${emu[@]}" HOME="$home" USER="$who" LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PIP_DISABLE_PIP_VERSION_CHECK=1 \
    nice -n 10 /bin/sh -c "cd \"$home\" && $*"   # emulation is CPU heavy: yield to other work
}

step "2/9 the Debian $SUITE arm64 root"
if [ $REBUILD = 1 ] || [ "$(cat "$ROOT/.fer-edge-root" 2>/dev/null)" != "$ROOT_FORMAT" ]; then
  mkdir -p "$CACHE"
  tmp=$ROOT.partial
  rm -rf -- "$ROOT" "$tmp"
  sources=("deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main")
  case $MIRROR in http://deb.debian.org/debian|https://deb.debian.org/debian)
    sources+=("deb ${MIRROR%/debian}/debian-security $SUITE-security main") ;; esac
  if command -v mmdebstrap >/dev/null; then
    aptopt=(); for o in "${APT_OPTS[@]}"; do aptopt+=(--aptopt="$o"); done
    nice -n 10 mmdebstrap --mode=root --architectures=arm64 --variant=apt --include="$ROOT_PACKAGES" \
      "${aptopt[@]}" "$SUITE" "$tmp" "${sources[@]}"
  else
    nice -n 10 debootstrap --arch=arm64 --variant=minbase --include="$ROOT_PACKAGES" "$SUITE" "$tmp" "$MIRROR"
    printf '%s\n' "${sources[@]}" >"$tmp/etc/apt/sources.list"
    for o in "${APT_OPTS[@]}"; do echo "$o;" >>"$tmp/etc/apt/apt.conf.d/99fer-edge-check"; done
  fi
  final=$ROOT ROOT=$tmp
  in_root root "useradd --create-home --shell /bin/bash --groups video,sudo $PI_USER"
  echo "$ROOT_FORMAT" >"$tmp/.fer-edge-root"
  ROOT=$final
  mv -- "$tmp" "$ROOT"   # only a finished root is ever reused
  echo "built $ROOT"
else
  echo "reusing $ROOT (built $(date -r "$ROOT/.fer-edge-root" '+%F %T'); --rebuild to build it again)"
  missing=$(in_root root "for p in ${ROOT_PACKAGES//,/ }; do dpkg-query -W -f='\${Status}\n' \$p 2>/dev/null | grep -q '^install ok installed' || echo \$p; done" | tr '\n' ' ')
  if [ -n "${missing// /}" ]; then
    echo "adding base packages to the cached root: $missing"
    in_root root "DEBIAN_FRONTEND=noninteractive apt-get update -q >/tmp/apt.log 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >>/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; exit 1; }"
  fi
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"   # pip inside the root resolves names like the host
# ... and trusts what the host's admin added (a TLS-inspecting proxy's CA, for one).
local_ca=/usr/local/share/ca-certificates
if compgen -G "$local_ca/*.crt" >/dev/null && ! diff -rq "$local_ca" "$ROOT$local_ca" >/dev/null 2>&1; then
  rm -rf -- "$ROOT$local_ca" && mkdir -p "$ROOT$local_ca" && cp -- "$local_ca"/*.crt "$ROOT$local_ca/"
  in_root root "update-ca-certificates >/dev/null 2>&1"
  echo "the root trusts the host's local CA certificates too: $(cd "$local_ca" && echo *.crt)"
fi
echo "uname -m inside the root: $(in_root root 'uname -m')"
[ "$(in_root root 'uname -m')" = aarch64 ] || die "the root does not run as aarch64"

step "3/9 copy the checkout, the video and the detector mirror into the root"
rm -rf -- "$ROOT$SRC" "$ROOT$WORK"
mkdir -p "$ROOT$SRC" "$ROOT$WORK/out"
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  # Tracked and new files, as they are in the working tree (uncommitted edits included).
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
    | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$ROOT$SRC"
  echo "checkout: $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD || echo ' + uncommitted edits')"
else
  tar -C "$REPO" --exclude=.git --exclude='*.egg-info' --exclude=build --exclude=__pycache__ -cf - . | tar -xf - -C "$ROOT$SRC"
fi
cp -- "$VIDEO" "$ROOT$WORK/$VIDEO_NAME"
if [ -n "$MODELS_DIR" ]; then
  mkdir -p "$ROOT$WORK/mirror"
  cp -- "$MODELS_DIR/$DETECTOR_FILE" "$ROOT$WORK/mirror/"
fi
rm -rf -- "$ROOT/opt/fer-edge"   # a fresh install every time; pip's cache keeps it quick
in_root root "chown -R $PI_USER: $SRC $WORK"

step "4/9 apt packages (as root): ${PI_APT[*]}"
in_root root "DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${PI_APT[*]} >/tmp/apt.log 2>&1 \
  || { DEBIAN_FRONTEND=noninteractive apt-get update -q >>/tmp/apt.log 2>&1 \
       && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${PI_APT[*]} >>/tmp/apt.log 2>&1; } \
  || { tail -20 /tmp/apt.log; exit 1; }"
echo "ok"

step "5/9 install as $PI_USER, following the README"
# sudo inside the root works for root only (no password); create /opt/fer-edge the way the README's
# `sudo mkdir/chown` line does, then every other line runs as the Pi user.
in_root root "mkdir -p /opt/fer-edge && chown $PI_USER: /opt/fer-edge"
t0=$(date +%s)
n=0
for cmd in "$README_VENV" "$README_INSTALL" "$PULL_CMD" "$README_CHMOD"; do
  n=$((n + 1))
  echo "\$ $cmd"
  if ! in_root "$PI_USER" "$cmd" >"$OUTDIR/$NAME.install-$n.log" 2>&1; then
    tail -n 40 "$OUTDIR/$NAME.install-$n.log"
    die "failed: $cmd (log: $OUTDIR/$NAME.install-$n.log)"
  fi
  grep -v -E '^\s*(Downloading|Using cached|Collecting|Requirement already|Obtaining|  )' "$OUTDIR/$NAME.install-$n.log" | tail -n 6 || true
done
echo "installed in $(( $(date +%s) - t0 )) s (emulated)"

step "6/9 what is installed, under aarch64"
in_root "$PI_USER" "set -e; echo \"uname -m: \$(uname -m)\"; echo \"Debian: \$(cat /etc/debian_version)\"; \
  echo \"CPU: \$(grep -m1 '^CPU part' /proc/cpuinfo) (\$(grep -m1 '^Model' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))\"; \
  $VENV/bin/python --version; \
  $VENV/bin/python -m pip list 2>/dev/null | grep -i -E '^(fer-edge|numpy|opencv[-a-z]*|ai-edge-litert|tflite-runtime|tqdm|psutil|av|tensorflow[-a-z]*|mediapipe) '; \
  $VENV/bin/python -c 'import cv2; gui = [l.split(\":\")[1].strip() for l in cv2.getBuildInformation().splitlines() if l.strip().startswith(\"GUI:\")]; print(\"import cv2: ok,\", cv2.__version__, \"GUI:\", *gui)'; \
  FER_EDGE_MODEL_DIR=$MODELS $VENV/bin/fer-edge models list"
in_root "$PI_USER" "$VENV/bin/python -c 'import importlib.util as u, sys; bad=[m for m in (\"tensorflow\", \"mediapipe\") if u.find_spec(m)]; print(\"heavy packages:\", bad or \"none (no TensorFlow, no MediaPipe)\"); sys.exit(1 if bad else 0)'"

step "7/9 fer-edge run under aarch64 (emulated)"
echo "\$ $RUN_CMD"
set +e
in_root "$PI_USER" "$RUN_CMD 2>$WORK/out/run.stderr"
rc=$?
set -e
cp -- "$ROOT$WORK/out/run.stderr" "$OUTDIR/$NAME.run.log"
sed -e 's/^/  | /' "$OUTDIR/$NAME.run.log" | tail -n 30
[ $rc = 0 ] || die "fer-edge run exited $rc"
[ -f "$ROOT$JSONL_IN_ROOT" ] || die "fer-edge run wrote no $JSONL_IN_ROOT"
[ -f "$ROOT$VIDEO_OUT_IN_ROOT" ] || die "fer-edge run wrote no $VIDEO_OUT_IN_ROOT"
cp -- "$ROOT$JSONL_IN_ROOT" "$OUTDIR/$NAME.jsonl"
cp -- "$ROOT$VIDEO_OUT_IN_ROOT" "$OUTDIR/$NAME.annotated.mp4"

step "8/9 results"
in_root "$PI_USER" "$VENV/bin/python - $(printf '%q %q %q' "$JSONL_IN_ROOT" "$WORK/$VIDEO_NAME" "$VIDEO_OUT_IN_ROOT") $MIN_FACE_FRAMES" <<'PY'
import json, sys
import av
import cv2
path, video, saved, min_face_frames = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cap = cv2.VideoCapture(video)
decoded = 0
while cap.read()[0]:
    decoded += 1
cap.release()
frames = faces = with_face = 0
indices = []
for line in open(path, encoding="utf-8"):
    r = json.loads(line)
    frames += 1
    faces += len(r["faces"])
    with_face += bool(r["faces"])
    indices.append(r["frame"])
print(f"frames in the video: {decoded}; JSONL lines: {frames}; frames with a face: {with_face}; faces: {faces}")
ok = True
if frames != decoded or indices != list(range(decoded)):
    print("FAIL: the JSONL should hold one line per frame of the video, in order"); ok = False
if with_face < min_face_frames:
    print(f"FAIL: fewer than {min_face_frames} frame(s) with a face"); ok = False
with av.open(saved) as container:
    codec = container.streams.video[0].codec_context.name
    saved_frames = sum(1 for _ in container.decode(video=0))
print(f"--save-video: {codec}, {saved_frames} frames (PyAV {av.__version__})")
if codec != "h264" or saved_frames != frames:
    print("FAIL: the saved video should be H.264 with one frame per JSONL line"); ok = False
sys.exit(0 if ok else 1)
PY
fps=$(grep -o -E '[0-9.]+ frames/s over [0-9.]+ s' "$OUTDIR/$NAME.run.log" | tail -n 1 || true)
[ -n "$fps" ] || die "no summary line in the run's log"
if [ "$HOST_ARCH" = aarch64 ]; then
  echo "frames/s on this aarch64 host (no emulation; not necessarily a Pi): $fps"
else
  echo "EMULATED frames/s ($QEMU_CPU under qemu-user on this $HOST_ARCH host; NOT a Raspberry Pi speed): $fps"
fi

step "9/9 the systemd unit, against the installed root"
if command -v systemd-analyze >/dev/null; then
  # As the README says: sudo cp deploy/fer-edge.service /etc/systemd/system/. The unit must name an
  # executable that exists in that root, so this also checks the install path.
  cp -- "$ROOT$SRC/deploy/fer-edge.service" "$ROOT/etc/systemd/system/fer-edge.service"
  out=$(systemd-analyze verify --root="$ROOT" fer-edge.service 2>&1) || die "systemd-analyze verify failed: $out"
  [ -z "$out" ] || die "systemd-analyze verify is not clean: $out"
  echo "systemd-analyze verify --root=$ROOT fer-edge.service: clean"
else
  echo "skipped: no systemd-analyze on this host (apt-get install systemd)"
fi
echo "outputs: $OUTDIR/$NAME.jsonl, $OUTDIR/$NAME.annotated.mp4, $OUTDIR/$NAME.run.log, $LOG"
STEP=done
echo "emulated check: OK"
exit 0
}
