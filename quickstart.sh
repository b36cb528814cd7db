#!/usr/bin/env bash
# Install graftkit and its test extras (scripts/install.sh: CPU torch first), then run the
# main job on the bundled defaults: train → evaluate → predict on the demo financial-news data.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install.sh
export HF_HUB_OFFLINE=1   # everything the demo uses is local
graftkit train configs/demo-sentiment.yaml --overwrite
graftkit evaluate runs/demo-sentiment --data examples/financial_news.csv
graftkit predict runs/demo-sentiment "Profit fell 20% in Q3" "Acme Corp won a EUR 40 million contract"
graftkit info runs/demo-sentiment
