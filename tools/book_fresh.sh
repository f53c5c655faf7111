#!/usr/bin/env bash
# Release check, not part of CI (about an hour on 2 cores): build the book as a new reader would.
# Clones the committed state of a branch (default main) into a temporary folder, creates its own
# .venv there, uses an empty METALIB_CACHE, and runs `make book` in the full profile, offline.
# Usage: tools/book_fresh.sh [BRANCH]   (make book-fresh);  BOOK_FRESH_DIR=... picks the folder.
set -euo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
branch=${1:-main}
work=${BOOK_FRESH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/book-fresh.XXXXXX")}
mkdir -p "$work"
log="$work/book-fresh.log"
git clone --quiet --branch "$branch" "$repo" "$work/repo"
export METALIB_CACHE="$work/cache" METALIB_PROFILE=full
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
commit=$(git -C "$work/repo" rev-parse --short HEAD)
echo "book-fresh: $branch at $commit in $work/repo, empty cache $METALIB_CACHE, log $log"
start=$(date +%s)
status=0
make -C "$work/repo" book >"$log" 2>&1 || status=$?
seconds=$(( $(date +%s) - start ))
echo "== summary ($branch at $commit, full profile, empty cache)"
grep -E "Executing notebook|Executed notebook|executing again|NOT built|failed to execute|build succeeded|book built|environment ready" "$log" || true
echo "make book exit code $status after $seconds s (setup included); log: $log"
exit "$status"
