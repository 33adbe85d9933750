import { access, appendFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ExperimentError } from "../../src/experiments/index.js";
import { processesUsing } from "../../src/lab/processes.js";
import { commit, exampleRepo, experimentLab, setConfig, viaRouter } from "../support/experiments.js";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe("experiments on the local runtime", () => {
  test("two branches run side by side with their own data; deleting one leaves nothing of it", async () => {
    const lab = await experimentLab();
    const repo = await exampleRepo();
    await execa("git", ["-C", repo, "checkout", "-q", "-b", "feature/greeting"]);
    await setConfig(repo, (text) => text.replace("GREETING=Hello from labtest", "GREETING=Bonjour"));
    await commit(repo, "greet in French");
    const loaded = await loadConfig({ cwd: repo });

    const main = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
    const feature = await lab.experiments.create(
      { config: loaded, subdirectory: "" },
      { branch: "feature/greeting" },
    );
    expect(main).toMatchObject({
      app: "hello",
      name: "main",
      status: "running",
      url: `http://hello-main.localhost:${lab.routerPort}/`,
    });
    expect(feature.name).toMatch(/^feature-greeting-[0-9a-f]{6}$/);

    const fromMain = await viaRouter(lab.routerPort, main.host);
    expect(fromMain.status).toBe(200);
    expect(fromMain.body).toContain(`Hello from labtest from main (release ${main.release})`);
    // create asked twice (the app on its port, then through the router); this is the third visit.
    expect(fromMain.body).toContain("visits in PostgreSQL database hello_main_db: 3");
    const fromFeature = await viaRouter(lab.routerPort, feature.host);
    expect(fromFeature.body).toContain(`Bonjour from ${feature.name}`);
    expect(fromFeature.body).toContain("visits in PostgreSQL database hello_feature_greeting_");
    expect(fromFeature.body).toContain(`hits in Redis under hello:${feature.name}:cache:: 3`);
    expect((await viaRouter(lab.routerPort, main.host)).body).toContain(
      "visits in PostgreSQL database hello_main_db: 4",
    );

    expect((await lab.experiments.list("hello")).map((e) => [e.name, e.status, e.url])).toEqual([
      [feature.name, "running", feature.url],
      ["main", "running", main.url],
    ]);
    const splash = await viaRouter(lab.routerPort, "nowhere.localhost");
    expect(splash.status).toBe(404);
    expect(splash.body).toContain(`href="${main.url}"`);

    // logs --follow: what the app writes shows up while following.
    const followed: string[] = [];
    const stop = new AbortController();
    const following = lab.experiments.followLogs("hello", "main", (text) => followed.push(text), stop.signal);
    await appendFile(join(lab.experiments.directory(main), "app.log"), "a line the app wrote\n");
    await new Promise((resolve) => setTimeout(resolve, 600));
    stop.abort();
    await following;
    expect(followed.join("")).toContain("a line the app wrote\n");

    await lab.experiments.delete("hello", feature.name);
    expect(await exists(join(lab.home, "experiments", "hello", feature.name))).toBe(false);
    expect(await lab.services.list("hello", feature.name)).toEqual([]);
    expect((await viaRouter(lab.routerPort, feature.host)).status).toBe(404);
    expect((await viaRouter(lab.routerPort, main.host)).body).toContain(
      "visits in PostgreSQL database hello_main_db: 5",
    );
    expect(await lab.services.collectGarbage(0)).toEqual([]);
  });

  test("update moves to the newest commit and keeps the data; a failing migration leaves the running release", async () => {
    const lab = await experimentLab();
    const repo = await exampleRepo();
    const loaded = await loadConfig({ cwd: repo });
    const first = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
    expect((await viaRouter(lab.routerPort, first.host)).body).toContain(
      "visits in PostgreSQL database hello_main_db: 3",
    );

    await setConfig(repo, (text) => text.replace("GREETING=Hello from labtest", "GREETING=Hello again"));
    await commit(repo, "a new greeting");
    const second = await lab.experiments.update({ config: loaded, subdirectory: "" }, "main");
    expect(second.release).not.toBe(first.release);
    const page = await viaRouter(lab.routerPort, second.host);
    expect(page.body).toContain(`Hello again from main (release ${second.release})`);
    // The update's two checks and this request: the visits of the first release are still there.
    expect(page.body).toContain("visits in PostgreSQL database hello_main_db: 6");
    expect(await exists(first.checkout)).toBe(false);

    await setConfig(repo, (text) =>
      text.replace(
        "before_start_command: node migrate.js",
        'before_start_command: node -e "process.exit(4)"',
      ),
    );
    await commit(repo, "a migration that fails");
    await expect(lab.experiments.update({ config: loaded, subdirectory: "" }, "main")).rejects.toThrow(
      /before_start_command failed \(exit 4\)/,
    );
    const still = await lab.experiments.status("hello", "main");
    expect(still).toMatchObject({ status: "running", release: second.release, port: second.port });
    expect((await viaRouter(lab.routerPort, second.host)).body).toContain("Hello again from main");
  });

  test("a branch that does not exist, a name another branch has, a failing before_start_command: clear errors, nothing left", async () => {
    const lab = await experimentLab();
    const repo = await exampleRepo();
    const loaded = await loadConfig({ cwd: repo });

    await expect(
      lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "nope" }),
    ).rejects.toThrow(/branch nope does not exist in/);
    expect(await lab.experiments.list()).toEqual([]);

    await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
    const taken = await lab.experiments
      .create({ config: loaded, subdirectory: "" }, { branch: "other", name: "main" })
      .catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(ExperimentError);
    expect((taken as Error).message).toMatch(
      /experiment main of hello exists already, of branch main[\s\S]*labtest create other --name NAME/,
    );
    await lab.experiments.delete("hello", "main");

    await setConfig(repo, (text) =>
      text.replace(
        "before_start_command: node migrate.js",
        'before_start_command: node -e "process.exit(3)"',
      ),
    );
    await commit(repo, "a migration that fails");
    const failing = await loadConfig({ cwd: repo });
    await expect(
      lab.experiments.create({ config: failing, subdirectory: "" }, { branch: "main", name: "broken" }),
    ).rejects.toThrow(/before_start_command failed \(exit 3\)/);
    expect(await lab.experiments.list()).toEqual([]);
    expect(await exists(join(lab.home, "experiments", "hello", "broken"))).toBe(false);
    expect(await lab.services.list()).toEqual([]);
    expect(await lab.services.collectGarbage(0)).toEqual([]);
  });

  test("create of a half-created experiment (its create killed once recorded) finishes it, as update does", async () => {
    const lab = await experimentLab();
    const repo = await exampleRepo();
    const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
    const killedAt = new Date().toISOString();
    // What a create killed right after recording the experiment leaves: its record alone.
    lab.experiments.registry.insert({
      app: "hello",
      name: "main",
      branch: "main",
      release: "",
      runtime: "local",
      status: "creating",
      host: "creating:hello/main",
      port: 0,
      handle: "",
      checkout: "",
      createdAt: killedAt,
      updatedAt: killedAt,
    });
    const steps: string[] = [];
    const finished = await lab.experiments.create(project, { branch: "main" }, (step) => steps.push(step));
    expect(steps).toContain("main exists already: updating it");
    expect(finished).toMatchObject({ name: "main", status: "running", existed: true });
    expect((await viaRouter(lab.routerPort, finished.host)).body).toContain(
      `Hello from labtest from main (release ${finished.release})`,
    );
    await lab.experiments.delete("hello", "main");
    expect(await lab.experiments.list()).toEqual([]);
  });

  test("an app that never answers is stopped and removed, with its last output in the error", async () => {
    const lab = await experimentLab({ answerTimeoutMs: 3000 });
    const repo = await exampleRepo();
    await setConfig(repo, (text) =>
      text.replace(
        "start_command: node server.js",
        `start_command: node -e "console.log('starting,but-never-listening');setInterval(()=>{},1000)"`,
      ),
    );
    await commit(repo, "an app that never listens");
    const loaded = await loadConfig({ cwd: repo });
    const failed = await lab.experiments
      .create({ config: loaded, subdirectory: "" }, { branch: "main" })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ExperimentError);
    expect((failed as Error).message).toMatch(
      /the app did not answer on port \d+ within 3 s[\s\S]*starting,but-never-listening/,
    );
    expect(await lab.experiments.list()).toEqual([]);
    expect(await processesUsing(join(lab.home, "experiments"))).toEqual([]);
    expect(await lab.services.collectGarbage(0)).toEqual([]);
  });
});
