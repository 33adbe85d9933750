import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { commit, exampleRepo, experimentLab, setConfig } from "../support/experiments.js";

it("status shows the whole picture; logs and exec of what does not exist say so; a failed update says update again", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const cli = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);

  const unknown = await cli("logs", "nosuch");
  expect(unknown).toMatchObject({ code: 1, stdout: "" });
  expect(unknown.stderr).toContain("labtest: no experiment nosuch of hello\n");

  // An entry of environment refers to an earlier one.
  await setConfig(repo, (text) =>
    text.replace("- PUBLIC_URL=$EXPERIMENT_URL", "$&\n    - ASSETS=$PUBLIC_URL/assets"),
  );
  await commit(repo, "assets under the public URL");
  expect(await cli("create")).toMatchObject({ code: 0 });
  const url = `http://hello-main.localhost:${lab.routerPort}`;

  // The full URL the router serves, port included, for apps that build their own links.
  const printed = await cli("exec", "main", "--", "node", "-e", "console.log(process.env.EXPERIMENT_URL)");
  expect(printed).toMatchObject({ code: 0, stdout: `${url}\n` });
  // services env expands the experiment's own variables as the app gets them (PUBLIC_URL=$EXPERIMENT_URL).
  const appGets = await cli(
    "exec",
    "main",
    "--",
    "node",
    "-e",
    "console.log(process.env.PUBLIC_URL, process.env.ASSETS)",
  );
  expect(appGets).toMatchObject({ code: 0, stdout: `${url} ${url}/assets\n` });
  const servicesEnv = JSON.parse((await cli("--json", "services", "env", "-e", "main")).stdout);
  expect(servicesEnv).toMatchObject({ PUBLIC_URL: url, ASSETS: `${url}/assets` });
  // A command that does not exist is reported, with a shell's exit code.
  const missing = await cli("exec", "main", "--", "no-such-command", "--flag");
  expect(missing, JSON.stringify(missing)).toMatchObject({ code: 127 });
  expect(missing.stderr).toContain("no-such-command: command not found");

  const said = Array.from({ length: 15 }, (_, i) => `line ${i + 1} the app wrote`);
  await appendFile(join(lab.home, "experiments", "hello", "main", "app.log"), `${said.join("\n")}\n`);
  const status = await cli("status", "main");
  expect(status.stderr).toBe("");
  expect(status.code).toBe(0);
  const lines = status.stdout.split("\n");
  expect(lines[0]).toBe("hello/main: running");
  expect(status.stdout).toMatch(new RegExp(`^ {2}url: +${url}/ \\(answers 200 at / in \\d+ ms\\)$`, "m"));
  expect(status.stdout).toMatch(/^ {2}release: +[0-9a-f]{12} assets under the public URL \(branch main\)$/m);
  expect(status.stdout).toMatch(/^ {2}app: +local, supervisor pid \d+, restarts 0$/m);
  expect(status.stdout).toMatch(/^ {2}deployed: +\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago\)$/m);
  expect(status.stdout).toMatch(
    /^ {2}services:\n {4}cache: redis independent on local, ready, \d+ keys? — app 127\.0\.0\.1:\d+, host 127\.0\.0\.1:\d+\n {4}db: postgresql communal on local, ready, \d+(\.\d)? MB — app /m,
  );
  expect(status.stdout).toContain(
    `  recent output:\n${said
      .slice(-10)
      .map((l) => `    ${l}\n`)
      .join("")}`,
  );
  const json = JSON.parse((await cli("--json", "status", "main")).stdout);
  expect(json).toMatchObject({ subject: "assets under the public URL", answer: { status: 200 } });
  expect(json.services[0]).toMatchObject({ name: "cache", appEndpoint: { host: "127.0.0.1" } });
  // The database's size in bytes: the migration's table and PostgreSQL's own catalogue.
  expect(json.services[1]).toMatchObject({ name: "db", size: { unit: "bytes" } });
  expect(json.services[1].size.amount).toBeGreaterThan(1_000_000);

  await setConfig(repo, (text) =>
    text.replace(/before_start_command: .*/, `before_start_command: node -e "process.exit(3)"`),
  );
  await commit(repo, "a migration that fails");
  const update = await cli("update", "main");
  expect(update.code).toBe(1);
  expect(update.stderr).toContain("before_start_command failed (exit 3)");
  expect(update.stderr).not.toContain("create again");
  expect(update.stderr).toContain("labtest update main");
});
