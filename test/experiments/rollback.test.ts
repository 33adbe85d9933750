import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ExperimentError } from "../../src/experiments/index.js";
import { commit, exampleRepo, experimentLab, setConfig } from "../support/experiments.js";

test("a failed create whose removal fails too says so, and how to remove what is left, below its own failure", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  await setConfig(repo, (text) =>
    text.replace("start_command: node server.js", 'start_command: node -e "process.exit(1)"'),
  );
  await commit(repo, "an app that exits at once");
  const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
  const directory = lab.experiments.directory({ app: "hello", name: "main" });
  // A file nobody may delete, not even root, placed as the create starts undoing what it made.
  const pinned = join(directory, "pinned", "file");
  const pin = (step: string) => {
    if (step !== "failed: removing what was made") return;
    mkdirSync(join(directory, "pinned"));
    writeFileSync(pinned, "");
    execFileSync("chattr", ["+i", pinned]);
  };
  try {
    const error = await lab.experiments.create(project, { branch: "main" }, pin).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExperimentError);
    const message = (error as Error).message;
    expect(message).toMatch(/^the app exited before it answered\n/);
    expect(message).toMatch(
      /experiment hello\/main: removing what the failed create made failed too \(.+\): it is left half-created\n\s+fix: labtest delete main removes it, or labtest gc once it is old enough/,
    );
    expect(lab.experiments.registry.get("hello", "main")?.status).toBe("creating");
  } finally {
    execFileSync("chattr", ["-i", pinned]);
  }
  // Once what stood in the way is gone, the advice works.
  await lab.experiments.delete("hello", "main");
  expect(await lab.experiments.list()).toEqual([]);
});
