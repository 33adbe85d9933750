import { appendFile, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { LABELS } from "../../src/lab/labels.js";
import { runCli } from "../support/cli.js";
import { docker } from "../support/docker.js";
import { commit, dockerExampleRepo, experimentLab, setConfig } from "../support/experiments.js";
import { ageSecrets } from "../support/laboratory.js";
import { scratchDir } from "../support/project.js";

const SECRET = "tok-s3cret-0815";

test("logs shows each release's before_start_command output, masked, and the replaced app's last output; says so when the app's container is gone; gc keeps the running release's image", async () => {
  const lab = await experimentLab();
  const repo = await dockerExampleRepo();
  await ageSecrets(lab);
  const developer = { ...process.env, LABTEST_HOME: await scratchDir("labtest-dev-") };
  const encrypted = await runCli(
    ["--state", lab.statePath, "encrypt", "-"],
    repo,
    developer,
    `API_TOKEN=${SECRET}\n`,
  );
  // The migration prints the secret; the app says which release it serves.
  await setConfig(repo, (t) =>
    t
      .replace(
        "    - GREETING=Hello from labtest",
        `    - GREETING=Hello from labtest\n    - ${encrypted.stdout.trim()}`,
      )
      .replace(
        "before_start_command: node migrate.js",
        `before_start_command: node -e "console.log('migrating with', process.env.API_TOKEN); import('./migrate.js')"`,
      ),
  );
  await appendFile(join(repo, "server.js"), `console.log("serving release", process.env.RELEASE);\n`);
  await commit(repo, "a migration that shows its token, an app that says what it serves");
  const loaded = await loadConfig({ cwd: repo });
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const labtest = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);

  const first = (await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" }))
    .release;
  const once = await labtest("logs", "main");
  expect(once.code, once.stderr).toBe(0);
  // The build step's output too: each configured step's, under its name.
  expect(once.stdout).toMatch(
    new RegExp(`^# labtest: release ${first.slice(0, 12)}: app_build_command \\(exit 0\\)`),
  );
  expect(once.stdout).toMatch(
    new RegExp(
      `\\n# labtest: release ${first.slice(0, 12)}: before_start_command \\(exit 0\\), at .*\\nmigrating with \\*\\*\\*\\nmigrated hello_main_db\\n`,
    ),
  );
  expect(once.stdout).toContain(
    `# labtest: release ${first.slice(0, 12)}: the app's output\nserving release ${first}\n`,
  );

  await setConfig(repo, (t) => t.replace("GREETING=Hello from labtest", "GREETING=Hello again"));
  await commit(repo, "greet again");
  const second = (await lab.experiments.update({ config: loaded, subdirectory: "" }, "main")).release;
  const twice = await labtest("logs", "main");
  expect(twice.code, twice.stderr).toBe(0);
  const sections = [...twice.stdout.matchAll(/^# labtest: release (\w+): ([^,\n]+)/gm)].map(
    ([, r, s]) => `${r} ${s}`,
  );
  expect(sections).toEqual([
    `${first.slice(0, 12)} app_build_command (exit 0)`,
    `${first.slice(0, 12)} before_start_command (exit 0)`,
    `${first.slice(0, 12)} the app's last output`,
    `${second.slice(0, 12)} app_build_command (exit 0)`,
    `${second.slice(0, 12)} before_start_command (exit 0)`,
    `${second.slice(0, 12)} the app's output`,
  ]);
  expect(twice.stdout).toContain(`kept as a new release replaced it, at`);
  expect(twice.stdout).toContain(`serving release ${first}\n`);
  expect(twice.stdout).toMatch(new RegExp(`serving release ${second}\\n$`));
  // Kept masked: nothing shows the secret again, on screen or on disk.
  const kept = join(lab.home, "experiments", "hello", "main", "output");
  for (const file of await readdir(kept))
    expect(await readFile(join(kept, file), "utf8")).not.toContain(SECRET);
  expect(twice.stdout).not.toContain(SECRET);

  // The app's container removed behind labtest's back: logs says so, and shows what was kept.
  const running = await lab.experiments.status("hello", "main");
  await docker.getContainer(running?.handle ?? "").remove({ force: true });
  const gone = await labtest("logs", "main");
  expect(gone.code).toBe(1);
  expect(gone.stderr).toMatch(/^labtest: the app's container of hello\/main is gone\n/);
  expect(gone.stderr).toContain("fix: labtest update main starts the app anew");
  expect(gone.stdout).toContain(`# labtest: release ${second.slice(0, 12)}: before_start_command (exit 0)`);

  // gc takes neither the image of the release the record names nor anything else of it.
  const images = () =>
    docker.listImages({
      filters: { label: [`${LABELS.laboratory}=${lab.registry.id}`, `${LABELS.release}=${second}`] },
    });
  expect(await images()).toHaveLength(1);
  const gc = await labtest("gc", "--grace", "0");
  expect(gc.stdout).not.toMatch(/image/);
  expect(await images()).toHaveLength(1);
  expect((await labtest("update", "main")).code).toBe(0);
  expect((await labtest("logs", "main")).code).toBe(0);
}, 300_000);
