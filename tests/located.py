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
