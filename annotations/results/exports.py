"""Downloads of the results area: the leaderboard as JSON (everything), CSV, Markdown and LaTeX (the
tables papers print), and every ranking as JSONL. Annotators appear only as 'annotator-1', ...
"""
import csv
import io
import re

import orjson
from django.http import HttpResponse, StreamingHttpResponse

from annotations.formatting import counted, csv_cell, percent, rounded
from annotations.models import Pseudonyms, Ranking, System, pseudonyms

from . import rankings_io
from .figures import UNIT_HELP, UNIT_LABELS

FORMATS = {
    # format: (media type, file extension)
    "json": ("application/json", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "md": ("text/markdown; charset=utf-8", "md"),
    "tex": ("application/x-tex; charset=utf-8", "tex"),
}


def document(study, snapshot):
    """The JSON download: per criterion every figure, plus how it was computed.

    Annotators appear as 'annotator-1', ... (the same names as in the rankings export). Every
    download is written from this document, its figures rounded here (formatting.rounded).
    """
    data = snapshot.data
    alias = pseudonyms(data["annotators"])
    criteria = {}
    for criterion in data["criteria"]:
        board = dict(criterion["leaderboard"])
        board["annotators"] = [{**row, "annotator": alias.get(row["annotator"], row["annotator"])}
                               for row in board["annotators"]]
        if board.get("robustness"):
            board["robustness"] = {**board["robustness"], "removed": [
                {**row, "annotator": alias.get(row["annotator"], row["annotator"])}
                for row in board["robustness"]["removed"]]}
        criteria[criterion["name"]] = {"label": criterion["label"], "description": criterion["description"],
                                       **board, "stop_signal": criterion.get("stop_signal")}
    return rounded({
        "study": {"slug": study.slug, "title": study.title},
        "computed_at": snapshot.computed_at.isoformat(),
        "rankings_count": data["rankings_count"],
        "unit": data["unit"],
        "seed": data["seed"],
        "bootstrap_rounds": data["bootstrap_rounds"],
        "alpha": data["alpha"],
        "exclude_failed_attention": data["exclude_failed_attention"],
        "attention_min_pass_rate": data["attention_min_pass_rate"],
        "excluded_annotators": [alias[label] for label in data["excluded_annotators"]],
        "stop_when_answered": study.stop_when_answered,
        "question_answered": data.get("question_answered"),
        "criteria": criteria,
    })


def render(study, snapshot, file_format):
    """(bytes, media type, file name) of one download."""
    doc = document(study, snapshot)
    body = {"json": to_json, "csv": to_csv, "md": to_markdown, "tex": to_latex}[file_format](doc)
    media_type, extension = FORMATS[file_format]
    unit = doc["unit"]
    return body, media_type, f"{study.slug}-leaderboard-{unit}.{extension}"


def to_json(doc):
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


# ---------------------------------------------------------------------------------------------
# CSV


def _ci(entry, key, i):
    ci = entry.get(key)
    return None if ci is None else ci[i]


def to_csv(doc):
    kmax = max((len(s["win_at"]) for c in doc["criteria"].values() for s in c["systems"]), default=0)
    header = ["criterion", "unit", "rank", "system", "group", "n", "win1", "win1_low", "win1_high",
              "strict_win1", "chance_win1", "mean_rank", "mean_rank_low", "mean_rank_high", "bt_elo",
              "bt_elo_low", "bt_elo_high", "rank_low", "rank_high"]
    header += [f"win_at_{k}" for k in range(1, kmax + 1)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for name, criterion in doc["criteria"].items():
        for s in criterion["systems"]:
            row = [name, criterion["unit"], s["rank"], s["system"], s["group"], s["n"], s["win1"],
                   _ci(s, "win1_ci", 0), _ci(s, "win1_ci", 1), s["strict_win1"], s["chance_win1"],
                   s["mean_rank"], _ci(s, "mean_rank_ci", 0), _ci(s, "mean_rank_ci", 1), s["bt_elo"],
                   _ci(s, "bt_elo_ci", 0), _ci(s, "bt_elo_ci", 1), _ci(s, "rank_ci", 0), _ci(s, "rank_ci", 1)]
            row += [s["win_at"].get(str(k)) for k in range(1, kmax + 1)]
            writer.writerow([csv_cell(v) for v in row])
    # A BOM, so that Excel reads the system names (possibly CJK) as UTF-8.
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Text tables


def pct(value, digits=1):
    return percent(value, digits, sign="")


def num(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def _rank_range(entry):
    ci = entry["rank_ci"]
    if ci is None:
        return "–"
    return str(ci[0]) if ci[0] == ci[1] else f"{ci[0]}–{ci[1]}"


def caption(doc, criterion):
    unit = UNIT_LABELS[criterion["unit"]]
    chance = criterion["chance_win1"]
    parts = [f"Unit: {unit} ({UNIT_HELP[criterion['unit']]})",
             f"{counted(criterion['n_annotations'], 'annotation')} of {counted(criterion['n_items'], 'item')} by "
             f"{counted(criterion['n_annotators'], 'annotator')}",
             f"chance Win@1 {pct(chance)} %",
             f"95 % intervals from a cluster bootstrap over items, {doc['bootstrap_rounds']} rounds, "
             f"seed {doc['seed']}",
             "groups: systems sharing a letter cannot be separated (Holm-corrected sign tests)"]
    if doc["excluded_annotators"]:
        parts.append(f"{counted(len(doc['excluded_annotators']), 'annotator')} excluded for failed attention checks")
    return "; ".join(parts) + "."


# Characters that would start Markdown formatting or end a table cell.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def md_escape(text):
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def to_markdown(doc):
    lines = [f"# Leaderboard: {md_escape(doc['study']['title'])}", ""]
    for criterion in doc["criteria"].values():
        lines += [f"## {md_escape(criterion['label'])}", "", caption(doc, criterion), ""]
        lines.append("| Rank | System | Win@1 % (95 % CI) | Strict Win@1 % | Mean rank (95 % CI) "
                     "| Bradley-Terry Elo (95 % CI) | Rank range | Group | n |")
        lines.append("|---:|---|---:|---:|---:|---:|:---:|:---:|---:|")
        for s in criterion["systems"]:
            lines.append(
                f"| {s['rank'] or '–'} | {md_escape(s['system'])} | {pct(s['win1'])} {_bracketed(s['win1_ci'], pct)} "
                f"| {pct(s['strict_win1'])} | {num(s['mean_rank'])} {_bracketed(s['mean_rank_ci'], num)} "
                f"| {num(s['bt_elo'], 0)} {_bracketed(s['bt_elo_ci'], lambda v: num(v, 0))} "
                f"| {_rank_range(s)} | {s['group'] or '–'} | {s['n']} |")
        lines.append("")
    return "\n".join(lines).encode("utf-8")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "<": r"\textless{}", ">": r"\textgreater{}"}


def tex_escape(text):
    return "".join(_TEX.get(ch, ch) for ch in " ".join(str(text).split()))


def _bracketed(ci, fmt):
    """An interval as both text tables print it: '[38.0, 51.0]'; nothing when there is none."""
    return "" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def to_latex(doc):
    lines = [
        f"% Leaderboard of {tex_escape(doc['study']['title'])}, computed {doc['computed_at']} by evalsite.",
        "% Needs \\usepackage{booktabs} in the preamble.",
    ]
    for name, criterion in doc["criteria"].items():
        best = max((s["win1"] for s in criterion["systems"] if s["win1"] is not None), default=None)
        lines += [
            "\\begin{table}[t]",
            "  \\centering",
            "  \\small",
            f"  \\caption{{{tex_escape(criterion['label'])}. {tex_escape(caption(doc, criterion))}}}",
            f"  \\label{{tab:leaderboard-{tex_escape(name)}}}",
            "  \\begin{tabular}{rlrrrrcc}",
            "    \\toprule",
            "    Rank & System & Win@1 (\\%) & 95\\,\\% CI & Mean rank & BT (Elo) & Rank range & Group \\\\",
            "    \\midrule",
        ]
        for s in criterion["systems"]:
            win1 = pct(s["win1"])
            if best is not None and s["win1"] == best:
                win1 = f"\\textbf{{{win1}}}"
            lines.append(
                f"    {s['rank'] or '--'} & {tex_escape(s['system'])} & {win1} & {_bracketed(s['win1_ci'], pct)} & "
                f"{num(s['mean_rank'])} & {num(s['bt_elo'], 0)} & {_rank_range(s).replace('–', '--')} & "
                f"{tex_escape(s['group'] or '--')} \\\\")
        lines += ["    \\bottomrule", "  \\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines).replace("–", "--").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Rankings


def export_rankings(study):
    """The study's rankings as JSONL lines (bytes), in stored order, annotators pseudonymised:
    the import format, so that importing them into a study with the same items and systems
    reproduces the leaderboard exactly."""
    names = dict(System.objects.filter(study=study).values_list("id", "name"))
    rows = (Ranking.objects.filter(study=study).order_by("id")
            .values_list("item__external_id", "annotator_label", "criterion__name", "ranking",
                         "display_order", "seconds", "attention_passed", "assignment__reading"))
    aliases = Pseudonyms()  # rows come in stored order: numbered by each annotator's first ranking
    for item, label, criterion, ranking, display, seconds, attention, reading in rows.iterator(chunk_size=10_000):
        alias = aliases[label]
        yield rankings_io.dumps(rankings_io.RankingRow(
            0, item, alias, criterion, tuple(tuple(names[s] for s in group) for group in ranking),
            None if display is None else tuple(names[s] for s in display), seconds, attention,
            _reading_by_name(reading, names)))


def _reading_by_name(reading, names):
    """An assignment's reading (system id -> how it was read) under the systems' names; None if none."""
    return {names[int(s)]: entry for s, entry in reading.items() if int(s) in names} if reading else None


# ---------------------------------------------------------------------------------------------
# As HTTP responses (the pages and the API send the same files)


def attachment(body, media_type, filename, *, inline=False):
    response = HttpResponse(body, content_type=media_type)
    if not inline:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def leaderboard_response(study, snapshot, file_format, *, inline=False):
    return attachment(*render(study, snapshot, file_format), inline=inline)


def rankings_response(study):
    """Streamed: a study's rankings are read 10,000 at a time and sent as they come, so a large
    export never sits whole in the server's memory."""
    response = StreamingHttpResponse(export_rankings(study), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-rankings.jsonl"'
    return response
