// exec in a container when its client goes away: the Engine API has no way to end an exec, so
// labtest stops the command itself; nothing else in the container may go with it.
import { PassThrough } from "node:stream";
import { expect, onTestFinished, test } from "vitest";
import { execStreaming } from "../../src/lab/docker.js";
import { docker, localImage, RUN_ID, TEST_LABEL } from "../support/docker.js";

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
  const stdout = new PassThrough();
  let printed = "";
  stdout.on("data", (chunk: Buffer) => {
    printed += chunk.toString();
  });
  const stop = new AbortController();
  const ran = execStreaming(
    container,
    ["sh", "-c", "echo started; sleep 301; echo never"],
    {},
    stdout,
    new PassThrough(),
    undefined,
    stop.signal,
  );
  const deadline = Date.now() + 30_000;
  while (!printed.includes("started") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(await commandsIn(container)).toContain("sleep 301");

  const aborted = Date.now();
  stop.abort();
  await ran;
  expect(Date.now() - aborted).toBeLessThan(5000);
  const left = await commandsIn(container);
  expect(left.filter((line) => line.includes("301"))).toEqual([]);
  expect(left).toContain("sleep infinity");
  expect(printed).toBe("started\n");
}, 60_000);

test("an exec whose signal aborted before it started leaves nothing running", async () => {
  const container = await sleepingContainer();
  const stop = new AbortController();
  stop.abort();
  const sink = new PassThrough();
  await execStreaming(container, ["sleep", "302"], {}, sink, sink, undefined, stop.signal);
  expect((await commandsIn(container)).filter((line) => line.includes("302"))).toEqual([]);
}, 60_000);
