/**
 * Keeps an experiment's app running (the local runtime): started detached by labtest with the
 * path of a JSON spec `{argv, cwd, env, log, uid?, gid?}`, it runs the app (as the app's
 * account when the spec names one; the environment never touches the disk readable by it), restarts it when it dies (with
 * growing pauses), and on SIGTERM stops the app's whole process group and exits.
 */
import { spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";

interface SupervisorSpec {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  log: string;
  uid?: number;
  gid?: number;
}

const spec = JSON.parse(readFileSync(process.argv[2] ?? "", "utf8")) as SupervisorSpec;
const log = openSync(spec.log, "a");
let stopping = false;
let child: ReturnType<typeof spawn> | undefined;
let pause = 1000;

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
  child.on("error", () => undefined);
  child.on("exit", (code, signal) => {
    if (stopping) process.exit(0);
    // An app that ran a while gets restarted at once; one that keeps dying, ever more slowly.
    pause = Date.now() - started > 60_000 ? 1000 : Math.min(pause * 2, 30_000);
    process.stderr.write(`app exited (${signal ?? code}); restarting in ${pause / 1000} s\n`);
    setTimeout(run, pause);
  });
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
