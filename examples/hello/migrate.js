// Runs before each release starts: creates the schema the app needs, once.
import pg from "pg";

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
await client.query(
  "CREATE TABLE IF NOT EXISTS visits (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
);
await client.end();
console.log(`migrated ${process.env.DATABASE_NAME}`);
