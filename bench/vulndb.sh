#!/usr/bin/env bash
# Benchmarks of the vulnerability database (issue 2), on ../shared/vulndata.
# Prints: full build wall time and peak memory (the vigil binary under
# /usr/bin/time), database size against the source zips, and the Go
# benchmarks of lookups (warm, cold, open + first lookup, fresh process).
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${VIGIL_SHARED:-../shared}"
src="$shared/vulndata"
[ -d "$src/osv" ] || { echo "no $src: nothing to measure"; exit 0; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
go build -o "$out/vigil" ./cmd/vigil

echo "== full build from $src (3 runs)"
for i in 1 2 3; do
	rm -f "$out/vigil.db"
	/usr/bin/time -f "wall %e s  peak RSS %M KiB" "$out/vigil" db update --source "$src" --db "$out/vigil.db" >/dev/null
done 2>&1
echo "== incremental update with nothing changed"
/usr/bin/time -f "wall %e s  peak RSS %M KiB" "$out/vigil" db update --source "$src" --db "$out/vigil.db" 2>&1 >/dev/null

db=$(stat -c %s "$out/vigil.db")
zips=$(find "$src" -name '*.zip' -o -name '*.gz' -o -name 'known_exploited_vulnerabilities.json' | xargs stat -c %s | paste -sd+ | bc)
osvjson=$(for z in "$src"/osv/*/all.zip; do unzip -l "$z" | tail -1 | awk '{print $1}'; done | paste -sd+ | bc)
echo "== size"
echo "database $db bytes; sources (zips, gz, KEV json) $zips bytes; ratio $(echo "scale=2; $db/$zips" | bc)"
echo "OSV JSON unpacked $osvjson bytes"

echo "== lookups"
go test -run '^$' -bench 'LookupWarm|LookupCold|OpenFirstLookup|FreshProcess' -benchtime 2s ./vulndb/
