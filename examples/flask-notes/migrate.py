"""The notes app's schema, made before the app starts (labtest's before_start_command); running
it again changes nothing."""

import os

from sqlalchemy import create_engine, text

with create_engine(os.environ["DATABASE_URL"]).begin() as connection:
    connection.execute(
        text(
            "CREATE TABLE IF NOT EXISTS notes ("
            " id serial PRIMARY KEY,"
            " body text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
    )
print("notes: schema ready")
