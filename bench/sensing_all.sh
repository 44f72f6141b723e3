#!/bin/sh
# All sensing benchmarks, one after the other (about 15 minutes on 2 cores). Each prints its table and writes
# bench/results/<UTC time>-sensing-*.json; see docs/performance.md, "Sensing ingest".
#
#   bench/sensing_all.sh                       # with .venv/bin/python (or $PYTHON)
#   PYTHON=/path/to/python bench/sensing_all.sh
#
# Needs PostgreSQL at 127.0.0.1:5432 (databases tianmu_bench_sensing*, dropped and recreated) and Mosquitto at
# 127.0.0.1:1883; bench/sensing_mqtt.py also starts a private mosquitto on a free loopback port.
set -e
cd "$(dirname "$0")/.."
if [ -z "$PYTHON" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" bench/sensing_ingest.py
"$PYTHON" bench/sensing_mqtt.py
"$PYTHON" bench/sensing_latest.py
