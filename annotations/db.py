"""Large writes for the services: binary COPY on PostgreSQL (bulk_create elsewhere), and primary
keys drawn ahead from a table's sequence. Used by uploads of outputs and imports of rankings.
"""
import orjson
from psycopg.types.json import set_json_dumps

from django.db import connection


def next_ids(model, count):
    """Draw `count` primary keys from the model's PostgreSQL sequence, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [model._meta.db_table, model._meta.pk.column, count])
        return [pk for (pk,) in cursor.fetchall()]


def bulk_insert(model, columns, rows):
    """Insert plain tuples of Python values (dicts and lists for JSON columns, datetimes for
    timestamps); returns how many rows were written.

    On PostgreSQL this is a binary COPY inside the current transaction, several times faster than
    bulk_create for large uploads; binary, because then neither side formats or parses text for
    numbers, timestamps and escapes (a third less of PostgreSQL's work per row). Elsewhere it
    falls back to bulk_create.
    """
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        fields = {field.column: field for field in model._meta.concrete_fields}
        # Binary COPY carries no types: each column's is named as the schema declares it
        # ("varchar(200)" is named "varchar").
        types = [fields[column].db_type(connection).split("(")[0] for column in columns]
        table = connection.ops.quote_name(model._meta.db_table)
        names = ", ".join(connection.ops.quote_name(c) for c in columns)
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            set_json_dumps(orjson.dumps, cursor)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        return len(rows)
    model.objects.bulk_create((model(**dict(zip(columns, row))) for row in rows), batch_size=2000)
    return len(rows)
