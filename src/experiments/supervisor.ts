/**
 * Keeps an experiment's app running (the local runtime): started detached by labtest with the
 * path of a JSON spec `{argv, cwd, env, log, state, uid?, gid?}`, it runs the app (as the app's
 * account when the spec names one; the environment never touches the disk readable by it),
 * restarts it when it dies (with growing pauses), records in `state` how the app fares
 * (SupervisedState: its process group and when it started too), and on SIGTERM stops the app's whole process group and exits.
 */
import { spawn } from "node:child_process";
import { openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { processIdentity } from "../lab/processes.js";
import type { SupervisedState } from "./supervised.js";

interface SupervisorSpec {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  log: string;
  state: string;
  uid?: number;
  gid?: number;
}

const spec = JSON.parse(readFileSync(process.argv[2] ?? "", "utf8")) as SupervisorSpec;
const log = openSync(spec.log, "a");
let stopping = false;
let child: ReturnType<typeof spawn> | undefined;
let pause = 1000;
const state: SupervisedState = { pid: null, starts: 0, running: false, lastExit: null };

function record(changes: Partial<SupervisedState>): void {
  Object.assign(state, changes);
  writeFileSync(`${spec.state}.new`, JSON.stringify(state), { mode: 0o600 });
  renameSync(`${spec.state}.new`, spec.state);
}

function run(): void {
  const [program, ...args] = spec.argv;
  const started = Date.now();
  child = spawn(program ?? "", args, {
    cwd: spec.cwd,
    env: spec.env,
    ...(spec.uid === undefined ? {} : { uid: spec.uid, gid: spec.gid }),
    stdio: ["ignore", log, log],
    detached: true,
  });
  record({
    pid: child.pid ?? null,
    startTime: undefined,
    starts: state.starts + 1,
    running: child.pid !== undefined,
  });
  // Its group (its pid: it leads one of its own) is how labtest finds the app should this supervisor be killed.
  const app = child;
  void processIdentity(app.pid ?? 0).then((identity) => {
    if (identity && child === app) record({ startTime: identity.startTime });
  });
  let ended = false;
  const restart = (exit: string) => {
    if (ended) return;
    ended = true;
    if (stopping) process.exit(0);
    // An app that ran a while gets restarted at once; one that keeps dying, ever more slowly.
    pause = Date.now() - started > 60_000 ? 1000 : Math.min(pause * 2, 30_000);
    record({ running: false, lastExit: { exit, at: new Date().toISOString() } });
    process.stderr.write(`app exited (${exit}); restarting in ${pause / 1000} s\n`);
    setTimeout(run, pause);
  };
  // A program that cannot be started at all emits only 'error' (ENOENT, EACCES).
  child.on("error", (error: NodeJS.ErrnoException) => {
    const reason = error.code === "ENOENT" ? `${program}: command not found` : error.message;
    restart(reason);
  });
  child.on("exit", (code, signal) => restart(String(signal ?? code)));
}

process.on("SIGTERM", () => {
  stopping = true;
  if (!child?.pid || child.exitCode !== null) process.exit(0);
  process.kill(-child.pid, "SIGTERM");
  setTimeout(() => {
    if (child?.pid) process.kill(-child.pid, "SIGKILL");
    process.exit(0);
  }, 10_000).unref();
});

run();
