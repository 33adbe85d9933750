import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ConfigError } from "../../src/errors.js";
import { gitRepo, writeFiles } from "../support/project.js";

async function load(yaml: string) {
  const repo = await gitRepo("app");
  await writeFiles(repo, { ".labtest.yml": yaml });
  return loadConfig({ cwd: repo }).catch((error: unknown) => error);
}

test("health_check_path is / unless set, and must be an HTTP path", async () => {
  expect(await load("labtest: {}\n")).toMatchObject({
    config: { health_check_path: "/" },
    sources: { health_check_path: { from: "default" } },
  });
  expect(await load("labtest:\n  health_check_path: /healthz?deep=1\n")).toMatchObject({
    config: { health_check_path: "/healthz?deep=1" },
  });
  for (const bad of ["healthz", "/health check", "/up#now", "http://example.com/up"]) {
    const error = await load(`labtest:\n  health_check_path: ${JSON.stringify(bad)}\n`);
    expect(error, bad).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.objectContaining({
        where: "line 2, labtest.health_check_path",
        what: `"${bad}" is not an HTTP path`,
        fix: "start it with / and leave out spaces, e.g. /healthz",
      }),
    ]);
  }
});
