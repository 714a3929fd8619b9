"""Web forms of the loading area; they only collect input, the services validate and write."""
from django import forms

from annotations.models import Study

from .ingest import UploadRejected


def load_file(form, load):
    """Run an import service on a file form, as the outputs upload and the rankings import do:
    (result, refusal, HTTP status). An invalid form is a 400; a refused file carries its own
    status (400, 409 or 413) and its located problems."""
    if not form.is_valid():
        return None, None, 400
    upload = form.cleaned_data["file"]
    try:
        return load(upload), None, 200
    except UploadRejected as exc:
        return None, exc, exc.status


class StudyForm(forms.Form):
    title = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=64, help_text="Short name used in links, e.g. empathy-pilot.")
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False,
                                   help_text="Shown to annotators before they start. Markdown.")
    criteria = forms.CharField(
        initial="overall", widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line or comma-separated, e.g. fluency, identification, comforting, suggestion.",
    )
    responses_per_screen = forms.IntegerField(min_value=2, max_value=12, initial=4)
    annotations_per_item = forms.IntegerField(min_value=1, max_value=100, initial=3)
    allow_ties = forms.BooleanField(required=False, help_text="Annotators may put responses level.")


class UploadForm(forms.Form):
    file = forms.FileField(allow_empty_file=True, help_text="JSONL, CSV or AlpacaEval model_outputs.json.")
    file_format = forms.ChoiceField(
        required=False, label="Format",
        choices=[("", "Detect from the file"), ("jsonl", "JSONL"), ("csv", "CSV"),
                 ("alpaca", "AlpacaEval JSON")],
    )
    replace = forms.BooleanField(
        required=False, label="Replace changed responses",
        help_text="Overwrite responses that differ from the stored ones (old text is kept in history).",
    )


class StudyStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Study.Status.choices)


class StudySettingsForm(forms.ModelForm):
    """What may change after creation; the slug and criteria stay fixed once rankings refer to them."""

    attention_min_pass_rate = forms.FloatField(min_value=0, max_value=1, initial=1.0)

    class Meta:
        model = Study
        fields = ["title", "instructions", "responses_per_screen", "annotations_per_item", "allow_ties",
                  "lease_minutes", "attention_min_pass_rate"]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 8})}
        labels = {"attention_min_pass_rate": "Attention-check pass rate required"}
        help_texts = {
            "lease_minutes": "An item not submitted within this time returns to the pool.",
            "attention_min_pass_rate": "From 0 to 1. The leaderboard leaves out, by default, annotators whose "
                                       "share of passed attention checks is below this (1 = every check).",
        }


class CollaboratorForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")
