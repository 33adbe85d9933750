import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { exampleRepo, experimentLab } from "../support/experiments.js";
import { testLaboratory } from "../support/laboratory.js";
import { gitRepo, scratchDir } from "../support/project.js";

// LabTest's commands, as its documentation and its command line (CityOfBoston/labtest) spell them.

it("labtest version prints the version, as --version does", async () => {
  const cwd = await scratchDir();
  const { version } = JSON.parse(await readFile(join(import.meta.dirname, "../../package.json"), "utf8"));
  expect(await runCli(["version"], cwd)).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
  expect((await runCli(["--version"], cwd)).stdout).toBe(`${version}\n`);
  expect((await runCli(["--help"], cwd)).stdout).toMatch(
    /version\s+print the labtest version \(LabTest's spelling of\s+--version\)/,
  );
});

it("labtest list APP lists that app's experiments, from anywhere; with --all it is refused", async () => {
  const lab = await testLaboratory();
  const env = { ...process.env, LABTEST_HOME: lab.home };
  const nowhere = await scratchDir();
  const shop = await gitRepo("shop");
  await writeFile(join(shop, ".labtest.yml"), "labtest:\n  app_name: shop\n");
  const cli = (cwd: string, ...argv: string[]) => runCli(["--state", lab.statePath, ...argv], cwd, env);
  expect(await cli(nowhere, "list", "blog")).toEqual({
    code: 0,
    stdout: "no experiments of blog\n",
    stderr: "",
  });
  // The app named wins over the one the directory's configuration names.
  expect((await cli(shop, "list", "blog")).stdout).toBe("no experiments of blog\n");
  const both = await cli(nowhere, "list", "--all", "blog");
  expect(both.code).toBe(2);
  expect(both.stderr).toContain("list APP or list --all, not both");
});

it("labtest -v create prints its steps; labtest test NAME COMMAND runs COMMAND in the experiment, without --, its options its own", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const cli = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);
  // LabTest's -v/--verbose: each step is printed, also when the output is not a terminal.
  const created = await cli("-v", "create");
  expect(created).toMatchObject({ code: 0 });
  expect(created.stderr).toMatch(/^… /m);

  // -c and --json belong to the command, not to labtest.
  const printed = await cli("test", "main", "sh", "-c", 'echo "$*"', "sh", "-c", "--json");
  expect(printed).toEqual({ code: 0, stdout: "-c --json\n", stderr: "" });
  expect((await cli("test", "main", "sh", "-c", "exit 3")).code).toBe(3);
  // labtest's own options still go before the command's name.
  expect((await cli("--json", "test", "main", "node", "-e", "console.log('as is')")).stdout).toBe("as is\n");
  // LabTest's COMMAND as one operand (its click.argument('command'), which it ran through a
  // shell): split as a shell would, run without one.
  expect(await cli("test", "main", "node -e 'console.log(process.argv[1])' 'two words'")).toEqual({
    code: 0,
    stdout: "two words\n",
    stderr: "",
  });
  const operator = await cli("test", "main", "node migrate.js && node seed.js");
  expect(operator.code).toBe(2);
  expect(operator.stderr).toContain("COMMAND uses the shell operator &&, and no shell runs it");
  expect(operator.stderr).toContain("labtest test NAME sh -c 'node migrate.js && node seed.js'");
  // The modern spelling is unchanged.
  expect((await cli("exec", "main", "--", "sh", "-c", "exit 4")).code).toBe(4);
  expect((await cli("help", "test")).stdout).toMatch(/labtest\s+exec NAME --\s+COMMAND/);
});

it("labtest encrypt KEY=VALUE, as LabTest's secrets page shows it, answers KEY=ENC[…] for the value", async () => {
  const home = await scratchDir("labtest-lab-");
  const repo = await gitRepo("app");
  const env = { ...process.env, LABTEST_HOME: home };
  const { state } = JSON.parse((await runCli(["--json", "secrets", "init"], repo, env)).stdout);
  const statePath = join(home, "state.json");
  await writeFile(
    statePath,
    JSON.stringify({ provider: "local", service: "file", options: { path: "values.json" } }),
  );
  await writeFile(join(home, "values.json"), JSON.stringify(state));
  // LabTest asked whether to encrypt the value for the key; its page answers y, which labtest does unasked.
  const encrypted = await runCli(
    ["--state", statePath, "encrypt", "SECRET_API_KEY=asdfghjklqwerotoyiuuzxvcbn"],
    repo,
    env,
  );
  expect(encrypted).toMatchObject({ code: 0, stderr: "" });
  expect(encrypted.stdout).toMatch(/^SECRET_API_KEY=ENC\[[A-Za-z0-9+/=]+\]\n$/);
  // LabTest's answer N (the whole string) is --whole, and its help says so.
  expect((await runCli(["help", "encrypt"], repo, env)).stdout).toMatch(/--whole[\s\S]*LabTest's answer N/);
  const whole = await runCli(
    ["--state", statePath, "encrypt", "--whole", "SECRET_API_KEY=asdfghjklq"],
    repo,
    env,
  );
  expect(whole.stdout).toMatch(/^ENC\[[A-Za-z0-9+/=]+\]\n$/);
});
