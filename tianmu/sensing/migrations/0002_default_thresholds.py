"""Default alarm thresholds per sensor type. Sources are cited in each row; [U] marks an unverified default
that the district must confirm (see docs/sensing.md). Every value is editable afterwards."""

from django.db import migrations

CMA = "CMA 气象灾害预警信号·暴雨 [C](发布办法原文未核实 [U])"
TORRENT = ("山洪临界雨量示例值(2017 年论文表,干/一般/湿润)[V 示例值,非临安本地值,须按危险区核定];"
           "橙色=准备转移,取临界值的 80% [U];红色=立即转移=临界雨量")
GEO = "地质灾害有效降雨量 R=ΣKⁱ·Pᵢ 的占位默认值 [U],须由自然资源部门按地灾气象预警标准核定"
LEVEL = "水位:站点警戒水位→黄色、保证水位→红色 [U 映射],可逐站覆盖"
RISE = "水位 1 小时涨幅占位默认值 [U]"
SLOPE = "24 小时位移量占位默认值 [U],须按监测点核定"
GAS = "可燃气体 %LEL 报警值 [U](GB/T 50493 一级≤25%LEL、二级≤50%LEL,记忆值未核实)"
WIND = "风力 6/8/10/12 级下限(10.8/17.2/24.5/32.7 m/s)对应台风预警信号的风力 [C];用实测风速触发 [U]"

# (rule, metric, sensor_type, soil, blue, yellow, orange, red, source)
DEFAULTS = [
    ("rainstorm", "rain_12h", "rainfall", "any", 50, None, None, None, CMA),
    ("rainstorm", "rain_6h", "rainfall", "any", None, 50, None, None, CMA),
    ("rainstorm", "rain_3h", "rainfall", "any", None, None, 50, 100, CMA),
    ("flash_flood", "rain_1h", "rainfall", "dry", None, None, 32, 40, TORRENT),
    ("flash_flood", "rain_1h", "rainfall", "normal", None, None, 28, 35, TORRENT),
    ("flash_flood", "rain_1h", "rainfall", "wet", None, None, 24, 30, TORRENT),
    ("flash_flood", "rain_3h", "rainfall", "dry", None, None, 52, 65, TORRENT),
    ("flash_flood", "rain_3h", "rainfall", "normal", None, None, 48, 60, TORRENT),
    ("flash_flood", "rain_3h", "rainfall", "wet", None, None, 40, 50, TORRENT),
    ("flash_flood", "rain_6h", "rainfall", "dry", None, None, 76, 95, TORRENT),
    ("flash_flood", "rain_6h", "rainfall", "normal", None, None, 72, 90, TORRENT),
    ("flash_flood", "rain_6h", "rainfall", "wet", None, None, 64, 80, TORRENT),
    ("geohazard", "rain_effective", "rainfall", "any", 50, 80, 120, 160, GEO),
    ("water_level", "water_level", "water_level", "any", None, None, None, None, LEVEL),
    ("rise_rate", "rise_rate_1h", "water_level", "any", 0.3, 0.5, 1.0, 1.5, RISE),
    ("displacement", "displacement_rate_24h", "displacement", "any", 5, 10, 20, 50, SLOPE),
    ("gas", "gas", "gas", "any", None, 10, 25, 50, GAS),
    ("wind", "wind_speed", "wind", "any", 10.8, 17.2, 24.5, 32.7, WIND),
]


def seed(apps, schema_editor):
    Threshold = apps.get_model("sensing", "Threshold")
    for rule, metric, sensor_type, soil, blue, yellow, orange, red, source in DEFAULTS:
        Threshold.objects.update_or_create(
            rule=rule, metric=metric, sensor_type=sensor_type, soil=soil, station=None,
            defaults={"blue": blue, "yellow": yellow, "orange": orange, "red": red, "source": source})


def unseed(apps, schema_editor):
    Threshold = apps.get_model("sensing", "Threshold")
    Threshold.objects.filter(station=None).delete()


class Migration(migrations.Migration):
    dependencies = [("sensing", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
