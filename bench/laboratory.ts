// A laboratory for the benchmarks that create experiments: a scratch home whose state points
// the docker services at the local images, the example app's repository on the docker runtime,
// and the router on a free port; removed, Docker resources and all, by removeBenchLaboratory.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { execa } from "execa";
import getPort from "get-port";
import { LABELS } from "../src/lab/labels.js";
import { Registry } from "../src/lab/registry.js";
import { commit, copyExample, localImage, runExampleInDocker } from "../test/support/example-app.js";
import type { Contender } from "./race.js";

export const LABTEST = join(import.meta.dirname, "../bin/labtest.js");

export interface BenchLaboratory {
  /** Everything of the run lives under it. */
  scratch: string;
  home: string;
  /** The example app on the docker runtime, on branch main. */
  repo: string;
  routerPort: number;
  /** The laboratory's environment: its home and router port. */
  env: Record<string, string>;
}

/** Makes the laboratory and the example app's repository under a new scratch directory named after `purpose`. */
export async function benchLaboratory(purpose: string): Promise<BenchLaboratory> {
  const scratch = await mkdtemp(join(tmpdir(), `labtest-bench-${purpose}-`));
  const home = join(scratch, "home");
  const repo = join(scratch, "hello");
  const routerPort = await getPort({ host: "127.0.0.1" });
  const env = { ...process.env, LABTEST_HOME: home, LABTEST_ROUTER_PORT: String(routerPort) } as Record<
    string,
    string
  >;
  await mkdir(home, { recursive: true });
  await writeFile(
    join(home, "values.json"),
    JSON.stringify({
      "/services/docker/postgresql/default": { image: localImage("postgresql") },
      "/services/docker/redis/default": { image: localImage("redis") },
    }),
  );
  await writeFile(
    join(home, "state.json"),
    JSON.stringify({ provider: "local", service: "file", options: { path: "values.json" } }),
  );
  await execa("git", ["init", "-q", "-b", "main", repo]);
  await copyExample(repo);
  await runExampleInDocker(repo, { buildStep: false });
  await commit(repo, "the example app in docker");
  return { scratch, home, repo, routerPort, env };
}

/** Stops the laboratory's router, removes what it made in Docker (by its label) and its scratch directory. */
export async function removeBenchLaboratory(lab: BenchLaboratory): Promise<void> {
  await execa(process.execPath, [LABTEST, "lab", "stop"], { cwd: lab.repo, env: lab.env, reject: false });
  const docker = new Docker();
  const ours = { filters: { label: [`${LABELS.laboratory}=${new Registry(lab.home).id}`] } };
  for (const c of await docker.listContainers({ all: true, ...ours }))
    await docker.getContainer(c.Id).remove({ force: true, v: true });
  for (const i of await docker.listImages(ours)) await docker.getImage(i.Id).remove({ force: true });
  for (const n of await docker.listNetworks(ours)) await docker.getNetwork(n.Id).remove();
  for (const v of (await docker.listVolumes(ours)).Volumes ?? []) await docker.getVolume(v.Name).remove();
  await rm(lab.scratch, { recursive: true, force: true });
}

/** GET / on the laboratory's loopback with a Host header (which fetch will not send); resolves to the status, 0 for none. */
function status(port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/", headers: { host }, timeout: 2000 },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** Polls GET / until it answers 200 (any other answer, or none, is tried again). */
export async function firstOk(port: number, host: string): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if ((await status(port, host)) === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no 200 from port ${port} (${host}) within 180 s`);
}

/**
 * `labtest create` of the example app from the command to its first 200 through the router, run
 * with `env` (which chooses the laboratory); experiments named `<prefix><round>`, deleted after.
 */
export function labtestCreate(
  name: string,
  lab: BenchLaboratory,
  env: Record<string, string>,
  prefix = "bench",
): Contender {
  const labtest = (...args: string[]) => execa(process.execPath, [LABTEST, ...args], { cwd: lab.repo, env });
  return {
    name,
    async start(round) {
      const experiment = `${prefix}${round}`;
      try {
        await labtest("create", "--name", experiment);
        await firstOk(lab.routerPort, `hello-${experiment}.localhost`);
      } catch (error) {
        await labtest("delete", experiment).catch(() => undefined);
        throw error;
      }
      return () => labtest("delete", experiment);
    },
  };
}
