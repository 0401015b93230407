#!/usr/bin/env bash
# Install Homing into .venv and run it on the embedded default (SQLite, in-process bus)
# with the demo shop. Extra arguments go to `homing serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e .
# The translations: .po -> .mo and /static/locale/*.json (README "Translations").
.venv/bin/homing i18n compile >/dev/null
exec .venv/bin/homing serve --demo "$@"
