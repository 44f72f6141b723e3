"""Small template helpers."""

from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """{{ dict|get_item:key }}: look up a key that is itself a variable."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def region_name(region):
    """A region's name in the page's language (core/names.py)."""
    from tianmu.core.names import region_name as name

    return name(region)


@register.filter
def person_name(user):
    """A person's name, family name first for Chinese names (core/names.py)."""
    from tianmu.core.names import person_name as name

    return name(user)
