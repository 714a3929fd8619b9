"""Uploads that should succeed: every format, exact text, idempotence, replace with history, all or nothing."""
import io
import json
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import IntegrityError, transaction

from annotations.studies import services
from annotations.models import Item, OutputUpload, Response, ResponseRevision, System

pytestmark = pytest.mark.django_db

# Whitespace, line breaks, tabs, CJK and emoji must come back byte for byte.
EXACT = "  我最近总是失眠，\n\n  想到考试就心慌。\tTabs\tstay.  Trailing spaces stay.   \n😔 <3 & \"quotes\""


def rows(n_items=3, systems=("alpha", "beta"), **extra):
    return [
        {"item_id": f"p{i}", "prompt": f"Post number {i}", "system": s, "response": f"{s} answers {i}", **extra}
        for i in range(n_items) for s in systems
    ]


def jsonl(records):
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n").encode()


def upload(api, study, content, name="outputs.jsonl", **data):
    return api.post(f"/api/studies/{study.slug}/outputs/",
                    {"file": SimpleUploadedFile(name, content), **data}, format="multipart")


def test_jsonl_upload_creates_items_systems_responses(api, study):
    reply = upload(api, study, jsonl(rows(metadata={"language": "en"})))
    assert reply.status_code == 201
    assert reply.json() | {"upload_id": None} == {
        "rows": 6, "responses_created": 6, "responses_replaced": 0, "responses_unchanged": 0,
        "items_created": 3, "systems_created": 2, "file_format": "jsonl", "upload_id": None}
    assert Item.objects.get(study=study, external_id="p1").metadata == {"language": "en"}
    assert set(System.objects.filter(study=study).values_list("name", flat=True)) == {"alpha", "beta"}
    assert OutputUpload.objects.get(study=study).responses_created == 6
    # Columns the upload leaves to the database's defaults.
    for response in Response.objects.filter(item__study=study):
        assert (response.source, response.metadata, response.reasoning) == ("uploaded", {}, "")
        assert response.created_at is not None and response.updated_at is not None


def test_csv_upload_keeps_quoted_line_breaks_and_crlf(api, study):
    content = (
        'item_id,prompt,system,response,reasoning\r\n'
        'p1,"First line\r\nsecond line",alpha,"Answer, with comma\r\n\r\nand a paragraph","why"\r\n'
        'p1,"First line\r\nsecond line",beta,"Short",\r\n'
    ).encode()
    reply = upload(api, study, content, name="outputs.csv")
    assert reply.status_code == 201, reply.content
    item = Item.objects.get(study=study)
    assert item.prompt == "First line\r\nsecond line"
    alpha = Response.objects.get(item=item, system__name="alpha")
    assert alpha.text == "Answer, with comma\r\n\r\nand a paragraph"
    assert alpha.reasoning == "why"
    assert Response.objects.get(item=item, system__name="beta").reasoning == ""


def test_csv_with_excel_bom_is_read(api, study):
    content = "\ufeffitem_id,prompt,system,response\np1,Post,alpha,Hi\n".encode()
    assert upload(api, study, content, name="export.csv").status_code == 201


def test_alpacaeval_outputs_line_up_by_instruction(api, study):
    first = [{"instruction": "How do I sleep?", "output": "Try a routine.", "generator": "gpt-x",
              "dataset": "helpful_base"}]
    second = [{"instruction": "How do I sleep?", "output": "Dim the lights.", "generator": "llama-y"}]
    assert upload(api, study, json.dumps(first).encode(), name="model_outputs.json").status_code == 201
    assert upload(api, study, json.dumps(second).encode(), name="model_outputs.json").status_code == 201
    item = Item.objects.get(study=study)
    assert item.metadata == {"dataset": "helpful_base"}
    assert sorted(item.responses.values_list("system__name", flat=True)) == ["gpt-x", "llama-y"]


def test_text_is_stored_exactly_as_uploaded(api, study):
    record = {"item_id": "zh-1", "prompt": EXACT, "system": "alpha", "response": EXACT, "reasoning": EXACT}
    assert upload(api, study, jsonl([record])).status_code == 201
    response = Response.objects.get(item__external_id="zh-1")
    assert (response.item.prompt, response.text, response.reasoning) == (EXACT, EXACT, EXACT)


def test_reupload_of_same_rows_is_a_noop(api, study):
    content = jsonl(rows())
    assert upload(api, study, content).status_code == 201
    before = (Response.objects.count(), OutputUpload.objects.count(),
              list(Response.objects.values_list("updated_at", flat=True)))
    again = upload(api, study, content)
    assert again.status_code == 200
    assert again.json()["responses_unchanged"] == 6
    assert again.json()["responses_created"] == 0
    after = (Response.objects.count(), OutputUpload.objects.count(),
             list(Response.objects.values_list("updated_at", flat=True)))
    assert after == before


def test_adding_a_system_to_existing_items(api, study):
    upload(api, study, jsonl(rows(systems=("alpha",))))
    reply = upload(api, study, jsonl(rows(systems=("alpha", "gamma"))))
    assert reply.json()["responses_created"] == 3
    assert reply.json()["responses_unchanged"] == 3
    assert reply.json()["items_created"] == 0


def test_replace_overwrites_and_keeps_the_old_text(api, study):
    upload(api, study, jsonl(rows()))
    changed = rows()
    changed[0]["response"] = "A better answer"
    refused = upload(api, study, jsonl(changed))
    assert refused.status_code == 400
    assert Response.objects.get(item__external_id="p0", system__name="alpha").text == "alpha answers 0"
    reply = upload(api, study, jsonl(changed), replace="true")
    assert reply.status_code == 201
    assert reply.json()["responses_replaced"] == 1
    response = Response.objects.get(item__external_id="p0", system__name="alpha")
    assert response.text == "A better answer"
    revision = ResponseRevision.objects.get(response=response)
    assert revision.text == "alpha answers 0"
    assert revision.replaced_by_id == reply.json()["upload_id"]


def test_error_in_a_late_chunk_undoes_earlier_chunks(study, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 4)
    records = rows(n_items=10)
    records.append({"item_id": "p3", "prompt": "A different prompt", "system": "omega", "response": "x"})
    with pytest.raises(services.UploadRejected) as refused:
        services.import_outputs(study, io.BytesIO(jsonl(records)), filename="big.jsonl")
    assert [e.line for e in refused.value.errors] == [21]
    assert (Item.objects.count(), System.objects.count(), Response.objects.count()) == (0, 0, 0)


def test_error_against_stored_prompt_in_late_chunk_undoes_everything(study, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    services.import_outputs(study, io.BytesIO(jsonl(rows(n_items=1))), filename="a.jsonl")
    records = rows(n_items=6, systems=("gamma",))
    records.append({"item_id": "p0", "prompt": "Changed", "system": "delta", "response": "x"})
    with pytest.raises(services.UploadRejected):
        services.import_outputs(study, io.BytesIO(jsonl(records)), filename="b.jsonl")
    assert Response.objects.count() == 2
    assert not System.objects.filter(name__in=["gamma", "delta"]).exists()


def test_many_errors_are_listed_up_to_a_limit(study, settings):
    settings.EVALSITE_MAX_REPORTED_ERRORS = 20
    content = b"not json\n" * 50
    with pytest.raises(services.UploadRejected) as refused:
        services.import_outputs(study, io.BytesIO(content), filename="x.jsonl")
    assert len(refused.value.errors) == 20
    assert refused.value.truncated
    assert refused.value.as_dict()["detail"].startswith("The upload was refused: 20+ problems found.")


def test_closed_study_refuses_uploads(api, study):
    study.status = "closed"
    study.save()
    reply = upload(api, study, jsonl(rows()))
    assert reply.status_code == 409
    assert "closed" in reply.json()["errors"][0]["message"]
    assert Item.objects.count() == 0


def test_oversized_upload_is_refused_before_parsing(api, study, settings):
    settings.EVALSITE_MAX_UPLOAD_BYTES = 100
    reply = upload(api, study, jsonl(rows()))
    assert reply.status_code == 413
    assert "Split it into several uploads" in reply.json()["errors"][0]["message"]


def test_unknown_format_name_is_refused(study):
    with pytest.raises(services.UploadRejected, match="unknown format 'xlsx'"):
        services.import_outputs(study, io.BytesIO(b"x"), file_format="xlsx")


def test_web_upload_shows_summary_and_refreshes_coverage(web, study):
    reply = web.post(f"/studies/{study.slug}/upload/",
                     {"file": SimpleUploadedFile("o.jsonl", jsonl(rows()))}, HTTP_HX_REQUEST="true")
    page = reply.content.decode()
    assert "Loaded 6 rows." in page
    assert 'id="coverage" hx-swap-oob="true"' in page
    assert "6 of 6 responses" in " ".join(page.split()).replace("<strong>", "").replace("</strong>", "")


def test_web_upload_without_htmx_renders_the_whole_page(web, study):
    reply = web.post(f"/studies/{study.slug}/upload/", {"file": SimpleUploadedFile("o.jsonl", jsonl(rows()))})
    assert reply.status_code == 200
    assert "<html" in reply.content.decode()
    assert "Loaded 6 rows." in reply.content.decode()


def test_cli_import_and_noop(study, tmp_path, capsys):
    path = tmp_path / "o.jsonl"
    path.write_bytes(jsonl(rows()))
    call_command("import_outputs", study.slug, str(path))
    assert "Loaded 6 rows: 6 new responses" in capsys.readouterr().out
    call_command("import_outputs", study.slug, str(path))
    assert "Nothing changed: all 6 rows were already loaded." in capsys.readouterr().out
    assert OutputUpload.objects.get().uploaded_by is None


class FailingFile(io.BytesIO):
    """A file whose storage fails part-way through, as a disk or network share can."""

    def readline(self, *args):
        if self.tell() > 200:
            raise OSError("disk read failed")
        return super().readline(*args)


def test_a_read_failure_mid_file_reaches_the_caller_and_writes_nothing(study, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    with pytest.raises(OSError, match="disk read failed"):
        services.import_outputs(study, FailingFile(jsonl(rows(n_items=20))), filename="x.jsonl")
    assert (Item.objects.count(), Response.objects.count()) == (0, 0)


class CountingFile(io.BytesIO):
    def __init__(self, content):
        super().__init__(content)
        self.lines_read = 0

    def readline(self, *args):
        self.lines_read += 1
        return super().readline(*args)


def test_reading_stops_when_the_upload_is_refused_early(study, settings):
    settings.EVALSITE_MAX_REPORTED_ERRORS = 5
    upload_file = CountingFile(b"not json\n" * 50_000)
    with pytest.raises(services.UploadRejected):
        services.import_outputs(study, upload_file, filename="x.jsonl")
    read_when_refused = upload_file.lines_read
    time.sleep(0.2)
    # The background reader stopped with the upload: the file is not read on after the reply.
    assert upload_file.lines_read == read_when_refused < 50_000
    assert not any(thread.name == "upload-reader" for thread in threading.enumerate())


def test_foreign_keys_are_deferred_again_after_an_upload(study):
    """An upload checks foreign keys per statement; the rest of the request's transaction must get
    Django's usual deferred checks back, whether the upload succeeded or was refused."""
    services.import_outputs(study, io.BytesIO(jsonl(rows())), filename="a.jsonl")
    with pytest.raises(services.UploadRejected):
        services.import_outputs(study, io.BytesIO(b"not json\n"), filename="b.jsonl")
    system = System.objects.get(study=study, name="alpha")
    item = Item.objects.get(study=study, external_id="p0")
    with transaction.atomic():
        # A row that points at an item created later in the same transaction: fine when deferred.
        dangling = Response.objects.create(item_id=item.pk + 1000, system=system, text="later")
        Item.objects.create(pk=item.pk + 1000, study=study, external_id="later", prompt="Later post")
    assert Response.objects.get(pk=dangling.pk).item.external_id == "later"



def test_every_problem_is_listed_at_once_changed_responses_too(api, study, monkeypatch):
    """A row error no longer hides a changed response: one upload lists both, in line order, across
    chunks, and writes nothing."""
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    upload(api, study, jsonl(rows()))
    changed = rows()
    del changed[0]["prompt"]                       # line 1: a row error
    changed[3]["response"] = "A better answer"     # line 4: p1/beta changed, in a later chunk
    changed[4]["prompt"] = "Another prompt"        # line 5: p2's stored prompt differs (and line 6's)
    reply = upload(api, study, jsonl(changed))
    assert reply.status_code == 400
    body = reply.json()
    assert [(e["line"], e["field"]) for e in body["errors"]] == [
        (1, "prompt"), (4, "response"), (5, "prompt"), (6, "prompt")]
    assert body["detail"].startswith("The upload was refused: 4 problems found.")
    assert not Response.objects.filter(text="A better answer").exists()


def test_a_single_problem_is_named_in_the_singular(api, study):
    reply = upload(api, study, b'{"item_id": "p1"}\n')
    assert reply.json()["detail"].startswith("The upload was refused: 3 problems found.")
    reply = upload(api, study, jsonl([{**rows(n_items=1)[0], "response": ""}]))
    assert reply.json()["detail"] == ("The upload was refused: 1 problem found. Nothing was written; fix it and "
                                      "upload the file again.")
