"""Where an upload error must say it happened, written out independently of the code under test."""


def located(bad):
    """The text a user reads must name the line (and column or field) before the problem."""
    where = []
    if bad.line is not None:
        where.append(f"line {bad.line}")
    if bad.column is not None:
        where.append(f"column {bad.column}")
    if bad.field:
        where.append(f"field '{bad.field}'")
    return ", ".join(where)


def assert_one_located_error(reply, line, field, phrase):
    """An API refusal (400) that lists exactly one problem, at this line and field, saying `phrase`."""
    assert reply.status_code == 400, reply.content[:500]
    errors = reply.json()["errors"]
    assert len(errors) == 1, errors
    assert (errors[0]["line"], errors[0]["field"]) == (line, field)
    assert phrase in errors[0]["message"]
    assert errors[0]["text"].startswith(f"line {line}")
