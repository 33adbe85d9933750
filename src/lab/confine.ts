import { realpath } from "node:fs/promises";
import { sep } from "node:path";

/**
 * Whether `path` is inside `root` once every symbolic link is resolved. A branch's files are
 * read by the laboratory's own account: a link in the checkout must not lead it to the
 * laboratory's secrets or another experiment's files.
 */
export async function resolvesInside(root: string, path: string): Promise<boolean> {
  const [realRoot, realPath] = await Promise.all([realpath(root), realpath(path).catch(() => undefined)]);
  return realPath !== undefined && (realPath === realRoot || realPath.startsWith(`${realRoot}${sep}`));
}
