import { cp } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ExperimentError } from "../../src/experiments/index.js";
import { commit, experimentLab, setConfig, viaRouter } from "../support/experiments.js";
import { gitRepo } from "../support/project.js";

const ROOT = join(import.meta.dirname, "../..");

/**
 * A git repository holding examples/kutt-like on branch main, its build linking the project's
 * node_modules (pg, ioredis) instead of downloading them; `change` edits its configuration first.
 */
async function kuttLikeRepo(change: (text: string) => string = (text) => text): Promise<string> {
  const repo = await gitRepo("kutt-like");
  await cp(join(ROOT, "examples/kutt-like"), repo, { recursive: true });
  await setConfig(repo, (text) =>
    change(text).replace(
      /app_build_command: .*/,
      `app_build_command: ln -s ${join(ROOT, "node_modules")} node_modules`,
    ),
  );
  await commit(repo, "the kutt-like app");
  return repo;
}

/** What the app shows at its `visit`th visit: one link more in PostgreSQL, read back from both stores. */
function page(visit: number): string {
  const code = visit.toString(36);
  return (
    `shortened https://example.com/${visit} as ${code}\n` +
    `PostgreSQL: ${visit} links in shortener_main_db\n` +
    `Redis: link:${code} is https://example.com/${visit}, visits is ${visit}\n`
  );
}

describe("the kutt-like example (an app reading its own variable names)", () => {
  test("create runs it: through the router it writes and reads PostgreSQL and its own Redis, logged in with a password only; delete removes it", async () => {
    const lab = await experimentLab();
    const loaded = await loadConfig({ cwd: await kuttLikeRepo() });

    const experiment = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
    expect(experiment).toMatchObject({ app: "shortener", name: "main", status: "running" });
    // Each visit shortens a link; the readiness checks have visited already, so count from there.
    const first = await viaRouter(lab.routerPort, experiment.host);
    expect(first.status, first.body).toBe(200);
    const visits = Number(/visits is (\d+)/.exec(first.body)?.[1]);
    expect(first.body).toBe(page(visits));
    expect((await viaRouter(lab.routerPort, experiment.host)).body).toBe(page(visits + 1));

    await lab.experiments.delete("shortener", "main");
    expect(await lab.experiments.list()).toEqual([]);
    expect(await lab.services.list("shortener")).toEqual([]);
    expect((await viaRouter(lab.routerPort, experiment.host)).status).toBe(404);
  });

  test("misconfigured (no Redis password), it says why on stderr and dies, and create says so", async () => {
    const lab = await experimentLab();
    const repo = await kuttLikeRepo((text) => text.replace(/ +- REDIS_PASSWORD=.*\n/, ""));
    const error = await lab.experiments
      .create({ config: await loadConfig({ cwd: repo }), subdirectory: "" }, { branch: "main" })
      .then(
        () => new Error("it succeeded"),
        (e: Error) => e,
      );
    expect(error).toBeInstanceOf(ExperimentError);
    expect(error.message).toMatch(/shortener: Redis: NOAUTH/);
    expect(error.message).toContain("shortener: cannot use Redis");
  });
});
