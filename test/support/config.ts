import { expect } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ConfigError } from "../../src/errors.js";
import { gitRepo, writeFiles } from "./project.js";

/** The problems labtest finds in a `.labtest.yml` of `yaml` (it must find some). */
export async function problemsOf(yaml: string): Promise<ConfigError["problems"]> {
  const repo = await gitRepo("app");
  await writeFiles(repo, { ".labtest.yml": yaml });
  const error = await loadConfig({ cwd: repo }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).problems;
}
