"""Web forms of the results area; they only collect input, the services validate and write."""
from django import forms


class RankingImportForm(forms.Form):
    file = forms.FileField(allow_empty_file=True, help_text="JSONL: one ranking per line.")
