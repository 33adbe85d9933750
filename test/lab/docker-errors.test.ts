import { chmod, chown } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { execa } from "execa";
import getPort from "get-port";
import { describe, expect, test } from "vitest";
import { runCli } from "../support/cli.js";
import { commit } from "../support/example-app.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

const START = `node -e "require('http').createServer((q, s) => s.end('x')).listen(process.env.PORT)"`;

/** A project with one docker service, `options` its options, and a laboratory home of its own. */
async function project(options = "{}") {
  const repo = await gitRepo("engine");
  await writeFiles(repo, {
    ".labtest.yml": `labtest:\n  start_command: ${START}\n  services:\n    cache: { provider: docker, service: redis, provision_type: independent, options: ${options} }\n`,
  });
  await commit(repo, "a project with a docker service");
  const home = await scratchDir();
  const cli = (argv: string[], extra: NodeJS.ProcessEnv = {}) =>
    runCli(argv, repo, { ...process.env, LABTEST_HOME: home, ...extra });
  return { repo, home, cli };
}

/** A user error (exit 1), not a reported bug, whose message is `lines`. */
function userError(result: { code: number; stderr: string }, ...lines: string[]) {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stderr).not.toContain("this is a bug");
  for (const line of lines) expect(result.stderr).toContain(line);
}

describe("Docker Engine failures are errors naming the engine or image and the fix", () => {
  test("no socket where DOCKER_HOST points: is dockerd running", async () => {
    const { cli } = await project();
    const away = { DOCKER_HOST: "unix:///tmp/labtest-nonexistent.sock" };
    for (const argv of [["services", "up"], ["create"]])
      userError(
        await cli(argv, away),
        "labtest: the Docker engine of the laboratory is unreachable (connect ENOENT /tmp/labtest-nonexistent.sock)\n",
        "  - the Docker engine at /tmp/labtest-nonexistent.sock: there is no socket there: is dockerd running?\n",
        "      fix: start the engine (systemctl start docker), or set DOCKER_HOST to where it listens\n",
      );
  });

  test("nothing listening where DOCKER_HOST points: the engine is down", async () => {
    const { cli } = await project();
    const port = await getPort();
    userError(
      await cli(["services", "up"], { DOCKER_HOST: `tcp://127.0.0.1:${port}` }),
      `(connect ECONNREFUSED 127.0.0.1:${port})`,
      `  - the Docker engine at http://127.0.0.1:${port}: nothing listens there: the engine is down or restarting\n`,
    );
  });

  test.skipIf(process.getuid?.() !== 0)(
    "a socket this user may not use: join the docker group or run as root",
    async () => {
      const { repo, home } = await project();
      const place = await scratchDir();
      const socket = join(place, "docker.sock");
      const server = createServer((connection) => connection.end());
      await new Promise<void>((resolve) => server.listen(socket, resolve));
      try {
        await chmod(socket, 0);
        // Run as nobody: root may use any socket. (tsx compiles labtest afresh for that user: slow under load.) Its directories must be nobody's to read and write.
        for (const directory of [place, home, join(repo, "..")]) await chmod(directory, 0o755);
        await execa("chown", ["-R", "nobody:nogroup", repo, home]);
        await chown(socket, 0, 0);
        const runner = join(place, "labtest.mjs");
        await writeFiles(place, {
          "labtest.mjs": `import { main } from ${JSON.stringify(join(process.cwd(), "src/cli/main.ts"))};\nprocess.exitCode = await main(process.argv.slice(2));\n`,
        });
        const result = await execa(
          "setpriv",
          [
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            join(process.cwd(), "node_modules/.bin/tsx"),
            runner,
            "services",
            "up",
          ],
          {
            cwd: repo,
            reject: false,
            env: { PATH: process.env.PATH, HOME: place, LABTEST_HOME: home, DOCKER_HOST: `unix://${socket}` },
            extendEnv: false,
          },
        );
        userError(
          { code: result.exitCode ?? -1, stderr: result.stderr },
          `(connect EACCES ${socket})`,
          `  - the Docker engine at ${socket}: this user may not use the engine's socket\n`,
          "      fix: add the user to the docker group (usermod -aG docker USER, then log in again), or run labtest as root",
        );
      } finally {
        server.close();
      }
    },
    180_000,
  );

  test("an image the laboratory has not and cannot pull: which, how to get it, where it was chosen; nothing is left", async () => {
    const { cli } = await project(`{ image: "labtest-missing/none:1" }`);
    for (const argv of [["services", "up"], ["create"]])
      userError(
        await cli(argv),
        "labtest: image labtest-missing/none:1 is not on the laboratory and could not be pulled\n",
        "      fix: put it on the laboratory: docker pull labtest-missing/none:1 where its registry is reachable, docker load -i ARCHIVE, or docker build -t labtest-missing/none:1 DIRECTORY\n",
        "  - the service's options.image (or the state default /services/docker/<kind>/<app> image): names labtest-missing/none:1\n",
      );
    expect((await cli(["list"])).stdout).toBe("no experiments of engine\n");
  });
});
