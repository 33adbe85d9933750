// The quick-start app: counts its visits in its own PostgreSQL database and Redis, and says
// which experiment and release answered.
import { createServer } from "node:http";
import { Redis } from "ioredis";
import pg from "pg";

const database = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
const redis = new Redis(process.env.REDIS_URL, { lazyConnect: true });
const prefix = process.env.REDIS_PREFIX ?? "";

createServer(async (_request, response) => {
  try {
    const { rows } = await database.query(
      "INSERT INTO visits DEFAULT VALUES RETURNING (SELECT count(*) + 1 FROM visits) AS n",
    );
    const hits = await redis.incr(`${prefix}hits`);
    response.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    response.end(
      `${process.env.GREETING ?? "Hello"} from ${process.env.EXPERIMENT} (release ${process.env.RELEASE})\n` +
        `visits in PostgreSQL database ${process.env.DATABASE_NAME}: ${rows[0].n}\n` +
        `hits in Redis under ${prefix}: ${hits}\n`,
    );
  } catch (error) {
    response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
    response.end(`the app could not reach its services: ${error.message}\n`);
  }
}).listen(Number(process.env.PORT ?? 3000));
