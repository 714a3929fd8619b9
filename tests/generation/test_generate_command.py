"""`manage.py generate`: starts a job through the services, follows it with a progress bar, prints
what the model did, and exits non-zero when the job or any request failed. Tasks in process
(eager), against the stand-in vLLM server.
"""
import pytest
from django.core.management import CommandError, call_command

from annotations.models import Response
from generation.models import GenerationJob

from .standin import StandIn

# The command's own transaction must commit for the job to run: no test transaction around it.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def generate(*args, **options):
    return call_command("generate", *args, **options)


def test_a_job_started_from_the_terminal_runs_and_reports(study_with_items, gen_settings,
                                                          capsys):
    generate("gen", system="coe-rt-cli", strategy="coe-rt", backend="vllm",
             model="standin-model", user="rita", max_tokens=64, seed=1, interval=0.05)
    out, err = capsys.readouterr()
    job = GenerationJob.objects.get(system__name="coe-rt-cli")
    assert job.status == "completed" and job.strategy == "coe-rt" and job.seed == 1
    assert Response.objects.filter(system=job.system).count() == 10
    assert f"Job {job.id} completed: system 'coe-rt-cli', 10 of 10 items with a response" in out
    assert "Parsed 10 of 10 outputs (100%); tokens in " in out
    assert "10/10" in err  # the progress bar, on stderr


def test_unparsed_outputs_are_reported_without_failing(study_with_items, gen_settings, capsys):
    with StandIn(template="no tags at all {text}") as plain:
        gen_settings.VLLM_BASE_URLS = [plain.url]
        generate("gen", system="untagged", strategy="empathy-r1", model="standin-model",
                 user="rita", no_progress=True)
    out = capsys.readouterr().out
    assert "0 of 10 items with a response, 10 unparsed" in out
    assert "Parsed 0 of 10 outputs (0%)" in out
    assert "10 unparsed: no <answer> tag" in out


def test_a_failed_job_exits_non_zero_with_the_reason(study_with_items, gen_settings):
    gen_settings.VLLM_BASE_URLS = ["http://127.0.0.1:9"]
    with pytest.raises(CommandError, match=r"job \d+ failed: vLLM server not ready"):
        generate("gen", system="nowhere", strategy="base", model="standin-model", user="rita",
                 no_progress=True)


def test_invalid_settings_and_unknown_studies_are_refused_before_anything_starts(
        study_with_items, gen_settings, other_researcher):
    with pytest.raises(CommandError, match=r"cannot start:\n  temperature: temperature must be "
                                           r"0 or more"):
        generate("gen", system="x", strategy="base", model="m", user="rita", temperature=-1)
    with pytest.raises(CommandError, match="no study 'gen' that otto researches"):
        generate("gen", system="x", strategy="base", model="m", user="otto")
    with pytest.raises(CommandError, match="no user 'nobody'"):
        generate("gen", system="x", strategy="base", model="m", user="nobody")
    assert not GenerationJob.objects.exists()
