"""Web forms of the loading area; they only collect input, the services validate and write."""
from django import forms

from annotations.models import Study

from . import designer
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
                  "render_markdown", "lease_minutes", "attention_min_pass_rate", "stop_when_answered"]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 8})}
        labels = {"attention_min_pass_rate": "Attention-check pass rate required"}
        help_texts = {
            "lease_minutes": "An item not submitted within this time returns to the pool.",
            "attention_min_pass_rate": "From 0 to 1. The leaderboard leaves out, by default, annotators whose "
                                       "share of passed attention checks is below this (1 = every check).",
        }


class CollaboratorForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")


def _number(field, label, help_text, *, integer=False, step=None):
    low, high = designer.LIMITS[field]
    kind = forms.IntegerField if integer else forms.FloatField
    attrs = {"step": step} if step else {}
    return kind(label=label, min_value=low, max_value=high, initial=designer.DEFAULTS[field],
                help_text=help_text, widget=forms.NumberInput(attrs=attrs))


class DesignForm(forms.Form):
    """The designer's inputs; errors are located on the field they concern (designer.check)."""

    n_systems = _number("n_systems", "Systems", "How many systems (models, prompting strategies) you compare.",
                        integer=True)
    responses_per_screen = _number("responses_per_screen", "Responses per screen",
                                   "How many responses an annotator ranks at once.", integer=True)
    criteria = _number("criteria", "Criteria", "How many questions each screen asks (fluency, empathy, …).",
                       integer=True)
    best_win1 = _number("best_win1", "Expected Win@1 of the best system (%)",
                        "How often you expect annotators to put the best system first, e.g. 44.3.", step="0.1")
    next_win1 = _number("next_win1", "Expected Win@1 of the runner-up (%)",
                        "The same for the second best, e.g. 16.3; the other systems share the rest.", step="0.1")
    tie_rate = _number("tie_rate", "Tie rate (%)", "How often annotators put two neighbouring responses level "
                       "(0 if the study allows no ties).", step="0.1")
    reliability_sd = _number("reliability_sd", "Annotator reliability spread", designer.RELIABILITY_HELP,
                             step="0.1")
    seconds_per_screen = _number("seconds_per_screen", "Seconds per screen",
                                 "The median time an annotator needs for one screen (all criteria).", step="1")
    target = _number("target", "Target probability (%)",
                     "How sure you want to be of separating #1 from #2, e.g. 80.", step="1")
    alpha = _number("alpha", "α (significance level)", "The leaderboard's level for its Holm-corrected tests.",
                    step="0.005")
    items = forms.CharField(label="Numbers of items to try", initial=designer.DEFAULTS["items"],
                            help_text=f"Up to {designer.MAX_VALUES}, comma-separated, each "
                                      f"{designer.ITEMS_RANGE[0]}–{designer.ITEMS_RANGE[1]}.")
    per_item = forms.CharField(label="Annotations per item to try", initial=designer.DEFAULTS["per_item"],
                               help_text=f"Up to {designer.MAX_VALUES}, comma-separated, each "
                                         f"{designer.PER_ITEM_RANGE[0]}–{designer.PER_ITEM_RANGE[1]}.")

    def clean_items(self):
        return self._counts("items", designer.ITEMS_RANGE)

    def clean_per_item(self):
        return self._counts("per_item", designer.PER_ITEM_RANGE)

    def _counts(self, name, bounds):
        try:
            return designer.parse_counts(self.cleaned_data[name], *bounds)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        if not self.errors:
            for field, message in designer.check(data).items():
                self.add_error(field, message)
        return data

