"""Template tags for the researchers' controls of the annotators' side (the attention-check form)."""
from django import template

from annotations.annotating.forms import AttentionCheckForm
from annotations.models import AttentionRule

register = template.Library()


@register.inclusion_tag("annotating/partials/attention_check_form.html")
def attention_check_form(item):
    systems = list(item.study.systems.values_list("name", flat=True))
    system = item.attention_system.name if item.is_attention_check else None
    form = AttentionCheckForm(initial={"system": system, "rule": item.attention_rule or AttentionRule.NOT_FIRST},
                              systems=systems)
    return {"item": item, "form": form, "check_system": system,
            "check_rule": item.get_attention_rule_display() if system else ""}
