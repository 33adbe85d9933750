import { writeFile } from "node:fs/promises";
import { type IncomingHttpHeaders, request } from "node:http";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { text } from "node:stream/consumers";
import getPort from "get-port";
import pRetry from "p-retry";
import { onTestFinished } from "vitest";
import type { LoadedConfig } from "../../src/config/resolve.js";
import { Experiments } from "../../src/experiments/index.js";
import { stopRouter } from "../../src/lab/router-control.js";
import { commit, copyExample, runExampleInDocker, setConfig } from "./example-app.js";
import { type TestLaboratory, testLaboratory } from "./laboratory.js";
import { gitRepo } from "./project.js";

export { commit, setConfig } from "./example-app.js";

const ROOT = join(import.meta.dirname, "../..");

export interface ExperimentLab extends TestLaboratory {
  experiments: Experiments;
  routerPort: number;
}

/**
 * A laboratory for experiments, with its router on a free port. When the test ends, pass or
 * fail, its experiments are deleted (apps, containers, images) and its router stops before its
 * services and home go.
 */
export async function experimentLab(options: { answerTimeoutMs?: number } = {}): Promise<ExperimentLab> {
  const lab = await testLaboratory();
  const routerPort = await getPort({ host: "127.0.0.1" });
  const experiments = new Experiments({
    home: lab.home,
    state: lab.state,
    router: () => ({ port: routerPort }),
    ...options,
  });
  onTestFinished(async () => {
    for (const row of experiments.registry.list())
      await experiments.delete(row.app, row.name).catch(() => undefined);
    await stopRouter(lab.home);
    await experiments.close();
  });
  return { ...lab, experiments, routerPort };
}

/**
 * A git repository holding the bundled example app on branch main, whose build links the
 * project's node_modules (pg, ioredis) instead of downloading them for every experiment.
 */
export async function exampleRepo(): Promise<string> {
  const repo = await gitRepo("hello");
  await copyExample(repo);
  await setConfig(repo, (text) =>
    text.replace(
      /app_build_command: .*/,
      `app_build_command: ln -s ${join(ROOT, "node_modules")} node_modules`,
    ),
  );
  await commit(repo, "the example app");
  return repo;
}

/** A git repository of app hello on branch main: `server` its server.js, run by `node server.js` (the local runtime). */
export async function nodeAppRepo(server: string): Promise<string> {
  const repo = await gitRepo("hello");
  await writeFile(join(repo, "server.js"), server);
  await writeFile(
    join(repo, ".labtest.yml"),
    "labtest:\n  app_name: hello\n  start_command: node server.js\n",
  );
  await commit(repo, "first");
  return repo;
}

/** The example app's repository set up for the docker runtime (see runExampleInDocker). */
export async function dockerExampleRepo(): Promise<string> {
  const repo = await exampleRepo();
  await runExampleInDocker(repo);
  await commit(repo, "the example app in docker");
  return repo;
}

/**
 * GET / through the router with a Host header (and any other `headers`), as a browser reaching
 * the experiment's URL would, on a connection of its own.
 */
export function viaRouter(
  port: number,
  host: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/", headers: { ...headers, host }, agent: false },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          body += chunk;
        });
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/**
 * The router's page for `host` once the app answers 200 again (after a restart or a repair),
 * asking every 250–500 ms, `retries` times at most.
 */
export function answeredViaRouter(port: number, host: string, retries: number): Promise<string> {
  return pRetry(
    async () => {
      const answer = await viaRouter(port, host);
      if (answer.status !== 200) throw new Error(`${answer.status}: ${answer.body}`);
      return answer.body;
    },
    { retries, minTimeout: 250, maxTimeout: 500 },
  );
}

/** Runs `argv` where the experiment's app runs (labtest exec); resolves to its exit code and output. */
export async function execIn(experiments: Experiments, loaded: LoadedConfig, name: string, argv: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const output = text(stdout);
  const errors = text(stderr);
  const exitCode = await experiments.exec({ config: loaded, subdirectory: "" }, name, argv, {
    stdout,
    stderr,
  });
  stdout.end();
  stderr.end();
  return { exitCode, output: await output, errors: await errors };
}
