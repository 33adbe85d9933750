"""A tiny notes API on Flask and SQLAlchemy: POST / keeps the request's body as a note, GET /
lists the notes. The database is DATABASE_URL's (labtest sets it); migrate.py makes its table."""

import os

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
app = Flask(__name__)


@app.get("/")
def list_notes():
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, body FROM notes ORDER BY id")).all()
    return jsonify(
        release=os.environ.get("RELEASE"),
        notes=[{"id": row.id, "body": row.body} for row in rows],
    )


@app.post("/")
def add_note():
    body = request.get_data(as_text=True).strip()
    if not body:
        return jsonify(error="a note is the request's body, and it was empty"), 400
    with engine.begin() as connection:
        note = connection.execute(
            text("INSERT INTO notes (body) VALUES (:body) RETURNING id"), {"body": body}
        ).scalar_one()
    return jsonify(id=note, body=body), 201
