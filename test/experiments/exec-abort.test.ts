import { PassThrough } from "node:stream";
import { execa } from "execa";
import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { execStreaming } from "../../src/lab/docker.js";
import { docker, localImage, RUN_ID, TEST_LABEL } from "../support/docker.js";
import { experimentLab, nodeAppRepo } from "../support/experiments.js";

/** A stream that keeps what is written to it, for `until` to look at. */
function recorded() {
  const stream = new PassThrough();
  let printed = "";
  stream.on("data", (chunk: Buffer) => {
    printed += chunk.toString();
  });
  return { stream, printed: () => printed };
}

async function until(done: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

test("an aborted exec of the local runtime stops the command and what it started, promptly", async () => {
  const lab = await experimentLab();
  const repo = await nodeAppRepo(
    `require("http").createServer((q, s) => s.end("hi")).listen(process.env.PORT);\n`,
  );
  const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
  await lab.experiments.create(project, { branch: "main" });
  const sleeping = async () =>
    (await execa("ps", ["-eo", "args="])).stdout.split("\n").filter((line) => line === "sleep 304").length;

  const stdout = recorded();
  const stop = new AbortController();
  // The shell stays the sleep's parent (it has more to do): the whole group has to end, not only the shell.
  const argv = ["sh", "-c", "echo started; sleep 304; echo after"];
  const output = { stdout: stdout.stream, stderr: new PassThrough() };
  const ran = lab.experiments.exec(project, "main", argv, output, stop.signal);
  await until(() => stdout.printed().includes("started"));
  expect(await sleeping()).toBe(1);

  const aborted = Date.now();
  stop.abort();
  await ran;
  expect(Date.now() - aborted).toBeLessThan(5000);
  expect(await sleeping()).toBe(0);
  expect(stdout.printed()).toBe("started\n");
}, 120_000);

/** A running container of the apps' base image that only sleeps, removed when the test ends. */
async function sleepingContainer() {
  const container = await docker.createContainer({
    Image: localImage("node"),
    Cmd: ["sleep", "infinity"],
    Labels: { [TEST_LABEL]: RUN_ID },
  });
  onTestFinished(() => container.remove({ force: true }).catch(() => undefined));
  await container.start();
  return container;
}

/** The command lines running in the container (docker top). */
async function commandsIn(container: Awaited<ReturnType<typeof sleepingContainer>>): Promise<string[]> {
  const { Processes, Titles } = await container.top({ ps_args: "-eo pid,args" });
  const args = Titles.indexOf("COMMAND");
  return Processes.map((row: string[]) => row[args] ?? "");
}

test("an aborted exec stops its command and what it started, resolves promptly, and leaves the container's own processes", async () => {
  const container = await sleepingContainer();
  const stdout = recorded();
  const stop = new AbortController();
  const ran = execStreaming(
    container,
    ["sh", "-c", "echo started; sleep 301; echo never"],
    {},
    stdout.stream,
    new PassThrough(),
    undefined,
    stop.signal,
  );
  await until(() => stdout.printed().includes("started"));
  expect(await commandsIn(container)).toContain("sleep 301");

  const aborted = Date.now();
  stop.abort();
  await ran;
  expect(Date.now() - aborted).toBeLessThan(5000);
  const left = await commandsIn(container);
  expect(left.filter((line) => line.includes("301"))).toEqual([]);
  expect(left).toContain("sleep infinity");
  expect(stdout.printed()).toBe("started\n");
}, 60_000);

test("an exec whose signal aborted before it started leaves nothing running", async () => {
  const container = await sleepingContainer();
  const stop = new AbortController();
  stop.abort();
  const sink = new PassThrough();
  await execStreaming(container, ["sleep", "302"], {}, sink, sink, undefined, stop.signal);
  expect((await commandsIn(container)).filter((line) => line.includes("302"))).toEqual([]);
}, 60_000);
