// The quick-start app: answers every request with its greeting and the services it was given.
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 3000);
createServer((_request, response) => {
  response.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
  response.end(
    `${process.env.GREETING ?? "Hello"} from ${process.env.EXPERIMENT ?? "?"} (${process.env.RELEASE ?? "?"})\n` +
      `database: ${process.env.DATABASE_URL ? "configured" : "missing"}\n` +
      `redis: ${process.env.REDIS_URL ? "configured" : "missing"}\n`,
  );
}).listen(port);
