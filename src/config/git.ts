import { execa } from "execa";

/** The top-level directory of the git work tree containing `dir`, if any. */
export async function gitToplevel(dir: string): Promise<string | undefined> {
  const result = await execa("git", ["-C", dir, "rev-parse", "--show-toplevel"], { reject: false });
  return result.exitCode === 0 && result.stdout ? result.stdout.trim() : undefined;
}

/** The URL of the `origin` remote of the repository containing `dir`, if any. */
export async function gitOriginUrl(dir: string): Promise<string | undefined> {
  const result = await execa("git", ["-C", dir, "remote", "get-url", "origin"], { reject: false });
  return result.exitCode === 0 && result.stdout ? result.stdout.trim() : undefined;
}

/** The branch checked out in the repository containing `dir`, if any (not on a detached HEAD). */
export async function gitBranch(dir: string): Promise<string | undefined> {
  const result = await execa("git", ["-C", dir, "symbolic-ref", "--short", "-q", "HEAD"], { reject: false });
  return result.exitCode === 0 && result.stdout ? result.stdout.trim() : undefined;
}
