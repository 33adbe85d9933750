/**
 * What `git -C dir ARGS` prints, trimmed; undefined when git fails or prints nothing. execa loads
 * on the first question: the commands that never ask git about the working copy skip it.
 */
async function gitAnswer(dir: string, args: string[]): Promise<string | undefined> {
  const { execa } = await import("execa");
  const result = await execa("git", ["-C", dir, ...args], { reject: false });
  return result.exitCode === 0 && result.stdout ? result.stdout.trim() : undefined;
}

/** The top-level directory of the git work tree containing `dir`, if any. */
export function gitToplevel(dir: string): Promise<string | undefined> {
  return gitAnswer(dir, ["rev-parse", "--show-toplevel"]);
}

/** The URL of the `origin` remote of the repository containing `dir`, if any. */
export function gitOriginUrl(dir: string): Promise<string | undefined> {
  return gitAnswer(dir, ["remote", "get-url", "origin"]);
}

/** The branch checked out in the repository containing `dir`, if any (not on a detached HEAD). */
export function gitBranch(dir: string): Promise<string | undefined> {
  return gitAnswer(dir, ["symbolic-ref", "--short", "-q", "HEAD"]);
}
