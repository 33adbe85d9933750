// A Docker engine of a test's own, beside the machine's, so that a test can stop and start an
// engine under a running experiment without disturbing the tests that use the machine's.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { execa } from "execa";
import pRetry, { AbortError } from "p-retry";
import { onTestFinished } from "vitest";

export interface SecondEngine {
  /** DOCKER_HOST for it. */
  host: string;
  docker: Docker;
  /** Stops the engine as a reboot would (its containers stop with it). */
  stop(): Promise<void>;
  /** Starts it again on the same data: containers with a restart policy come back. */
  start(): Promise<void>;
}

/**
 * Starts a Docker engine on a socket, data and bridge of its own and loads `images` into it from
 * the machine's engine (nothing can be pulled here). When the test ends, pass or fail, it is
 * stopped and everything it had goes: its directories, its bridge, its firewall rule.
 *
 * Its bridge is one it is given, never `none`: an engine without a bridge deletes the host's
 * docker0, which the machine's engine needs. Without iptables of its own (two engines would
 * fight over the same chains), its networks get an address block of their own, which one rule
 * in DOCKER-USER lets through the machine's FORWARD policy (bridged traffic passes netfilter).
 * That block is given at the first start only: an engine that starts again with an address pool
 * deletes the host's docker0 too (moby clears a stale default bridge so); its networks keep
 * their addresses.
 */
export async function secondEngine(images: string[]): Promise<SecondEngine> {
  const block = await freeBlock();
  const bridge = `lt${block.replace(/\D/g, "").slice(-6)}`;
  // Not a scratchDir: it must outlive the engine, which this cleanup stops first.
  const root = await mkdtemp(join(tmpdir(), "labtest-engine-"));
  const host = `unix://${join(root, "docker.sock")}`;
  const docker = new Docker({ socketPath: join(root, "docker.sock") });
  const rule = ["DOCKER-USER", "-s", `${block}.0.0/16`, "-d", `${block}.0.0/16`, "-j", "ACCEPT"];
  let daemon: ChildProcess | undefined;
  const hadDocker0 = await linkExists("docker0");

  const stop = async () => {
    const running = daemon;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGTERM");
    await exited;
  };
  const launch = async (pool: string[]) => {
    const log = await open(join(root, "dockerd.log"), "a");
    daemon = spawn(
      "dockerd",
      [
        `--host=${host}`,
        `--data-root=${join(root, "data")}`,
        `--exec-root=${join(root, "exec")}`,
        `--pidfile=${join(root, "docker.pid")}`,
        `--bridge=${bridge}`,
        "--iptables=false",
        "--ip6tables=false",
        ...pool,
      ],
      { stdio: ["ignore", log.fd, log.fd] },
    );
    await log.close();
    const started = daemon;
    await pRetry(
      async () => {
        if (started.exitCode !== null) throw new AbortError(`dockerd exited with ${started.exitCode}`);
        await docker.ping();
      },
      { retries: 150, minTimeout: 200, maxTimeout: 200 },
    ).catch(async (error: Error) => {
      const log = await readFile(join(root, "dockerd.log"), "utf8").catch(() => "");
      throw new Error(`the test's engine did not start: ${error.message}\n${log.slice(-2000)}`);
    });
    if (hadDocker0 && !(await linkExists("docker0")))
      throw new Error(
        "the test's engine deleted the host's docker0 bridge: the machine's engine needs it back",
      );
  };

  onTestFinished(async () => {
    // Its containers' processes go with the engine; its overlay mounts too.
    await stop();
    await execa("iptables", ["-D", ...rule], { reject: false });
    await execa("ip", ["link", "del", bridge], { reject: false });
    await rm(root, { recursive: true, force: true });
  });
  await execa("ip", ["link", "add", bridge, "type", "bridge"]);
  await execa("ip", ["addr", "add", `${block}.0.1/24`, "dev", bridge]);
  await execa("ip", ["link", "set", bridge, "up"]);
  await execa("iptables", ["-I", ...rule]);
  await launch([`--default-address-pool=base=${block}.128.0/17,size=24`]);
  // Not buffered: the images are far larger than what execa keeps of an output.
  await execa("docker", ["save", ...images], { buffer: false }).pipe("docker", ["load", "--quiet"], {
    env: { DOCKER_HOST: host },
  });
  return { host, docker, stop, start: () => launch([]) };
}

/** A 10.x.0.0/16 block no route of this machine uses, as `10.x`. */
async function freeBlock(): Promise<string> {
  const { stdout } = await execa("ip", ["-4", "route", "show"]);
  const used = new Set([...stdout.matchAll(/^10\.(\d+)\./gm)].map((m) => m[1]));
  const candidates = Array.from({ length: 50 }, (_, i) => String(200 + i)).filter((x) => !used.has(x));
  const pick = candidates[Math.floor(Math.random() * candidates.length)];
  if (!pick) throw new Error("no free 10.x.0.0/16 block for the test's engine");
  return `10.${pick}`;
}

async function linkExists(name: string): Promise<boolean> {
  return (await execa("ip", ["link", "show", name], { reject: false })).exitCode === 0;
}
