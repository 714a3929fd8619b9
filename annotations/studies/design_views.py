"""The designer's page: before a study, how many items and annotations per item it needs to
separate its best system from the runner-up, at what cost, and a way into the new-study form."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from . import designer
from .forms import DesignForm


def create_link(result, cell):
    """The new-study form, filled from one cell of the grid."""
    return reverse("study_create") + "?" + urlencode({
        "responses_per_screen": result["k"], "annotations_per_item": cell["per_item"], "items": cell["items"]})


@login_required
@require_GET
def design(request):
    """GET without inputs shows the form (the Empathy-R1 setting); with inputs, the grid."""
    asked = any(name in request.GET for name in DesignForm.base_fields)
    form = DesignForm(request.GET if asked else None, initial=designer.DEFAULTS)
    context = {"form": form, "reliability_help": designer.RELIABILITY_HELP,
               "n_studies": designer.SIMULATED_STUDIES}
    status = 200
    if asked and form.is_valid():
        try:
            result = designer.grid(form.cleaned_data)
        except ValueError:
            form.add_error("best_win1", designer.UNREACHABLE)
        else:
            rec = result["recommended"]
            rows = []
            for n in sorted({c["items"] for c in result["cells"]}):
                rows.append({"items": n, "cells": [
                    {**c, "recommended": c is rec or c == rec, "create": create_link(result, c)}
                    for c in result["cells"] if c["items"] == n]})
            context.update(result=result, rows=rows, per_item=sorted({c["per_item"] for c in result["cells"]}),
                           words=designer.explain(result), chart=designer.chart(result),
                           create=create_link(result, rec) if rec else None)
    if asked and not form.is_valid():
        status = 400
    return render(request, "studies/design.html", context, status=status)
