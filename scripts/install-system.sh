#!/usr/bin/env bash
# Install what the tests use outside the project's own virtual environment: checkov in a virtual environment of its
# own (.venv-checkov, scripts/install-checkov.sh: about 20 s), the MLflow tracking server in one of its own
# (scripts/install-mlflow.sh, cached under ~/.cache: about 30-60 s the first time), then the Debian packages (headless Chromium + its
# WebDriver for the report browser test, Prometheus's Pushgateway and promtool for the telemetry tests; needs root or
# sudo and the Debian archive, about 50 s from scratch on Debian 12). Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-checkov.sh
bash scripts/install-mlflow.sh >/dev/null
want=()
[ -x /usr/bin/chromium ] || want+=(chromium)
[ -x /usr/bin/chromedriver ] || want+=(chromium-driver)
[ -x /usr/bin/prometheus-pushgateway ] || want+=(prometheus-pushgateway)
[ -x /usr/bin/promtool ] || want+=(prometheus)
if [ ${#want[@]} -eq 0 ]; then
  echo "system packages present: $(/usr/bin/chromium --version 2>/dev/null || true); promtool, pushgateway"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
$SUDO apt-get update -qq
# --no-install-recommends keeps prometheus from pulling its node exporter and web console extras.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}"
/usr/bin/chromium --version
/usr/bin/promtool --version | head -1
