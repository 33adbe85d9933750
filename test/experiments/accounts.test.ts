import { chmod, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ProvisionError } from "../../src/services/errors.js";
import { openState } from "../../src/state/index.js";
import { commit, exampleRepo, execIn, experimentLab, setConfig, viaRouter } from "../support/experiments.js";
import { ageSecrets } from "../support/laboratory.js";

/** Tries to read each file named on its command line; prints {file: "read" | error code}. */
const PROBE = `
const fs = require("fs");
const attempts = {};
for (const f of process.argv.slice(1)) { try { fs.readFileSync(f); attempts[f] = "read"; } catch (e) { attempts[f] = e.code; } }
console.log(JSON.stringify({ uid: process.getuid(), attempts }));
`;

/** Every regular file under `directory`, listed as root (symbolic links are not followed). */
async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe.runIf(process.getuid?.() === 0)("apps on the local runtime run as accounts of their own", () => {
  test("an app reads its checkout and its HOME, and nothing else of the laboratory's home: not the age identity, the state, the registry or another experiment's credentials and checkout", async () => {
    const lab = await experimentLab();
    await ageSecrets(lab);
    // A hand-made state value with an administrator's password, in a file as an editor leaves it (0644).
    const values = join(lab.home, "state-values.json");
    const external = { url: "postgresql://admin:s3cretpw@db.example:5432" };
    const stateValues = {
      ...JSON.parse(await readFile(values, "utf8")),
      "/services/external/postgresql/default": external,
    };
    await writeFile(values, JSON.stringify(stateValues), { mode: 0o644 });
    await chmod(values, 0o644);
    await chmod(lab.statePath, 0o644);
    // As every labtest command does, the laboratory opens its state before it starts an app.
    await (await openState({ env: { LABTEST_HOME: lab.home } })).store.close();
    const repo = await exampleRepo();
    const loaded = await loadConfig({ cwd: repo });
    const main = await lab.experiments.create(
      { config: loaded, subdirectory: "" },
      { branch: "main", name: "main" },
    );
    const other = await lab.experiments.create(
      { config: loaded, subdirectory: "" },
      { branch: "main", name: "other" },
    );
    expect((await viaRouter(lab.routerPort, main.host)).status).toBe(200);

    const otherSpec = join(lab.experiments.directory(other), `supervisor-${other.port}.json`);
    // The other experiment's credentials are really in its spec: the probe below aims at them.
    expect(await readFile(otherSpec, "utf8")).toContain("DATABASE_PASSWORD");
    const own = [main.checkout, join(lab.experiments.directory(main), "home")];
    const isOwn = (file: string) => own.some((dir) => file.startsWith(`${dir}/`));
    const files = await filesUnder(lab.home);
    // What the app must not read is among the files tried.
    expect(files).toEqual(
      expect.arrayContaining([
        join(lab.home, "secrets", "age-identity.txt"),
        lab.statePath,
        values,
        join(lab.home, "experiments.db"),
        otherSpec,
        join(other.checkout, "server.js"),
        join(lab.experiments.directory(main), "app.log"),
        join(main.checkout, "server.js"),
      ]),
    );
    const run = await execIn(lab.experiments, loaded, "main", ["node", "-e", PROBE, ...files]);
    expect(run.exitCode, run.errors).toBe(0);
    const probe = JSON.parse(run.output) as { uid: number; attempts: Record<string, string> };
    expect(probe.uid).not.toBe(0);
    // A file gone between the listing and the probe (a database's journal) is not a failure.
    const attempts = Object.fromEntries(
      Object.entries(probe.attempts).filter(([, code]) => code !== "ENOENT"),
    );
    expect(attempts).toEqual(
      Object.fromEntries(Object.keys(attempts).map((file) => [file, isOwn(file) ? "read" : "EACCES"])),
    );
    expect(attempts[join(main.checkout, "server.js")]).toBe("read");

    // The running app itself (not only exec) is that account, and the registry is the laboratory's only.
    const supervisor = Number(main.handle);
    const children = await readFile(`/proc/${supervisor}/task/${supervisor}/children`, "utf8");
    const app = Number(children.trim().split(/\s+/)[0]);
    const status = await readFile(`/proc/${app}/status`, "utf8");
    expect(Number(/^Uid:\s+(\d+)/m.exec(status)?.[1])).toBe(probe.uid);
    expect((await stat(join(lab.home, "experiments.db"))).mode & 0o077).toBe(0);

    // Deleting the experiment removes its account.
    await lab.experiments.delete("hello", "main");
    const passwd = await readFile("/etc/passwd", "utf8");
    expect(passwd.split("\n").some((line) => line.split(":")[2] === String(probe.uid))).toBe(false);
  });
});

describe("a branch's configuration reads only the branch's files", () => {
  test("a configuration linked to the laboratory's files, or initial data outside the checkout, is refused", async () => {
    const lab = await experimentLab();
    await ageSecrets(lab);
    const identity = join(lab.home, "secrets", "age-identity.txt");
    const repo = await exampleRepo();
    const loaded = await loadConfig({ cwd: repo });
    await execa("git", ["-C", repo, "checkout", "-q", "-b", "linked"]);
    await rm(join(repo, ".labtest.yml"));
    await symlink(identity, join(repo, ".labtest.yml"));
    await commit(repo, "the configuration is a link to the laboratory's identity");
    await expect(
      lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "linked" }),
    ).rejects.toThrow(/the branch.s .labtest.yml leads outside its checkout/);

    await execa("git", ["-C", repo, "checkout", "-q", "-b", "loading", "main"]);
    await setConfig(repo, (text) =>
      text.replace(
        "      provision_type: communal",
        `      provision_type: communal\n      options: { initial_data: ${identity} }`,
      ),
    );
    await commit(repo, "initial data from the laboratory's identity");
    const refused = lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "loading" });
    await expect(refused).rejects.toBeInstanceOf(ProvisionError);
    await expect(refused).rejects.toThrow(/age-identity.txt is not in a directory the laboratory allows/);
    expect(lab.experiments.registry.list()).toEqual([]);
  });
});
