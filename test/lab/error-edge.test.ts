import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { runCli } from "../support/cli.js";
import { scratchDir, writeFiles } from "../support/project.js";

describe("errors carry what, where and fix, also in --json", () => {
  test("a state error names the state file, what is wrong and the fix", async () => {
    const home = await scratchDir();
    await writeFiles(home, { "state.json": JSON.stringify({ provider: "local", service: "sqlite" }) });
    const file = join(home, "state.json");
    const env = { ...process.env, LABTEST_HOME: home };

    const text = await runCli(["state", "get", "/default"], home, env);
    expect(text.code).toBe(1);
    expect(text.stderr).toBe(
      `labtest: ${file}: unknown state provider/service local/sqlite\n  fix: use one of local/file, local/directory, local/script, aws/s3, redis/redis\n`,
    );

    const json = await runCli(["--json", "state", "get", "/default"], home, env);
    expect(JSON.parse(json.stdout).error).toMatchObject({
      type: "StateError",
      problems: [
        {
          where: file,
          what: `${file}: unknown state provider/service local/sqlite`,
          fix: "use one of local/file, local/directory, local/script, aws/s3, redis/redis",
        },
      ],
    });
  });

  test("a configuration file that cannot be read says which and how to fix it", async () => {
    const home = await scratchDir();
    // A directory where the file should be: it exists, and reading it fails.
    const unreadable = join(home, "labtest.yml");
    await mkdir(unreadable);
    const json = await runCli(["--json", "--config", unreadable, "check-config"], home);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout).error).toMatchObject({
      type: "ConfigError",
      problems: [{ where: unreadable, what: "EISDIR", fix: expect.stringContaining("--config") }],
    });
  });
});
