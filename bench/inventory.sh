#!/usr/bin/env bash
# Inventory benchmark (issue 3): Vigil against Syft and Trivy's SBOM mode,
# side by side in one run, on the real targets of ../shared/targets.
#
#   bench/inventory.sh [RUNS]
#
# Prints, per target and tool, the median wall time and peak RSS of RUNS runs
# (default 5), the ratio Vigil/peer, and how many packages each reports; and
# the floor for the image: a plain gunzip and untar of its layer.
# Peers are built once into $VIGIL_BENCH (default ~/.cache/vigil-bench),
# outside the repository; their builds take minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
SHARED="${VIGIL_SHARED:-../shared}"
CACHE="${VIGIL_BENCH:-$HOME/.cache/vigil-bench}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
command -v jq >/dev/null || apt-get install -y jq >/dev/null

if [ ! -x "$BIN/syft" ]; then
	echo "installing syft v1.57.0 (minutes)" >&2
	GOBIN="$BIN" go install github.com/anchore/syft/cmd/syft@v1.57.0
fi
if [ ! -x "$BIN/trivy" ]; then
	echo "installing trivy v0.74.0 (minutes)" >&2
	GOEXPERIMENT=jsonv2 GOBIN="$BIN" go install github.com/aquasecurity/trivy/cmd/trivy@v0.74.0
fi
go build -o "$BIN/vigil" ./cmd/vigil

deb="$("$SHARED/targets/build" debian-bookworm)"
node="$("$SHARED/targets/build" node-function)"
gob="$("$SHARED/targets/build" go-binary)"

# Trivy offline: no vulnerability database is needed for an SBOM, but jars
# make it open its Java index database; an empty one with the right schema
# lets it run (it then identifies jars by their own metadata only).
TRIVY_CACHE="$CACHE/trivy-cache"
if [ ! -f "$TRIVY_CACHE/java-db/trivy-java.db" ]; then
	mkdir -p "$TRIVY_CACHE/java-db"
	python3 - "$TRIVY_CACHE/java-db" <<'EOF'
import sqlite3, sys, json, datetime
d = sys.argv[1]
c = sqlite3.connect(d + "/trivy-java.db")
c.executescript("""
CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT);
CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT,
  FOREIGN KEY (artifact_id) REFERENCES artifacts(id));
CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id);
CREATE INDEX indices_artifact_idx ON indices(artifact_id);
CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1);
""")
c.commit()
now = datetime.datetime.now(datetime.timezone.utc)
json.dump({"Version": 1, "NextUpdate": (now + datetime.timedelta(days=3650)).isoformat(),
           "UpdatedAt": now.isoformat(), "DownloadedAt": now.isoformat()},
          open(d + "/metadata.json", "w"))
EOF
fi
# The memory cache backend: each run analyses the image again, as the other
# tools do (Trivy's file cache would answer from the first run).
TRIVY=("$BIN/trivy" --cache-dir "$TRIVY_CACHE" --cache-backend memory --quiet)
TRIVY_OPTS=(--format cyclonedx --offline-scan --skip-db-update --skip-java-db-update --skip-version-check --disable-telemetry)

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# measure NAME OUTFILE CMD...: median wall seconds and peak KiB of RUNS runs.
measure() {
	local name="$1" file="$2"; shift 2
	local times=() mems=()
	for _ in $(seq "$RUNS"); do
		/usr/bin/time -f "%e %M" -o "$out/time" "$@" >"$file" 2>"$out/err" || { echo "$name failed: $(tail -3 "$out/err")" >&2; echo "nan nan"; return; }
		read -r t m < <(tail -n1 "$out/time")
		times+=("$t"); mems+=("$m")
	done
	local mt mm
	mt=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")
	mm=$(printf '%s\n' "${mems[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")
	echo "$mt $mm"
}

count_vigil() { jq '.packages | length' "$1"; }
count_cdx() { jq '[.components[]? | select(.type == "library")] | length' "$1"; }
count_syft() { jq '.artifacts | length' "$1"; }

row() { # target tool seconds kib packages vigil_seconds vigil_kib
	local ratio_t="-" ratio_m="-"
	if [ "$2" != vigil ] && [ "$3" != nan ]; then
		ratio_t=$(echo "scale=2; $6 / $3" | bc)
		ratio_m=$(echo "scale=2; $7 / $4" | bc)
	fi
	printf "%-22s %-7s %8s s %9s KiB %6s pkgs   vigil/peer time %5s  memory %5s\n" "$1" "$2" "$3" "$4" "$5" "$ratio_t" "$ratio_m"
}

bench_target() { # label vigil-target syft-source trivy-subcommand trivy-target
	local label="$1"
	read -r vt vm < <(measure vigil "$out/vigil.json" "$BIN/vigil" sbom --format json "$2")
	read -r st sm < <(measure syft "$out/syft.json" "$BIN/syft" scan "$3" -o json -q)
	read -r tt tm < <(measure trivy "$out/trivy.json" "${TRIVY[@]}" "$4" "${TRIVY_OPTS[@]}" "$5")
	row "$label" vigil "$vt" "$vm" "$(count_vigil "$out/vigil.json")" "$vt" "$vm"
	row "$label" syft "$st" "$sm" "$(count_syft "$out/syft.json" 2>/dev/null || echo '?')" "$vt" "$vm"
	row "$label" trivy "$tt" "$tm" "$(count_cdx "$out/trivy.json" 2>/dev/null || echo '?')" "$vt" "$vm"
	cp "$out/vigil.json" "$out/$label.vigil.json"
	cp "$out/syft.json" "$out/$label.syft.json" 2>/dev/null || true
	cp "$out/trivy.json" "$out/$label.trivy.json" 2>/dev/null || true
}

echo "runs per measurement: $RUNS (median); machine: $(nproc) cores"
bench_target debian-image "$deb/image.docker.tar" "docker-archive:$deb/image.docker.tar" image "--input=$deb/image.docker.tar"
bench_target node-app "$node/app" "dir:$node/app" fs "$node/app"
bench_target go-binary "$gob/app" "file:$gob/app" rootfs "$gob/app"

# The floor: decompress and unpack the image's layer, nothing else.
layer=$(tar -tf "$deb/image.docker.tar" | grep -e '\.tar\.gz$' -e '/layer\.tar$' | head -1)
tar -xf "$deb/image.docker.tar" -C "$out" "$layer"
read -r ft fm < <(measure floor /dev/null bash -c "rm -rf '$out/x' && mkdir '$out/x' && gzip -dc '$out/$layer' | tar -x -C '$out/x'")
echo
echo "floor: gunzip + untar of the image layer: ${ft} s, ${fm} KiB"

# What each finds on the image, by kind.
echo
echo "debian-image, packages by kind:"
echo "  vigil: $(jq -c '[.packages[].type] | group_by(.) | map({(.[0]): length}) | add' "$out/debian-image.vigil.json")"
echo "  syft:  $(jq -c '[.artifacts[].type] | group_by(.) | map({(.[0]): length}) | add' "$out/debian-image.syft.json" 2>/dev/null)"
echo "  trivy: $(jq -c '[.components[]? | select(.type=="library") | .purl // "" | capture("^pkg:(?<t>[^/]+)").t] | group_by(.) | map({(.[0]): length}) | add' "$out/debian-image.trivy.json" 2>/dev/null)"
echo "node-app, packages by kind:"
echo "  vigil: $(jq -c '[.packages[].type] | group_by(.) | map({(.[0]): length}) | add' "$out/node-app.vigil.json")"
echo "  syft:  $(jq -c '[.artifacts[].type] | group_by(.) | map({(.[0]): length}) | add' "$out/node-app.syft.json" 2>/dev/null)"
echo "  trivy: $(jq -c '[.components[]? | select(.type=="library") | .purl // "" | capture("^pkg:(?<t>[^/]+)").t] | group_by(.) | map({(.[0]): length}) | add' "$out/node-app.trivy.json" 2>/dev/null)"
