// What a remote laboratory costs, in one run, per transport against the embedded laboratory of
// the same home (one row each: another transport is one more entry in `transports`):
// - https: `labtest serve` as its own process on 127.0.0.1 with the CA of `labtest lab init`,
//   reached from a laptop's config directory of its own after `labtest login` with a token.
// - list: open the laboratory, list the app's experiments (one exists), close; in this process,
//   a new connection and TLS handshake each time (the command's own start-up, the same for every
//   transport, is not counted); BENCH_LIST_RUNS (default 20).
// - create: `labtest create` of the example app (docker runtime; the laptop's branch pushed as a
//   git bundle over HTTPS) from the command to its first 200 through the router, as
//   bench/create.ts does; BENCH_RUNS (default 5).
// Alternating (order swapped each round) after one untimed run each; medians and min–max.
import { join } from "node:path";
import { execa } from "execa";
import getPort from "get-port";
import { parseLaboratoryAddress } from "../src/config/host.js";
import { openLaboratory, PROTOCOL_VERSION as v } from "../src/laboratory/index.js";
import {
  type BenchLaboratory,
  benchLaboratory,
  LABTEST,
  labtestCreate,
  removeBenchLaboratory,
} from "./laboratory.js";
import { type Contender, median, raceSamples, range } from "./race.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LIST_RUNS = Number(process.env.BENCH_LIST_RUNS ?? 20);

/** A way to the laboratory: the environment of a command that takes it (its LABTEST_HOST chooses it). */
interface Transport {
  name: string;
  env: Record<string, string>;
}

/** `labtest serve` of `lab` on a free port of 127.0.0.1, once it says it listens; and how to stop it. */
async function served(lab: BenchLaboratory): Promise<{ url: string; stop: () => Promise<unknown> }> {
  const port = await getPort({ host: "127.0.0.1" });
  const serve = execa(process.execPath, [LABTEST, "serve", "--listen", `127.0.0.1:${port}`], {
    cwd: lab.home,
    env: lab.env,
    reject: false,
  });
  await new Promise<void>((resolve, reject) => {
    let said = "";
    serve.stdout?.on("data", (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes("the laboratory's API on")) resolve();
    });
    serve.then((ended) => reject(new Error(`labtest serve ended before it listened:\n${ended.stderr}`)));
  });
  return {
    url: `https://127.0.0.1:${port}`,
    stop: () => {
      serve.kill("SIGTERM");
      return serve;
    },
  };
}

/** The laboratory's CA and server certificate, made by `labtest lab init`; resolves to the CA's fingerprint. */
async function labInit(lab: BenchLaboratory): Promise<string> {
  const made = await execa(process.execPath, [LABTEST, "--json", "lab", "init"], {
    cwd: lab.home,
    env: lab.env,
  });
  return (JSON.parse(made.stdout) as { fingerprint: string }).fingerprint;
}

/** A laptop's environment, logged in to `url` with a new deploy token, the laboratory's CA pinned. */
async function laptopOf(
  lab: BenchLaboratory,
  url: string,
  fingerprint: string,
): Promise<Record<string, string>> {
  const created = await execa(process.execPath, [LABTEST, "token", "create", "bench", "--scope", "deploy"], {
    cwd: lab.home,
    env: lab.env,
  });
  const laptop = {
    ...process.env,
    LABTEST_CONFIG_DIR: join(lab.scratch, "laptop-config"),
    LABTEST_HOST: url,
  } as Record<string, string>;
  await execa(process.execPath, [LABTEST, "login", url, "--token", "-", "--fingerprint", fingerprint], {
    cwd: lab.repo,
    env: laptop,
    input: `${created.stdout.trim()}\n`,
  });
  return laptop;
}

/** Opens the transport's laboratory, lists the example app's experiments and closes it. */
function listing(transport: Transport, cwd: string): Contender {
  const address = parseLaboratoryAddress(transport.env.LABTEST_HOST ?? "local");
  if (typeof address === "string") throw new Error(address);
  return {
    name: transport.name,
    async start() {
      const laboratory = await openLaboratory(address, { env: transport.env, cwd });
      try {
        await laboratory.list({ v, app: "hello" });
      } finally {
        await laboratory.close();
      }
      return async () => undefined;
    },
  };
}

const ms = (t: number) => `${t.toFixed(1)} ms`;
const seconds = (t: number) => `${(t / 1000).toFixed(2)} s`;
/** A median and the range of the runs, each written by `unit`. */
const spread = (samples: number[], unit: (t: number) => string) => {
  const { min, max } = range(samples);
  return `${unit(median(samples))} (${unit(min)}–${unit(max)})`;
};

async function main(): Promise<void> {
  const lab = await benchLaboratory("remote");
  let stopServe: (() => Promise<unknown>) | undefined;
  try {
    const fingerprint = await labInit(lab);
    const server = await served(lab);
    stopServe = server.stop;
    const transports: Transport[] = [
      { name: "embedded", env: { ...lab.env, LABTEST_HOST: "local" } },
      { name: "https", env: await laptopOf(lab, server.url, fingerprint) },
    ];
    // An experiment for list to list, made untimed.
    await labtestCreate("listed", lab, lab.env, "listed").start(0);

    const lists = await raceSamples(
      LIST_RUNS,
      transports.map((t) => listing(t, lab.repo)),
    );
    const creates = await raceSamples(
      RUNS,
      transports.map((t) => labtestCreate(t.name, lab, t.env, t.name)),
    );

    console.log(
      `list (open, list one app's experiments, close) median of ${LIST_RUNS}, and create of the example app (→ first 200 through the router) median of ${RUNS}; alternating after one untimed run each; (min–max):`,
    );
    const width = Math.max(...transports.map((t) => t.name.length));
    transports.forEach((t, i) => {
      const list = lists[i] ?? [];
      const create = creates[i] ?? [];
      console.log(`  ${t.name.padEnd(width)}  list ${spread(list, ms)}   create ${spread(create, seconds)}`);
    });
    const embeddedCreate = median(creates[0] ?? []);
    transports.slice(1).forEach((t, i) => {
      const create = median(creates[i + 1] ?? []) / embeddedCreate;
      const list = median(lists[i + 1] ?? []);
      console.log(
        `  ${t.name}: create ${t.name}/embedded ${create.toFixed(2)} (target ≤ 1.10); list ${ms(list)} (target < 100 ms)`,
      );
    });
  } finally {
    await stopServe?.();
    await removeBenchLaboratory(lab);
  }
}

await main();
