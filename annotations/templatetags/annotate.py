"""Template tags for the researchers' controls of the annotators' side (the attention-check form)."""
from django import template

from annotations.assignment import ATTENTION_RULES
from annotations.forms_annotate import AttentionCheckForm

register = template.Library()


@register.inclusion_tag("partials/attention_check_form.html")
def attention_check_form(item):
    systems = list(item.study.systems.values_list("name", flat=True))
    check = item.attention_check or {}
    form = AttentionCheckForm(initial={"system": check.get("system"), "rule": check.get("rule", ATTENTION_RULES[0])},
                              systems=systems)
    return {"item": item, "form": form, "check": item.attention_check}
