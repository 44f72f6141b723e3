"""The only code that changes monitoring state, by concern:

* `readings`: readings from the broker and from gateways (checked against `directory`, the shared sensor
  directory), stored with rule evaluation; unusable messages become dead letters;
* `imports`: reading history from CSV files;
* `alarms`: rule evaluation and device-fault checks into alarms, and people acknowledging and closing them;
* `thresholds`: changing alarm thresholds.

Every change runs in one transaction with its domain events. The public names are re-exported here.
"""

from .alarms import (
    acknowledge_alarm,
    acknowledge_station_alarms,
    check_no_data,
    close_alarm,
    evaluate_sensors,
)
from .imports import import_readings_csv
from .readings import MAX_HTTP_READINGS, IngestOutcome, can_submit_readings, ingest_messages, submit_readings
from .thresholds import set_threshold

__all__ = ["IngestOutcome", "ingest_messages", "submit_readings", "import_readings_csv", "evaluate_sensors",
           "check_no_data", "acknowledge_alarm", "acknowledge_station_alarms", "close_alarm", "set_threshold",
           "can_submit_readings",
           "MAX_HTTP_READINGS"]
