#!/usr/bin/env bash
# The docs' showcase: run examples/methods-tiny.yaml (every method on both tiny models; done cells are skipped), then
# save its quality table (a headless-Chromium screenshot of the report's top) and its Pareto plot under docs/.
#   bash scripts/showcase.sh [--store DIR]      # about 12 minutes on a 2-core CPU the first time
set -euo pipefail
cd "$(dirname "$0")/.."
store=runs
if [[ "${1:-}" == "--store" ]]; then store=$2; fi
bash scripts/setup.sh
.venv/bin/launcher run examples/methods-tiny.yaml --jobs 2 --store "$store"
report="$store/methods-tiny/report"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --disable-background-networking \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1500,1250 --screenshot="$PWD/docs/methods-tiny-report.png" "file://$(realpath "$report")/index.html"
cp "$report/figures/pareto-synthetic-dialogsum.png" docs/methods-tiny-pareto.png
echo "wrote docs/methods-tiny-report.png and docs/methods-tiny-pareto.png"
