// The migration (before_start_command): creates the links table once, from DB_CONNECTION_STRING.
import pg from "pg";
import { die, required } from "./settings.js";

const client = new pg.Client({ connectionString: required("DB_CONNECTION_STRING") });
try {
  await client.connect();
  await client.query(
    "CREATE TABLE IF NOT EXISTS links (id serial PRIMARY KEY, target text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
  );
  await client.end();
} catch (error) {
  die("the migration failed", error);
}
console.log("shortener: links table ready");
