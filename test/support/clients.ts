import { Redis } from "ioredis";
import memjs from "memjs";
import mysql from "mysql2/promise";
import pg from "pg";

export type ClientKind = "postgresql" | "mariadb" | "mysql" | "redis" | "memcached";

/**
 * Writes `value` with a real client of the kind, through a service's variables (`<NAME>_URL`,
 * `<NAME>_PREFIX`), and reads it back.
 */
export async function writeAndRead(
  kind: ClientKind,
  env: Record<string, string>,
  name: string,
  value: string,
): Promise<string | null> {
  const url = env[`${name}_URL`] as string;
  const prefix = env[`${name}_PREFIX`] ?? "";
  switch (kind) {
    case "postgresql": {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query("CREATE TABLE IF NOT EXISTS notes (body text)");
        await client.query("INSERT INTO notes VALUES ($1)", [value]);
        const { rows } = await client.query("SELECT body FROM notes WHERE body = $1", [value]);
        return rows[0]?.body ?? null;
      } finally {
        await client.end();
      }
    }
    case "mariadb":
    case "mysql": {
      const connection = await mysql.createConnection(url);
      try {
        await connection.query("CREATE TABLE IF NOT EXISTS notes (body text)");
        await connection.query("INSERT INTO notes VALUES (?)", [value]);
        const [rows] = await connection.query("SELECT body FROM notes WHERE body = ?", [value]);
        return (rows as { body: string }[])[0]?.body ?? null;
      } finally {
        await connection.end();
      }
    }
    case "redis": {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on("error", () => undefined);
      try {
        await client.connect();
        await client.set(`${prefix}note`, value);
        return await client.get(`${prefix}note`);
      } finally {
        client.disconnect();
      }
    }
    case "memcached": {
      const client = memjs.Client.create(url, {
        retries: 0,
        timeout: 2,
        conntimeout: 2,
        logger: { log: () => undefined },
      });
      try {
        await client.set(`${prefix}note`, value, {});
        return (await client.get(`${prefix}note`)).value?.toString() ?? null;
      } finally {
        client.close();
      }
    }
  }
}
