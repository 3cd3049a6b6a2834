#!/usr/bin/env bash
# Builds the Stratus Docker image (default tag stratus:latest) FROM scratch: the binaries
# `stratusd` and `stratus`, stripped, the shared libraries ldd says they need (copied at the
# same paths), the dynamic loader, and an /etc/passwd + /etc/group with the unprivileged
# user `stratus` (uid/gid 10001) that owns /data. No network is needed: nothing is pulled.
#
# Usage: deploy/build-image.sh [--profile release|dev] [--tag NAME] [--no-cargo] [--no-strip]
#
#   --profile P   cargo profile whose binaries go into the image (default: release, or
#                 $STRATUS_IMAGE_PROFILE). `dev` packages the debug binaries, so CI can reuse
#                 the ones its test run already built instead of a second RocksDB compile.
#   --tag NAME    image name (default: stratus:latest, or $STRATUS_IMAGE)
#   --no-cargo    do not run cargo: package the binaries already in the target directory
#   --no-strip    keep the binaries' symbols (bigger image, symbolized backtraces)
#
# The target directory is $CARGO_TARGET_DIR (default: $HOME/.cache/stratus-target).
# The builder is whichever `docker build` runs (classic, or BuildKit with DOCKER_BUILDKIT=1).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "build-image: $*" >&2; exit 1; }

profile=${STRATUS_IMAGE_PROFILE:-release}
tag=${STRATUS_IMAGE:-stratus:latest}
run_cargo=1
strip_binaries=1
while (($#)); do
    case "$1" in
        --profile) (($# >= 2)) || die "--profile needs a value"; profile=$2; shift 2 ;;
        --profile=*) profile=${1#*=}; shift ;;
        --release) profile=release; shift ;;
        --tag) (($# >= 2)) || die "--tag needs a value"; tag=$2; shift 2 ;;
        --tag=*) tag=${1#*=}; shift ;;
        --no-cargo) run_cargo=0; shift ;;
        --no-strip) strip_binaries=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/stratus-target}
case "$profile" in
    dev|debug) profile=dev; out_dir=$CARGO_TARGET_DIR/debug ;;
    *) out_dir=$CARGO_TARGET_DIR/$profile ;;
esac
binaries=(stratusd stratus)

for tool in docker ldd readelf; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done
if ((strip_binaries)); then
    command -v strip >/dev/null || die "'strip' is not installed (binutils); or pass --no-strip"
fi

started=$SECONDS
if ((run_cargo)); then
    echo "build-image: cargo build --profile $profile (target dir $CARGO_TARGET_DIR)"
    (cd "$repo" && nice cargo build --locked --profile "$profile" \
        -p stratus-node -p stratus-client --bin stratusd --bin stratus)
fi
for bin in "${binaries[@]}"; do
    [[ -x $out_dir/$bin ]] || die "$out_dir/$bin is missing (build it, or drop --no-cargo)"
done

context=$(mktemp -d "${TMPDIR:-/tmp}/stratus-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
rootfs=$context/rootfs
mkdir -p "$rootfs/etc" "$context/data"

# The binaries, at the image root.
for bin in "${binaries[@]}"; do
    if ((strip_binaries)); then
        strip --strip-all -o "$rootfs/$bin" "$out_dir/$bin"
    else
        cp "$out_dir/$bin" "$rootfs/$bin"
    fi
    chmod 0755 "$rootfs/$bin"
done

# Copy a library (following symlinks) to the path the loader will look for it at.
stage_file() {
    local path=$1
    [[ -e $rootfs$path ]] && return 0
    mkdir -p "$rootfs$(dirname "$path")"
    cp -L "$path" "$rootfs$path"
    chmod 0755 "$rootfs$path"
}

libraries=()
for bin in "${binaries[@]}"; do
    interp=$(readelf -l "$out_dir/$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
    if [[ -z $interp ]]; then
        echo "build-image: $bin is statically linked"
        continue
    fi
    stage_file "$interp"
    libraries+=("$interp")
    # Lines look like "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)", or
    # "/lib64/ld-linux-x86-64.so.2 (0x...)" for the loader, or "linux-vdso.so.1 (0x...)".
    while read -r line; do
        case "$line" in
            *"=> not found"*) die "$bin needs a library ldd cannot find: $line" ;;
            *"=> /"*) path=${line#*=> }; path=${path%% (*} ;;
            /*) path=${line%% (*} ;;
            *) continue ;;
        esac
        stage_file "$path"
        libraries+=("$path")
    done < <(ldd "$out_dir/$bin")
done

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
stratus:x:10001:10001:Stratus node:/data:/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
stratus:x:10001:
EOF
cp "$repo/deploy/Dockerfile" "$context/Dockerfile"

echo "build-image: staged ${binaries[*]} ($profile) and $(printf '%s\n' "${libraries[@]}" | sort -u | wc -l) libraries:"
printf '  %s\n' $(printf '%s\n' "${libraries[@]}" | sort -u)

revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)
docker build \
    --tag "$tag" \
    --label "org.opencontainers.image.title=stratus" \
    --label "org.opencontainers.image.version=${version:-unknown}" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "io.stratus.cargo-profile=$profile" \
    "$context"

size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "build-image: $tag built in $((SECONDS - started)) s: $((size / 1024 / 1024)) MiB ($size bytes)"
