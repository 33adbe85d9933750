import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import pRetry from "p-retry";
import { describe, expect, onTestFinished, test, vi } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import type { ExperimentStatus } from "../../src/experiments/index.js";
import { type ProcessIdentity, processIdentity } from "../../src/lab/processes.js";
import { commit, experimentLab, nodeAppRepo, setConfig } from "../support/experiments.js";

/** An app that leaves its checkout as soon as it starts, as daemons do. */
const LEAVING_APP = `process.chdir("/");
require("node:http").createServer((q, r) => r.end("ok")).listen(Number(process.env.PORT), "127.0.0.1");
`;

/**
 * A laboratory that runs as an ordinary user would (no account of its own per app, so no
 * account's processes to stop), with the experiment `hello/main` of an app that left its
 * checkout, its supervisor killed: an orphan. The app is killed when the test ends, found or not.
 */
async function orphanedApp(startCommand = "node server.js") {
  vi.spyOn(process, "getuid").mockReturnValue(1000);
  onTestFinished(() => {
    vi.restoreAllMocks();
  });
  const lab = await experimentLab();
  const repo = await nodeAppRepo(LEAVING_APP);
  if (startCommand !== "node server.js") {
    await setConfig(repo, (text) => text.replace("node server.js", startCommand));
    await commit(repo, "its start_command");
  }
  const loaded = await loadConfig({ cwd: repo });
  const created = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
  const directory = lab.experiments.directory(created);
  const state = JSON.parse(
    await readFile(join(directory, `supervisor-${created.port}.state.json`), "utf8"),
  ) as { pid: number };
  const app = { pid: state.pid, identity: await processIdentity(state.pid) };
  onTestFinished(async () => {
    if (await alive(app)) process.kill(app.pid, "SIGKILL");
  });
  process.kill(Number(created.handle), "SIGKILL");
  return { lab, repo, loaded, created, app };
}

/** Whether anything listens on TCP `port` of the loopback. */
async function listening(port: number): Promise<boolean> {
  const { stdout } = await execa("ss", ["-ltnH", `sport = :${port}`]);
  return stdout.trim() !== "";
}

/** Whether the app process found at the start still runs (not another one given its pid since). */
async function alive(app: { pid: number; identity: ProcessIdentity | undefined }): Promise<boolean> {
  return (await processIdentity(app.pid))?.startTime === app.identity?.startTime;
}

describe("an app whose supervisor was killed, and which left its checkout", () => {
  test.each([
    ["its environment", "node server.js"],
    // Only its process group still tells it apart.
    ["an environment it replaced", `env -i PORT=$PORT ${process.execPath} server.js`],
  ])("status says orphaned while it serves, and delete stops it (%s)", async (_, startCommand) => {
    const { lab, created, app } = await orphanedApp(startCommand);
    await pRetry(
      async () => {
        const status = (await lab.experiments.status("hello", "main")) as ExperimentStatus;
        expect(status.status).toBe("orphaned");
      },
      { retries: 20, minTimeout: 100, maxTimeout: 250 },
    );
    await lab.experiments.delete("hello", "main");
    expect(await alive(app)).toBe(false);
    expect(await listening(created.port)).toBe(false);
  });

  test("an update stops it and frees its port", async () => {
    const { lab, repo, loaded, created, app } = await orphanedApp();
    await writeFile(join(repo, "second.txt"), "2\n");
    await commit(repo, "a second release");
    const updated = await lab.experiments.update({ config: loaded, subdirectory: "" }, "main");
    expect(updated.port).not.toBe(created.port);
    expect(await alive(app)).toBe(false);
    expect(await listening(created.port)).toBe(false);
  });

  test("gc --grace 0 stops it once its experiment has no record", async () => {
    const { lab, created, app } = await orphanedApp();
    lab.experiments.registry.remove("hello", "main");
    const removals = await lab.experiments.collectGarbage(0);
    expect(removals.map((r) => r.what)).toContain(
      `experiment directory ${lab.experiments.directory(created)}`,
    );
    expect(await alive(app)).toBe(false);
    expect(await listening(created.port)).toBe(false);
  });
});
