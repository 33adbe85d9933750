import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { runCli } from "../support/cli.js";
import { gitRepo, scratchDir } from "../support/project.js";

test("secrets init prints the state to encrypt with; encrypt takes KEY=VALUE, --whole and stdin", async () => {
  const home = await scratchDir("labtest-lab-");
  const repo = await gitRepo("app");
  const env = { ...process.env, LABTEST_HOME: home };
  const init = await runCli(["--json", "secrets", "init"], repo, env);
  expect(init.code).toBe(0);
  const { recipient, created, state } = JSON.parse(init.stdout) as {
    recipient: string;
    created: boolean;
    state: Record<string, unknown>;
  };
  expect(created).toBe(true);
  expect((await runCli(["secrets", "init"], repo, env)).stdout).toContain(
    `kept the laboratory's age identity; its recipient is\n  ${recipient}`,
  );

  // Without /secrets in state: a clear error, no stack.
  const statePath = join(home, "state.json");
  await writeFile(
    statePath,
    JSON.stringify({ provider: "local", service: "file", options: { path: "values.json" } }),
  );
  await writeFile(join(home, "values.json"), "{}");
  const missing = await runCli(["--state", statePath, "encrypt", "A=b-long-enough"], repo, env);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(
    /^labtest: the laboratory's state has no \/secrets[\s\S]*labtest secrets init/,
  );
  expect(missing.stderr).not.toMatch(/\n\s+at /);

  await writeFile(join(home, "values.json"), JSON.stringify(state));
  const encrypt = (args: string[], stdin = "") => runCli(["--state", statePath, ...args], repo, env, stdin);
  expect((await encrypt(["encrypt", "PASSWORD=a=b=c=d=e"])).stdout).toMatch(
    /^PASSWORD=ENC\[[A-Za-z0-9+/=]+\]\n$/,
  );
  expect((await encrypt(["encrypt", "--whole", "PASSWORD=a=b=c=d=e"])).stdout).toMatch(
    /^ENC\[[A-Za-z0-9+/=]+\]\n$/,
  );
  expect((await encrypt(["encrypt", "-"], "TOKEN=from stdin\n")).stdout).toMatch(/^TOKEN=ENC\[/);
  expect(JSON.parse((await encrypt(["--json", "encrypt", "x y and z"])).stdout).value).toMatch(/^ENC\[/);
  const empty = await encrypt(["encrypt"], "\n");
  expect(empty.code).toBe(2);
  expect(empty.stderr).toContain("nothing to encrypt");
  expect(JSON.parse(await readFile(join(home, "values.json"), "utf8"))).toEqual(state);
});
