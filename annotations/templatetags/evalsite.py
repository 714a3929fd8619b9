"""Template filters: study instructions as sanitised Markdown, percentages (annotations.formatting)."""
from django import template

from annotations import formatting

register = template.Library()

register.filter("markdown", formatting.markdown)
register.filter("percent", formatting.percent)
