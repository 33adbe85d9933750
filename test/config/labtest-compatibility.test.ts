import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openState } from "../../src/state/index.js";
import { runCli } from "../support/cli.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

/** A service section as LabTest's documentation spells it. */
const LABTEST_SHARED = `labtest:
  app_name: shop
  services:
    search:
      service: postgresql
      provision_type: shared
      shared_instance_name: main
`;

describe("LabTest's spellings", () => {
  it("shared_instance_name is read as shared_experiment_name, with a note", async () => {
    const repo = await gitRepo("shop");
    await writeFiles(repo, { ".labtest.yml": LABTEST_SHARED });
    const { code, stdout, stderr } = await runCli(["check-config"], repo);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain(
      "note: line 7, labtest.services.search.shared_instance_name is LabTest's name for shared_experiment_name\n",
    );
    expect(stdout).toMatch(/^ {4}shared_experiment_name: main$/m);
    expect(stdout).not.toMatch(/^ +shared_instance_name/m);

    const json = JSON.parse((await runCli(["--json", "check-config"], repo)).stdout);
    expect(json.config.services.search.shared_experiment_name).toBe("main");
    expect(json.notes).toHaveLength(1);
  });

  it("both spellings at once are an error", async () => {
    const repo = await gitRepo("shop");
    await writeFiles(repo, { ".labtest.yml": `${LABTEST_SHARED}      shared_experiment_name: other\n` });
    const { code, stderr } = await runCli(["check-config"], repo);
    expect(code).toBe(2);
    expect(stderr).toContain(
      "  - line 7, labtest.services.search.shared_instance_name: is LabTest's name for shared_experiment_name, which is set too\n" +
        "      fix: keep shared_experiment_name only\n",
    );
  });

  it("LabTest's state file is read when no other state.json is named or exists", async () => {
    const home = await scratchDir();
    const legacy = join(await scratchDir(), "state.json");
    await writeFile(join(home, "values.json"), JSON.stringify({ "/default": "from LabTest's state" }));
    await writeFile(
      legacy,
      JSON.stringify({ provider: "local", service: "file", options: { path: join(home, "values.json") } }),
    );
    const opened = await openState({ env: { LABTEST_HOME: home }, legacyStatePath: legacy });
    expect(opened.file).toBe(legacy);
    expect((await opened.store.read(["/default"])).get("/default")).toBe("from LabTest's state");
    await opened.store.close();

    // The laboratory's own state.json wins.
    await writeFile(
      join(home, "state.json"),
      JSON.stringify({ provider: "local", service: "file", options: { path: "values.json" } }),
    );
    expect((await openState({ env: { LABTEST_HOME: home }, legacyStatePath: legacy })).file).toBe(
      join(home, "state.json"),
    );
    // Neither: empty state, as before.
    const empty = await openState({
      env: { LABTEST_HOME: await scratchDir() },
      legacyStatePath: `${legacy}.gone`,
    });
    expect(empty.file).toBeUndefined();
  });
});
