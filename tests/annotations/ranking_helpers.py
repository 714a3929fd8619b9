"""Test data for rankings: outputs to rank, ranking records, and JSONL files of them."""
import io
import json
import random

from annotations.results import services as results
from annotations.studies import services

SYSTEMS = ("sysA", "sysB", "sysC", "sysD")


def outputs(study, items=("p1", "p2", "p3"), systems=SYSTEMS, missing=()):
    """Upload one response per (item, system), except the (item, system) pairs in `missing`."""
    lines = [json.dumps({"item_id": item, "prompt": f"Post {item}", "system": system,
                         "response": f"{system} answers {item}"})
             for item in items for system in systems if (item, system) not in missing]
    services.import_outputs(study, io.BytesIO("\n".join(lines).encode()), filename="o.jsonl")


def ranking(**overrides):
    base = {"item_id": "p1", "annotator": "a1", "criterion": "overall",
            "ranking": [["sysA"], ["sysC", "sysD"], ["sysB"]],
            "display_order": ["sysB", "sysA", "sysC", "sysD"], "seconds": 41.5}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def jsonl(*records):
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode() + b"\n"


def random_rankings(items, annotators, systems=SYSTEMS, criteria=("overall",), seed=0, strength=None,
                    attention=None):
    """Plausible rankings: systems earlier in `systems` tend to rank higher; some ties."""
    rng = random.Random(seed)
    strength = strength or {s: len(systems) - i for i, s in enumerate(systems)}
    records = []
    for item in items:
        for criterion in criteria:
            for annotator in annotators:
                draws = {s: strength[s] + rng.gauss(0, 1.5) for s in systems}
                order = sorted(systems, key=lambda s: -draws[s])
                groups = [[order[0]]]
                for prev, cur in zip(order, order[1:]):
                    if draws[prev] - draws[cur] < 0.2:
                        groups[-1].append(cur)
                    else:
                        groups.append([cur])
                shown = list(systems)
                rng.shuffle(shown)
                record = {"item_id": item, "annotator": annotator, "criterion": criterion, "ranking": groups,
                          "display_order": shown, "seconds": round(rng.uniform(20, 120), 1)}
                if attention and annotator in attention:
                    record["attention_passed"] = attention[annotator]
                records.append(record)
    return records


def load_rankings(study, records):
    return results.import_rankings(study, io.BytesIO(jsonl(*records)), filename="r.jsonl")
