"""Template filters: study instructions as sanitised Markdown, percentages."""
import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def markdown(text):
    """Render Markdown, then strip anything that could run (scripts, handlers, javascript: links)."""
    html = markdown_lib.markdown(text or "", extensions=["extra", "sane_lists"])
    return mark_safe(nh3.clean(html, url_schemes={"http", "https", "mailto"}))


@register.filter
def percent(value, digits=0):
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return "–"
