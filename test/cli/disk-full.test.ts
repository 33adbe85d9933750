import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, it, onTestFinished } from "vitest";
import { processesUsing, stopProcess } from "../../src/lab/processes.js";
import { runCli } from "../support/cli.js";
import { gitRepo, scratchDir } from "../support/project.js";

/** A directory on a filesystem of its own, 1 MB and already full; unmounted when the test ends. */
async function fullDisk(): Promise<string> {
  const mountPoint = await scratchDir("labtest-full-");
  await execa("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]);
  onTestFinished(async () => {
    for (const pid of await processesUsing(mountPoint)) await stopProcess(pid, 5_000);
    await execa("umount", ["--lazy", mountPoint]);
  });
  await writeFile(join(mountPoint, "filler"), Buffer.alloc(2 * 1024 * 1024)).catch((error) => {
    if (error.code !== "ENOSPC") throw error;
  });
  return mountPoint;
}

it.skipIf(process.getuid?.() !== 0)(
  "a full disk is reported with the place that is full, not as a bug",
  async () => {
    const home = join(await fullDisk(), "home");
    await mkdir(home);
    const repo = await gitRepo("shop");
    await writeFile(
      join(repo, ".labtest.yml"),
      "labtest:\n  services:\n    cache: { provider: local, service: redis, provision_type: independent }\n",
    );
    const { code, stderr } = await runCli(["services", "up", "-e", "main"], repo, {
      ...process.env,
      LABTEST_HOME: home,
    });
    expect(stderr).not.toContain("bug");
    expect(code).toBe(1);
    expect(stderr).toMatch(/^labtest: no space left on device\n/);
    expect(stderr).toContain(`  - ${home}: 0 B free of 1 MiB\n`);
    expect(stderr).toContain("fix: free some space there");
  },
);
