import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, it, onTestFinished } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { releaseDelivery } from "../../src/laboratory/code.js";
import { EmbeddedLaboratory, PROTOCOL_VERSION as v } from "../../src/laboratory/index.js";
import { commit, exampleRepo, experimentLab, setConfig, viaRouter } from "../support/experiments.js";
import { scratchDir } from "../support/project.js";

/** Every file under `directory`, recursively. */
async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

it("on the embedded laboratory, a branch not pushed to origin is published from the local repository", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const laboratory = new EmbeddedLaboratory({ env, cwd: repo, statePath: lab.statePath });
  onTestFinished(() => laboratory.close());
  // As the CLI asks: the client says where the code is, the laboratory takes it from there.
  const create = async (config: Awaited<ReturnType<typeof loadConfig>>, branch: string, name?: string) =>
    laboratory.create({
      v,
      project: { config, subdirectory: "" },
      branch,
      ...(name ? { name } : {}),
      ...(await releaseDelivery(laboratory, config, branch, { embedded: true })),
    });
  const origin = join(await scratchDir(), "origin.git");
  await execa("git", ["clone", "-q", "--bare", repo, origin]);
  await execa("git", ["-C", repo, "remote", "add", "origin", origin]);
  await execa("git", ["-C", repo, "checkout", "-q", "-b", "feature/x"]);
  await writeFile(join(repo, "unpushed.txt"), "only here\n");
  await commit(repo, "a commit not pushed");

  const loaded = await loadConfig({ cwd: repo });
  expect(loaded.config.code_repo_url).toBe(origin);
  const created = await create(loaded, "feature/x");
  expect(created.release).toBe((await execa("git", ["-C", repo, "rev-parse", "HEAD"])).stdout);
  const host = new URL(created.url).hostname;
  expect((await viaRouter(lab.routerPort, host)).body).toContain("Hello from labtest");
  // The checkout shares nothing with the local repository: handing it to the app's account
  // must not hand over the repository's objects.
  const owner = process.getuid?.() ?? 0;
  for (const file of await filesUnder(join(repo, ".git", "objects")))
    expect((await stat(file)).uid, file).toBe(owner);

  // A repository named explicitly is where the branch must be.
  await setConfig(repo, (text) => text.replace("labtest:\n", `labtest:\n  code_repo_url: ${origin}\n`));
  const explicit = await loadConfig({ cwd: repo });
  await expect(create(explicit, "feature/x", "again")).rejects.toThrow(
    `branch feature/x does not exist in ${origin}`,
  );

  // Outside git, with no code_repo_url, there is nothing to check out from.
  const elsewhere = await scratchDir();
  await writeFile(
    join(elsewhere, ".labtest.yml"),
    "labtest:\n  app_name: hello\n  start_command: node x.js\n",
  );
  await expect(create(await loadConfig({ cwd: elsewhere }), "main", "nowhere")).rejects.toThrow(
    "no repository to check main out from",
  );
  expect(lab.experiments.registry.get("hello", "nowhere")).toBeUndefined();
});
