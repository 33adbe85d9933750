// A URL shortener in miniature: each visit of / shortens a link, stored in PostgreSQL and cached
// in Redis under plain keys, then reads both back. It checks its services before it listens.
import { createServer } from "node:http";
import { Redis } from "ioredis";
import pg from "pg";
import { die, required } from "./settings.js";

const database = new pg.Pool({
  host: required("POSTGRES_HOST"),
  port: Number(required("POSTGRES_PORT")),
  user: required("POSTGRES_USER"),
  password: required("POSTGRES_PASSWORD"),
  database: required("POSTGRES_DB"),
  max: 2,
});
// Host, port and a password, no user name: how most apps log in to Redis.
const redis = new Redis({
  host: required("REDIS_HOST"),
  port: Number(required("REDIS_PORT")),
  password: process.env.REDIS_PASSWORD,
  lazyConnect: true,
  maxRetriesPerRequest: 1,
});

redis.on("error", (error) => console.error(`shortener: Redis: ${error.message}`));
try {
  await redis.connect();
  await redis.ping();
} catch (error) {
  die("cannot use Redis", error);
}
await database.query("SELECT 1 FROM links LIMIT 1").catch((error) => die("cannot use PostgreSQL", error));

async function shorten(target) {
  const { rows } = await database.query("INSERT INTO links (target) VALUES ($1) RETURNING id", [target]);
  const code = Number(rows[0].id).toString(36);
  await redis.set(`link:${code}`, target);
  return code;
}

async function page() {
  const visit = await redis.incr("visits");
  const code = await shorten(`https://example.com/${visit}`);
  const stored = await database.query("SELECT count(*) AS n FROM links");
  return (
    `shortened https://example.com/${visit} as ${code}\n` +
    `PostgreSQL: ${stored.rows[0].n} links in ${process.env.POSTGRES_DB}\n` +
    `Redis: link:${code} is ${await redis.get(`link:${code}`)}, visits is ${await redis.get("visits")}\n`
  );
}

createServer((_request, response) => {
  page().then(
    (body) => {
      response.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      response.end(body);
    },
    (error) => {
      console.error(`shortener: ${error.message}`);
      response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      response.end("something went wrong\n");
    },
  );
}).listen(Number(required("PORT")));
