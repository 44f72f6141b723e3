"""Registration of stations, sensors and river basins as record kinds: pages, API, Excel import/export, history, scope
checks and the shared test battery come from these declarations."""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from tianmu.core.registry.kinds import RecordKind, register

from .models import Basin, Sensor, Station

__all__ = ["StationKind", "SensorKind", "BasinKind"]


@register
class StationKind(RecordKind):
    plural = pgettext_lazy("plural", "监测站")
    model = Station
    slug = "stations"
    type_field = "station_type"
    filter_fields = ["station_type"]
    search_fields = ["code", "name", "address", "operator"]
    list_columns = ["code", "name", "region", "station_type", "installed_on", "operator"]
    example = {"station_type": "rain", "installed_on": "2024-05-01", "calibrated_on": "2025-04-20",
               "operator": "区水利水电局"}
    color = "#0277bd"
    nav_group = "sensing"


@register
class SensorKind(RecordKind):
    plural = pgettext_lazy("plural", "传感器")
    model = Sensor
    slug = "sensors"
    type_field = "sensor_type"
    filter_fields = ["sensor_type", "retired"]
    list_columns = ["code", "name", "region", "station", "sensor_type", "unit", "interval_s", "retired"]
    example = {"sensor_type": "rainfall", "unit": "mm", "valid_min": 0, "valid_max": 200, "interval_s": 300,
               "retired": False}
    color = "#00695c"
    on_map = False
    nav_group = "sensing"


@register
class BasinKind(RecordKind):
    """River basins (流域): polygons for areal rainfall. The outline and area are state fields: only the GeoJSON
    import (sensing/services/basins.py, page /sensing/basins/import/ and `tianmu import_basins`) writes them.
    District basins are read by the towns and villages below (a basin crosses town borders), changed only by
    district staff; a town may keep its own small basins (小流域)."""

    plural = pgettext_lazy("plural", "流域")
    model = Basin
    slug = "basins"
    type_field = "system"
    filter_fields = ["system"]
    search_fields = ["code", "name", "name_en", "river", "system"]
    list_columns = ["code", "name", "region", "river", "system", "parent", "area_km2"]
    state_fields = ["area_km2"]
    io_fields = ["code", "name", "name_en", "region", "river", "system", "parent", "contact", "phone", "notes"]
    example = {"name_en": "Changhua Creek Basin", "river": "昌化溪", "system": "分水江水系"}
    serves_below = True
    # The outline's own import and export, and the areal rainfall (面雨量 按流域), beside the generic buttons.
    list_links = [(_("导入边界(GeoJSON)"), "sensing:basin_import", "", "sensing.basins.import"),
                  (_("导出GeoJSON"), "sensing:basin_export", "", ""),
                  (_("流域面雨量"), "sensing:areal", "?by=basin", "")]
    color = "#1976d2"
    nav_group = "sensing"
