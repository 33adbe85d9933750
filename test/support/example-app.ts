// The bundled example app, as tests and benchmarks set it up (no test-runner hooks here, so
// bench/ can use it too).
import { readFileSync } from "node:fs";
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";

const ROOT = join(import.meta.dirname, "../..");

export type LocalImage = "postgresql" | "mariadb" | "redis" | "memcached" | "rabbitmq" | "node" | "python";

/**
 * The tag of a locally built image (images/<name>/TAG, built by scripts/infra/setup.sh): the
 * stand-ins for the official service images, node, and the Flask example's Python.
 */
export function localImage(name: LocalImage): string {
  return readFileSync(join(ROOT, "images", name, "TAG"), "utf8").trim();
}

/** Copies the example app (without installed modules) into `directory`. */
export async function copyExample(directory: string): Promise<void> {
  for (const entry of await readdir(join(ROOT, "examples/hello"))) {
    if (entry === "node_modules") continue;
    await cp(join(ROOT, "examples/hello", entry), join(directory, entry), { recursive: true });
  }
}

/** Rewrites the .labtest.yml in `directory`. */
export async function setConfig(directory: string, change: (text: string) => string): Promise<void> {
  const file = join(directory, ".labtest.yml");
  await writeFile(file, change(await readFile(file, "utf8")));
}

/**
 * Points the example app in `directory` at the docker runtime: its services in Docker, its
 * image built from the local node image (nothing is pulled here), and with `buildStep` an
 * app_build_command in a build container that leaves the release in build-info.txt.
 */
export async function runExampleInDocker(directory: string, options = { buildStep: true }): Promise<void> {
  const buildStep =
    `  app_build_image: ${localImage("node")}\n` +
    `  app_build_command: node -e "require('fs').writeFileSync('build-info.txt', process.env.RELEASE)"\n`;
  await setConfig(directory, (text) =>
    text
      .replace(/ {2}app_build_command: .*\n/, "")
      .replace(/ {2}start_command: .*\n/, "")
      .replace(
        "  before_start_command:",
        `  runtime: docker\n${options.buildStep ? buildStep : ""}  before_start_command:`,
      )
      .replaceAll("provider: local", "provider: docker"),
  );
  const dockerfile = join(directory, "Dockerfile");
  await writeFile(
    dockerfile,
    (await readFile(dockerfile, "utf8")).replace(/^FROM .*/m, `FROM ${localImage("node")}`),
  );
}

export async function commit(repo: string, message: string): Promise<void> {
  await execa("git", ["-C", repo, "add", "-A"]);
  await execa("git", [
    "-C",
    repo,
    "-c",
    "user.email=test@example.com",
    "-c",
    "user.name=test",
    "commit",
    "-qm",
    message,
  ]);
}
