import { stat, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname } from "node:path";
import { LabtestError } from "../errors.js";
import { labtestHome } from "../lab/home.js";

// Failures of the machine a command runs on rather than of labtest: reported as what they are,
// with where, instead of as a bug.

/** Whether `error`, or an error that caused it, is a write to a full filesystem. */
function noSpace(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    const { code, stderr } = e as { code?: unknown; stderr?: unknown };
    if (code === "ENOSPC" || code === "SQLITE_FULL") return true;
    if (typeof stderr === "string" && stderr.includes("No space left on device")) return true;
  }
  return false;
}

/** The path the failed call named, when it named one (a write to an open file does not). */
function pathOf(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const { path } = e as { path?: unknown };
    if (typeof path === "string") return path;
  }
  return undefined;
}

/** Bytes as people read them: 0 B, 1 MiB, 3.2 GiB, 76 GiB. */
function size(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  for (; value >= 1024 && unit < units.length - 1; unit++) value /= 1024;
  return `${value >= 10 ? Math.round(value) : Number(value.toFixed(1))} ${units[unit]}`;
}

/** How much room the filesystem holding `path` (or its nearest existing parent) has. */
async function room(path: string): Promise<{ device: number; free: number; total: number } | undefined> {
  for (let place = path; ; place = dirname(place)) {
    const [info, fs] = await Promise.all([
      stat(place).catch(() => undefined),
      statfs(place).catch(() => undefined),
    ]);
    if (info && fs) return { device: info.dev, free: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize };
    if (dirname(place) === place) return undefined;
  }
}

/**
 * A full filesystem as an error the user can act on: the places labtest was writing to (the
 * path the failure named, the laboratory's home, the temporary directory), least room first,
 * each with its free space. Undefined for any other error.
 */
export async function diskFullError(
  error: unknown,
  env: NodeJS.ProcessEnv,
): Promise<LabtestError | undefined> {
  if (!noSpace(error)) return undefined;
  const places = [pathOf(error), labtestHome(env), tmpdir()].filter((p): p is string => p !== undefined);
  const seen = new Set<number>();
  const measured: { place: string; free: number; total: number }[] = [];
  for (const place of places) {
    const found = await room(place);
    if (!found || seen.has(found.device)) continue;
    seen.add(found.device);
    measured.push({ place, ...found });
  }
  measured.sort((a, b) => a.free - b.free);
  return new LabtestError(
    "no space left on device",
    measured.map(({ place, free, total }, i) => ({
      where: place,
      what: `${size(free)} free of ${size(total)}`,
      ...(i === 0
        ? { fix: "free some space there (df -h shows each filesystem), then run the command again" }
        : {}),
    })),
    { cause: error },
  );
}
