import { readFile, rm, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ProvisionError } from "../../src/services/errors.js";
import { commit, exampleRepo, execIn, experimentLab, setConfig, viaRouter } from "../support/experiments.js";
import { ageSecrets } from "../support/laboratory.js";

/** Tries to read each file; prints {file: "read" | error code} and what of the home it can read. */
const PROBE = `
const fs = require("fs"), path = require("path");
const [home, ...files] = process.argv.slice(1);
const attempts = {};
for (const f of files) { try { fs.readFileSync(f); attempts[f] = "read"; } catch (e) { attempts[f] = e.code; } }
const readable = [];
(function walk(dir) {
  let names; try { names = fs.readdirSync(dir); } catch { return; }
  for (const name of names) {
    const full = path.join(dir, name);
    let info; try { info = fs.lstatSync(full); } catch { continue; }
    if (info.isDirectory()) walk(full);
    else if (info.isFile()) { try { fs.accessSync(full, fs.constants.R_OK); readable.push(full); } catch {} }
  }
})(home);
// Its own checkout, where it runs: reachable through the home although the home cannot be listed.
const before = readable.length;
(function walk(dir) {
  for (const name of fs.readdirSync(dir)) {
    const full = path.join(dir, name);
    if (fs.lstatSync(full).isFile()) { fs.accessSync(full, fs.constants.R_OK); readable.push(full); }
  }
})(process.cwd());
if (readable.length === before) throw new Error("the probe read nothing of its own checkout");
console.log(JSON.stringify({ uid: process.getuid(), attempts, readable }));
`;

describe.runIf(process.getuid?.() === 0)("apps on the local runtime run as accounts of their own", () => {
  test("an app cannot read the age identity, the registry or another experiment's credentials and checkout", async () => {
    const lab = await experimentLab();
    await ageSecrets(lab);
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

    const otherDirectory = lab.experiments.directory(other);
    const otherSpec = join(otherDirectory, `supervisor-${other.port}.json`);
    // The other experiment's credentials are really in its spec: the probe below aims at them.
    expect(await readFile(otherSpec, "utf8")).toContain("DATABASE_PASSWORD");
    const targets = [
      join(lab.home, "secrets", "age-identity.txt"),
      join(lab.home, "experiments.db"),
      otherSpec,
      join(other.checkout, "server.js"),
      join(lab.experiments.directory(main), "app.log"),
    ];
    const run = await execIn(lab.experiments, loaded, "main", ["node", "-e", PROBE, lab.home, ...targets]);
    expect(run.exitCode, run.errors).toBe(0);
    const probe = JSON.parse(run.output) as {
      uid: number;
      attempts: Record<string, string>;
      readable: string[];
    };
    expect(probe.uid).not.toBe(0);
    expect(probe.attempts).toEqual(Object.fromEntries(targets.map((t) => [t, "EACCES"])));
    // All it can read of the laboratory's home is its own checkout and its own home directory.
    const own = [main.checkout, join(lab.experiments.directory(main), "home")];
    expect(probe.readable.filter((file) => !own.some((dir) => file.startsWith(`${dir}/`)))).toEqual([]);

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
