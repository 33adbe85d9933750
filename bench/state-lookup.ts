// Lookup of a 5-level key against the S3-protocol and Redis stores: labtest's lookup (every
// candidate in one round: concurrent GETs on S3, one MGET on Redis) against the sequential
// candidate-by-candidate walk LabTest did, in the same run, on the same store and connection.
// The value sits at /default, the last of 7 candidates: the walk's worst case and a common one.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Redis } from "ioredis";
import { candidateKeys, lookup, openState, type StateStore } from "../src/state/index.js";
import { S3RVER_CREDENTIALS, startRedisServer, startS3Server } from "../test/support/servers.js";

const KEY = "/services/docker/postgresql/shop/feature-x";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);

async function sequentialWalk(store: StateStore, key: string): Promise<unknown> {
  for (const candidate of candidateKeys(key)) {
    const hit = await store.read([candidate]);
    if (hit.has(candidate)) return hit.get(candidate);
  }
  return undefined;
}

async function timeMs(run: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await run(); // warm up connections and JIT
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = process.hrtime.bigint();
    await run();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return samples.sort((a, b) => a - b);
}

const median = (s: number[]) => s[Math.floor(s.length / 2)] ?? Number.NaN;

async function measure(name: string, store: StateStore): Promise<void> {
  const expected = JSON.stringify((await lookup(store, KEY)).value);
  if (JSON.stringify(await sequentialWalk(store, KEY)) !== expected)
    throw new Error(`${name}: the two walks disagree`);
  const ours = median(await timeMs(() => lookup(store, KEY)));
  const walk = median(await timeMs(() => sequentialWalk(store, KEY)));
  console.log(
    `${name.padEnd(6)} labtest ${ours.toFixed(2)} ms   sequential walk ${walk.toFixed(2)} ms   ratio labtest/sequential ${(ours / walk).toFixed(2)} (${(walk / ours).toFixed(1)}x faster)`,
  );
}

async function main(): Promise<void> {
  Object.assign(process.env, S3RVER_CREDENTIALS);
  const [redis, s3] = await Promise.all([startRedisServer(), startS3Server(["bench"])]);
  const dir = process.env.TMPDIR ?? "/tmp";
  try {
    const admin = new S3Client({ region: "us-east-1", endpoint: s3.url, forcePathStyle: true });
    await admin.send(new PutObjectCommand({ Bucket: "bench", Key: "default", Body: '{"version":"16"}' }));
    admin.destroy();
    const client = new Redis(redis.url);
    await client.set("/default", '{"version":"16"}');
    client.disconnect();

    console.log(
      `lookup of ${KEY} (${candidateKeys(KEY).length} candidates, answer at /default), median of ${ROUNDS}`,
    );
    for (const [name, state] of [
      ["s3", { provider: "aws", service: "s3", options: { bucket: "bench", endpoint: s3.url } }],
      ["redis", { provider: "redis", service: "redis", options: { url: redis.url } }],
    ] as const) {
      const file = join(dir, `labtest-bench-state-${name}-${process.pid}.json`);
      await writeFile(file, JSON.stringify(state));
      const { store } = await openState({ statePath: file });
      try {
        await measure(name, store);
      } finally {
        await store.close();
      }
    }
  } finally {
    await Promise.all([redis.stop(), s3.stop()]);
  }
}

await main();
