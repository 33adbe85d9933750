/**
 * The router as a long-running process: `node router-daemon.js <home> <port> <address> <settings>`
 * (settings: the router's public base and trusted proxies, as JSON). It keeps
 * the router's serving process running, starting it again when it dies: at once after a while of
 * service, ever more slowly while it keeps dying. On SIGTERM it stops it and exits. The serving
 * process is the laboratory's (laboratory/router-process.js): it hands the router (lab/) its
 * routes from the experiments, which the router does not know.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

const SERVE = fileURLToPath(new URL("../laboratory/router-process.js", import.meta.url));
const FIRST_PAUSE_MS = 100;
let pause = FIRST_PAUSE_MS;
let stopping = false;
let child: ChildProcess | undefined;

function serve(): void {
  const started = Date.now();
  // The IPC channel of fork lets the serving process see its daemon go, and go too.
  child = fork(SERVE, process.argv.slice(2), { stdio: "inherit" });
  child.on("exit", (code, signal) => {
    if (stopping) process.exit(0);
    pause = Date.now() - started > 10_000 ? FIRST_PAUSE_MS : Math.min(pause * 2, 5000);
    process.stderr.write(
      `${new Date().toISOString()} router exited (${signal ?? code}); restarting in ${pause} ms\n`,
    );
    setTimeout(serve, pause);
  });
}

process.on("SIGTERM", () => {
  stopping = true;
  if (!child || child.exitCode !== null || child.signalCode !== null) process.exit(0);
  child.kill("SIGTERM");
});

serve();
