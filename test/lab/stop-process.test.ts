import { spawn } from "node:child_process";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";

const PROCESSES = join(import.meta.dirname, "../../dist/lab/processes.js");

test.runIf(process.getuid?.() === 0)(
  "stopping another user's process fails instead of taking it for gone",
  async () => {
    const sleeper = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      // labtest as an ordinary user (nobody) asked to stop root's process.
      const attempt = await execa(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import { stopProcess } from ${JSON.stringify(PROCESSES)}; await stopProcess(${sleeper.pid}, 100);`,
        ],
        { uid: 65534, gid: 65534, reject: false },
      );
      expect(attempt.exitCode).not.toBe(0);
      expect(attempt.stderr).toContain("EPERM");
      expect(sleeper.exitCode).toBeNull();
    } finally {
      sleeper.kill("SIGKILL");
    }
  },
);
