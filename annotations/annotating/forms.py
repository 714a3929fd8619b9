"""Forms of the annotators' area (sign-up on the join page) and the researchers' controls for it.

They collect input only; services.py validates and writes.
"""
from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from annotations.models import AttentionRule, Study

from .services import is_reserved_username


class SignUpForm(UserCreationForm):
    def clean_username(self):
        username = super().clean_username()
        if is_reserved_username(username):
            raise forms.ValidationError(_("Names starting with “prolific-” or “mturk-” are reserved; "
                                          "choose another."))
        return username


class AttentionCheckForm(forms.Form):
    system = forms.ChoiceField(help_text="The system whose response on this item is the planted one.")
    rule = forms.ChoiceField(choices=AttentionRule.choices)

    def __init__(self, *args, systems=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["system"].choices = [(name, name) for name in systems]


class AnnotationSettingsForm(forms.ModelForm):
    """How crowd annotators get in and finish: platform, completion code or link, how many may come.

    Only collects: the view hands cleaned_data to services.update_annotation_settings. (The lease
    length is on the study's settings page.)"""

    completion_url = forms.URLField(required=False, assume_scheme="https",
                                    help_text="Where crowd annotators are sent when they finish.")

    class Meta:
        model = Study
        fields = ["crowd_platform", "completion_code", "completion_url", "crowd_max_participants"]
