"""Forms for the annotators' side (sign-up on the join page) and the researchers' controls for it.

They collect input only; annotations/assignment.py and annotations/joining.py validate and write.
"""
from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from .assignment import ATTENTION_RULES
from .joining import is_reserved_username
from .models import Study


class SignUpForm(UserCreationForm):
    def clean_username(self):
        username = super().clean_username()
        if is_reserved_username(username):
            raise forms.ValidationError(_("Names starting with “prolific-” or “mturk-” are reserved; "
                                          "choose another."))
        return username


RULE_LABELS = {
    "not_first": "must not be ranked first (a planted poor response)",
    "last": "must be ranked last, alone",
    "first": "must be ranked first, alone (a planted good response)",
}


class AttentionCheckForm(forms.Form):
    system = forms.ChoiceField(help_text="The system whose response on this item is the planted one.")
    rule = forms.ChoiceField(choices=[(rule, RULE_LABELS[rule]) for rule in ATTENTION_RULES])

    def __init__(self, *args, systems=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["system"].choices = [(name, name) for name in systems]


class AnnotationSettingsForm(forms.ModelForm):
    """How crowd annotators get in and finish: platform, completion code or link.

    Only collects: the view hands cleaned_data to joining.update_annotation_settings. (The lease
    length is on the study's settings page.)"""

    completion_url = forms.URLField(required=False, assume_scheme="https",
                                    help_text="Where crowd annotators are sent when they finish.")

    class Meta:
        model = Study
        fields = ["crowd_platform", "completion_code", "completion_url"]
