import { spawn } from "node:child_process";
import { once } from "node:events";
import { realpath } from "node:fs/promises";
import { expect, test } from "vitest";
import { processIdentity } from "../../src/lab/processes.js";

test("a process's identity names its program, arguments and start, and a process that is gone has none", async () => {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "a (b) c"], {
    stdio: "ignore",
  });
  try {
    const pid = child.pid ?? 0;
    const identity = await processIdentity(pid);
    expect(identity).toMatchObject({
      executable: await realpath(process.execPath),
      argv: [process.execPath, "-e", "setInterval(() => {}, 1000)", "a (b) c"],
    });
    expect(identity?.startTime).toMatch(/^\d+$/);
    child.kill("SIGKILL");
    await once(child, "exit");
    expect(await processIdentity(pid)).toBeUndefined();
    expect(await processIdentity(0)).toBeUndefined();
  } finally {
    child.kill("SIGKILL");
  }
});
