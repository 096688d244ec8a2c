#!/usr/bin/env bash
# The fuzz test at bench size: FUZZ_CASES cases per mutation kind (default 200). Prints the counts.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
FUZZ_CASES=${FUZZ_CASES:-200} npx vitest run tests/fuzz.test.ts 2>&1 | grep -E "fuzz |Tests|passed|failed"
