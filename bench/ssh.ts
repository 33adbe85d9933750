// The SSH row of bench/remote.ts. Over SSH a laboratory is a user's: the test sshd
// (test/support/sshd.ts) logs its clients in as a laboratory user of its own, and the forced
// command of a key that user added serves that user's laboratory home. So that the rows differ
// by their transport alone, the whole bench runs as that user — root starts the sshd, makes the
// user, and reruns the bench as it: the embedded row, `labtest serve` of the https row and the
// ssh row's forced command then work on one home (one state, one router) as one user, and
// every client is that user too.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { type CleanupRegistrar, startTestSshd } from "../test/support/sshd.js";
import { type BenchLaboratory, LABTEST } from "./laboratory.js";

/** The variable that tells the rerun bench how to reach the sshd (a JSON SshBench). */
const SSH_BENCH = "BENCH_SSH";

/** How the bench rerun as the laboratory user reaches the test sshd. */
export interface SshBench {
  /** The host alias of the client's configuration: the ssh row's LABTEST_HOST is `ssh://<alias>`. */
  alias: string;
  /** The client's `ssh -F` configuration; its key is the laboratory user's. */
  config: string;
  /** The client key's public half, for `lab add-key`. */
  publicKey: string;
}

/** What the environment says of the sshd when this bench is the rerun one; undefined otherwise. */
export function sshBenchOf(env: NodeJS.ProcessEnv): SshBench | undefined {
  const said = env[SSH_BENCH];
  return said ? (JSON.parse(said) as SshBench) : undefined;
}

/**
 * As root: the test sshd, its laboratory user and a client key of that user's, then this bench
 * again (same script, arguments and BENCH_ settings) as that user; resolves to the rerun's exit
 * status. On Ctrl-C or SIGTERM the rerun removes its laboratory before the sshd and the user go.
 */
export async function rerunAsLaboratoryUser(onCleanup: CleanupRegistrar): Promise<number> {
  const sshd = await startTestSshd(onCleanup);
  const client = await sshd.client("bench", sshd.user);
  const bench: SshBench = {
    alias: sshd.alias,
    config: client.config,
    publicKey: `${client.key}.pub`,
  };
  const settings = Object.entries(process.env).filter(([name]) => name.startsWith("BENCH_"));
  const rerun = execa(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    uid: sshd.user.uid,
    // A process spawned as another user keeps no supplementary group: docker's is the one it needs.
    gid: await groupId("docker"),
    env: {
      ...Object.fromEntries(settings),
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: sshd.user.home,
      USER: sshd.user.name,
      LOGNAME: sshd.user.name,
      [SSH_BENCH]: JSON.stringify(bench),
    },
    extendEnv: false,
    stdio: "inherit",
    reject: false,
    // Its cleanup (Docker resources) may take longer than execa's default grace of 5 s.
    forceKillAfterDelay: false,
  });
  onCleanup(async () => {
    rerun.kill("SIGTERM");
    await rerun;
  });
  return (await rerun).exitCode ?? 1;
}

async function groupId(name: string): Promise<number> {
  const { stdout } = await execa("getent", ["group", name]);
  return Number(stdout.split(":")[2]);
}

/**
 * The ssh row's laptop: the bench's key added to `lab` with the deploy scope, the router started
 * on the laboratory's port (router.json keeps it for the forced command, which runs in sshd's
 * environment, without LABTEST_ROUTER_PORT), a config directory of its own, and ssh's master
 * connections in a runtime directory of its own (0700), closed and removed at the end.
 */
export async function sshLaptop(
  lab: BenchLaboratory,
  bench: SshBench,
  onCleanup: CleanupRegistrar,
): Promise<Record<string, string>> {
  const labtest = (...args: string[]) => execa(process.execPath, [LABTEST, ...args], { env: lab.env });
  await labtest("lab", "start", "--port", String(lab.routerPort));
  await labtest("lab", "add-key", "bench", bench.publicKey, "--scope", "deploy");
  // Not under lab.scratch: a socket's path (ssh adds 58 characters) must fit in 108 bytes.
  const runtime = await mkdtemp(join(tmpdir(), "labtest-run-"));
  onCleanup(async () => {
    await closeMasterConnections(runtime, bench);
    await rm(runtime, { recursive: true, force: true });
  });
  return {
    ...process.env,
    LABTEST_CONFIG_DIR: join(lab.scratch, "ssh-laptop-config"),
    LABTEST_HOST: `ssh://${bench.alias}`,
    LABTEST_SSH: `ssh -F ${bench.config}`,
    XDG_RUNTIME_DIR: runtime,
  } as Record<string, string>;
}

/** Asks each master connection whose socket is in `runtime` to exit (ControlPersist would keep it 60 s). */
async function closeMasterConnections(runtime: string, bench: SshBench): Promise<void> {
  const sockets = (await readdir(runtime)).filter((name) => name.startsWith("labtest-ssh-"));
  for (const socket of sockets) {
    const controlPath = `ControlPath=${join(runtime, socket)}`;
    await execa("ssh", ["-F", bench.config, "-o", controlPath, "-O", "exit", bench.alias], { reject: false });
  }
}
