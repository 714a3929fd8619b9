"""Template filters for leaderboard figures: fractions as percentages, intervals, look-ups."""
from django import template

from annotations.formatting import percent, percent_range

register = template.Library()


@register.filter
def pct(value, digits=1):
    """0.443 -> '44.3 %'; None -> '–': the site's `percent` filter, one decimal unless told."""
    return percent(value, digits)


@register.filter
def pct_ci(interval, digits=1):
    """[0.38, 0.51] -> '38.0–51.0'; None -> ''."""
    return percent_range(interval, int(digits))


@register.filter
def fixed(value, digits=2):
    if value is None or value == "":
        return "–"
    return f"{float(value):.{int(digits)}f}"


@register.filter
def fixed_ci(interval, digits=2):
    if not interval:
        return ""
    return f"{float(interval[0]):.{int(digits)}f}–{float(interval[1]):.{int(digits)}f}"


@register.filter
def rank_range(interval):
    if not interval:
        return "–"
    low, high = interval
    return str(low) if low == high else f"{low}–{high}"


@register.filter
def get(mapping, key):
    try:
        return mapping.get(str(key))
    except AttributeError:
        return None
