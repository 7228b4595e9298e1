# Sourced by scripts/test.sh and scripts/demo.sh: makes .venv and installs the project into it.
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,spark]'
