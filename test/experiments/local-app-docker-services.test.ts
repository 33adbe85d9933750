import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { commit, exampleRepo, execIn, experimentLab, setConfig, viaRouter } from "../support/experiments.js";

test("an app on the local runtime reaches its docker services at their published ports", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  await setConfig(repo, (text) => text.replaceAll("provider: local", "provider: docker"));
  await commit(repo, "services in containers");
  const loaded = await loadConfig({ cwd: repo });

  const main = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
  const page = await viaRouter(lab.routerPort, main.host);
  expect(page.status).toBe(200);
  expect(page.body).toContain("visits in PostgreSQL database hello_main_db: 3");
  expect(page.body).toContain("hits in Redis under");
  // The app has the laboratory host's view: the docker servers' ports published on its loopback.
  const run = await execIn(lab.experiments, loaded, "main", ["printenv", "DB_HOST", "CACHE_HOST"]);
  expect(run.output.trim().split("\n")).toEqual(["127.0.0.1", "127.0.0.1"]);
}, 300_000);
