#!/usr/bin/env bash
# Store benchmark (issue 5): fills a store on SQLite and on PostgreSQL with
# RESOURCES resources of FINDINGS findings each through SubmitInventory
# (reconcile throughput), then measures the p95 latency of a first page of
# filtered finding lists and of each unfiltered aggregation. The issue's
# scale is 10000 × 100 (about 25 minutes here); the default, 1000 × 100.
#
#   bench/store.sh [RESOURCES] [FINDINGS]
set -euo pipefail
cd "$(dirname "$0")/.."
export VIGIL_BENCH_RESOURCES="${1:-1000}" VIGIL_BENCH_FINDINGS="${2:-100}"
echo "resources $VIGIL_BENCH_RESOURCES × findings $VIGIL_BENCH_FINDINGS"
go test -run '^$' -bench BenchmarkStore -benchtime 1x -timeout 3h ./sqlstore/ |
	grep Benchmark | tr '\t' '\n' | sed 's/^ *//' | grep -v '^$'
