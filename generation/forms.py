"""The form a researcher fills to start a generation job; checks that need the study (a system
name in use, a custom template) are left to services.check_job and shown on their fields.
"""
from django import forms

from .models import GenerationJob
from .strategies import ANSWER, STRATEGIES, THINK


class GenerationForm(forms.Form):
    system_name = forms.CharField(max_length=100, label="New system's name",
                                  help_text="How this system is named on the leaderboard; "
                                            "annotators never see it.")
    backend = forms.ChoiceField(choices=GenerationJob.Backend.choices,
                                initial=GenerationJob.Backend.VLLM)
    model = forms.CharField(max_length=300, help_text="The served model name, or a local path.")
    strategy = forms.ChoiceField(choices=[], initial="base")
    template = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}),
                               help_text="Your prompt, with {post} where the post goes.")
    reasoning_open = forms.CharField(required=False, initial=THINK[0], max_length=50)
    reasoning_close = forms.CharField(required=False, initial=THINK[1], max_length=50)
    answer_open = forms.CharField(required=False, initial=ANSWER[0], max_length=50)
    answer_close = forms.CharField(required=False, initial=ANSWER[1], max_length=50)
    temperature = forms.FloatField(initial=0.7, min_value=0)
    top_p = forms.FloatField(initial=1.0, label="top_p")
    max_tokens = forms.IntegerField(initial=1024, min_value=1, label="max_tokens")
    seed = forms.IntegerField(required=False, help_text="Leave empty for none.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["strategy"].choices = [(name, cls.label) for name, cls in STRATEGIES.items()]

    def job_options(self):
        data = self.cleaned_data
        options = {}
        if data["strategy"] == "custom":
            options = {"template": data["template"]}
            for name in ("reasoning_open", "reasoning_close", "answer_open", "answer_close"):
                options[name] = data[name]
        return {
            "system_name": data["system_name"], "backend": data["backend"],
            "model": data["model"], "strategy": data["strategy"], "strategy_options": options,
            "temperature": data["temperature"], "top_p": data["top_p"],
            "max_tokens": data["max_tokens"], "seed": data["seed"],
        }
