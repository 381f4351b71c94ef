#!/usr/bin/env bash
# Continuous scanning benchmarks (issue 6), with worker processes (the vigil
# binary) on SQLite and PostgreSQL:
#
#   bench/reeval.sh [FLEET] [BACKENDS] [CONFIGS]
#
# Re-evaluation: FLEET stored inventories (default 1000; the issue's scale
# is 10000) of about 300 real packages each (the Debian 12 root
# filesystem's, and PyPI, Go and crates.io packages at versions real
# advisories name) are matched against revision 1 of the database built
# from ../shared/vulndata without 300 of its advisories; then the time
# until every rematch job is done, for revision 2 (the full snapshot:
# "incremental", only the resources a change can touch; "full", every
# resource) and revision 3 (20 KEV additions). CONFIGS is processes x jobs
# each, comma-separated (default: 1x2 on SQLite; 1x1,2x1,1x2,2x2 on
# PostgreSQL). The fleet's stores are built once, cached in
# ~/.cache/vigil-bench (VIGIL_BENCH_CACHE): 10000 hosts take about half an
# hour each and several gigabytes.
#
# Then the latency from a registry push notification to the Debian
# image's findings being stored.
set -euo pipefail
cd "$(dirname "$0")/.."
export VIGIL_BENCH_FLEET="${1:-1000}" VIGIL_BENCH_BACKENDS="${2:-sqlite,postgres}"
if [ -n "${3:-}" ]; then export VIGIL_BENCH_CONFIGS="$3"; fi
go test -run '^$' -bench 'BenchmarkReevaluation' -benchtime 1x -timeout 4h ./engine/ | grep -E '^(database|fleet|reevaluation)'
go test -run '^$' -bench 'BenchmarkPushToFindings' -benchtime 5x -timeout 30m ./engine/ | grep -E '^BenchmarkPush'
