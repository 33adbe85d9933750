import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { docker } from "../support/docker.js";
import { localImage } from "../support/example-app.js";
import { commit, experimentLab, viaRouter } from "../support/experiments.js";
import { gitRepo, writeFiles } from "../support/project.js";

/**
 * A project set up as LabTest's builtin_build_process.rst and tutorials/containerizing.rst tell:
 * the build script works in /build, and container_build_command is the default configuration.rst
 * documents (on one line), tagging $APP/$INSTANCE and passing $BRANCH and the experiment's names
 * as build arguments.
 */
const LABTEST_PROJECT = {
  ".labtest.yml": `labtest:
  app_name: shop
  build_provider: local
  container_provider: local
  app_build_image: ${localImage("node")}
  app_build_command: ./bin/app-build
  container_build_command: docker build -t $APP/$INSTANCE --build-arg RELEASE=$RELEASE --build-arg APP_NAME=$APP --build-arg BRANCH_NAME=$BRANCH --build-arg INSTANCE_NAME=$INSTANCE .
`,
  "bin/app-build": `#!/bin/sh
set -e
cd /build
echo "built in /build" > built.txt
`,
  Dockerfile: `FROM ${localImage("node")}
ARG INSTANCE_NAME
ARG BRANCH_NAME
ENV BUILT_FOR=$INSTANCE_NAME BUILT_FROM=$BRANCH_NAME
COPY . /app
WORKDIR /app
EXPOSE 8000
CMD ["node", "server.js"]
`,
  "server.js": `const { readFileSync } = require("node:fs");
require("node:http")
  .createServer((req, res) => res.end(\`\${readFileSync("built.txt", "utf8").trim()}, for \${process.env.BUILT_FOR} of \${process.env.BUILT_FROM}\`))
  .listen(8000);
`,
};

test("LabTest's built-in build: the script works in /build, configuration.rst's container_build_command tags $APP/$INSTANCE and passes $BRANCH", async () => {
  const lab = await experimentLab();
  const repo = await gitRepo("shop");
  await writeFiles(repo, LABTEST_PROJECT);
  await chmod(join(repo, "bin/app-build"), 0o755);
  await commit(repo, "a LabTest project");

  const experiment = await lab.experiments.create(
    { config: await loadConfig({ cwd: repo }), subdirectory: "" },
    { branch: "main" },
  );

  const page = await viaRouter(lab.routerPort, experiment.host);
  expect(page.body).toBe("built in /build, for main of main");
  const image = await docker.getImage("shop/main:latest").inspect();
  expect(image.Parent, "the labelled image is built on the command's").not.toBe("");

  await lab.experiments.delete("shop", "main");
  for (const gone of ["shop/main:latest", image.Parent])
    await expect(docker.getImage(gone).inspect(), gone).rejects.toThrow(/no such image/i);
});
