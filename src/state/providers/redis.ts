import type { Redis } from "ioredis";
import { z } from "zod";
import { StateError } from "../errors.js";
import { parseValue, type StateStore } from "../store.js";
import { defineStateProvider } from "./definition.js";

const options = z.strictObject({
  url: z
    .string()
    .regex(/^rediss?:\/\//, "expected a redis:// or rediss:// URL")
    .default("redis://127.0.0.1:6379"),
  prefix: z.string().default(""),
});

/** `redis`/`redis`: one Redis key per state key (after `prefix`), all candidates in one MGET. */
export const redisRedis = defineStateProvider({
  provider: "redis",
  service: "redis",
  options,
  open: (o) => redisStore(o.url, o.prefix),
});

export function redisStore(url: string, prefix: string): StateStore {
  let lastError: Error | undefined;
  let client: Redis | undefined;
  // ioredis is loaded when state is first read, not by every command that could read it.
  async function connected(): Promise<Redis> {
    if (!client) {
      const { Redis } = await import("ioredis");
      client = new Redis(url, {
        lazyConnect: true,
        connectTimeout: 3_000,
        commandTimeout: 5_000,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on("error", (error: Error) => {
        lastError = error; // reported by the command that fails because of it
      });
    }
    if (client.status === "wait") await client.connect();
    return client;
  }
  const where = url.replace(/\/\/[^@/]*@/, "//***@");
  return {
    async read(keys) {
      try {
        const values = await (await connected()).mget(...keys.map((k) => prefix + k));
        return new Map(
          keys.flatMap((key, i) =>
            values[i] == null ? [] : [[key, parseValue(values[i] as string)] as const],
          ),
        );
      } catch (error) {
        // ioredis rejects with "Connection is closed"; the socket's own error says why.
        const reason = lastError?.message ?? ((error as Error).message || String(error));
        throw new StateError(
          `cannot read state from Redis at ${where}: ${reason}`,
          "check options.url in state.json and that the server is up",
          { cause: error, where: `Redis at ${where}` },
        );
      }
    },
    close: async () => {
      client?.disconnect();
    },
  };
}
