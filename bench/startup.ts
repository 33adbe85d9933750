// labtest's start-up: what a command costs before it does anything, against `node -e 0` (Node's
// own start) as the peer. It matters most for the SSH laboratory, whose forced command
// (`labtest serve --stdio`) starts one process per request: the last row is the same request
// relayed to a running `labtest serve`. Each command runs as its own process, as a user's shell
// or sshd starts it, on an empty scratch home; median and min–max of BENCH_RUNS (default 10)
// after one untimed run that warms the disk cache.
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import getPort from "get-port";
import { PROTOCOL_VERSION } from "../src/laboratory/protocol.js";
import { readPublicKey, SshKeys } from "../src/server/keys.js";
import { REQUEST_COMMAND } from "../src/server/stdio.js";
import { initLaboratoryTls } from "../src/server/tls.js";
import type { CleanupRegistrar } from "../test/support/sshd.js";
import { withCleanup } from "./cleanup.js";
import { median, ms, spread } from "./race.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const LABTEST_JS = fileURLToPath(new URL("../bin/labtest.js", import.meta.url));
const IDENTITY = "bench";

interface Command {
  name: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** What stdout must hold: a command that failed is not a start-up measured. */
  expect: RegExp;
}

/** One run's wall time in ms, checking it answered as expected. */
function timeOnce(command: Command): number {
  const start = process.hrtime.bigint();
  const run = spawnSync(process.execPath, command.args, {
    env: { ...process.env, ...command.env },
    input: command.input ?? "",
    encoding: "utf8",
  });
  const took = Number(process.hrtime.bigint() - start) / 1e6;
  if (run.status !== 0 || !command.expect.test(run.stdout))
    throw new Error(`${command.name} failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  return took;
}

/** The timed runs of `command`, after one untimed run. */
function samplesOf(command: Command): number[] {
  timeOnce(command);
  return Array.from({ length: RUNS }, () => timeOnce(command));
}

/** A scratch home whose ssh-keys.db knows the key IDENTITY (read scope), as lab add-key leaves it. */
async function homeWithKey(scratch: string): Promise<string> {
  const home = join(scratch, "home");
  const keyFile = join(scratch, "id_ed25519");
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile]);
  // authorized_keys in the scratch dir: the bench leaves the real user's file alone.
  const keys = new SshKeys({ home, authorizedKeys: join(scratch, "authorized_keys") });
  try {
    keys.add(IDENTITY, await readPublicKey(`${keyFile}.pub`), { scope: "read", apps: [] });
  } finally {
    keys.close();
  }
  return home;
}

/** `labtest serve` on `home` (with lab init's certificates), once it listens; the cleanup stops it and its router. */
async function serveOn(home: string, onCleanup: CleanupRegistrar): Promise<void> {
  await initLaboratoryTls(home);
  const env = { ...process.env, LABTEST_HOME: home, LABTEST_ROUTER_PORT: String(await getPort()) };
  const port = await getPort({ host: "127.0.0.1" });
  const serve = execa(process.execPath, [LABTEST_JS, "serve", "--listen", `127.0.0.1:${port}`], {
    cwd: home,
    env,
    reject: false,
  });
  // Cleanups run last registered first: serve stops, then the router it started.
  onCleanup(async () => {
    await execa(process.execPath, [LABTEST_JS, "lab", "stop"], { cwd: home, env, reject: false });
  });
  onCleanup(async () => {
    serve.kill("SIGTERM");
    await serve;
  });
  await new Promise<void>((resolve, reject) => {
    let said = "";
    serve.stdout?.on("data", (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes("the laboratory's API on")) resolve();
    });
    void serve.then((ended) => reject(new Error(`labtest serve ended before it listened:\n${ended.stderr}`)));
  });
}

async function main(): Promise<void> {
  await withCleanup(async (onCleanup) => {
    const scratch = await mkdtemp(join(tmpdir(), "labtest-bench-startup-"));
    onCleanup(() => rm(scratch, { recursive: true, force: true }));
    const home = await homeWithKey(scratch);
    const env = { LABTEST_HOME: home };
    const forcedList: Command = {
      name: "serve --stdio: list",
      args: [LABTEST_JS, "serve", "--stdio", "--identity", IDENTITY, "--home", home],
      env: { ...env, SSH_ORIGINAL_COMMAND: REQUEST_COMMAND, SSH_CLIENT: "127.0.0.1 50000 22" },
      input: `${JSON.stringify({ kind: "list", request: { v: PROTOCOL_VERSION } })}\n`,
      expect: /^\{"result":/m,
    };
    const commands: Command[] = [
      { name: "node -e 0", args: ["-e", "0"], expect: /^$/ },
      { name: "labtest --version", args: [LABTEST_JS, "--version"], expect: /^\d+\.\d+\.\d+/ },
      { name: "labtest --help", args: [LABTEST_JS, "--help"], expect: /Usage: labtest/ },
      { name: "labtest list --all", args: [LABTEST_JS, "list", "--all"], env, expect: /./ },
      forcedList,
    ];
    console.log(`start-up of labtest commands, one process each, median (min–max) of ${RUNS}`);
    const measured = commands.map((command) => ({ command, samples: samplesOf(command) }));
    // The same forced command once `labtest serve` runs: it relays the request to it.
    await serveOn(home, onCleanup);
    const relayed = { ...forcedList, name: "serve --stdio: list, through serve" };
    measured.push({ command: relayed, samples: samplesOf(relayed) });
    const peer = median(measured[0]?.samples ?? []);
    for (const { command, samples } of measured)
      console.log(
        `${command.name.padEnd(34)} ${spread(samples, ms).padStart(26)} ${(median(samples) / peer).toFixed(1)}x node -e 0`,
      );
  });
}

await main();
