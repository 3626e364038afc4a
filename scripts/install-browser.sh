#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian packages) for tests/report/test_report_browser.py.
# Idempotent: does nothing when /usr/bin/chromium and /usr/bin/chromedriver exist. Needs root (or sudo) and the
# Debian archive (about 36 s and 131 packages from scratch on Debian 12, recommends included).
set -euo pipefail
if [ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]; then
  echo "chromium and chromedriver already installed: $(/usr/bin/chromium --version 2>/dev/null || true)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
/usr/bin/chromium --version
/usr/bin/chromedriver --version
