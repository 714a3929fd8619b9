"""How the site writes things for people: fractions as percentages, counts with their nouns,
researchers' Markdown as sanitised HTML, spreadsheet cells, and figures rounded for downloads.
Pages, charts, commands and downloads format through here."""
import math

import markdown as markdown_lib
import nh3
from django.utils.safestring import mark_safe


def percent(value, digits=0, sign=" %"):
    """0.443 -> '44 %' (or '44.3 %' with digits=1, '44.3' with sign=''); None or junk -> '–'."""
    try:
        return f"{float(value) * 100:.{int(digits)}f}{sign}"
    except (TypeError, ValueError):
        return "–"


def percent_range(interval, digits=1):
    """[0.38, 0.51] -> '38.0–51.0'; None -> ''."""
    if not interval:
        return ""
    return f"{percent(interval[0], digits, '')}–{percent(interval[1], digits, '')}"


def counted(n, noun, plural=None):
    """1 -> '1 ranking', 2 -> '2 rankings', 12000 -> '12,000 rankings' (plural: for irregular nouns)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def all_of(n, noun, plural=None):
    """How a no-op names what it looked at: 'the 1 ranking was' / 'all 5 rankings were'."""
    return f"the {counted(n, noun, plural)} was" if n == 1 else f"all {counted(n, noun, plural)} were"


# Figures in downloads: 6 significant digits, far finer than any interval, and no float noise
# (0.19999999999999996 -> 0.2, 1012.3456789 -> 1012.35, 1.8626451e-09 -> 1.86265e-09).
SIGNIFICANT_DIGITS = 6


def rounded(value, digits=SIGNIFICANT_DIGITS):
    """Every float in value (nested in dicts, lists and tuples) to `digits` significant digits;
    everything else as it is."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """Numbers stay numbers; text that a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def markdown(text):
    """Render Markdown, then strip anything that could run (scripts, handlers, javascript: links)."""
    html = markdown_lib.markdown(text or "", extensions=["extra", "sane_lists"])
    return mark_safe(nh3.clean(html, url_schemes={"http", "https", "mailto"}))
