// The app's image: built from the checkout's Dockerfile, or by the configured
// container_build_command, and always labelled as the laboratory's so delete and gc find it.
import { access, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { execa } from "execa";
import { expandPattern } from "../../config/patterns.js";
import { buildkitStatus, type Docker } from "../../lab/docker.js";
import { commandArgv } from "../command.js";
import { baseEnvironment, type ExperimentIdentity } from "../environment.js";
import { ExperimentError } from "../errors.js";
import { lastLines, rerunAdvice, stepFailure } from "../steps.js";
import type { Progress } from "./runtime.js";

/** A Docker image reference: [registry[:port]/]path[:tag], lower-case path components. */
const IMAGE_REFERENCE =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$/;

/** The tag of an experiment's image: docker_image_pattern expanded. */
export function imageTag(pattern: string, identity: ExperimentIdentity, file: string): string {
  const tag = expandPattern(pattern, {
    app_name: identity.app,
    experiment: identity.name,
    branch: identity.branch,
    release: identity.release,
  });
  if (!IMAGE_REFERENCE.test(tag))
    throw new ExperimentError(`docker_image_pattern gives "${tag}", which is not an image name`, [
      {
        where: `${file}: labtest.docker_image_pattern`,
        what: "image names are lower-case path components with an optional :tag",
        fix: "use {experiment} rather than {branch} (it is normalised), e.g. {app_name}/{experiment}:latest",
      },
    ]);
  return tag;
}

export interface ImageBuild {
  /** The checkout's app directory: the build context. */
  directory: string;
  tag: string;
  identity: ExperimentIdentity;
  labels: Record<string, string>;
  /** container_build_command, or null for the built-in `docker build`. */
  command: string | null;
  progress: Progress;
}

/** Builds the app's image; resolves to its id. */
export async function buildAppImage(docker: Docker, build: ImageBuild): Promise<string> {
  if (build.command) {
    await runBuildCommand(build);
    await adopt(docker, build);
  } else {
    await buildDockerfile(docker, build);
  }
  return (await docker.getImage(build.tag).inspect()).Id;
}

/** The built-in build: the checkout's Dockerfile, with the experiment's identity as build args. */
async function buildDockerfile(docker: Docker, build: ImageBuild): Promise<void> {
  const dockerfile = join(build.directory, "Dockerfile");
  if (
    !(await access(dockerfile).then(
      () => true,
      () => false,
    ))
  )
    throw new ExperimentError("the branch has no Dockerfile to build the app's image from", [
      {
        where: `branch ${build.identity.branch} at ${build.identity.release.slice(0, 12)}`,
        what: "the docker runtime builds the app's image from the Dockerfile beside the configuration",
        fix: "add a Dockerfile, set container_build_command, or use runtime: local with a start_command",
      },
    ]);
  const { identity } = build;
  const stream = await docker.buildImage(
    { context: build.directory, src: await readdir(build.directory) },
    {
      t: build.tag,
      labels: build.labels,
      buildargs: {
        APP_NAME: identity.app,
        EXPERIMENT: identity.name,
        INSTANCE_NAME: identity.name,
        BRANCH_NAME: identity.branch,
        RELEASE: identity.release,
      },
      // BuildKit: an unchanged step costs nothing, and the labels are one step.
      version: "2",
    },
  );
  await followBuild(
    stream,
    build.progress,
    (output) =>
      new ExperimentError("the app's image did not build", [
        {
          where: `Dockerfile of branch ${identity.branch} at ${identity.release.slice(0, 12)}`,
          what: output,
          fix: `fix the Dockerfile (docker build shows the same in the checkout), ${rerunAdvice()}`,
        },
      ]),
  );
}

/**
 * container_build_command, split like a shell would but run without one, in the checkout: it
 * sees APP_NAME, EXPERIMENT, BRANCH_NAME, RELEASE and IMAGE (the tag to build), and LabTest's APP,
 * BRANCH, INSTANCE and INSTANCE_NAME, in its environment and as `$NAME` in its arguments.
 */
async function runBuildCommand(build: ImageBuild): Promise<void> {
  const command = build.command ?? "";
  const { identity } = build;
  const variables = {
    APP_NAME: identity.app,
    EXPERIMENT: identity.name,
    BRANCH_NAME: identity.branch,
    RELEASE: identity.release,
    IMAGE: build.tag,
    // LabTest's names: its default command tags $APP/$INSTANCE, docker_image_pattern's default,
    // and passes $BRANCH as BRANCH_NAME (configuration.rst; LabTest's own script left it empty).
    APP: identity.app,
    BRANCH: identity.branch,
    INSTANCE: identity.name,
    INSTANCE_NAME: identity.name,
  };
  const [program, ...args] = commandArgv("container_build_command", command, variables);
  build.progress(`running container_build_command`);
  const result = await execa(program ?? "", args, {
    cwd: build.directory,
    // It runs as labtest's account, whose home (its passwd entry's, not the shell's HOME) holds
    // the docker client's configuration.
    env: { ...baseEnvironment(userInfo().homedir), ...variables, ...dockerClientEnvironment() },
    extendEnv: false,
    reject: false,
    all: true,
  });
  if (result.exitCode !== 0)
    throw stepFailure(
      "container_build_command",
      command,
      result.exitCode ?? result.signal,
      String(result.all ?? ""),
    );
}

/** The variables that point a docker client at the laboratory's engine, as labtest's own. */
function dockerClientEnvironment(): Record<string, string> {
  return Object.fromEntries(
    ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONFIG"].flatMap((key) =>
      process.env[key] ? [[key, process.env[key]]] : [],
    ),
  );
}

/**
 * Puts the laboratory's labels on an image a container_build_command made, by building a
 * labelled image on it under the same tag: deleting that one takes the command's image with it.
 */
async function adopt(docker: Docker, build: ImageBuild): Promise<void> {
  const made = await docker
    .getImage(build.tag)
    .inspect()
    .catch(() => undefined);
  if (!made)
    throw new ExperimentError(`container_build_command did not make the image ${build.tag}`, [
      {
        where: "labtest.container_build_command",
        what: `after it ran, the laboratory has no image ${build.tag}`,
        fix: "tag the image it builds as $IMAGE, e.g. docker build -t $IMAGE .",
      },
    ]);
  const context = await mkdtemp(join(tmpdir(), "labtest-adopt-"));
  try {
    await writeFile(join(context, "Dockerfile"), `FROM ${made.Id}\n`);
    const stream = await docker.buildImage(
      { context, src: ["Dockerfile"] },
      // The classic builder: BuildKit looks an image id up in a registry, and leaves no parent
      // link, so the command's image would outlive the labelled one.
      { t: build.tag, labels: build.labels, version: "1" },
    );
    await followBuild(
      stream,
      () => undefined,
      (output) => new ExperimentError(`could not label ${build.tag}: ${output}`),
    );
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/**
 * Follows a build's output to its end, showing its steps; a failed build rejects with
 * `failure(output)`. BuildKit reports as protobuf status messages (see buildkitStatus).
 */
async function followBuild(
  stream: NodeJS.ReadableStream,
  progress: Progress,
  failure: (output: string) => Error,
): Promise<void> {
  const output: string[] = [];
  const started = new Set<string>();
  let failed: string | undefined;
  for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as BuildEvent;
    if (event.error !== undefined) failed = event.errorDetail?.message ?? event.error;
    if (event.stream) {
      output.push(event.stream);
      const step = /^Step \d+\/\d+ : .*/.exec(event.stream);
      if (step) progress(`building the image: ${step[0]}`);
    }
    if (event.id === "moby.buildkit.trace" && typeof event.aux === "string") {
      const status = buildkitStatus(event.aux);
      for (const vertex of status.vertexes) {
        if (vertex.name.startsWith("[") && vertex.started && !started.has(vertex.digest)) {
          started.add(vertex.digest);
          output.push(`${vertex.name}\n`);
          progress(`building the image: ${vertex.name}`);
        }
        if (vertex.error) output.push(`ERROR: ${vertex.error}\n`);
      }
      for (const log of status.logs) output.push(Buffer.from(log.msg).toString("utf8"));
    }
  }
  if (failed !== undefined) throw failure(lastLines(`${output.join("")}\n${failed}`));
}

interface BuildEvent {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  id?: string;
  aux?: unknown;
}
