// What a remote laboratory costs, in one run, per transport against the embedded laboratory of
// the same home (one row each: another transport is one more entry in `transports`):
// - https: `labtest serve` as its own process on 127.0.0.1 with the CA of `labtest lab init`,
//   reached from a laptop's config directory of its own after `labtest login` with a token.
// - ssh: the test sshd (Debian's openssh-server on 127.0.0.1, its own host key) whose laboratory
//   user added the bench's key with `labtest lab add-key bench … --scope deploy`; the laptop's
//   system ssh with a ControlMaster connection. It needs root: root starts the sshd and reruns
//   the bench as the laboratory user (bench/ssh.ts says why); without root the row is left out.
//   The https row's `labtest serve` runs on the same home, so the forced command relays each
//   request to it (server/relay.ts), as on a laboratory that runs serve; bench/startup.ts
//   measures the forced command without one.
// - list: open the laboratory, list the app's experiments (one exists), close; in this process,
//   a new connection and TLS handshake each time for https, a new session over the warm master
//   connection for ssh (the untimed first run opens it); the command's own start-up, the same
//   for every transport, is not counted; BENCH_LIST_RUNS (default 20).
// - create: `labtest create` of the example app (docker runtime; the laptop's branch pushed as a
//   git bundle over HTTPS, by git push over ssh) from the command to its first 200 through the
//   router, as bench/create.ts does; BENCH_RUNS (default 5).
// Alternating (order swapped each round) after one untimed run each; medians and min–max, and
// each remote transport against the embedded laboratory and its targets.
import { join } from "node:path";
import { execa } from "execa";
import getPort from "get-port";
import { parseLaboratoryAddress } from "../src/config/host.js";
import { openLaboratory, PROTOCOL_VERSION as v } from "../src/laboratory/index.js";
import type { CleanupRegistrar } from "../test/support/sshd.js";
import { withCleanup } from "./cleanup.js";
import {
  type BenchLaboratory,
  benchLaboratory,
  LABTEST,
  labtestCreate,
  removeBenchLaboratory,
} from "./laboratory.js";
import { type Contender, median, ms, raceSamples, seconds, spread } from "./race.js";
import { rerunAsLaboratoryUser, type SshBench, sshBenchOf, sshLaptop } from "./ssh.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LIST_RUNS = Number(process.env.BENCH_LIST_RUNS ?? 20);

/** A way to the laboratory: the environment of a command that takes it (its LABTEST_HOST chooses it). */
interface Transport {
  name: string;
  env: Record<string, string>;
  /** What a list over it should take at most (its median, in ms), and how the target says it. */
  listTarget?: { ms: number; said: string };
}

/** A remote laboratory's create may take this much longer than the embedded one's (medians). */
const CREATE_OVERHEAD_TARGET = 0.1;

/**
 * `labtest serve` of `lab` on a free port of 127.0.0.1, once it says it listens; how to stop it, and
 * how many SSH sessions it answered so far (its one line per session relayed by a forced command).
 */
async function served(
  lab: BenchLaboratory,
): Promise<{ url: string; stop: () => Promise<unknown>; relayed: () => number }> {
  const port = await getPort({ host: "127.0.0.1" });
  const serve = execa(process.execPath, [LABTEST, "serve", "--listen", `127.0.0.1:${port}`], {
    cwd: lab.home,
    env: lab.env,
    reject: false,
  });
  let said = "";
  serve.stdout?.on("data", (chunk: Buffer) => {
    said += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    serve.stdout?.on("data", () => {
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
    relayed: () => said.split("\n").filter((line) => / labtest request: exit /.test(line)).length,
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

/** Whether `holds`, said after a target. */
const verdict = (holds: boolean) => (holds ? "holds" : "MISSED");

/**
 * The table of every transport's runs, then each remote one against the embedded laboratory and
 * its targets; and, with the ssh row, how many of its requests `labtest serve` answered.
 */
function report(transports: Transport[], lists: number[][], creates: number[][], relayed?: number): void {
  console.log(
    `list (open, list one app's experiments, close) median of ${LIST_RUNS}, and create of the example app (→ first 200 through the router) median of ${RUNS}; alternating after one untimed run each; (min–max):`,
  );
  const width = Math.max(...transports.map((t) => t.name.length));
  transports.forEach((t, i) => {
    console.log(
      `  ${t.name.padEnd(width)}  list ${spread(lists[i] ?? [], ms)}   create ${spread(creates[i] ?? [], seconds)}`,
    );
  });
  const embeddedList = median(lists[0] ?? []);
  const embeddedCreate = median(creates[0] ?? []);
  console.log("against embedded (medians):");
  transports.forEach((t, i) => {
    if (i === 0) return;
    const list = median(lists[i] ?? []);
    const overhead = median(creates[i] ?? []) / embeddedCreate - 1;
    const listTarget = t.listTarget
      ? `, target < ${t.listTarget.ms} ms ${t.listTarget.said}: ${verdict(list < t.listTarget.ms)}`
      : "";
    console.log(
      `  ${t.name.padEnd(width)}  list ${ms(list)} = ${(list / embeddedList).toFixed(1)}× embedded${listTarget};` +
        `  create overhead ${(overhead * 100).toFixed(1)} % (target ≤ ${CREATE_OVERHEAD_TARGET * 100} %): ${verdict(overhead <= CREATE_OVERHEAD_TARGET)}`,
    );
  });
  if (relayed !== undefined)
    console.log(
      `the ssh keys' forced command relayed ${relayed} requests to the https row's labtest serve of the same home; bench/startup.ts measures it without one`,
    );
}

/** Every transport's runs against one bench laboratory; the ssh row when `ssh` says how to reach the test sshd. */
async function benchTransports(ssh: SshBench | undefined, onCleanup: CleanupRegistrar): Promise<void> {
  const lab = await benchLaboratory("remote");
  onCleanup(() => removeBenchLaboratory(lab));
  const fingerprint = await labInit(lab);
  const server = await served(lab);
  onCleanup(async () => void (await server.stop()));
  const transports: Transport[] = [
    { name: "embedded", env: { ...lab.env, LABTEST_HOST: "local" } },
    {
      name: "https",
      env: await laptopOf(lab, server.url, fingerprint),
      listTarget: { ms: 100, said: "(a new TLS connection)" },
    },
  ];
  if (ssh)
    transports.push({
      name: "ssh",
      env: await sshLaptop(lab, ssh, onCleanup),
      listTarget: { ms: 150, said: "(warm ControlMaster connection)" },
    });
  else console.error("the ssh row is left out: its test sshd needs root (it makes a user and runs sshd)");
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
  report(transports, lists, creates, ssh ? server.relayed() : undefined);
}

const ssh = sshBenchOf(process.env);
if (ssh === undefined && process.getuid?.() === 0)
  process.exitCode = await withCleanup(rerunAsLaboratoryUser);
else await withCleanup((onCleanup) => benchTransports(ssh, onCleanup));
