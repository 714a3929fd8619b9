"""How the site writes things for people: fractions as percentages, and researchers' Markdown as
sanitised HTML. Pages, charts and downloads all format through here."""
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


def markdown(text):
    """Render Markdown, then strip anything that could run (scripts, handlers, javascript: links)."""
    html = markdown_lib.markdown(text or "", extensions=["extra", "sane_lists"])
    return mark_safe(nh3.clean(html, url_schemes={"http", "https", "mailto"}))
