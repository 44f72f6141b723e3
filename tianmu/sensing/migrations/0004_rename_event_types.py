"""Events already in the outbox take the declared names (`{app}.{object}.{verb}`), so handlers that start
from the beginning of the outbox, the live pages and the audit trail see one name per kind of event:
sensing.alarm_opened → sensing.alarm.opened, …; registry.station.* → sensing.station.* (stations and sensors
are sensing's record kinds)."""

from django.db import migrations

ALARM_VERBS = ("opened", "escalated", "deescalated", "cleared", "acknowledged", "closed")
RECORD_VERBS = ("created", "updated", "deleted", "imported", "generated")

RENAMES = [(f"sensing.alarm_{verb}", f"sensing.alarm.{verb}") for verb in ALARM_VERBS] + [
    ("sensing.readings_imported", "sensing.readings.imported"),
    ("sensing.threshold_changed", "sensing.threshold.changed"),
] + [(f"registry.{model}.{verb}", f"sensing.{model}.{verb}") for model in ("station", "sensor")
     for verb in RECORD_VERBS]


def rename(apps, pairs):
    Event = apps.get_model("core", "Event")
    for old, new in pairs:
        Event.objects.filter(type=old).update(type=new)


def forwards(apps, schema_editor):
    rename(apps, RENAMES)


def backwards(apps, schema_editor):
    rename(apps, [(new, old) for old, new in RENAMES])


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0003_event_consumers"),
        ("sensing", "0003_daily_aggregates"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=True)]
