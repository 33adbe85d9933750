import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { onTestFinished } from "vitest";

/** A scratch directory removed after the current test, pass or fail. */
export async function scratchDir(prefix = "labtest-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes files (path → content) under `root`, creating directories as needed. */
export async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/** A fresh git repository named `name` inside a scratch directory, with an optional origin. */
export async function gitRepo(name: string, options: { origin?: string } = {}): Promise<string> {
  const repo = join(await scratchDir(), name);
  await mkdir(repo);
  await execa("git", ["init", "-q", "-b", "main", repo]);
  if (options.origin) await execa("git", ["-C", repo, "remote", "add", "origin", options.origin]);
  return repo;
}
