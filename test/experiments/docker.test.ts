import { access, rm } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ExperimentError, Experiments } from "../../src/experiments/index.js";
import { LABELS } from "../../src/lab/labels.js";
import { docker } from "../support/docker.js";
import {
  commit,
  dockerExampleRepo,
  execIn,
  experimentLab,
  setConfig,
  viaRouter,
} from "../support/experiments.js";

/** Docker objects of one experiment of a laboratory, by label. */
async function dockerObjects(laboratory: string, experiment: string) {
  const filters = { label: [`${LABELS.laboratory}=${laboratory}`, `${LABELS.experiment}=${experiment}`] };
  return {
    containers: (await docker.listContainers({ all: true, filters })).map((c) => c.Names[0]),
    images: (await docker.listImages({ filters })).map((i) => i.Id),
    networks: (await docker.listNetworks({ filters })).map((n) => n.Name),
    volumes: ((await docker.listVolumes({ filters })).Volumes ?? []).map((v) => v.Name),
  };
}

const NOTHING = { containers: [], images: [], networks: [], volumes: [] };

/** A script for `node -e` that tries a TCP connection to argv[1]:argv[2] and prints how it went. */
const CONNECT = `const s = require("net").connect(Number(process.argv[2]), process.argv[1]);
s.on("connect", () => { console.log("connected"); process.exit(0); });
s.on("error", (e) => { console.log(e.code); process.exit(1); });
setTimeout(() => { console.log("timed out"); process.exit(1); }, 3000);`;

describe("experiments on the docker runtime", () => {
  test("two branches in containers with their own data and networks; update keeps data; delete leaves nothing of one", async () => {
    const lab = await experimentLab();
    const repo = await dockerExampleRepo();
    await execa("git", ["-C", repo, "checkout", "-q", "-b", "feature"]);
    await setConfig(repo, (t) => t.replace("GREETING=Hello from labtest", "GREETING=Bonjour"));
    await commit(repo, "greet in French");
    const loaded = await loadConfig({ cwd: repo });

    const main = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
    const feature = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "feature" });
    expect(main).toMatchObject({
      runtime: "docker",
      status: "running",
      url: `http://hello-main.localhost:${lab.routerPort}/`,
    });

    const fromMain = await viaRouter(lab.routerPort, main.host);
    expect(fromMain.status).toBe(200);
    expect(fromMain.body).toContain(`Hello from labtest from main (release ${main.release})`);
    // create asked twice (the app on its port, then through the router); this is the third visit.
    expect(fromMain.body).toContain("visits in PostgreSQL database hello_main_db: 3");
    expect(fromMain.body).toContain("hits in Redis under hello:main:cache:: 3");
    const fromFeature = await viaRouter(lab.routerPort, feature.host);
    expect(fromFeature.body).toContain("Bonjour from feature");
    expect(fromFeature.body).toContain("visits in PostgreSQL database hello_feature_db: 3");
    expect((await viaRouter(lab.routerPort, main.host)).body).toContain("hello_main_db: 4");
    expect((await lab.experiments.list("hello")).map((e) => [e.name, e.status, e.url])).toEqual([
      ["feature", "running", feature.url],
      ["main", "running", main.url],
    ]);

    // The image was built with the build container's output and the release as a build arg.
    expect(await execIn(lab.experiments, loaded, "main", ["cat", "build-info.txt"])).toMatchObject({
      exitCode: 0,
      output: main.release,
    });
    // A command the container does not have: a shell's exit code and words, not a silent failure.
    await expect(
      execIn(lab.experiments, loaded, "main", ["no-such-command", "--flag"]),
    ).rejects.toMatchObject({
      message: expect.stringContaining("no-such-command: command not found"),
      exitCode: 127,
    });
    await expect(execIn(lab.experiments, loaded, "main", ["/etc/hostname"])).rejects.toMatchObject({
      message: expect.stringContaining("/etc/hostname: permission denied"),
      exitCode: 126,
    });

    // This laboratory's image of main, tagged as docker_image_pattern says.
    const [image] = await docker.listImages({
      filters: { label: [`${LABELS.laboratory}=${lab.registry.id}`, `${LABELS.experiment}=main`] },
    });
    expect(image?.RepoTags).toContain("hello/main:latest");
    expect(image?.Labels["org.opencontainers.image.revision"]).toBe(main.release);

    // main's app reaches its own Redis by name, and cannot open a connection to feature's.
    const [featureRedis] = await docker.listContainers({
      filters: {
        label: [
          `${LABELS.laboratory}=${lab.registry.id}`,
          `${LABELS.experiment}=feature`,
          `${LABELS.service}=cache`,
        ],
      },
    });
    const featureRedisAddress = Object.values(featureRedis?.NetworkSettings.Networks ?? {})[0]?.IPAddress;
    expect(featureRedisAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(
      await execIn(lab.experiments, loaded, "main", ["node", "-e", CONNECT, "cache", "6379"]),
    ).toMatchObject({
      exitCode: 0,
      output: "connected\n",
    });
    const across = await execIn(lab.experiments, loaded, "main", [
      "node",
      "-e",
      CONNECT,
      String(featureRedisAddress),
      "6379",
    ]);
    expect(across.exitCode).toBe(1);
    expect(across.output).not.toContain("connected");

    // update: a new commit on main; the data stays, the previous container and image go.
    await execa("git", ["-C", repo, "checkout", "-q", "main"]);
    await setConfig(repo, (t) => t.replace("GREETING=Hello from labtest", "GREETING=Hello again"));
    await commit(repo, "greet again");
    const before = await dockerObjects(lab.registry.id, "main");
    const updated = await lab.experiments.update({ config: loaded, subdirectory: "" }, "main");
    expect(updated.release).not.toBe(main.release);
    const afterUpdate = await viaRouter(lab.routerPort, main.host);
    expect(afterUpdate.body).toContain(`Hello again from main (release ${updated.release})`);
    expect(afterUpdate.body).toContain("hello_main_db: 7");
    const after = await dockerObjects(lab.registry.id, "main");
    expect(after.images.length).toBe(before.images.length);
    expect(after.containers.filter((c) => before.containers.includes(c)).length).toBe(
      before.containers.length - 1,
    );

    // delete feature: nothing of it remains, main keeps answering.
    await lab.experiments.delete("hello", "feature");
    expect(await dockerObjects(lab.registry.id, "feature")).toEqual(NOTHING);
    expect(await lab.services.list("hello", "feature")).toEqual([]);
    expect(
      await access(lab.experiments.directory(feature)).then(
        () => "checkout left",
        () => "gone",
      ),
    ).toBe("gone");
    expect((await viaRouter(lab.routerPort, feature.host)).status).toBe(404);
    expect((await viaRouter(lab.routerPort, main.host)).status).toBe(200);
    expect(await lab.experiments.collectGarbage(0)).toEqual([]);

    // The registry lost: the running container tells what main is.
    const [previous] = await lab.experiments.list("hello");
    for (const suffix of ["", "-wal", "-shm"])
      await rm(join(lab.home, "experiments.db") + suffix, { force: true });
    const again = new Experiments({
      home: lab.home,
      state: lab.state,
      router: () => ({ port: lab.routerPort }),
    });
    try {
      const [rebuilt] = await again.list("hello");
      expect(rebuilt).toMatchObject({
        name: "main",
        runtime: "docker",
        status: "running",
        release: updated.release,
        handle: previous?.handle,
        port: previous?.port,
        host: main.host,
        checkout: previous?.checkout,
      });
      expect((await viaRouter(lab.routerPort, main.host)).status).toBe(200);
      await again.delete("hello", "main");
      expect(await dockerObjects(lab.registry.id, "main")).toEqual(NOTHING);
    } finally {
      await again.close();
    }
  });

  test("a Dockerfile that fails, a failing before_start_command, an app that never answers: clear errors, nothing left", async () => {
    const lab = await experimentLab({ answerTimeoutMs: 3000 });
    const repo = await dockerExampleRepo();
    const loaded = await loadConfig({ cwd: repo });
    const attempt = async (branch: string, change: (dir: string) => Promise<void>) => {
      await execa("git", ["-C", repo, "checkout", "-q", "-b", branch, "main"]);
      await change(repo);
      await commit(repo, branch);
      const error = await lab.experiments
        .create({ config: loaded, subdirectory: "" }, { branch })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ExperimentError);
      expect(lab.experiments.registry.get("hello", branch)).toBeUndefined();
      expect(await dockerObjects(lab.registry.id, branch)).toEqual(NOTHING);
      return String(error) + JSON.stringify((error as ExperimentError).problems);
    };
    const { writeFile, readFile } = await import("node:fs/promises");
    const dockerfile = `${repo}/Dockerfile`;

    expect(
      await attempt("broken-build", async () =>
        writeFile(
          dockerfile,
          (await readFile(dockerfile, "utf8")).replace("COPY . .", "RUN exit 3\nCOPY . ."),
        ),
      ),
    ).toMatch(/the app's image did not build[\s\S]*RUN exit 3[\s\S]*exit code: 3/);

    expect(
      await attempt("broken-migration", async () =>
        setConfig(repo, (t) =>
          t.replace(
            "before_start_command: node migrate.js",
            'before_start_command: node -e "process.exit(4)"',
          ),
        ),
      ),
    ).toMatch(/before_start_command failed \(exit 4\)/);

    expect(
      await attempt("never-answers", async () =>
        writeFile(
          dockerfile,
          (await readFile(dockerfile, "utf8")).replace(
            /^CMD .*/m,
            `CMD ["node", "-e", "console.log('up but deaf'); setInterval(() => {}, 1000)"]`,
          ),
        ),
      ),
    ).toMatch(
      /did not answer on port \d+ within 3 s[\s\S]*up but deaf[\s\S]*it runs but listens on no TCP port yet/,
    );

    expect(await lab.experiments.collectGarbage(0)).toEqual([]);
  });
});
