import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import writeFileAtomic from "write-file-atomic";
import { z } from "zod";
import { StateError } from "../errors.js";
import { parseValue, type StateStore } from "../store.js";
import { defineStateProvider } from "./definition.js";

const options = z
  .strictObject({
    bucket: z.string().min(1),
    prefix: z.string().default(""),
    region: z.string().min(1).default("us-east-1"),
    endpoint: z.url().optional(),
    force_path_style: z.boolean().optional(),
    /**
     * Keep answers (found or not) on disk for ttl_seconds, so a laboratory does not ask S3 each time;
     * or LabTest's `true`/`false` (aws.rst): found values kept for good as files under `cache_path`.
     */
    cache: z
      .union([
        z.boolean(),
        z.strictObject({ ttl_seconds: z.number().positive(), path: z.string().optional() }),
      ])
      .optional(),
    /** LabTest's: where `cache: true` keeps its files, a mirror of the bucket (`aws s3 sync` can fill it). */
    cache_path: z.string().min(1).optional(),
  })
  .refine((o) => typeof o.cache !== "object" || o.cache_path === undefined, {
    message: "cache_path is for LabTest's cache: true; cache: {ttl_seconds, path} keeps its files at path",
    path: ["cache_path"],
  });
export type S3StateOptions = z.output<typeof options>;

/** `aws`/`s3`: one object per key (without the leading slash, under `prefix`), all candidates at once. */
export const awsS3 = defineStateProvider({
  provider: "aws",
  service: "s3",
  options,
  open: (o, context) => s3Store(o, join(context.home, "cache", "state-s3")),
  localPaths: (o, context) => {
    const { cacheDir, mirrorDir } = cacheDirectories(o, join(context.home, "cache", "state-s3"));
    return [cacheDir, mirrorDir];
  },
});

/** Where found values are kept: the expiring cache's directory and LabTest's mirror of the bucket. */
function cacheDirectories(o: S3StateOptions, defaultCacheDir: string) {
  const expiring = typeof o.cache === "object" ? o.cache : null;
  return {
    expiring,
    cacheDir: expiring?.path ?? defaultCacheDir,
    mirrorDir: o.cache_path ?? `${defaultCacheDir}-mirror`,
  };
}

export function s3Store(o: S3StateOptions, defaultCacheDir: string): StateStore {
  let client: S3Client | undefined;
  // The AWS SDK is loaded when state is first read, not by every command that could read it.
  const sdk = () => import("@aws-sdk/client-s3");
  async function s3(): Promise<S3Client> {
    if (!client) {
      const [{ S3Client }, { NodeHttpHandler }] = await Promise.all([
        sdk(),
        import("@smithy/node-http-handler"),
      ]);
      // Credentials come from the standard AWS chain (environment, profile, instance role).
      client = new S3Client({
        region: o.region,
        ...(o.endpoint ? { endpoint: o.endpoint } : {}),
        forcePathStyle: o.force_path_style ?? o.endpoint !== undefined,
        maxAttempts: 2,
        requestHandler: new NodeHttpHandler({ connectionTimeout: 3_000, requestTimeout: 5_000 }),
      });
    }
    return client;
  }
  const objectKey = (key: string) =>
    o.prefix ? `${o.prefix.replace(/\/+$/, "")}/${key.slice(1)}` : key.slice(1);
  const { expiring, cacheDir, mirrorDir } = cacheDirectories(o, defaultCacheDir);
  // LabTest cached unless told not to: cache_path alone turns its cache on.
  const mirror = o.cache === true || (o.cache === undefined && o.cache_path !== undefined);

  async function fetchOne(key: string): Promise<{ found: boolean; value?: unknown }> {
    const { GetObjectCommand, NoSuchKey, S3ServiceException } = await sdk();
    try {
      const response = await (await s3()).send(
        new GetObjectCommand({ Bucket: o.bucket, Key: objectKey(key) }),
      );
      return { found: true, value: parseValue((await response.Body?.transformToString("utf8")) ?? "") };
    } catch (error) {
      if (
        error instanceof NoSuchKey ||
        (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404)
      ) {
        return { found: false };
      }
      throw new StateError(
        `cannot read state s3://${o.bucket}/${objectKey(key)}${o.endpoint ? ` at ${o.endpoint}` : ""}: ${(error as Error).message || (error as Error).name}`,
        "check the bucket, endpoint and AWS credentials in state.json and the environment",
        { cause: error, where: `s3://${o.bucket}` },
      );
    }
  }

  /** LabTest's cache: the file of the key's object under cache_path, else S3's answer, kept there if found. */
  async function mirrored(key: string): Promise<{ found: boolean; value?: unknown }> {
    const file = join(mirrorDir, objectKey(key));
    const text = await readFile(file, "utf8").catch(() => undefined);
    if (text !== undefined) return { found: true, value: parseValue(text) };
    const fresh = await fetchOne(key);
    // A key whose file cannot be kept (its path is a directory of deeper keys) is asked again next time.
    if (fresh.found)
      await mkdir(dirname(file), { recursive: true, mode: 0o700 })
        .then(() => writeFileAtomic(file, JSON.stringify(fresh.value), { mode: 0o600 }))
        .catch(() => undefined);
    return fresh;
  }

  async function cached(key: string): Promise<{ found: boolean; value?: unknown }> {
    if (mirror) return mirrored(key);
    if (!expiring) return fetchOne(key);
    const file = join(
      cacheDir,
      `${createHash("sha256")
        .update(`${o.endpoint ?? ""}\0${o.bucket}\0${objectKey(key)}`)
        .digest("hex")}.json`,
    );
    const entry = await readFile(file, "utf8").then(
      (text) => JSON.parse(text) as { at: number; found: boolean; value?: unknown },
      () => undefined,
    );
    if (entry && Date.now() - entry.at < expiring.ttl_seconds * 1000) return entry;
    const fresh = await fetchOne(key);
    await mkdir(cacheDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, JSON.stringify({ at: Date.now(), ...fresh }), { mode: 0o600 });
    return fresh;
  }

  return {
    async read(keys) {
      const answers = await Promise.all(keys.map(async (key) => [key, await cached(key)] as const));
      return new Map(answers.filter(([, a]) => a.found).map(([key, a]) => [key, a.value]));
    },
    close: async () => client?.destroy(),
  };
}
